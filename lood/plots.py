"""The paper's figures, drawn from cached tables only (plotting never retrains)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
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


def _scatter_with_stats(ax, x, y, n_boot, seed, key, logx=False, **kw) -> dict[str, float]:
    """A scatter with a least-squares line (in log10 x when logx) and its correlation summary in the legend."""
    c = correlation(x, y, n_boot, seed, key)
    ax.scatter(x, y, s=22, alpha=0.8, edgecolor="none", **kw)
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & ((x > 0) if logx else True)
    u = np.log10(x[ok]) if logx else x[ok]
    if ok.sum() >= 3 and np.ptp(u) > 0:
        slope, icpt = np.polyfit(u, y[ok], 1)
        us = np.linspace(u.min(), u.max(), 50)
        ax.plot(10**us if logx else us, slope * us + icpt, color="0.3", lw=1, ls="--")
        ax.set_xscale("log" if logx else "linear")
    ax.text(0.02, 0.98, legend_text(c), transform=ax.transAxes, va="top", ha="left", fontsize=8,
            bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9))
    return c


# ----------------------------------------------------------------------------- correlation


def correlation_pairs(mia: pd.DataFrame, lood: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str, str, str]]]:
    """Per-record table joining NN and NNGP measures, and the (name, x, y, x-label) pairs compared."""
    df = lood.merge(mia, on="record", validate="one_to_one")
    df["sqrt_mse"] = np.sqrt(df["mse"])
    df["sqrt_diff"] = np.sqrt(df["diff"])
    pairs = [
        ("kl_vs_auc", "kl", "auc", "NNGP KL-LOOD"),
        ("auc_nngp_vs_auc", "auc_nngp", "auc", "NNGP AUC (optimal LR test)"),
        ("sqrt_mse_vs_sqrt_diff", "sqrt_mse", "sqrt_diff", "√ mean-distance LOOD (NNGP)"),
    ]
    return df, pairs


def correlation_figure(mia: pd.DataFrame, lood: pd.DataFrame, n_boot: int, seed: int) -> tuple[plt.Figure, pd.DataFrame]:
    """NNGP LOOD against the network's MIA AUC and prediction difference, per record."""
    df, pairs = correlation_pairs(mia, lood)
    ylabels = {"auc": "NN MIA AUC (100 in + 100 out models)", "sqrt_diff": "√ NN prediction difference"}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    rows = []
    for k, (ax, (name, x, y, xlabel)) in enumerate(zip(axes, pairs)):
        if y == "auc":
            ax.errorbar(df[x], df[y], yerr=df["auc_std"], fmt="none", ecolor="0.75", lw=0.8, zorder=0)
        c = _scatter_with_stats(ax, df[x].to_numpy(), df[y].to_numpy(), n_boot, seed, k, logx=x == "kl")
        ax.set(xlabel=xlabel, ylabel=ylabels[y])
        rows.append({"pair": name, "x": x, "y": y} | c)
    fig.suptitle("Analytic NNGP LOOD vs empirical leakage of trained networks, per record")
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


# ----------------------------------------------------------------------------- landscape


def _argmax_t(table: pd.DataFrame, value: str) -> pd.Series:
    """For each record, the t of the largest `value`."""
    return table.loc[table.groupby("record")[value].idxmax()].set_index("record")["t"]


