"""The workflow runs on a real SLURM cluster through profiles/slurm.

Skipped unless SLURM answers (`sinfo` works) or LOOD_SLURM_TEST=1, which makes
the test start a one-node cluster itself with tests/slurm/setup_slurm.sh
(root; installs Debian's slurm + slurmdbd + MariaDB on first use). CI sets it.

Each run goes through `snakemake --workflow-profile profiles/slurm` with the
profile's own resources, overriding only what a laptop-sized test cluster
cannot honour (see ``cli_overrides``), inside `timeout -s KILL`. It passes only
if SLURM ran the jobs: every non-local job must appear in `sacct` under this
run's ID, COMPLETED, on the test account and partition, with the rule name in
its comment, a kept per-job log, and no GPU requested.

Knobs (environment): LOOD_SLURM_ACCOUNT, LOOD_SLURM_PARTITION (default
lood_test / debug, as setup_slurm.sh creates them), LOOD_SLURM_TIMEOUT
(seconds per Snakemake run, default 300), and for the real workflow
LOOD_SLURM_CONFIGFILE (default tests/configs/tiny.yaml) and LOOD_SLURM_TARGETS
(space-separated; default REAL_TARGETS below; "all" for the whole workflow).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"
SETUP = REPO / "tests" / "slurm" / "setup_slurm.sh"
MINI_SNAKEFILE = REPO / "tests" / "slurm" / "mini" / "Snakefile"

ACCOUNT = os.environ.get("LOOD_SLURM_ACCOUNT", "lood_test")
PARTITION = os.environ.get("LOOD_SLURM_PARTITION", "debug")
TIMEOUT_S = int(os.environ.get("LOOD_SLURM_TIMEOUT", "300"))
REAL_SNAKEFILE = REPO / "Snakefile"
REAL_CONFIGFILE = Path(
    os.environ.get("LOOD_SLURM_CONFIGFILE", REPO / "tests" / "configs" / "tiny.yaml")
).resolve()
# Two figures of one experiment: ~10 SLURM jobs that cover every kind of job
# (the three GPU rules train_in_models, train_out_models, influence; the
# memory-heavy nngp_lood; MIA scoring; plotting) in ~2-3 minutes. The whole
# tiny workflow is ~33 SLURM jobs, ~5 min on 2 cores (each job starts Python,
# torch and JAX twice); the local e2e tests cover it.
DEFAULT_REAL_TARGETS = ["results/relu/figures/correlation.png", "results/relu/figures/influence.png"]
REAL_TARGETS = os.environ.get("LOOD_SLURM_TARGETS", " ".join(DEFAULT_REAL_TARGETS)).split()

# What a one-node test cluster cannot honour: GPUs (the profile asks one per
# training job; the test node has none, and sbatch rejects a GPU request
# there), more cores than the node has, and paper-scale memory (16 GB per
# training job would serialise jobs on a 24 GB node). Everything else in the
# profile is used as written.
MEM_CAP_MB = 4000
MAX_THREADS = 1


def slurm_answers() -> bool:
    """True when a SLURM controller answers `sinfo`."""
    if shutil.which("sinfo") is None:
        return False
    try:
        done = subprocess.run(
            ["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


@pytest.fixture(scope="module")
def slurm() -> None:
    """A running SLURM: reuse one that answers, start one if forced, else skip."""
    forced = os.environ.get("LOOD_SLURM_TEST") == "1"
    if not forced:
        if not slurm_answers():
            pytest.skip(
                "SLURM is not running (`sinfo` fails). Start a local one with "
                "`sudo bash tests/slurm/setup_slurm.sh`, or set LOOD_SLURM_TEST=1 "
                "to have this test start it."
            )
        return
    if os.geteuid() != 0:
        pytest.fail("LOOD_SLURM_TEST=1 needs root: setup_slurm.sh installs and starts daemons")
    # Idempotent: reuses running daemons, (re)creates the test account.
    done = subprocess.run(
        ["bash", str(SETUP)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"setup_slurm.sh failed:\n{done.stdout}\n{done.stderr}"
    assert slurm_answers(), "setup_slurm.sh succeeded but `sinfo` still fails"


def cli_overrides(profile_dir: Path = PROFILE) -> list[str]:
    """Command-line options that adapt the SLURM profile to the test cluster.

    A --default-resources or --set-resources on the command line replaces the
    profile's whole list, so both are rebuilt here from the profile itself:
    every entry kept except the account/partition placeholders, `gpu` (set to
    0) and memory (capped at MEM_CAP_MB).
    """
    profile = yaml.safe_load((profile_dir / "config.yaml").read_text())
    assert profile["executor"] == "slurm"

    defaults = dict(profile.get("default-resources") or {})
    defaults.update(slurm_account=ACCOUNT, slurm_partition=PARTITION)
    if "mem_mb" in defaults:
        defaults["mem_mb"] = min(int(defaults["mem_mb"]), MEM_CAP_MB)

    per_rule = []
    for rule, resources in (profile.get("set-resources") or {}).items():
        for name, value in resources.items():
            if name == "gpu":
                value = 0
            elif name == "mem_mb":
                value = min(int(value), MEM_CAP_MB)
            per_rule.append(f"{rule}:{name}={value}")

    options = ["--default-resources", *(f"{k}={v}" for k, v in defaults.items())]
    if per_rule:
        options += ["--set-resources", *per_rule]
    return options + [
        "--max-threads", str(MAX_THREADS),
        # Poll sacct 2 s after submission and after each finished job (the
        # profile's 40 s suits hour-long jobs, not a test).
        "--slurm-init-seconds-before-status-checks", "2",
        # Keep every job's SLURM log, to check that each one exists.
        "--slurm-keep-successful-logs",
    ]


def test_overrides_turn_off_every_gpu_request():
    """The profile asks GPUs for the training rules; the test asks none."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    gpu_rules = {r for r, res in profile["set-resources"].items() if res.get("gpu")}
    assert gpu_rules == {"train_in_models", "train_out_models", "influence"}
    options = cli_overrides()
    assert {f"{rule}:gpu=0" for rule in gpu_rules} <= set(options)
    assert not [o for o in options if re.search(r":gpu=[1-9]", o)]
    assert f"slurm_account={ACCOUNT}" in options
    assert not [o for o in options if "REPLACE_WITH" in o]


