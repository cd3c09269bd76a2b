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
from lood.stats import correlation, legend_text, paired_difference, signed_sqrt  # noqa: E402

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
    mia: pd.DataFrame, lood: pd.DataFrame, n_boot: int, seed: int
) -> tuple[plt.Figure, pd.DataFrame]:
    """NNGP LOOD against the network's MIA AUC and prediction difference, per record."""
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


def reconstruction_figure(
    table: pd.DataFrame, queries: dict[int, np.ndarray], X: np.ndarray, shape: tuple[int, ...], max_records: int = 12
) -> plt.Figure:
    """Each differing record z beside the query that maximises its LOOD."""
    rows = table.sort_values("lood_optimised", ascending=False).head(max_records)
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


# ----------------------------------------------------------------------------- influence


def influence_figure(scores: pd.DataFrame, n_boot: int, seed: int) -> tuple[plt.Figure, pd.DataFrame]:
    """TracIn, influence functions and √mean-distance LOOD against the signed √ of the unbiased prediction difference.

    Beside each baseline: ρ_LOOD − ρ_baseline (Pearson and Spearman) with a paired bootstrap 95% CI
    over records (the same resamples for both correlations of a pair).
    """
    target = signed_sqrt(scores["diff_nn"].to_numpy())
    estimators = [
        ("tracin", "TracIn self-influence"),
        ("influence", "influence function (self)"),
        ("sqrt_lood_mse", "√ mean-distance LOOD (NNGP)"),
    ]
    frame = scores.assign(sqrt_lood_mse=np.sqrt(scores["lood_mse"]))
    lood = frame["sqrt_lood_mse"].to_numpy()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    rows = []
    for k, (ax, (col, label)) in enumerate(zip(axes, estimators, strict=True)):
        c = _scatter_with_stats(ax, frame[col].to_numpy(), target, n_boot, seed, 100 + k, False)
        ax.set(xlabel=label, ylabel="signed √ NN prediction difference (unbiased)")
        row = {"estimator": col} | c
        if col != "sqrt_lood_mse":
            d = paired_difference(target, lood, frame[col].to_numpy(), n_boot, seed, 110 + k)
            row |= {f"lood_minus_{key}": v for key, v in d.items() if key != "n"}
            ax.text(
                0.98,
                0.02,
                f"ρ_LOOD − ρ = {d['spearman_diff']:.2f} [{d['spearman_diff_lo']:.2f}, {d['spearman_diff_hi']:.2f}]\n"
                f"r_LOOD − r = {d['pearson_diff']:.2f} [{d['pearson_diff_lo']:.2f}, {d['pearson_diff_hi']:.2f}]\n"
                "(paired bootstrap 95% CI)",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=7,
                bbox=dict(boxstyle="round", fc="white", ec="0.8", alpha=0.9),
            )
        rows.append(row)
    n_nonpos = int((scores["diff_nn"] <= 0).sum())
    fig.suptitle(
        f"Influence estimators against the leave-one-out ground truth ({n_nonpos} of {len(scores)} records "
        "with unbiased diff ≤ 0, plotted below 0)"
    )
    fig.tight_layout()
    return fig, pd.DataFrame(rows)


# ----------------------------------------------------------------------------- sigma2


def sigma_summary(
    grid: pd.DataFrame, objectives: pd.DataFrame, mia: pd.DataFrame, n_boot: int, seed: int
) -> pd.DataFrame:
    """Per σ²: Spearman ρ(KL, MIA AUC) and ρ(√MD-LOOD, signed √diff) with bootstrap CIs, mean |NNGP AUC − MIA AUC|,
    median AUCs, and the rules' objectives; from the per-(σ², record) LOOD table of lood.sigma2.lood_grid_table."""
    nn = mia.set_index("record")
    rows = []
    for s2, part in grid.groupby("sigma2", sort=True):
        part = part.set_index("record")
        auc = nn.loc[part.index, "auc"].to_numpy(dtype=float)
        c_kl = correlation(part["kl"].to_numpy(), auc, n_boot, seed, 200)
        c_md = correlation(
            np.sqrt(part["mse"].to_numpy()), signed_sqrt(nn.loc[part.index, "diff"].to_numpy()), n_boot, seed, 201
        )
        rows.append(
            {
                "sigma2": float(s2),
                **{f"spearman_kl_auc{k}": c_kl[f"spearman{k or '_r'}"] for k in ("", "_lo", "_hi")},
                **{f"spearman_md_diff{k}": c_md[f"spearman{k or '_r'}"] for k in ("", "_lo", "_hi")},
                "mean_abs_auc_gap": float(np.mean(np.abs(part["auc_nngp"].to_numpy() - auc))),
                "median_auc_nngp": float(part["auc_nngp"].median()),
                "median_auc_nn": float(np.median(auc)),
            }
        )
    summary = pd.DataFrame(rows)
    return summary.merge(objectives, on="sigma2", how="left", validate="one_to_one")


