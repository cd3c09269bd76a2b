"""Config validation stops a bad config before any job runs, naming the key; the DAG dry-runs."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from snakemake.utils import validate

from conftest import ROOT, snakemake

SCHEMA = str(ROOT / "schemas" / "config.schema.yaml")


def default_config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_and_paper_configs_are_valid():
    validate(default_config(), SCHEMA)
    merged = default_config()
    for key, value in yaml.safe_load((ROOT / "config" / "cifar10.yaml").read_text()).items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    validate(merged, SCHEMA)


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda c: c.update(no_such_key=1), "no_such_key"),
        (lambda c: c["training"].update(epoch=3), "epoch"),
        (lambda c: c["model"].update(activation="swish"), "swish"),
        (lambda c: c["experiments"]["gelu"].update(activation="tanh"), "tanh"),
        (lambda c: c["records"].update(count="fifty"), "fifty"),
        (lambda c: c["data"].update(source="mnist"), "mnist"),
        (lambda c: c["nngp"].update(sigma2=-1), "-1"),
        (lambda c: c.update(data={"source": "npz"}), "path"),
    ],
)
def test_schema_rejects_and_names(edit, named):
    config = copy.deepcopy(default_config())
    edit(config)
    with pytest.raises(Exception) as exc:
        validate(config, SCHEMA)
    assert named in str(exc.value)


def test_defaults_are_filled():
    config = default_config()
    del config["mia"]["splits"]
    validate(config, SCHEMA)
    assert config["mia"]["splits"] == 50


def test_dry_run_default_workflow(workflow_copy):
    run = snakemake(workflow_copy, "-n", "--quiet", "rules", timeout=300)
    assert run.returncode == 0, run.stderr
    for rule in ["prepare_data", "train_in_models", "train_out_models", "mia_scores", "nngp_lood", "plot_correlation"]:
        assert rule in run.stdout + run.stderr


def test_unknown_key_stops_before_any_job(workflow_copy):
    run = snakemake(workflow_copy, "-n", "--config", "no_such_key=1", timeout=300)
    assert run.returncode != 0
    assert "no_such_key" in run.stdout + run.stderr


def test_paper_scale_config_dry_runs(workflow_copy):
    run = snakemake(workflow_copy, "-n", "--quiet", "rules", "--configfile", "config/cifar10.yaml", timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout + run.stderr
    assert "download_cifar10" in out
    # 50 records, one job each, plus 4 in-model chunks, for both experiments.
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.M))
    assert counts["train_out_models"] == "100" and counts["train_in_models"] == "8"


def test_run_experiments_selects_a_subset(workflow_copy):
    run = snakemake(workflow_copy, "-n", "--configfile", "config/digits_200.yaml", timeout=300)
    assert run.returncode == 0, run.stderr
    assert "results/relu_200/figures/correlation.png" in run.stdout
    assert "results/gelu/" not in run.stdout and "results/relu/" not in run.stdout
    bad = snakemake(workflow_copy, "-n", "--config", "run_experiments=[nope]", timeout=300)
    assert bad.returncode != 0 and "nope" in bad.stdout + bad.stderr
