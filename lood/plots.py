"""The paper's figures, drawn from cached tables only (plotting never retrains): the shared helpers
(save_figure, the scatter with its statistics), correlation, landscape and activation.

The record galleries are in lood/plots_records.py, the influence and σ² figures in
lood/plots_influence.py and lood/plots_sigma.py.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from lood.io import atomic_path  # noqa: E402
from lood.stats import correlation, legend_text, replication, signed_sqrt  # noqa: E402

sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save_figure(fig: plt.Figure, png: str | os.PathLike, pdf: str | os.PathLike) -> None:
    """Write a figure as PNG and PDF, each atomically, and close it."""
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight")
    plt.close(fig)


def _scatter_with_stats(ax, x, y, n_boot, seed, key, logx, **kw) -> dict[str, float]:
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


# ----------------------------------------------------------------------------- correlation


def correlation_pairs(mia: pd.DataFrame, lood: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str, str, str]]]:
    """Per-record table joining NN and NNGP measures, and the (name, x, y, x-label) pairs compared.

    sqrt_diff is the signed square root of the unbiased prediction difference, sign(d)·√|d|: records whose
    estimate is <= 0 (a true difference below the models' noise) keep their place in the order.
    """
    df = lood.merge(mia, on="record", validate="one_to_one")
    df["sqrt_mse"] = np.sqrt(df["mse"])
    df["sqrt_diff"] = signed_sqrt(df["diff"])
    pairs = [
        ("kl_vs_auc", "kl", "auc", "NNGP KL-LOOD (log scale; statistics on log10 KL)"),
        ("auc_nngp_vs_auc", "auc_nngp", "auc", "NNGP AUC (optimal LR test)"),
        ("sqrt_mse_vs_sqrt_diff", "sqrt_mse", "sqrt_diff", "√ mean-distance LOOD (NNGP)"),
    ]
    return df, pairs


def correlation_figure(
    mia: pd.DataFrame, lood: pd.DataFrame, halves: pd.DataFrame, n_boot: int, seed: int
) -> tuple[plt.Figure, pd.DataFrame]:
    """NNGP LOOD against the network's MIA AUC and prediction difference, per record.

    halves: lood.mia.half_attacks; each pair's row also gets lood.stats.replication: the LOOD's
    Spearman rho with a half of the attack beside the rho between two halves.
    """
    df, pairs = correlation_pairs(mia, lood)
    ylabels = {"auc": "NN MIA AUC (in- vs out-models)", "sqrt_diff": "signed √ NN prediction difference (unbiased)"}
    n_nonpos = int((df["diff"] <= 0).sum())
    gap = float(np.mean(np.abs(df["auc_nngp"] - df["auc"])))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    rows = []
    for k, (ax, (name, x, y, xlabel)) in enumerate(zip(axes, pairs, strict=True)):
        if y == "auc":
            ax.errorbar(df[x], df[y], yerr=df["auc_std"], fmt="none", ecolor="0.75", lw=0.8, zorder=0)
        c = _scatter_with_stats(ax, df[x].to_numpy(), df[y].to_numpy(), n_boot, seed, k, x == "kl")
        ax.set(xlabel=xlabel, ylabel=ylabels[y])
        extra: dict[str, float] = {}
        if x == "auc_nngp":
            lo = min(df[[x, y]].min().min(), 0.5) - 0.01
            hi = max(df[[x, y]].max().max(), 0.5) + 0.01
            ax.plot([lo, hi], [lo, hi], color="C2", lw=1, ls=":", label="y = x (same size)")
            ax.legend(loc="lower right", fontsize=8, title=f"mean |NNGP − NN AUC| = {gap:.3f}", title_fontsize=8)
            extra = {"mean_abs_auc_gap": gap}
        if y == "sqrt_diff":
            ax.axhline(0.0, color="0.6", lw=0.6)
            ax.text(
                0.98,
                0.02,
                f"{n_nonpos} of {len(df)} records: unbiased diff ≤ 0 (plotted below 0)",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                color="0.3",
            )
            extra = {"n_diff_nonpositive": float(n_nonpos)}
        rep = replication(df.set_index("record")[x], halves, "auc" if y == "auc" else "diff")
        if np.isfinite(rep["spearman_half"]):
            ax.set_title(
                f"half the models: ρ(LOOD, attack) = {rep['spearman_half']:.2f}, "
                f"ρ(attack, its replication) = {rep['spearman_replication']:.2f}",
                fontsize=8,
                color="0.3",
            )
        extra |= rep
        rows.append({"pair": name, "x": "log10_kl" if x == "kl" else x, "y": y} | c | extra)
    sigma2 = f" (NNGP σ² = {lood['sigma2'].iloc[0]:.3g})" if "sigma2" in lood else ""
    fig.suptitle(f"Analytic NNGP LOOD vs empirical leakage of trained networks, per record{sigma2}")
    fig.tight_layout()
    table = pd.DataFrame(rows)
    if "sigma2" in lood:
        table["sigma2"] = float(lood["sigma2"].iloc[0])
    return fig, table


# ----------------------------------------------------------------------------- landscape


# A record's landscape peak counts only where its MIA AUC at t = 0 is significantly above 1/2
# (one-sided, conservative test of lood.mia: column auc_p); elsewhere the argmax is noise.
PEAK_ALPHA = 0.05


def _argmax_t(table: pd.DataFrame, value: str) -> pd.Series:
    """For each record, the t of the largest `value`."""
    return table.loc[table.groupby("record")[value].idxmax()].set_index("record")["t"]


def landscape_peaks(nn: pd.DataFrame, gp: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per record: argmax t of NNGP KL and of NN AUC, the AUC at t = 0, its p-value and significance; and a summary.

    Summary: records, grid points T, NNGP peaks at t = 0, significant records m, their NN peaks at
    t = 0, and m / T, the count a uniformly random argmax would give.
    """
    at0 = nn[nn["t"] == 0.0].set_index("record")
    if at0.empty:
        raise ValueError("the landscape grid has no t = 0: add 0 to probes.t")
    peaks = pd.DataFrame({"nngp_argmax_t": _argmax_t(gp, "kl"), "nn_argmax_t": _argmax_t(nn, "auc")})
    peaks["auc_t0"] = at0["auc"]
    peaks["auc_p_t0"] = at0["auc_p"]
    peaks["significant"] = peaks["auc_p_t0"] < PEAK_ALPHA
    T = nn["t"].nunique()
    sig = peaks[peaks["significant"]]
    summary = {
        "records": float(len(peaks)),
        "grid_points": float(T),
        "nngp_peaks_at_0": float((peaks["nngp_argmax_t"] == 0.0).sum()),
        "nn_peaks_at_0_all": float((peaks["nn_argmax_t"] == 0.0).sum()),
        "significant": float(len(sig)),
        "nn_peaks_at_0_significant": float((sig["nn_argmax_t"] == 0.0).sum()),
        "random_argmax_expected": len(sig) / T,
    }
    return peaks.reset_index(), summary


def landscape_figure(nn: pd.DataFrame, gp: pd.DataFrame, n_shown: int) -> tuple[plt.Figure, pd.DataFrame]:
    """LOOD(t) and MIA AUC(t) along each record's shared direction: examples, average, argmax histogram."""
    records = sorted(gp["record"].unique())
    shown = records[:: max(1, len(records) // n_shown)][:n_shown]
    fig, axes = plt.subplots(1, n_shown + 2, figsize=(3.4 * (n_shown + 2), 3.6))
    for ax, rec in zip(axes, shown, strict=False):
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
    peaks, summary = landscape_peaks(nn, gp)
    sig = peaks[peaks["significant"]]
    t_grid = np.sort(gp["t"].unique())
    edges = np.concatenate([[t_grid[0] - 0.5], (t_grid[1:] + t_grid[:-1]) / 2, [t_grid[-1] + 0.5]])
    ax.hist(
        [peaks["nngp_argmax_t"], sig["nn_argmax_t"]],
        bins=edges,
        color=["C0", "C3"],
        label=[f"NNGP KL-LOOD (all {len(peaks)})", f"NN MIA AUC ({len(sig)} with AUC(0) > ½, p < {PEAK_ALPHA})"],
    )
    ax.axhline(summary["random_argmax_expected"], color="C3", ls=":", lw=1, label="random argmax, per t")
    ax.set(
        title=f"where leakage peaks: NN at t=0 for {int(summary['nn_peaks_at_0_significant'])} of {len(sig)}\n"
        f"(random argmax: {summary['random_argmax_expected']:.1f})",
        xlabel="argmax t",
        ylabel="records",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, peaks


# ----------------------------------------------------------------------------- activation


def activation_figure(
    mia_a: pd.DataFrame, mia_b: pd.DataFrame, lood_a: pd.DataFrame, lood_b: pd.DataFrame, names: tuple[str, str]
) -> plt.Figure:
    """Per-record MIA AUC of one activation against the other, with the NNGP's predicted AUCs."""
    nn = mia_a.merge(mia_b, on="record", suffixes=("_a", "_b"), validate="one_to_one")
    gp = lood_a.merge(lood_b, on="record", suffixes=("_a", "_b"), validate="one_to_one")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    ax = axes[0]
    ax.errorbar(
        nn["auc_a"],
        nn["auc_b"],
        xerr=nn["auc_std_a"],
        yerr=nn["auc_std_b"],
        fmt="o",
        ms=4,
        color="C3",
        ecolor="0.7",
        lw=0.8,
        label="NN MIA AUC",
    )
    ax.scatter(gp["auc_nngp_a"], gp["auc_nngp_b"], marker="^", color="C0", s=22, label="NNGP AUC")
    lo = min(nn[["auc_a", "auc_b"]].min().min(), gp[["auc_nngp_a", "auc_nngp_b"]].min().min(), 0.5) - 0.02
    hi = max(nn[["auc_a", "auc_b"]].max().max(), gp[["auc_nngp_a", "auc_nngp_b"]].max().max()) + 0.02
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, ls="--", label="y = x")
    ax.set(
        xlim=(lo, hi),
        ylim=(lo, hi),
        xlabel=f"AUC, {names[0]}",
        ylabel=f"AUC, {names[1]}",
        title="per-record leakage under two activations",
    )
    ax.legend(loc="lower right", fontsize=8)
    ax = axes[1]
    frame = pd.DataFrame(
        {
            "leakage": np.concatenate([nn["auc_a"], nn["auc_b"], gp["auc_nngp_a"], gp["auc_nngp_b"]]),
            "activation": np.repeat([names[0], names[1], names[0], names[1]], [len(nn), len(nn), len(gp), len(gp)]),
            "measure": np.repeat(
                ["NN MIA AUC", "NN MIA AUC", "NNGP AUC", "NNGP AUC"], [len(nn), len(nn), len(gp), len(gp)]
            ),
        }
    )
    sns.boxplot(data=frame, x="measure", y="leakage", hue="activation", ax=ax)
    ax.set(title="distribution over records", xlabel="", ylabel="AUC")
    fig.tight_layout()
    return fig