def landscape_figure(nn: pd.DataFrame, gp: pd.DataFrame, n_shown: int) -> tuple[plt.Figure, pd.DataFrame]:
    """LOOD(t) and MIA AUC(t) along each record's shared direction: examples, average, argmax histogram."""
    records = sorted(gp["record"].unique())
    shown = records[:: max(1, len(records) // n_shown)][:n_shown]
    fig, axes = plt.subplots(1, n_shown + 2, figsize=(3.4 * (n_shown + 2), 3.6))
    for ax, rec in zip(axes, shown):
        g, n = gp[gp.record == rec], nn[nn.record == rec]
        ax.plot(g["t"], g["kl"], "o-", color="C0", ms=3, label="NNGP KL-LOOD")
        ax.set(title=f"record {rec}", xlabel="t (distance along r)", ylabel="KL-LOOD")
        ax.set_yscale("log")
        ax2 = ax.twinx()
        ax2.errorbar(n["t"], n["auc"], yerr=n["auc_std"], fmt="s-", color="C3", ms=3, lw=1, label="NN MIA AUC")
        ax2.set_ylabel("MIA AUC", color="C3")
        ax2.grid(False)
    # Average of each curve normalised by its own maximum, so records of different scale weigh alike.
    ax = axes[n_shown]
    norm_gp = gp.assign(v=gp["kl"] / gp.groupby("record")["kl"].transform("max"))
    norm_nn = nn.assign(v=(nn["auc"] - 0.5) / (nn.groupby("record")["auc"].transform("max") - 0.5).clip(lower=1e-9))
    sns.lineplot(data=norm_gp, x="t", y="v", ax=ax, label="NNGP KL-LOOD / max", errorbar=("ci", 95), color="C0")
    sns.lineplot(data=norm_nn, x="t", y="v", ax=ax, label="(NN AUC − ½) / max", errorbar=("ci", 95), color="C3")
    ax.set(title=f"average over {len(records)} records", xlabel="t", ylabel="normalised leakage")
    ax = axes[n_shown + 1]
    peaks = pd.DataFrame({"NNGP KL-LOOD": _argmax_t(gp, "kl"), "NN MIA AUC": _argmax_t(nn, "auc")})
    t_grid = np.sort(gp["t"].unique())
    edges = np.concatenate([[t_grid[0] - 0.5], (t_grid[1:] + t_grid[:-1]) / 2, [t_grid[-1] + 0.5]])
    ax.hist([peaks["NNGP KL-LOOD"], peaks["NN MIA AUC"]], bins=edges, color=["C0", "C3"], label=list(peaks.columns))
    ax.set(title="where leakage peaks", xlabel="argmax t", ylabel="records")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig, peaks.reset_index()


# ----------------------------------------------------------------------------- activation


def activation_figure(mia_a: pd.DataFrame, mia_b: pd.DataFrame, lood_a: pd.DataFrame, lood_b: pd.DataFrame,
                      names: tuple[str, str]) -> plt.Figure:
    """Per-record MIA AUC of one activation against the other, with the NNGP's predicted AUCs."""
    nn = mia_a.merge(mia_b, on="record", suffixes=("_a", "_b"), validate="one_to_one")
    gp = lood_a.merge(lood_b, on="record", suffixes=("_a", "_b"), validate="one_to_one")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    ax = axes[0]
    ax.errorbar(nn["auc_a"], nn["auc_b"], xerr=nn["auc_std_a"], yerr=nn["auc_std_b"], fmt="o", ms=4,
                color="C3", ecolor="0.7", lw=0.8, label="NN MIA AUC")
    ax.scatter(gp["auc_nngp_a"], gp["auc_nngp_b"], marker="^", color="C0", s=22, label="NNGP AUC")
    lo = min(nn[["auc_a", "auc_b"]].min().min(), gp[["auc_nngp_a", "auc_nngp_b"]].min().min(), 0.5) - 0.02
    hi = max(nn[["auc_a", "auc_b"]].max().max(), gp[["auc_nngp_a", "auc_nngp_b"]].max().max()) + 0.02
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, ls="--", label="y = x")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel=f"AUC, {names[0]}", ylabel=f"AUC, {names[1]}",
           title="per-record leakage under two activations")
    ax.legend(loc="lower right", fontsize=8)
    ax = axes[1]
    frame = pd.DataFrame({
        "leakage": np.concatenate([nn["auc_a"], nn["auc_b"], gp["auc_nngp_a"], gp["auc_nngp_b"]]),
        "activation": np.repeat([names[0], names[1], names[0], names[1]], [len(nn), len(nn), len(gp), len(gp)]),
        "measure": np.repeat(["NN MIA AUC", "NN MIA AUC", "NNGP AUC", "NNGP AUC"], [len(nn), len(nn), len(gp), len(gp)]),
    })
    sns.boxplot(data=frame, x="measure", y="leakage", hue="activation", ax=ax)
    ax.set(title="distribution over records", xlabel="", ylabel="AUC")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- images


