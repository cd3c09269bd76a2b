"""Records drawn as what they are: the gallery of most and least exposed records and the reconstruction figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def is_image(shape: tuple[int, ...]) -> bool:
    """Whether rows of this shape are images (2-D or more); a 1-D shape is a tabular record, a vector of features.

    prepare_dataset stores (d,) as the image shape of a dataset without one (a user's .npz of feature vectors).
    """
    return len(tuple(shape)) >= 2


def as_image(row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A data row as a displayable image in [0, 1] (CHW rows become HWC); an image shape only (see is_image)."""
    if not is_image(shape):
        raise ValueError(f"shape {tuple(shape)} is not an image shape: draw tabular records with show_features")
    img = np.clip(np.asarray(row, dtype=float).reshape(shape), 0.0, 1.0)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = np.moveaxis(img, 0, -1)
    return img.squeeze()


def _show(ax, img: np.ndarray, title: str) -> None:
    ax.imshow(img, cmap="gray_r" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def show_features(ax, values: np.ndarray, title: str, lim: float | None = None) -> None:
    """A tabular record as horizontal bars of its feature values, feature 0 at the top; x in [-lim, lim] if given."""
    v = np.asarray(values, dtype=float).ravel()
    ax.barh(np.arange(v.size), v, height=0.8, color="C0", alpha=0.7)
    ax.axvline(0.0, color="0.3", lw=0.5)
    ax.set_ylim(v.size - 0.5, -0.5)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    if lim:
        ax.set_xlim(-lim, lim)
    ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=7)


def show_record(ax, row: np.ndarray, shape: tuple[int, ...], title: str, lim: float | None = None) -> None:
    """A record as what it is: an image (values clipped to [0, 1]) or, for tabular data, bars of its features."""
    if is_image(shape):
        _show(ax, as_image(row, shape), title)
    else:
        show_features(ax, row, title, lim)


def feature_limit(rows: np.ndarray) -> float | None:
    """One symmetric x range for bar panels drawn side by side, so that their bars compare; None if all zero."""
    top = float(np.max(np.abs(rows))) if np.size(rows) else 0.0
    return 1.05 * top if top > 0 else None


TABULAR_NOTE = "tabular records: each panel shows a record's feature values as horizontal bars (feature 0 at the top)"


def vulnerable_figure(
    lood_all: pd.DataFrame, mia: pd.DataFrame, X: np.ndarray, shape: tuple[int, ...], k: int
) -> plt.Figure:
    """LOOD over every training record, and the k most and k least distinguishable records."""
    ranked = lood_all.sort_values("kl", ascending=False).reset_index(drop=True)
    auc = mia.set_index("record")["auc"]
    fig = plt.figure(figsize=(max(12, 1.4 * k), 7.5))
    grid = fig.add_gridspec(3, k, height_ratios=[1.6, 1, 1])
    ax = fig.add_subplot(grid[0, :])
    logkl = np.log10(ranked["kl"].clip(lower=1e-300))
    sns.histplot(logkl, bins=40, ax=ax, color="C0")
    measured = ranked[ranked.record.isin(auc.index)]
    for v in np.log10(measured["kl"].clip(lower=1e-300)):
        ax.axvline(v, color="C3", lw=0.6, alpha=0.5)
    ax.set(
        xlabel="log10 KL-LOOD (NNGP), every training record",
        ylabel="records",
        title=f"LOOD of all {len(ranked)} training records (red: records with a measured MIA AUC)",
    )
    parts = (("most", ranked.head(k)), ("least", ranked.tail(k).iloc[::-1]))
    lim = feature_limit(X[np.concatenate([p["record"].to_numpy(dtype=int) for _, p in parts])])
    for row, (label, part) in enumerate(parts):
        for j, (_, r) in enumerate(part.iterrows()):
            a = fig.add_subplot(grid[row + 1, j])
            rec = int(r["record"])
            extra = f"\nAUC {auc[rec]:.2f}" if rec in auc.index else ""
            show_record(a, X[rec], shape, f"#{rec} y={int(r['label'])}\nKL {r['kl']:.2g}{extra}", lim)
            if j == 0:
                a.set_ylabel(f"{label}\nexposed", fontsize=9)
    if not is_image(shape):
        fig.suptitle(f"Bottom rows, {TABULAR_NOTE}, on one x scale", fontsize=9)
    fig.tight_layout()
    return fig


def reconstruction_figure(
    table: pd.DataFrame, queries: dict[int, np.ndarray], X: np.ndarray, shape: tuple[int, ...], max_records: int = 12
) -> plt.Figure:
    """Each differing record z beside the query that maximises its LOOD (tabular records: both as bars on one axis)."""
    rows = table.sort_values("lood_optimised", ascending=False).head(max_records)
    if not is_image(shape):
        return _reconstruction_features(rows, queries, X)
    fig, axes = plt.subplots(2, len(rows), figsize=(1.5 * len(rows) + 1, 4.6), squeeze=False)
    for j, (_, r) in enumerate(rows.iterrows()):
        rec = int(r["record"])
        _show(axes[0, j], as_image(X[rec], shape), f"z = #{rec}\nLOOD {r['lood_at_record']:.2g}")
        q = queries[rec] / max(float(np.max(queries[rec])), 1e-12)
        _show(
            axes[1, j],
            as_image(q, shape),
            f"optimised q\nLOOD {r['lood_optimised']:.2g}\ncos(q, z) {r['cosine_to_record']:.2f}",
        )
    axes[0, 0].set_ylabel("record z")
    axes[1, 0].set_ylabel("query q*")
    fig.suptitle(
        "Queries that maximise NNGP LOOD (ascent from the data mean + noise), beside the record they single out\n"
        "(each query divided by its largest pixel: a bias-free ReLU NNGP's LOOD ignores the query's scale)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def _reconstruction_features(rows: pd.DataFrame, queries: dict[int, np.ndarray], X: np.ndarray) -> plt.Figure:
    """The reconstruction figure for tabular records: per record, its features as bars and the query q* as a line."""
    fig, axes = plt.subplots(1, len(rows), figsize=(1.9 * len(rows) + 1, 4.0), squeeze=False, sharey=True)
    for j, (_, r) in enumerate(rows.iterrows()):
        rec = int(r["record"])
        z = np.asarray(X[rec], dtype=float)
        q = np.asarray(queries[rec], dtype=float).ravel()
        q = q * (np.linalg.norm(z) / max(float(np.linalg.norm(q)), 1e-12))
        ax = axes[0, j]
        title = (
            f"z = #{rec}: LOOD {r['lood_at_record']:.2g}\n"
            f"q*: LOOD {r['lood_optimised']:.2g}, cos {r['cosine_to_record']:.2f}"
        )
        show_features(ax, z, title, feature_limit(np.concatenate([z, q])))
        (line,) = ax.plot(q, np.arange(q.size), "o-", color="C3", ms=2, lw=0.8)
        if j == 0:
            ax.legend([ax.containers[0], line], ["record z", "query q*"], fontsize=6, loc="lower right")
    axes[0, 0].set_ylabel("feature")
    fig.suptitle(
        "Queries that maximise NNGP LOOD (ascent from the data mean + noise), beside the record they single out\n"
        "(tabular records: bars are the record's feature values, the red line the optimised query q* on the same\n"
        "feature axis, rescaled to the record's norm: a bias-free ReLU NNGP's LOOD ignores the query's scale)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
