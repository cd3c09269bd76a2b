"""Shared fixtures: the repository root and a runner for Snakemake in a scratch copy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where Debian's dataset-fashion-mnist (installed by .ci/run) puts the official idx files.
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
WORKFLOW_FILES = [
    "Snakefile",
    "config.yaml",
    "rules",
    "workflow_scripts",
    "schemas",
    "envs",
    "profiles",
    "report",
    "config",
    "lood",
]


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results) into dest so a test run cannot touch the user's results/."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    shutil.copytree(ROOT / "tests" / "configs", dest / "tests" / "configs")
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run snakemake in workdir, returning the completed process (output captured as text)."""
    return subprocess.run([*SNAKEMAKE, *args], cwd=workdir, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """A scratch copy of the workflow."""
    return copy_workflow(tmp_path / "wf")