def as_image(row: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A data row as a displayable image in [0, 1] (CHW rows become HWC)."""
    img = np.clip(np.asarray(row, dtype=float).reshape(shape), 0.0, 1.0)
    if img.ndim == 3 and img.shape[0] in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 1:
        side = int(np.ceil(np.sqrt(img.size)))
        img = np.pad(img, (0, side * side - img.size)).reshape(side, side)
    return img.squeeze()


def _show(ax, img: np.ndarray, title: str) -> None:
    ax.imshow(img, cmap="gray_r" if img.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def vulnerable_figure(lood_all: pd.DataFrame, mia: pd.DataFrame, X: np.ndarray, shape: tuple[int, ...], k: int) -> plt.Figure:
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
    ax.set(xlabel="log10 KL-LOOD (NNGP), every training record", ylabel="records",
           title=f"LOOD of all {len(ranked)} training records (red: records with a measured MIA AUC)")
    for row, (label, part) in enumerate((("most", ranked.head(k)), ("least", ranked.tail(k).iloc[::-1]))):
        for j, (_, r) in enumerate(part.iterrows()):
            a = fig.add_subplot(grid[row + 1, j])
            rec = int(r["record"])
            extra = f"\nAUC {auc[rec]:.2f}" if rec in auc.index else ""
            _show(a, as_image(X[rec], shape), f"#{rec} y={int(r['label'])}\nKL {r['kl']:.2g}{extra}")
            if j == 0:
                a.set_ylabel(f"{label}\nexposed", fontsize=9)
    fig.tight_layout()
    return fig


def reconstruction_figure(table: pd.DataFrame, queries: dict[int, np.ndarray], X: np.ndarray, shape: tuple[int, ...],
                          max_records: int = 12) -> plt.Figure:
    """Each differing record z beside the query that maximises its LOOD."""
    rows = table.sort_values("lood_optimised", ascending=False).head(max_records)
    fig, axes = plt.subplots(2, len(rows), figsize=(1.5 * len(rows) + 1, 4.6), squeeze=False)
    for j, (_, r) in enumerate(rows.iterrows()):
        rec = int(r["record"])
        _show(axes[0, j], as_image(X[rec], shape), f"z = #{rec}\nLOOD {r['lood_at_record']:.2g}")
        q = queries[rec] / max(float(np.max(queries[rec])), 1e-12)
        _show(axes[1, j], as_image(q, shape), f"optimised q\nLOOD {r['lood_optimised']:.2g}\ncos(q, z) {r['cosine_to_record']:.2f}")
    axes[0, 0].set_ylabel("record z")
    axes[1, 0].set_ylabel("query q*")
    fig.suptitle("Queries that maximise NNGP LOOD (ascent from the data mean + noise), beside the record they single out\n"
                 "(each query divided by its largest pixel: a bias-free ReLU NNGP's LOOD ignores the query's scale)", fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- influence


def influence_figure(scores: pd.DataFrame, n_boot: int, seed: int) -> tuple[plt.Figure, pd.DataFrame]:
    """TracIn, influence functions and √mean-distance LOOD against √prediction difference."""
    target = np.sqrt(scores["diff_nn"].to_numpy())
    estimators = [("tracin", "TracIn self-influence"), ("influence", "influence function (self)"),
                  ("sqrt_lood_mse", "√ mean-distance LOOD (NNGP)")]
    frame = scores.assign(sqrt_lood_mse=np.sqrt(scores["lood_mse"]))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    rows = []
    for k, (ax, (col, label)) in enumerate(zip(axes, estimators)):
        c = _scatter_with_stats(ax, frame[col].to_numpy(), target, n_boot, seed, 100 + k)
        ax.set(xlabel=label, ylabel="√ NN prediction difference (leave-one-out)")
        rows.append({"estimator": col} | c)
    fig.suptitle("Influence estimators against the leave-one-out ground truth")
    fig.tight_layout()
    return fig, pd.DataFrame(rows)