def snakemake_cmd(
    snakefile: Path, workdir: Path, targets: list[str], *args: str
) -> list[str]:
    """The venv's Snakemake on the SLURM profile, under a hard kill timeout."""
    return [
        "timeout", "-s", "KILL", str(TIMEOUT_S),
        sys.executable, "-m", "snakemake",
        # Targets first: options such as --configfile take several values and
        # would swallow targets placed after them.
        *targets,
        "--snakefile", str(snakefile),
        "--directory", str(workdir),
        "--workflow-profile", str(PROFILE),
        *cli_overrides(),
        *args,
    ]


def job_env() -> dict[str, str]:
    """The environment Snakemake (and, through sbatch --export=ALL, every job) sees."""
    env = dict(os.environ)
    # Jobs run `python -m snakemake` on the node: it must be this venv's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # A test started inside a SLURM allocation must not leak it into sbatch.
    for name in list(env):
        if name.startswith("SLURM_"):
            del env[name]
    return env


def sacct_jobs(run_id: str) -> list[dict[str, str]]:
    """This run's SLURM jobs as sacct reports them (allocations only, no steps)."""
    fields = ["JobIDRaw", "JobName", "State", "Account", "Partition", "AllocTRES", "Comment"]
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "--starttime", "now-1days",
         "--name", run_id, "-o", ",".join(fields)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]


def failed_job_logs(workdir: Path, lines: int = 15) -> str:
    """The ends of the per-job SLURM logs that report an error (at most 4)."""
    parts = []
    for path in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log")):
        text = path.read_text(errors="replace")
        if "Error" in text and len(parts) < 4:
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"---- {path.relative_to(workdir)}\n{tail}")
    return "\n".join(parts)


