"""End to end: the real workflow on a tiny config builds every figure, then has nothing to do."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import snakemake

pytestmark = pytest.mark.e2e
TINY = ["--configfile", "tests/configs/tiny.yaml"]
FIGURES = ["correlation", "landscape", "reconstruction", "influence", "vulnerable", "sigma"]


def planned_rules(dry_run_output: str) -> set[str]:
    """Rule names of the jobs a dry run would execute."""
    return set(re.findall(r"^rule (\w+):", dry_run_output, flags=re.M)) - {"all"}


def peak_threads(log: str) -> int:
    """Most threads held at once by the jobs a Snakemake log shows running (starts and finishes in log order)."""
    running: dict[str, int] = {}
    peak, job = 0, None
    for line in log.splitlines():
        if re.match(r"(local)?rule \w+:", line):
            job = {"threads": 1}
        elif job is not None and (m := re.match(r"\s+(jobid|threads): (\d+)", line)):
            job[m[1]] = int(m[2])
        elif job is not None and not line.startswith(" "):
            if "jobid" in job:
                running[str(job["jobid"])] = job["threads"]
                peak = max(peak, sum(running.values()))
            job = None
        if m := re.match(r"Finished jobid: (\d+)", line):
            running.pop(m[1], None)
    return peak


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from conftest import copy_workflow

    wf = copy_workflow(tmp_path_factory.mktemp("e2e") / "wf")
    run = snakemake(wf, "--cores", "2", *TINY, timeout=1200)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    (wf / "tiny_run.log").write_text(run.stderr)
    return wf


def test_every_figure_is_a_valid_image(tiny_run):
    for exp in ["relu", "gelu"]:
        for name in FIGURES:
            png = tiny_run / "results" / exp / "figures" / f"{name}.png"
            with Image.open(png) as img:
                img.verify()
            assert (png.with_suffix(".pdf")).read_bytes().startswith(b"%PDF")
    with Image.open(tiny_run / "results" / "comparison" / "activation.png") as img:
        assert img.size[0] > 200 and img.size[1] > 200


def test_tables_have_the_documented_columns(tiny_run):
    res = tiny_run / "results" / "relu"
    expected = {
        "../data/records.csv": ["record", "label"],
        "nn/mia.csv": ["record", "auc", "auc_std", "diff", "diff_std", "auc_lira"],
        "nn/landscape.csv": ["record", "t", "auc", "auc_std", "diff"],
        "nngp/lood.csv": ["record", "kl", "mse", "auc_nngp"],
        "nngp/lood_all.csv": ["record", "label", "kl", "mse"],
        "nngp/landscape.csv": ["record", "t", "kl", "mse"],
        "nngp/query.csv": ["record", "lood_at_record", "lood_optimised", "distance_to_record"],
        "influence/scores.csv": [
            "record",
            "tracin",
            "influence",
            "influence_prediction",
            "tracin_one",
            "influence_one",
            "influence_prediction_one",
            "networks",
        ],
    }
    records = pd.read_csv(res / "../data/records.csv")["record"]
    for name, columns in expected.items():
        table = pd.read_csv(res / name)
        assert list(table.columns[: len(columns)]) == columns, name
        assert table[columns].notna().all().all(), name
        if name not in ("../data/records.csv", "nngp/lood_all.csv"):
            assert set(table["record"]) == set(records), name
    assert len(pd.read_csv(res / "nngp/lood_all.csv")) == 40
    # every NNGP table records the sigma2 it used: the one rule choose_sigma2 chose
    sigma2 = pd.read_csv(res / "nngp/sigma2.csv")
    assert list(sigma2.columns) == ["sigma2", "rule", "objective", "scale", "at_edge", "loss", "gate"]
    assert sigma2["rule"].tolist() == ["calibrate"]
    for name in ("lood.csv", "lood_all.csv", "landscape.csv", "query.csv"):
        assert (pd.read_csv(res / "nngp" / name)["sigma2"] == sigma2["sigma2"].iloc[0]).all(), name
    for record in records:
        q = np.load(res / "nngp" / "query" / f"{record}.npz")
        assert q["query"].shape == (64,)


def test_jobs_never_hold_more_threads_than_cores(tiny_run):
    """The local scheduler keeps to --cores 2 (Snakemake 9.10-9.16 over-subscribed after a lone ready job, #3913)."""
    log = (tiny_run / "tiny_run.log").read_text()
    assert log.count("Finished jobid") >= 20
    assert peak_threads(log) in (1, 2)


def test_peak_threads_reads_overlaps_from_a_log():
    def start(jobid, threads=1):
        extra = f"    threads: {threads}\n" if threads > 1 else ""
        return (
            f"[Sun Nov 29 09:22:20 2026]\nlocalrule train:\n    output: x{jobid}\n    jobid: {jobid}\n"
            f"{extra}    resources: tmpdir=/tmp\nShell command: None\n"
        )

    def finish(jobid):
        return f"[Sun Nov 29 09:22:21 2026]\nFinished jobid: {jobid} (Rule: train)\n"

    assert peak_threads(start(1) + finish(1) + start(2) + finish(2)) == 1
    assert peak_threads(start(1) + start(2) + finish(1) + start(3) + start(4, threads=2) + finish(2)) == 4
    assert peak_threads(start(1, threads=2) + finish(1) + start(2) + start(3)) == 2


def test_experiments_share_data_and_records(tiny_run):
    """The data stage runs once: every experiment reads results/data/, none keeps a copy of its own."""
    data = tiny_run / "results" / "data"
    assert {p.name for p in data.iterdir()} >= {"dataset.npz", "records.csv", "probes.npz"}
    for exp in ("relu", "gelu"):
        assert not (tiny_run / "results" / exp / "data").exists()
        assert not (tiny_run / "results" / exp / "records.csv").exists()
    records = pd.read_csv(data / "records.csv")["record"].tolist()
    for exp in ("relu", "gelu"):
        assert pd.read_csv(tiny_run / "results" / exp / "nn" / "mia.csv")["record"].tolist() == records


def test_second_run_does_nothing(tiny_run):
    run = snakemake(tiny_run, "-n", *TINY)
    assert run.returncode == 0, run.stderr
    assert planned_rules(run.stdout) == set(), run.stdout[-2000:]
    assert "Nothing to be done" in run.stdout + run.stderr


def test_plot_parameter_reruns_only_figures(tiny_run):
    (tiny_run / "plot_only.yaml").write_text("figures: {bootstrap: 150, gallery: 2}\n")
    run = snakemake(tiny_run, "-n", "--configfile", "tests/configs/tiny.yaml", "plot_only.yaml")
    assert run.returncode == 0, run.stderr
    rules = planned_rules(run.stdout)
    # the report's first page is rebuilt from the figures' tables; nothing upstream of the figures reruns
    assert rules and all(r.startswith("plot_") or r == "report_landing" for r in rules), rules


def test_named_target_rebuilds_one_figure(tiny_run):
    (tiny_run / "results/relu/figures/correlation.png").unlink()
    run = snakemake(tiny_run, "fig_correlation", "--cores", "1", *TINY)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tiny_run / "results/relu/figures/correlation.png").exists()
    assert "plot_correlation" in run.stderr and "train_" not in run.stderr


