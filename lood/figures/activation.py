"""The activation figure: ReLU against GELU, record by record, on both sides."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def activation_figure(
    mia_a: pd.DataFrame, mia_b: pd.DataFrame, lood_a: pd.DataFrame, lood_b: pd.DataFrame, names: tuple[str, str]
) -> plt.Figure:
    """Per-record MIA AUC of one activation against the other, with the NNGP's predicted AUCs."""
    nn = mia_a.merge(mia_b, on="record", suffixes=("_a", "_b"), validate="one_to_one")
    gp = lood_a.merge(lood_b, on="record", suffixes=("_a", "_b"), validate="one_to_one")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    ax = axes[0]
    ax.errorbar(
        nn["auc_a"],
        nn["auc_b"],
        xerr=nn["auc_std_a"],
        yerr=nn["auc_std_b"],
        fmt="o",
        ms=4,
        color="C3",
        ecolor="0.7",
        lw=0.8,
        label="NN MIA AUC",
    )
    ax.scatter(gp["auc_nngp_a"], gp["auc_nngp_b"], marker="^", color="C0", s=22, label="NNGP AUC")
    lo = min(nn[["auc_a", "auc_b"]].min().min(), gp[["auc_nngp_a", "auc_nngp_b"]].min().min(), 0.5) - 0.02
    hi = max(nn[["auc_a", "auc_b"]].max().max(), gp[["auc_nngp_a", "auc_nngp_b"]].max().max()) + 0.02
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, ls="--", label="y = x")
    ax.set(
        xlim=(lo, hi),
        ylim=(lo, hi),
        xlabel=f"AUC, {names[0]}",
        ylabel=f"AUC, {names[1]}",
        title="per-record leakage under two activations",
    )
    ax.legend(loc="lower right", fontsize=8)
    ax = axes[1]
    frame = pd.DataFrame(
        {
            "leakage": np.concatenate([nn["auc_a"], nn["auc_b"], gp["auc_nngp_a"], gp["auc_nngp_b"]]),
            "activation": np.repeat([names[0], names[1], names[0], names[1]], [len(nn), len(nn), len(gp), len(gp)]),
            "measure": np.repeat(
                ["NN MIA AUC", "NN MIA AUC", "NNGP AUC", "NNGP AUC"], [len(nn), len(nn), len(gp), len(gp)]
            ),
        }
    )
    sns.boxplot(data=frame, x="measure", y="leakage", hue="activation", ax=ax)
    ax.set(title="distribution over records", xlabel="", ylabel="AUC")
    fig.tight_layout()
    return fig
