"""Figures for groups (duplicates, neighbour groups) and canaries, from cached tables only."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402

from lood.plots_records import TABULAR_NOTE, as_image, is_image, show_features  # noqa: E402

KIND_COLOURS = {"noise": "C3", "flipped": "C2", "real": "0.5"}


def percentile_of(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Percent of the reference strictly below each value, plus half of the ties (a mid-rank percentile)."""
    ref = np.asarray(reference, dtype=float)
    v = np.asarray(values, dtype=float)[:, None]
    return 100.0 * (np.sum(ref < v, axis=1) + 0.5 * np.sum(ref == v, axis=1)) / max(len(ref), 1)


# ----------------------------------------------------------------------------- groups


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


# ----------------------------------------------------------------------------- canaries


def canary_summary(
    lood_all: pd.DataFrame, lood: pd.DataFrame, mia: pd.DataFrame, real_mia: pd.DataFrame, query: pd.DataFrame
) -> pd.DataFrame:
    """One row per canary: KL-LOOD and MIA AUC with their percentiles among real records, and the reconstruction."""
    real_kl = lood_all[lood_all.kind == "real"]["kl"].to_numpy()
    df = lood[["record", "kind", "kl", "auc_nngp"]].merge(
        mia[["record", "auc", "auc_std"]], on="record", validate="one_to_one"
    )
    df = df.merge(
        query[
            [
                "record",
                "lood_optimised",
                "distance_to_record",
                "cosine_to_record",
                "canary_nearest_by_distance",
                "canary_nearest_by_cosine",
            ]
        ],
        on="record",
        validate="one_to_one",
    )
    df["kl_percentile_real"] = percentile_of(df["kl"].to_numpy(), real_kl)
    df["auc_percentile_real"] = percentile_of(df["auc"].to_numpy(), real_mia["auc"].to_numpy())
    return df


def _image(row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A row scaled to [0, 1] by its own range (inputs may be normalised) and shaped as an image."""
    row = np.asarray(row, dtype=float)
    span = float(np.ptp(row))
    return as_image((row - row.min()) / span if span > 0 else np.zeros_like(row), shape)


def canary_figure(
    lood_all: pd.DataFrame,
    summary: pd.DataFrame,
    real_mia: pd.DataFrame,
    queries: dict[int, np.ndarray],
    X: np.ndarray,
    shape: tuple[int, ...],
) -> plt.Figure:
    """Canary LOOD and MIA AUC against the real records' distribution, and q* beside each noise canary."""
    noise = summary[summary.kind == "noise"].sort_values("record")
    cols = max(len(noise), 1)
    fig = plt.figure(figsize=(max(11, 1.5 * cols + 1), 7.8))
    grid = fig.add_gridspec(3, 2 * cols, height_ratios=[1.7, 1, 1])
    ax = fig.add_subplot(grid[0, :cols])
    real = lood_all[lood_all.kind == "real"]
    logkl = np.log10(real["kl"].clip(lower=1e-300))
    ax.hist(logkl, bins=30, color="0.75", label=f"real records (n = {len(real)})")
    for kind, rows in summary.groupby("kind"):
        for j, v in enumerate(np.log10(rows["kl"].clip(lower=1e-300))):
            ax.axvline(v, color=KIND_COLOURS.get(kind, "C4"), lw=1.5, label=f"{kind} canary" if j == 0 else None)
    ax.set(xlabel="log10 NNGP KL-LOOD", ylabel="records", title="Canary LOOD among every training record")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(grid[0, cols:])
    groups = [("real", real_mia["auc"].to_numpy())] + [(k, r["auc"].to_numpy()) for k, r in summary.groupby("kind")]
    rng = np.random.default_rng(0)  # jitter only
    for j, (kind, values) in enumerate(groups):
        x = j + rng.uniform(-0.15, 0.15, len(values))
        ax.scatter(x, values, s=18, alpha=0.8, color=KIND_COLOURS.get(kind, "C4"))
        if len(values):
            ax.hlines(np.median(values), j - 0.3, j + 0.3, color="k", lw=2)
    ax.set_xticks(range(len(groups)), [f"{k}\n(n = {len(v)})" for k, v in groups])
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.set(ylabel="network MIA AUC", title="MIA AUC: studied real records vs canaries (bars: medians)")
    for j, (_, r) in enumerate(noise.iterrows()):
        rec = int(r["record"])
        top = fig.add_subplot(grid[1, 2 * j : 2 * j + 2] if cols > 1 else grid[1, :])
        bottom = fig.add_subplot(grid[2, 2 * j : 2 * j + 2] if cols > 1 else grid[2, :])
        for a, row, title in (
            (top, X[rec], f"canary #{rec}\nKL {r['kl']:.2g}, AUC {r['auc']:.2f}"),
            (
                bottom,
                queries[rec],
                f"q*: cos {r['cosine_to_record']:.2f}\nnearest: {'yes' if r['canary_nearest_by_cosine'] else 'no'}",
            ),
        ):
            if not is_image(shape):
                show_features(a, row, title)
                continue
            img = _image(row, shape)
            a.imshow(img, cmap="gray_r" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            a.set_title(title, fontsize=7)
            a.set_xticks([])
            a.set_yticks([])
    fig.suptitle(
        "Planted canaries. Bottom rows: noise canaries and the query q* that maximises their LOOD from noise "
        "(each image scaled to its own range; 'nearest': the canary is the training record of largest cosine to q*)"
        + ("" if is_image(shape) else f"\n({TABULAR_NOTE}, each on its own x scale)"),
        fontsize=8,
    )
    fig.tight_layout()
    return fig
