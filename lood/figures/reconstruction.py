"""The reconstruction figure: each optimised query beside the record it leaks most about."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lood.figures.records import as_image, feature_limit, is_image, show_features, show_image  # noqa: E402


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
        show_image(axes[0, j], as_image(X[rec], shape), f"z = #{rec}\nLOOD {r['lood_at_record']:.2g}")
        q = queries[rec] / max(float(np.max(queries[rec])), 1e-12)
        show_image(
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
