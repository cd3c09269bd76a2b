"""The group figure: duplicates and neighbour groups, the NNGP beside the networks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402


def percentile_of(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Percent of the reference strictly below each value, plus half of the ties (a mid-rank percentile)."""
    ref = np.asarray(reference, dtype=float)
    v = np.asarray(values, dtype=float)[:, None]
    return 100.0 * (np.sum(ref < v, axis=1) + 0.5 * np.sum(ref == v, axis=1)) / max(len(ref), 1)


def duplicate_summary(nngp: pd.DataFrame, mia: pd.DataFrame) -> pd.DataFrame:
    """Per (record, m): NNGP KL/AUC beside the network's MIA AUC; plus the medians over records per m (record = -1)."""
    df = nngp[["record", "m", "kl", "mse", "auc_nngp"]].merge(
        mia[["record", "m", "auc", "auc_std", "diff"]], on=["record", "m"], validate="one_to_one"
    )
    medians = (
        df.groupby("m", as_index=False)[["kl", "mse", "auc_nngp", "auc", "auc_std", "diff"]].median().assign(record=-1)
    )
    return pd.concat([df, medians[df.columns]], ignore_index=True)


def _copies_axis(ax, ms: pd.Series) -> None:
    """Log x axis with a tick at each multiplicity and no minor ticks."""
    ax.set_xscale("log")
    ax.set_xticks(ms, [str(int(m)) for m in ms])
    ax.xaxis.set_minor_locator(NullLocator())


def group_figure(duplicates: pd.DataFrame, neighbours: pd.DataFrame) -> plt.Figure:
    """LOOD and MIA AUC against the number of copies m; neighbour-group LOOD against the sum of single LOODs."""
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    per_record = duplicates[duplicates.record >= 0]
    median = duplicates[duplicates.record < 0].sort_values("m")
    ax = axes[0]
    for _, rows in per_record.groupby("record"):
        rows = rows.sort_values("m")
        ax.plot(rows["m"], rows["kl"], color="C0", alpha=0.35, lw=1, marker="o", ms=3)
    ax.plot(median["m"], median["kl"], color="C0", lw=2.5, marker="o", label="median over records")
    ax.set(
        yscale="log",
        xlabel="copies m of the record in F",
        ylabel="NNGP KL-LOOD (remove all m)",
        title="Analytic: LOOD against copies",
    )
    _copies_axis(ax, median["m"])
    ax.legend(fontsize=8)
    ax = axes[1]
    for _, rows in per_record.groupby("record"):
        rows = rows.sort_values("m")
        ax.plot(rows["m"], rows["auc"], color="C1", alpha=0.35, lw=1, marker="o", ms=3)
    ax.plot(median["m"], median["auc"], color="C1", lw=2.5, marker="o", label="network MIA AUC, median")
    ax.plot(median["m"], median["auc_nngp"], color="C0", lw=2, ls="--", marker="s", label="NNGP AUC, median")
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.set(xlabel="copies m of the record in F", ylabel="AUC", title="Empirical: MIA AUC against copies")
    _copies_axis(ax, median["m"])
    ax.legend(fontsize=8)
    ax = axes[2]
    for j, (k, rows) in enumerate(neighbours[neighbours.k > 1].groupby("k")):
        ax.scatter(rows["kl_single_sum"], rows["kl_group"], s=16, alpha=0.75, color=f"C{j + 2}", label=f"k = {k}")
    both = neighbours[["kl_single_sum", "kl_group"]].to_numpy().ravel()
    both = both[np.isfinite(both) & (both > 0)]
    if len(both):
        lim = [both.min() / 1.5, both.max() * 1.5]
        ax.plot(lim, lim, color="0.3", lw=1, ls="--", label="additive")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="sum of the members' single KL-LOODs",
        ylabel="group KL-LOOD at Q = G",
        title="Record + k-1 nearest same-label neighbours",
    )
    ax.legend(fontsize=8)
    ax = axes[3]
    ks = sorted(neighbours[neighbours.k > 1]["k"].unique())
    data = [neighbours[neighbours.k == k]["ratio"].to_numpy() for k in ks]
    if data:
        ax.boxplot(data, tick_labels=[str(k) for k in ks], showfliers=True)
    ax.axhline(1.0, color="0.3", lw=1, ls="--")
    ax.set(
        xlabel="group size k", ylabel="group LOOD / sum of single LOODs", title="> 1: super-additive, < 1: sub-additive"
    )
    fig.tight_layout()
    return fig
