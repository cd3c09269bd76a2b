"""The workflow runs on a real SLURM cluster through profiles/slurm, as its README says.

Needs the opt-in SLURM executor plugin (`make slurm-env`, requirements-slurm.txt):
without it the tests that talk to SLURM skip and say so (.ci/run installs it
first). Also skipped unless SLURM answers
(`sinfo` works) or LOOD_SLURM_TEST=1, which makes the test start a one-node cluster
itself with tests/slurm/setup_slurm.sh (root; installs Debian's slurm + slurmdbd +
MariaDB on first use). .ci/run sets it.

What runs:
- the smoke test of profiles/slurm/README.md, read from that file and run verbatim
  apart from ACCOUNT and PARTITION, on the whole tiny config: every non-local job
  must appear in `sacct` under this run's ID, COMPLETED, on the test account and
  partition, with its rule in the comment and no GPU (the preflight dropped them:
  the test node has none);
- a two-rule stand-in (tests/slurm/mini) through the same profile, which also checks
  what the jobs saw on the node (SLURM job id, threads capped at the node's CPUs);
- requests the node can never meet (too many CPUs, too much memory): the preflight
  must stop the run before any submission with a message naming rule, request,
  offer and fix, instead of leaving jobs pending forever.

Knobs (environment): LOOD_SLURM_ACCOUNT, LOOD_SLURM_PARTITION (default lood_test /
debug, as setup_slurm.sh creates them), LOOD_SLURM_TIMEOUT (seconds per short run,
default 300), LOOD_SLURM_SMOKE_TIMEOUT (the smoke test, default 1200).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "profiles" / "slurm"
PROFILE_README = PROFILE / "README.md"
SETUP = REPO / "tests" / "slurm" / "setup_slurm.sh"
MINI_SNAKEFILE = REPO / "tests" / "slurm" / "mini" / "Snakefile"

ACCOUNT = os.environ.get("LOOD_SLURM_ACCOUNT", "lood_test")
PARTITION = os.environ.get("LOOD_SLURM_PARTITION", "debug")
TIMEOUT_S = int(os.environ.get("LOOD_SLURM_TIMEOUT", "300"))
SMOKE_TIMEOUT_S = int(os.environ.get("LOOD_SLURM_SMOKE_TIMEOUT", "1200"))
PLUGIN_MISSING = (
    "the SLURM executor plugin is not installed: `make slurm-env` (or "
    "`.venv/bin/pip install -r requirements-slurm.txt`) installs it"
)
# The marker in profiles/slurm/README.md above the smoke test's code block.
SMOKE_MARKER = "<!-- smoke-test: tests/workflow/test_slurm.py runs the next command verbatim -->"


def documented_smoke_test(readme: Path = PROFILE_README) -> list[str]:
    """The smoke-test command of a README (profiles/slurm's by default), as words (ACCOUNT/PARTITION unreplaced)."""
    text = readme.read_text()
    assert SMOKE_MARKER in text, f"{readme} lost its smoke-test marker"
    block = re.search(r"```bash\n(.*?)```", text[text.index(SMOKE_MARKER) :], flags=re.S)
    assert block, "no ```bash block after the smoke-test marker"
    lines = [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 1, f"the smoke test should be one line, got {lines}"
    return shlex.split(lines[0], comments=True)


def smoke_command(account: str = ACCOUNT, partition: str = PARTITION) -> list[str]:
    """The documented smoke test with this cluster's account and partition."""
    replace = {"ACCOUNT": account, "PARTITION": partition}
    return [re.sub(r"\b(ACCOUNT|PARTITION)\b", lambda m: replace[m.group(1)], word) for word in documented_smoke_test()]


def test_documented_smoke_test_needs_no_workarounds():
    """One line, the tiny config, placeholders only for account and partition, no GPU or thread overrides."""
    cmd = documented_smoke_test()
    assert documented_smoke_test(REPO / "README.md") == cmd, "README.md and profiles/slurm/README.md differ"
    assert cmd[:3] == ["snakemake", "--workflow-profile", "profiles/slurm"]
    assert "tests/configs/tiny.yaml" in cmd
    assert "slurm_account=ACCOUNT" in cmd and "slurm_partition=PARTITION" in cmd
    assert not [w for w in cmd if "gpu" in w or w.startswith("--max-threads") or w == "--set-resources"]
    runtimes = [w for w in cmd if w.startswith("runtime=")]
    assert runtimes and all(re.fullmatch(r"runtime=\d+[mhd]", w) for w in runtimes), runtimes
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    # Bare numbers meant seconds in Snakemake 9.16.3-9.19 (snakemake#4039): every runtime has a unit.
    values = [profile["default-resources"]["runtime"]]
    values += [res["runtime"] for res in profile["set-resources"].values() if "runtime" in res]
    assert all(re.fullmatch(r"\d+[mhd]", str(v)) for v in values), values


def slurm_answers() -> bool:
    """True when a SLURM controller answers `sinfo`."""
    if shutil.which("sinfo") is None:
        return False
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and bool(done.stdout.strip())


@pytest.fixture(scope="module")
def slurm() -> None:
    """A running SLURM and the plugin: reuse one that answers, start one if forced, else skip."""
    forced = os.environ.get("LOOD_SLURM_TEST") == "1"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip(PLUGIN_MISSING)  # .ci/run installs it first
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
    done = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"setup_slurm.sh failed:\n{done.stdout}\n{done.stderr}"
    assert slurm_answers(), "setup_slurm.sh succeeded but `sinfo` still fails"


def node_cpus() -> int:
    """CPUs of the largest node in the test partition."""
    out = subprocess.run(
        ["sinfo", "-h", "-N", "-p", PARTITION, "-o", "%c"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return max(int(v.rstrip("+")) for v in out.split())


def job_env(**extra: str) -> dict[str, str]:
    """The environment Snakemake (and, through sbatch --export=ALL, every job) sees: the venv activated."""
    env = dict(os.environ)
    # Jobs run `python -m snakemake` on the node: it must be this venv's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # A test started inside a SLURM allocation must not leak it into sbatch.
    for name in list(env):
        if name.startswith("SLURM_") or name == "LOOD_SLURM_PREFLIGHT":
            del env[name]
    return env | extra


def run_snakemake(cmd: list[str], workdir: Path, timeout_s: int, **env: str) -> tuple[int, str]:
    """Run cmd in workdir under `timeout -s KILL`; return its exit status and its output (also kept in a log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "snakemake-slurm.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        done = subprocess.run(
            ["timeout", "-s", "KILL", str(timeout_s), *cmd],
            stdout=log, stderr=subprocess.STDOUT, env=job_env(**env), cwd=workdir,
        )  # fmt: skip
    print(f"{shlex.join(cmd)}\n  exit {done.returncode} after {time.monotonic() - started:.0f} s")
    text = log_path.read_text()
    if done.returncode in (124, 137):
        squeue = subprocess.run(["squeue"], capture_output=True, text=True).stdout
        pytest.fail(f"Snakemake on SLURM was killed after {timeout_s}s (squeue:\n{squeue})\n{tail(text)}")
    return done.returncode, text


def tail(text: str, lines: int = 80) -> str:
    return "\n".join(text.splitlines()[-lines:])


def sacct_jobs(run_id: str) -> list[dict[str, str]]:
    """This run's SLURM jobs as sacct reports them (allocations only, no steps)."""
    fields = ["JobIDRaw", "JobName", "State", "Account", "Partition", "AllocTRES", "ReqCPUS", "Comment"]
    out = subprocess.run(
        ["sacct", "-X", "-P", "-n", "--starttime", "now-1days", "--name", run_id, "-o", ",".join(fields)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines() if line]


def failed_job_logs(workdir: Path, lines: int = 15) -> str:
    """The ends of the per-job SLURM logs that report an error (at most 4)."""
    parts = []
    for path in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log")):
        text = path.read_text(errors="replace")
        if "Error" in text and len(parts) < 4:
            parts.append(f"---- {path.relative_to(workdir)}\n{tail(text, lines)}")
    return "\n".join(parts)


def check_ran_on_slurm(text: str, workdir: Path, logs_kept: bool) -> list[dict]:
    """From a finished run's output: check SLURM ran every non-local job, each COMPLETED; return them."""
    run_ids = re.findall(r"^SLURM run ID: (\S+)$", text, flags=re.M)
    assert len(run_ids) == 1, f"no SLURM executor run ID in the log:\n{tail(text)}"
    # (Snakemake job id, SLURM job id) of every submission, and the rule of every finished
    # Snakemake job; local jobs finish without a submission.
    submitted = re.findall(r"^Job (\d+) has been submitted with SLURM jobid (\d+)", text, flags=re.M)
    finished = dict(re.findall(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", text, flags=re.M))
    assert submitted, f"no job was submitted to SLURM:\n{tail(text)}"
    rule_of_slurm_job = {slurm_id: finished.get(job_id) for job_id, slurm_id in submitted}
    assert None not in rule_of_slurm_job.values(), f"a job never finished: {submitted} {finished}"

    jobs = sacct_jobs(run_ids[0])
    table = "\n".join("|".join(j.values()) for j in jobs)
    assert {j["JobIDRaw"] for j in jobs} == set(rule_of_slurm_job), f"sacct lists other jobs:\n{table}"
    cpus = node_cpus()
    slurm_logs = workdir / ".snakemake" / "slurm_logs"
    for job in jobs:
        assert job["State"] == "COMPLETED", table
        assert job["Account"] == ACCOUNT and job["Partition"] == PARTITION, table
        assert "gres/gpu" not in job["AllocTRES"], table
        assert int(job["ReqCPUS"]) <= cpus, table
        rule = rule_of_slurm_job[job["JobIDRaw"]]
        if logs_kept:  # the plugin logs each job to slurm_logs/rule_<rule>/[<wildcards>/]<id>.log
            logs = list(slurm_logs.rglob(f"{job['JobIDRaw']}.log"))
            assert len(logs) == 1, f"no SLURM log for job {job['JobIDRaw']}"
            assert logs[0].relative_to(slurm_logs).parts[0] == f"rule_{rule}", logs
        # The plugin writes rule_<rule>[_wildcards_<values>] into --comment (stored where
        # AccountingStoreFlags has job_comment, as in setup_slurm.sh).
        if job["Comment"]:
            assert re.fullmatch(rf"rule_{rule}(_wildcards_.*)?", job["Comment"]), table
        job["Rule"] = rule
    assert len(jobs) == len(submitted), table
    print(f"sacct for SLURM run {run_ids[0]}:\n{table}")
    return jobs


def mini_command(profile: Path = PROFILE) -> list[str]:
    """The smoke test's options on the mini workflow (no config), with a short first status check."""
    cmd = smoke_command()
    i = cmd.index("--configfile")
    cmd = cmd[:i] + cmd[i + 2 :]
    cmd[cmd.index("--workflow-profile") + 1] = str(profile)
    return [*cmd, "--snakefile", str(MINI_SNAKEFILE), "--slurm-init-seconds-before-status-checks", "2"]


def test_mini_workflow_runs_on_slurm(slurm, tmp_path):
    """A two-level stand-in with the real rule names: the profile as it is, the preflight adapting it."""
    workdir = tmp_path / "mini"
    code, text = run_snakemake([*mini_command(), "--slurm-keep-successful-logs"], workdir, TIMEOUT_S)
    assert code == 0, f"Snakemake on SLURM failed ({code}):\n{tail(text)}\n{failed_job_logs(workdir)}"
    # The node has fewer CPUs than nngp_lood's 8 and no GPUs: the preflight said what it changed.
    cpus = node_cpus()
    assert f"SLURM preflight: threads capped at {cpus}" in text
    assert f"SLURM preflight: partition '{PARTITION}' has no GPUs: train_in_models run on CPU" in text
    jobs = check_ran_on_slurm(text, workdir, logs_kept=True)
    assert sorted(j["Rule"] for j in jobs) == ["nngp_lood", "train_in_models", "train_in_models"]
    # The jobs themselves saw SLURM: each output records its SLURM job id and its threads.
    result = json.loads((workdir / "results/mini/nngp_lood.json").read_text())
    seen = {result["slurm_job_id"]} | {i["slurm_job_id"] for i in result["inputs"]}
    assert seen == {j["JobIDRaw"] for j in jobs}
    assert result["gpus"] is None
    assert result["threads"] == min(8, cpus)


def profile_asking(tmp_path: Path, rule: str, **resources: int) -> Path:
    """A copy of the SLURM profile whose rule asks for more than the test node has."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    if "threads" in resources:
        profile["set-threads"][rule] = resources.pop("threads")
    profile["set-resources"].setdefault(rule, {}).update(resources)
    directory = tmp_path / "profile"
    directory.mkdir()
    (directory / "config.yaml").write_text(yaml.safe_dump(profile))
    return directory


@pytest.mark.parametrize(
    "mode, request_, asked, fix",
    [
        ("strict", {"threads": 4096}, "threads=4096", "--max-threads {cpus}"),
        ("adapt", {"cpus_per_task": 4096}, "cpus_per_task=4096", "--set-resources nngp_lood:cpus_per_task={cpus}"),
        ("adapt", {"mem_mb": 100_000_000}, "mem_mb=100000000", "--set-resources nngp_lood:mem_mb="),
    ],
)
def test_request_the_node_cannot_meet_stops_before_submission(slurm, tmp_path, mode, request_, asked, fix):
    """No job is left pending forever; the run stops at once and says what to change.

    4096 CPUs and 100 TB exceed any one node a test machine has (setup_slurm.sh sizes the node from it).
    """
    profile = profile_asking(tmp_path, "nngp_lood", **request_)
    code, text = run_snakemake(mini_command(profile), tmp_path / "mini", 120, LOOD_SLURM_PREFLIGHT=mode)
    assert code != 0, tail(text)
    cpus = node_cpus()
    assert "SLURM preflight: stopped before the first submission" in text, tail(text)
    assert f"  - {asked} (rule nngp_lood; 1 job)" in text, tail(text)
    assert f"Partition '{PARTITION}': nodes of at most {cpus} CPUs" in text
    assert f"Fix: {fix.format(cpus=cpus)}" in text, tail(text)
    assert "has been submitted" not in text


def test_documented_smoke_test_completes_on_slurm(slurm, tmp_path):
    """profiles/slurm/README.md's smoke test, verbatim apart from account and partition, in a workflow copy."""
    from conftest import copy_workflow

    workdir = copy_workflow(tmp_path / "wf")
    cmd = smoke_command()
    code, text = run_snakemake(cmd, workdir, SMOKE_TIMEOUT_S)
    assert code == 0, f"the smoke test failed ({code}):\n{tail(text)}\n{failed_job_logs(workdir)}"
    jobs = check_ran_on_slurm(text, workdir, logs_kept=False)
    # The GPU rules and the big-memory rule went through SLURM; afterwards everything is up to date.
    assert {"train_in_models", "train_out_models", "influence", "nngp_lood"} <= {j["Rule"] for j in jobs}
    dry = subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, env=job_env(), cwd=workdir)
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout + dry.stderr
