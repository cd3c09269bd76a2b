"""The size study: each model's LOOD at the studied records, the spread fit, and rules that never read out-models."""

import numpy as np
import pandas as pd
import pytest

from lood.analytic.divergence import kl_lood
from lood.analytic.models import gaussian_kl, model_lood_table, training_time
from lood.analytic.tables import lood_table, prepare
from lood.settings import Arch, Training
from lood.studies.size import size_summary

from conftest import snakemake

ARCH = Arch(depth=1, width=32, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
TRAINING = Training.from_schema(n_in=50, n_out=50, epochs=20, batch_size=8, lr=0.05)


def _dataset(n=30, t=12, seed=0):
    rng = np.random.default_rng(seed)
    return {"X": rng.uniform(size=(n, 5)), "y": np.arange(n) % 2, "X_test": rng.uniform(size=(t, 5))}


def _chunks(n, t, scale, seed=1):
    rng = np.random.default_rng(seed)
    return [{"logits_train": scale * rng.normal(size=(50, n, 2)), "logits_test": scale * rng.normal(size=(50, t, 2))}]


def test_posterior_without_spread_is_the_workflows_lood_table():
    ds, records = _dataset(), np.array([0, 3, 11])
    ref = lood_table(prepare(ds["X"], ds["y"], ARCH, 0.1, 64), records, 2000, 5)
    table, fits = model_lood_table(ds, records, ARCH, TRAINING, 0.05, 0.1, [], "posterior", "none", 2000, 5, 64)
    np.testing.assert_allclose(table["kl"], ref["kl"], rtol=1e-8)
    np.testing.assert_allclose(table["mse"], ref["mse"], rtol=1e-8)
    np.testing.assert_allclose(table["auc_nngp"], ref["auc_nngp"], rtol=1e-8)
    assert fits.empty and (table["spread_scale"] == 1).all()


def test_calibrated_spread_scales_the_covariance_by_the_fitted_scale():
    ds, records = _dataset(), np.array([1, 2])
    for model in ("posterior", "ensemble"):
        none, _ = model_lood_table(ds, records, ARCH, TRAINING, 0.05, 0.1, [], model, "none", 500, 5, 64)
        cal, fits = model_lood_table(
            ds, records, ARCH, TRAINING, 0.05, 0.1, _chunks(30, 12, 0.3), model, "calibrate", 500, 5, 64
        )
        c = fits["scale"].iloc[0]
        assert cal["spread_scale"].iloc[0] == pytest.approx(c) and c > 0
        # the same means, the covariances x c: the KL's mean term / c, its variance term unchanged
        np.testing.assert_allclose(cal["mse"], none["mse"], rtol=1e-10)
        assert not np.allclose(cal["kl"], none["kl"])


def test_gaussian_kl_against_the_general_kl():
    rng = np.random.default_rng(2)
    mD, mF = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    vD, vF = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 4)
    ours = gaussian_kl(mD, vD, mF, vF)
    for j in range(4):
        assert ours[j] == pytest.approx(kl_lood(mD[j], [[vD[j]]], mF[j], [[vF[j]]]), rel=1e-10)


def test_training_time_counts_milestones_and_partial_batches():
    t = Training.from_schema(n_in=4, n_out=4, epochs=10, batch_size=64, lr=0.1, lr_milestones=[5], lr_gamma=0.1)
    # 150 records: 3 steps per epoch (64, 64, 22); 5 epochs at 0.1 and 5 at 0.01
    assert training_time(t, 0.1, 150, 2) == pytest.approx(2 * 3 * (5 * 0.1 + 5 * 0.01) / (150 * 2))


def test_summary_gap_and_rank_against_direct_computation():
    rows = pd.DataFrame(
        {
            "record": [0, 1, 2, 3, 4],
            "model": "posterior",
            "spread": "none",
            "scale": 1.0,
            "kl": [0.1, 0.2, 0.3, 0.4, 0.5],
            "auc_pred": [0.6, 0.62, 0.7, 0.72, 0.8],
        }
    )
    mia = pd.DataFrame({"record": [0, 1, 2, 3, 4], "auc": [0.55, 0.6, 0.72, 0.7, 0.9]})
    s = size_summary(rows, mia, 200, 0).iloc[0]
    assert s["mean_abs_gap"] == pytest.approx(np.mean([0.05, 0.02, 0.02, 0.02, 0.1]))
    assert s["spearman_r"] == pytest.approx(0.9) and s["median_auc_pred"] == pytest.approx(0.7)


def test_changing_out_models_moves_neither_sigma2_nor_the_spread_nor_the_model(workflow_copy):
    """The DAG: with out-models forced to retrain, nothing upstream of sigma2.csv or lood.csv is rerun."""
    (workflow_copy / "cal.yaml").write_text("nngp: {spread: calibrate, model: ensemble}\n")
    targets = ["results/relu/nngp/sigma2.csv", "results/relu/nngp/lood.csv", "results/relu/nngp/spread.csv"]
    run = snakemake(
        workflow_copy,
        "-n",
        "--configfile",
        "tests/configs/tiny.yaml",
        "cal.yaml",
        "--forcerun",
        "train_out_models",
        "mia_scores",
        "--",
        *targets,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    jobs = run.stdout + run.stderr
    for rule in ("choose_sigma2", "nngp_lood", "train_in_models", "check_learning"):  # the dry run lists the DAG
        assert f"rule {rule}:" in jobs, rule
    assert "rule train_out_models:" not in jobs and "rule mia_scores:" not in jobs
    # the check can fail: the attack's table does depend on the out-models
    run = snakemake(
        workflow_copy, "-n", "--configfile", "tests/configs/tiny.yaml", "cal.yaml", "--", "results/relu/nn/mia.csv"
    )
    assert "rule train_out_models:" in run.stdout + run.stderr
