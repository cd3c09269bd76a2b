"""The canary figure: planted canaries against the real records of the same training set."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lood.figures.group import percentile_of  # noqa: E402
from lood.figures.records import TABULAR_NOTE, as_image, is_image, show_features  # noqa: E402

KIND_COLOURS = {"noise": "C3", "noise_scaled": "C1", "flipped": "C2", "real": "0.5"}


def canary_summary(lood_all: pd.DataFrame, lood: pd.DataFrame, mia: pd.DataFrame, query: pd.DataFrame) -> pd.DataFrame:
    """One row per canary: KL-LOOD and MIA AUC with their percentiles among real records, and the reconstruction.

    Both percentiles are against real records of the same training set: the KL against every real row
    (lood_all), the AUC against the real records attacked with the canaries' own models (mia's kind 'real').
    """
    real_kl = lood_all[lood_all.kind == "real"]["kl"].to_numpy()
    if "auc_lo" not in mia:
        mia = mia.assign(auc_lo=np.nan, auc_hi=np.nan)
    real_auc = mia[mia.kind == "real"]["auc"].to_numpy() if "kind" in mia else np.empty(0)
    df = lood[["record", "kind", "kl", "auc_nngp"]].merge(
        mia[["record", "auc", "auc_std", "auc_lo", "auc_hi"]], on="record", validate="one_to_one"
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
    df["auc_percentile_real"] = percentile_of(df["auc"].to_numpy(), real_auc)
    df["real_attacked"] = len(real_auc)
    return df


def _image(row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A row scaled to [0, 1] by its own range (inputs may be normalised) and shaped as an image."""
    row = np.asarray(row, dtype=float)
    span = float(np.ptp(row))
    return as_image((row - row.min()) / span if span > 0 else np.zeros_like(row), shape)


def canary_figure(
    lood_all: pd.DataFrame,
    summary: pd.DataFrame,
    mia: pd.DataFrame,
    queries: dict[int, np.ndarray],
    X: np.ndarray,
    shape: tuple[int, ...],
) -> plt.Figure:
    """Canary LOOD and MIA AUC against the real records' distribution, and q* beside each noise canary."""
    noise = pd.concat(  # at most 4 of each noise kind are drawn
        [summary[summary.kind == k].sort_values("record").head(4) for k in ("noise", "noise_scaled")]
    )
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
    real_auc = mia[mia.kind == "real"]["auc"].to_numpy() if "kind" in mia else np.empty(0)
    groups = [("real", real_auc)] + [(k, r["auc"].to_numpy()) for k, r in summary.groupby("kind")]
    rng = np.random.default_rng(0)  # jitter only
    for j, (kind, values) in enumerate(groups):
        x = j + rng.uniform(-0.15, 0.15, len(values))
        ax.scatter(x, values, s=18, alpha=0.8, color=KIND_COLOURS.get(kind, "C4"))
        if len(values):
            ax.hlines(np.median(values), j - 0.3, j + 0.3, color="k", lw=2)
    ax.set_xticks(range(len(groups)), [f"{k}\n(n = {len(v)})" for k, v in groups])
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.set(ylabel="network MIA AUC", title="MIA AUC with the same models: real records vs canaries (bars: medians)")
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
