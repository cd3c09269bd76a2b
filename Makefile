# The two commands of the README:
#   make run   set up the pinned environment (once) and run the default workflow
#   make test  set up the same environment and run tests, lint and format checks
#   (make test-fast skips the end-to-end and SLURM tests, for local iteration)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= python3

.PHONY: venv run test test-fast lint bench report clean-results docs docs-snapshot

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	# neural-tangents without its declared TensorFlow dependency (see requirements.txt).
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -c "import lood.analytic.tables, lood.empirical.train, snakemake; print('environment ready')"
	touch $@

venv: $(STAMP)

# Opt-in, for SLURM users (profiles/slurm/README.md): the SLURM executor plugin.
# Not in `make venv`: it probes SLURM at import, which slows every snakemake call.
SLURM_STAMP := $(VENV)/.slurm-installed
.PHONY: slurm-env
$(SLURM_STAMP): requirements-slurm.txt $(STAMP)
	$(BIN)/pip install --quiet -r requirements-slurm.txt
	touch $@

slurm-env: $(SLURM_STAMP)

run: venv
	$(BIN)/snakemake --cores all
	$(BIN)/snakemake --report results/report.html

test: venv lint
	$(BIN)/python -m pytest

# Local iteration: the unit tests only (no end-to-end workflow runs, no SLURM), then lint.
test-fast: venv lint
	$(BIN)/python -m pytest -m "not e2e and not slurm"

lint: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

bench: venv
	$(BIN)/python bench/bench_lood.py
	$(BIN)/python bench/bench_train.py

report: venv
	$(BIN)/snakemake --report results/report.html

# Pages whose numbers come from tables (docs/src/pages.yaml): `make docs-snapshot` copies a finished run's tables
# and figures into docs/ (with the config and commit that made them; RUN=groups for the group study's), `make docs`
# renders the pages (README.md, docs/results.md, ...) from them; the test suite fails while a page differs from its
# rendering.
RUN ?= default
docs-snapshot: venv
	$(BIN)/python -m lood.reporting.docs snapshot $(RUN) results

docs: venv
	$(BIN)/python -m lood.reporting.docs render
