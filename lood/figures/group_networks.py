"""The group-attack figure: removing z with its group, the networks' attack beside the NNGP, per group kind."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

KIND_COLOURS = {"nearest": "C0", "farthest": "C1", "random_same": "C2", "random_any": "C4"}


def _ratio_panel(ax, summary: pd.DataFrame, net: str, gp: str, ylabel: str, title: str) -> None:
    """Per kind, the networks' ratio (filled) beside the NNGP's (open) at each k, with 95% CIs."""
    per_k = summary[summary.k > 0]
    ks = sorted(per_k["k"].unique())
    kinds = list(dict.fromkeys(per_k["kind"]))
    width = 0.8 / max(2 * len(kinds), 1)
    for j, kind in enumerate(kinds):
        rows = per_k[per_k.kind == kind].set_index("k").reindex(ks)
        for side, (col, fill) in enumerate(((net, True), (gp, False))):
            x = np.arange(len(ks)) - 0.4 + width * (2 * j + side + 0.5)
            y = rows[col].to_numpy(dtype=float)
            err = np.abs(np.vstack([y - rows[f"{col}_lo"], rows[f"{col}_hi"] - y]))
            colour = KIND_COLOURS.get(kind, "C5")
            ax.errorbar(
                x,
                y,
                yerr=err,
                fmt="o" if fill else "s",
                color=colour,
                mfc=colour if fill else "white",
                capsize=2,
                label=f"{kind}: {'networks' if fill else 'NNGP'}",
            )
    ax.axhline(1.0, color="0.4", lw=0.8, ls="--")
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set(xlabel="group size k (z and k − 1 companions)", ylabel=ylabel, title=title)


def group_networks_figure(summary: pd.DataFrame, table: pd.DataFrame) -> plt.Figure:
    """Three panels: the excess-AUC ratio and the mean-shift ratio per kind and k (networks vs NNGP), and the ranks."""
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    _ratio_panel(
        axes[0],
        summary,
        "net_excess_ratio",
        "nngp_excess_ratio",
        "mean(AUC_G − ½) / mean(AUC_single − ½)",
        "Attack on z without its group, against z alone",
    )
    _ratio_panel(
        axes[1],
        summary,
        "net_diff_ratio",
        "nngp_mse_ratio",
        "mean shift² at z: group / single",
        "Prediction shift at z (networks: diff; NNGP: mean distance)",
    )
    axes[0].legend(fontsize=7, ncol=2, loc="upper left")
    ax = axes[2]
    for kind, rows in table.groupby("kind", sort=False):
        err = np.abs(np.vstack([rows["auc"] - rows["auc_lo"], rows["auc_hi"] - rows["auc"]]))
        rank = summary[(summary.kind == kind) & (summary.k == 0)]
        rho = float(rank["rank_spearman"].iloc[0]) if len(rank) else float("nan")
        lo = float(rank["rank_spearman_lo"].iloc[0]) if len(rank) else float("nan")
        hi = float(rank["rank_spearman_hi"].iloc[0]) if len(rank) else float("nan")
        ax.errorbar(
            rows["auc_nngp"],
            rows["auc"],
            yerr=err,
            fmt="o",
            ms=3,
            alpha=0.7,
            elinewidth=0.6,
            color=KIND_COLOURS.get(kind, "C5"),
            label=f"{kind}: ρ = {rho:.2f} [{lo:.2f}, {hi:.2f}]",
        )
    both = np.concatenate([table["auc_nngp"], table["auc"]])
    both = both[np.isfinite(both)]
    if len(both):
        lim = [min(both.min(), 0.5) - 0.02, min(both.max() + 0.02, 1.0)]
        ax.plot(lim, lim, color="0.4", lw=0.8, ls="--")
    ax.set(
        xlabel="NNGP AUC of z without its group",
        ylabel="network attack AUC of z without its group (95% CI)",
        title="Rank agreement across groups (Spearman, bootstrap CI)",
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "Leave-group-out on the networks: filled = networks, open = NNGP; ratios of means over records, "
        "95% bootstrap CIs over records",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