def run_and_check_on_slurm(
    snakefile: Path, workdir: Path, targets: list[str] = (), *args: str
) -> list[dict]:
    """Run a workflow on SLURM, check SLURM ran every non-local job; return them."""
    targets = list(targets)
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "snakemake-slurm.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        done = subprocess.run(
            snakemake_cmd(snakefile, workdir, targets, *args),
            stdout=log, stderr=subprocess.STDOUT, env=job_env(), cwd=workdir,
        )
    wall_s = time.monotonic() - started
    text = log_path.read_text()
    tail = "\n".join(text.splitlines()[-80:])
    assert done.returncode not in (124, 137), (
        f"Snakemake on SLURM was killed after {TIMEOUT_S}s "
        f"(squeue: {subprocess.run(['squeue'], capture_output=True, text=True).stdout})\n{tail}"
    )
    assert done.returncode == 0, (
        f"Snakemake on SLURM failed ({done.returncode}):\n{tail}\n{failed_job_logs(workdir)}"
    )
    print(f"workflow {snakefile} on SLURM: {wall_s:.0f} s wall")

    run_ids = re.findall(r"^SLURM run ID: (\S+)$", text, flags=re.M)
    assert len(run_ids) == 1, f"no SLURM executor run ID in the log:\n{tail}"
    run_id = run_ids[0]

    # (Snakemake job id, SLURM job id) of every submission, and the rule of
    # every finished Snakemake job; local jobs finish without a submission.
    submitted = re.findall(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", text, flags=re.M)
    finished = dict(re.findall(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", text, flags=re.M))
    assert submitted, f"no job was submitted to SLURM:\n{tail}"
    rule_of_slurm_job = {slurm_id: finished.get(job_id) for job_id, slurm_id in submitted}
    assert None not in rule_of_slurm_job.values(), f"a job never finished: {submitted} {finished}"

    jobs = sacct_jobs(run_id)
    table = "\n".join("|".join(j.values()) for j in jobs)
    assert {j["JobIDRaw"] for j in jobs} == set(rule_of_slurm_job), (
        f"sacct does not list exactly the submitted jobs:\n{table}"
    )
    slurm_logs = workdir / ".snakemake" / "slurm_logs"
    for job in jobs:
        assert job["State"] == "COMPLETED", table
        assert job["Account"] == ACCOUNT and job["Partition"] == PARTITION, table
        assert "gres/gpu" not in job["AllocTRES"], table
        rule = rule_of_slurm_job[job["JobIDRaw"]]
        # The plugin logs each job to slurm_logs/rule_<rule>/[<wildcards>/]<id>.log
        logs = list(slurm_logs.rglob(f"{job['JobIDRaw']}.log"))
        assert len(logs) == 1, f"no SLURM log for job {job['JobIDRaw']}"
        assert logs[0].relative_to(slurm_logs).parts[0] == f"rule_{rule}", logs
        # ...and writes rule_<rule>[_wildcards_<values>] into --comment (stored
        # where AccountingStoreFlags has job_comment, as in setup_slurm.sh).
        if job["Comment"]:
            assert re.fullmatch(rf"rule_{rule}(_wildcards_.*)?", job["Comment"]), table
        job["Rule"] = rule
    assert len(jobs) == len(submitted), table
    print(f"sacct for SLURM run {run_id}:\n{table}")

    # Everything is up to date now: outputs written on the node are seen here.
    dry = subprocess.run(
        snakemake_cmd(snakefile, workdir, targets, "--dry-run", *args),
        capture_output=True, text=True, env=job_env(), cwd=workdir,
    )
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, (
        dry.stdout + dry.stderr
    )
    return jobs


def test_mini_workflow_runs_on_slurm(slurm, tmp_path):
    """Harness check on a two-level stand-in with the real rule names."""
    jobs = run_and_check_on_slurm(MINI_SNAKEFILE, tmp_path / "mini")
    assert sorted(j["Rule"] for j in jobs) == ["nngp_lood", "train_in_models", "train_in_models"]
    # The jobs themselves saw SLURM: each output records its SLURM job id.
    result = json.loads((tmp_path / "mini" / "results/mini/nngp_lood.json").read_text())
    seen = {result["slurm_job_id"]} | {i["slurm_job_id"] for i in result["inputs"]}
    assert seen == {j["JobIDRaw"] for j in jobs}
    assert result["gpus"] is None


@pytest.mark.skipif(
    not REAL_SNAKEFILE.is_file() or not REAL_CONFIGFILE.is_file(),
    reason=f"real workflow not ready: needs {REAL_SNAKEFILE} and {REAL_CONFIGFILE}",
)
def test_real_workflow_runs_on_slurm(slurm, tmp_path):
    """The LOOD workflow on the tiny config, every non-local job through SLURM.

    Runs in a scratch copy of the workflow (conftest.copy_workflow), so the
    repository's results/ and .snakemake/ are never touched.
    """
    from conftest import copy_workflow

    workflow_copy = tmp_path / "wf"
    workflow_copy.mkdir()
    copy_workflow(workflow_copy)
    targets = [] if REAL_TARGETS == ["all"] else REAL_TARGETS
    jobs = run_and_check_on_slurm(
        workflow_copy / "Snakefile", workflow_copy, targets,
        "--configfile", str(REAL_CONFIGFILE),
    )
    ran = {j["Rule"] for j in jobs}
    # The GPU rules and the big-memory rule went through SLURM.
    if targets in ([], DEFAULT_REAL_TARGETS):
        assert {"train_in_models", "train_out_models", "influence", "nngp_lood"} <= ran
    for target in targets:
        assert (workflow_copy / target).is_file(), target