def test_same_config_gives_same_tables(tiny_run, tmp_path):
    """Reproducibility: a fresh copy run on the same config yields identical tables."""
    from conftest import copy_workflow

    wf = copy_workflow(tmp_path / "again")
    targets = ["results/relu/nn/mia.csv", "results/relu/nngp/lood.csv"]
    run = snakemake(wf, *targets, "--cores", "2", *TINY, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    for t in targets:
        pd.testing.assert_frame_equal(pd.read_csv(wf / t), pd.read_csv(tiny_run / t))


def test_html_report(tiny_run):
    run = snakemake(tiny_run, *TINY, "--report", "results/report.html")
    assert run.returncode == 0, run.stderr[-3000:]
    html = (tiny_run / "results/report.html").read_text(errors="replace")
    assert "correlation.png" in html and "Influence estimators" in html


def test_report_opens_with_this_runs_headline(tiny_run):
    """The report's first page is the landing page: this run's headline numbers, then the study's description."""
    run = snakemake(tiny_run, *TINY, "--report", "results/report.html")
    assert run.returncode == 0, run.stderr[-3000:]
    html = (tiny_run / "results/report.html").read_text(errors="replace")
    row = pd.read_csv(tiny_run / "results/relu/figures/correlation.csv").set_index("pair").loc["kl_vs_auc"]
    headline = f"{row['spearman_r']:.2f} [{row['spearman_lo']:.2f}, {row['spearman_hi']:.2f}]"
    assert "This run" in html and headline in html
    assert html.index(headline) < html.index("measured two ways")
