"""Shared by every figure: the theme, the atomic save and the scatter with its statistics."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from lood.io import atomic_path  # noqa: E402
from lood.stats import correlation, legend_text  # noqa: E402

sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save_figure(fig: plt.Figure, png: str | os.PathLike, pdf: str | os.PathLike) -> None:
    """Write a figure as PNG and PDF, each atomically, and close it."""
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
    plt.close(fig)


def scatter_with_stats(ax, x, y, n_boot, seed, key, logx, **kw) -> dict[str, float]:
    """A scatter, its least-squares line and correlation summary, both in log10 x when logx (as plotted).

    The Pearson r printed is the r of the line drawn; with logx, records with x <= 0 are left out of both.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        u_all = np.where(x > 0, np.log10(np.where(x > 0, x, 1.0)), np.nan) if logx else x
    c = correlation(u_all, y, n_boot, seed, key)
    ax.scatter(x, y, s=22, alpha=0.8, edgecolor="none", **kw)
    ok = np.isfinite(u_all) & np.isfinite(y)
    u = u_all[ok]
    if ok.sum() >= 3 and np.ptp(u) > 0:
        slope, icpt = np.polyfit(u, y[ok], 1)
        us = np.linspace(u.min(), u.max(), 50)
        ax.plot(10**us if logx else us, slope * us + icpt, color="0.3", lw=1, ls="--")
        ax.set_xscale("log" if logx else "linear")
    ax.text(
        0.02,
        0.98,
        legend_text(c),
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=8,
        bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9),
    )
    return c
