"""The most-exposed figure of the audit: LOOD over every record, per class, and the most exposed records."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lood.figures.records import TABULAR_NOTE, feature_limit, is_image, show_record  # noqa: E402


def most_exposed_figure(table: pd.DataFrame, X: np.ndarray, shape: tuple[int, ...], top: int, title: str) -> plt.Figure:
    """Histogram of log10 KL-LOOD, its spread per label, and the `top` records of largest KL with their inputs."""
    ranked = table.sort_values("rank")
    logkl = np.log10(table["kl"].clip(lower=1e-300))
    k = int(min(top, len(table)))
    cols = min(k, 10)
    rows = int(np.ceil(k / cols))
    fig = plt.figure(figsize=(max(12.0, 1.35 * cols), 4.2 + 1.55 * rows))
    grid = fig.add_gridspec(1 + rows, cols, height_ratios=[2.6] + [1.0] * rows)
    left = fig.add_subplot(grid[0, : cols // 2])
    left.hist(logkl, bins=60, color="C0")
    cut = np.log10(ranked["kl"].iloc[k - 1])
    left.axvline(cut, color="C3", lw=1, ls="--", label=f"the {k} most exposed")
    left.set(
        xlabel="log10 KL-LOOD at the record (NNGP)", ylabel="records", title=f"All {len(table):,} training records"
    )
    left.legend(loc="upper left", fontsize=8)
    right = fig.add_subplot(grid[0, cols // 2 :])
    labels = np.sort(table["label"].unique())
    right.boxplot([logkl[table["label"] == c] for c in labels], showfliers=True, flierprops={"markersize": 1.5})
    right.set_xticks(np.arange(1, len(labels) + 1), [str(c) for c in labels])
    right.set(xlabel="label", ylabel="log10 KL-LOOD", title="Per label")
    lim = feature_limit(X[ranked["record"].head(k).to_numpy(dtype=int)])
    for j, r in enumerate(ranked.head(k).itertuples()):
        ax = fig.add_subplot(grid[1 + j // cols, j % cols])
        show_record(
            ax,
            X[int(r.record)],
            shape,
            f"#{int(r.record)} y={int(r.label)}\nKL {r.kl:.2g} AUC {r.auc_nngp:.2f}",
            lim,
        )
    fig.suptitle(title if is_image(shape) else f"{title}\n(bottom rows, {TABULAR_NOTE}, on one x scale)", fontsize=10)
    fig.tight_layout()
    return fig