def sigma_marks(sens: pd.DataFrame, used: pd.DataFrame) -> pd.DataFrame:
    """The σ² each rule picks on the grid and the one the run used, each with the statistics of its nearest grid row."""
    marks = []
    if np.isfinite(sens["calibration_objective"]).any():
        marks.append(("calibrate", float(sens["sigma2"].iloc[int(np.nanargmin(sens["calibration_objective"]))])))
    marks.append(("marginal_likelihood", float(sens["sigma2"].iloc[int(np.argmin(sens["neg_log_evidence_scaled"]))])))
    marks.append((f"used ({used['rule'].iloc[0]})", float(used["sigma2"].iloc[0])))
    rows = []
    for name, s2 in marks:
        k = int(np.argmin(np.abs(np.log(sens["sigma2"].to_numpy()) - np.log(max(s2, 1e-300)))))
        near = sens.iloc[k]
        rows.append(
            {"mark": name, "sigma2": s2, "grid_sigma2": float(near["sigma2"])}
            | {
                c: float(near[c])
                for c in ("spearman_kl_auc", "spearman_md_diff", "mean_abs_auc_gap", "median_auc_nngp", "median_auc_nn")
            }
        )
    return pd.DataFrame(rows)


def sigma_figure(sens: pd.DataFrame, used: pd.DataFrame) -> tuple[plt.Figure, pd.DataFrame]:
    """The findings across the σ² grid, with the σ² each rule chooses marked."""
    marks = sigma_marks(sens, used)
    s2 = sens["sigma2"].to_numpy()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    for col, label, colour in (
        ("spearman_kl_auc", "ρ(KL-LOOD, MIA AUC)", "C0"),
        ("spearman_md_diff", "ρ(√MD-LOOD, √diff)", "C1"),
    ):
        ax.plot(s2, sens[col], "o-", ms=3, color=colour, label=label)
        ax.fill_between(s2, sens[f"{col}_lo"], sens[f"{col}_hi"], color=colour, alpha=0.15, lw=0)
    ax.set(ylabel="Spearman ρ over records (bootstrap 95% CI)", title="rank agreement")
    ax = axes[1]
    ax.plot(s2, sens["mean_abs_auc_gap"], "o-", ms=3, color="C3", label="mean |NNGP AUC − MIA AUC|")
    ax.plot(s2, sens["median_auc_nngp"] - 0.5, "s-", ms=3, color="C0", label="median NNGP AUC − ½")
    ax.axhline(float(sens["median_auc_nn"].iloc[0]) - 0.5, color="C2", ls="--", lw=1, label="median MIA AUC − ½")
    ax.set(ylabel="AUC", title="size agreement")
    ax = axes[2]
    if np.isfinite(sens["calibration_objective"]).any():
        cal = sens["calibration_objective"]
        ax.plot(s2, cal / cal.min(), "o-", ms=3, color="C4", label="calibrate: MSE to in-model logits / min")
    ev = sens["neg_log_evidence_scaled"]
    ax.plot(s2, ev - ev.min() + 1, "s-", ms=3, color="C5", label="marginal likelihood: −log p / (nC) − min + 1")
    ax.set(yscale="log", ylabel="objective (relative)", title="the rules' objectives (never see out-models)")
    styles = {"calibrate": ("C4", "--"), "marginal_likelihood": ("C5", ":")}
    for ax in axes:
        for _, m in marks.iterrows():
            colour, ls = styles.get(m["mark"], ("k", "-"))
            ax.axvline(
                m["sigma2"],
                color=colour,
                ls=ls,
                lw=1.2 if ls != "-" else 0.8,
                label=f"{m['mark']}: σ² = {m['sigma2']:.3g}",
            )
        ax.set(xscale="log", xlabel="σ²")
        ax.legend(fontsize=7)
    fig.suptitle("Sensitivity of the NNGP–network agreement to σ² (LOOD recomputed per σ² from one kernel)")
    fig.tight_layout()
    return fig, marks
