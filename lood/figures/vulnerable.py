"""The vulnerable-records figure: the gallery of the most and least exposed studied records."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from lood.figures.records import TABULAR_NOTE, feature_limit, is_image, show_record  # noqa: E402


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
