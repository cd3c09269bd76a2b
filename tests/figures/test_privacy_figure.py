"""The privacy figure renders from synthetic tables, and its tables say what the inputs hold."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as st

from lood.figures.privacy import privacy_figure
from lood.figures.style import save_figure


def synthetic(n=15, seed=0):
    rng = np.random.default_rng(seed)
    rec = np.arange(n) * 2
    eps_lower = rng.uniform(0, 2, n)
    nn_records = pd.DataFrame(
        {
            "record": rec,
            "n_in": 100,
            "n_out": 100,
            "auc_lomo": 0.6,
            "fpr_lowest": 0.01,
            "tpr_at_lowest": rng.uniform(0, 0.5, n),
            "eps_lower": eps_lower,
            "eps_tp": 10,
            "eps_fp": 0,
            "delta": 1e-5,
        }
    )
    predicted = pd.DataFrame(
        {
            "record": rec[::-1],  # another order: the figure joins on record
            "distance": 1.0,
            "mu": rng.uniform(0, 3, n),
            "var_ratio": 1.5,
            "tpr_at_0.001": 0.01,
            "tpr_at_0.01": rng.uniform(0, 1, n),
            "eps": eps_lower[::-1] + np.where(np.arange(n) < 5, -0.5, 0.5),  # 5 records below the bound
            "delta": 1e-5,
        }
    )
    grid = np.union1d(np.geomspace(1e-4, 1, 30), [0.001, 0.01])
    predicted_roc = pd.DataFrame({"fpr": grid, "tpr": np.sqrt(grid)})
    rows = [
        {"attack": a, "n_pos": 1500, "n_neg": 1500, "auc": 0.6, "auc_lo": 0.55, "auc_hi": 0.65} for a in ("lr", "loss")
    ]
    for r in rows:
        for a in (0.001, 0.01):
            r |= {f"tpr_at_{a:g}": 0.05, f"tpr_at_{a:g}_lo": 0.01, f"tpr_at_{a:g}_hi": 0.1, f"negatives_at_{a:g}": 1}
    roc = pd.DataFrame(
        [{"attack": a, "fpr": f, "tpr": min(1.0, 2 * f)} for a in ("lr", "loss") for f in np.geomspace(1 / 1500, 1, 20)]
    )
    return pd.DataFrame(rows), roc, nn_records, predicted, predicted_roc


def test_privacy_figure_renders_and_counts(tmp_path):
    pooled, roc, nn_records, predicted, predicted_roc = synthetic()
    fig, records, summary, agreement = privacy_figure(
        pooled, roc, nn_records, predicted, predicted_roc, [0.001, 0.01], 200, 0
    )
    save_figure(fig, tmp_path / "p.png", tmp_path / "p.pdf")
    assert Image.open(tmp_path / "p.png").size[0] > 1000
    # Joined on record, not on row order.
    pred = predicted.set_index("record")
    assert records["pred_eps"].tolist() == pred.loc[records["record"], "eps"].tolist()
    assert records["pred_tpr_at_lowest"].tolist() == pred.loc[records["record"], "tpr_at_0.01"].tolist()
    assert int(records["safe"].sum()) == 10
    eps_row = agreement.set_index("measured").loc["eps_lower"]
    assert eps_row["n_safe"] == 10
    assert eps_row["spearman_r"] == pytest.approx(st.spearmanr(records["pred_eps"], records["eps_lower"]).statistic)
    assert eps_row["spearman_lo"] <= eps_row["spearman_r"] <= eps_row["spearman_hi"]
    nngp = summary.set_index("attack").loc["nngp_predicted"]
    assert nngp["tpr_at_0.01"] == pytest.approx(0.1, rel=1e-12)  # sqrt(0.01), a node of the grid
    assert list(summary["attack"]) == ["lr", "loss", "nngp_predicted"]


def test_figures_do_not_need_torch_or_jax():
    assert "lood.figures.privacy" in sys.modules
    import lood.figures.privacy as module

    assert not any(name in vars(module) for name in ("torch", "jax"))
