# The two commands of the README:
#   make run   set up the pinned environment (once) and run the default workflow
#   make test  set up the same environment and run tests, lint and format checks
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTHON ?= python3

.PHONY: venv run test bench report clean-results

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	# neural-tangents without its declared TensorFlow dependency (see requirements.txt).
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -c "import lood.nngp, lood.train, snakemake; print('environment ready')"
	touch $@

venv: $(STAMP)

run: venv
	$(BIN)/snakemake --cores all
	$(BIN)/snakemake --report results/report.html

test: venv
	$(BIN)/python -m pytest
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

bench: venv
	$(BIN)/python bench/bench_lood.py
	$(BIN)/python bench/bench_train.py

report: venv
	$(BIN)/snakemake --report results/report.html
