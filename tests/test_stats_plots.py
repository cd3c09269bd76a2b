"""Correlation summaries against scipy and a hand bootstrap; figures render from synthetic tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image
from scipy import stats as st

from lood import seeds
from lood.plots import as_image, correlation_figure, influence_figure, landscape_figure, save_figure
from lood.stats import correlation


def test_correlation_matches_scipy_and_hand_bootstrap():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.6 * x + rng.normal(size=40)
    c = correlation(x, y, n_boot=500, base_seed=3, key=1)
    assert np.isclose(c["pearson_r"], st.pearsonr(x, y).statistic)
    assert np.isclose(c["spearman_p"], st.spearmanr(x, y).pvalue)
    idx = seeds.rng(3, "bootstrap", 1).integers(0, 40, size=(500, 40))
    boot = [st.pearsonr(x[i], y[i]).statistic for i in idx]
    assert np.allclose([c["pearson_lo"], c["pearson_hi"]], np.percentile(boot, [2.5, 97.5]))
    assert c["pearson_lo"] < c["pearson_r"] < c["pearson_hi"]


def test_correlation_drops_nan_and_handles_constant():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    c = correlation(x, 2 * x, n_boot=100, base_seed=0)
    assert c["n"] == 4 and np.isclose(c["pearson_r"], 1.0)
    assert np.isnan(correlation(np.ones(5), np.arange(5.0), 100, 0)["pearson_r"])


def test_cifar_rows_become_hwc_images():
    chw = np.zeros((3, 2, 2))
    chw[0] = 1.0  # red channel
    img = as_image(chw.ravel(), (3, 2, 2))
    assert img.shape == (2, 2, 3) and np.all(img[..., 0] == 1) and np.all(img[..., 1:] == 0)


def _synthetic_tables(n=12, seed=0):
    rng = np.random.default_rng(seed)
    kl = rng.lognormal(size=n)
    rec = np.arange(n) * 3
    mia = pd.DataFrame({"record": rec, "auc": 0.5 + 0.1 * np.log1p(kl), "auc_std": 0.02, "diff": kl / 10,
                        "diff_std": 0.01, "auc_lira": 0.5})
    lood = pd.DataFrame({"record": rec, "kl": kl, "mse": kl / 20, "auc_nngp": 0.5 + 0.05 * kl, "auc_nngp_se": 0.001})
    t = np.array([-1.0, 0.0, 1.0])
    land = pd.DataFrame([(r, tt, k * np.exp(-tt * tt), 0.5 + 0.1 * np.exp(-tt * tt), 0.01, 0.0)
                         for r, k in zip(rec, kl) for tt in t], columns=["record", "t", "kl", "auc", "auc_std", "mse"])
    return mia, lood, land


def test_figures_render(tmp_path):
    mia, lood, land = _synthetic_tables()
    fig, table = correlation_figure(mia, lood, n_boot=100, seed=0)
    save_figure(fig, tmp_path / "c.png", tmp_path / "c.pdf")
    assert set(table["pair"]) == {"kl_vs_auc", "auc_nngp_vs_auc", "sqrt_mse_vs_sqrt_diff"}
    # A monotone synthetic relation: Spearman 1 for KL vs AUC.
    assert np.isclose(table.set_index("pair").loc["kl_vs_auc", "spearman_r"], 1.0)
    fig, peaks = landscape_figure(land[["record", "t", "auc", "auc_std"]].assign(diff=0.0), land[["record", "t", "kl", "mse"]], 2)
    save_figure(fig, tmp_path / "l.png", tmp_path / "l.pdf")
    assert (peaks.drop(columns="record") == 0.0).all().all()
    scores = pd.DataFrame({"record": mia.record, "tracin": mia["diff"] * 2, "influence": -mia["diff"],
                           "lood_mse": lood["mse"], "diff_nn": mia["diff"]})
    fig, table = influence_figure(scores, n_boot=100, seed=0)
    save_figure(fig, tmp_path / "i.png", tmp_path / "i.pdf")
    assert np.isclose(table.set_index("estimator").loc["influence", "spearman_r"], -1.0)
    for name in "cli":
        with Image.open(tmp_path / f"{name}.png") as img:
            img.verify()
