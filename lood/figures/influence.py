"""The influence figure: TracIn, influence functions and LOOD against the leave-one-out ground truth."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lood.figures.style import scatter_with_stats  # noqa: E402
from lood.stats import correlation, paired_difference, signed_sqrt  # noqa: E402

ESTIMATORS = [
    ("tracin", "TracIn self-influence"),
    ("influence", "influence function (self, on the loss)"),
    ("influence_prediction", "influence function on the prediction at z"),
]


def influence_figure(scores: pd.DataFrame, n_boot: int, seed: int) -> tuple[plt.Figure, pd.DataFrame]:
    """TracIn, influence functions (on the loss, on the prediction) and √mean-distance LOOD against the signed √ of
    the unbiased prediction difference.

    The baselines are the means over influence.networks reference networks; the table also holds each one on
    the first network alone (estimator *_one). Beside each baseline: ρ_LOOD − ρ_baseline (Pearson and Spearman)
    with a paired bootstrap 95% CI over records (the same resamples for both correlations of a pair).
    """
    target = signed_sqrt(scores["diff_nn"].to_numpy())
    frame = scores.assign(sqrt_lood_mse=np.sqrt(scores["lood_mse"]))
    lood = frame["sqrt_lood_mse"].to_numpy()
    networks = int(scores["networks"].iloc[0]) if "networks" in scores else 1
    drawn = [(c, f"{label}, mean of {networks} networks" if networks > 1 else label) for c, label in ESTIMATORS]
    drawn.append(("sqrt_lood_mse", "√ mean-distance LOOD (NNGP)"))
    fig, axes = plt.subplots(1, 4, figsize=(21, 5.2))
    rows = []
    for k, (ax, (col, label)) in enumerate(zip(axes, drawn, strict=True)):
        c = scatter_with_stats(ax, frame[col].to_numpy(), target, n_boot, seed, 100 + k, False)
        ax.set(xlabel=label, ylabel="signed √ NN prediction difference (unbiased)")
        row = {"estimator": col} | c
        if col != "sqrt_lood_mse":
            d = paired_difference(target, lood, frame[col].to_numpy(), n_boot, seed, 110 + k)
            row |= {f"lood_minus_{key}": v for key, v in d.items() if key != "n"}
            ax.text(
                0.98,
                0.02,
                f"ρ_LOOD − ρ = {d['spearman_diff']:.2f} [{d['spearman_diff_lo']:.2f}, {d['spearman_diff_hi']:.2f}]\n"
                f"r_LOOD − r = {d['pearson_diff']:.2f} [{d['pearson_diff_lo']:.2f}, {d['pearson_diff_hi']:.2f}]\n"
                "(paired bootstrap 95% CI)",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9),
            )
        rows.append(row)
    for k, (col, _) in enumerate(ESTIMATORS):  # one network alone: table only
        one = f"{col}_one"
        if one in frame:
            c = correlation(frame[one].to_numpy(), target, n_boot, seed, 120 + k)
            d = paired_difference(target, lood, frame[one].to_numpy(), n_boot, seed, 130 + k)
            rows.append({"estimator": one} | c | {f"lood_minus_{key}": v for key, v in d.items() if key != "n"})
    n_nonpos = int((scores["diff_nn"] <= 0).sum())
    fig.suptitle(
        f"Influence estimators against the leave-one-out ground truth ({n_nonpos} of {len(scores)} records "
        "with unbiased diff ≤ 0, plotted below 0)"
    )
    fig.tight_layout()
    table = pd.DataFrame(rows)
    table["networks"] = networks
    return fig, table
