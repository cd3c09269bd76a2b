"""The correlation figure: LOOD against the attack's AUC and the prediction difference, per experiment."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lood.empirical.model_bootstrap import ModelScores, model_resampled_measures  # noqa: E402
from lood.figures.style import scatter_with_stats  # noqa: E402
from lood.stats import halves_array, replication_bootstrap, signed_sqrt, two_level_correlation  # noqa: E402


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


def model_level(df: pd.DataFrame, scores: ModelScores | None, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """(B, R) per-record auc and sqrt_diff (rows of df) under resamples of the models, or {} without scores."""
    if scores is None:
        return {}
    pos = pd.Series(np.arange(len(scores.records)), index=scores.records).reindex(df["record"])
    if pos.isna().any():
        return {}
    boot = model_resampled_measures(scores, n_boot, seed)
    pos = pos.to_numpy(dtype=int)
    # The measured AUC shifted by the resample's change (lood.empirical.model_bootstrap).
    return {
        "auc": df["auc"].to_numpy()[None] + boot["auc_shift"][:, pos],
        "sqrt_diff": signed_sqrt(boot["diff"][:, pos]),
    }


def correlation_figure(
    mia: pd.DataFrame,
    lood: pd.DataFrame,
    halves: pd.DataFrame,
    n_boot: int,
    seed: int,
    scores: ModelScores | None = None,
) -> tuple[plt.Figure, pd.DataFrame]:
    """NNGP LOOD against the network's MIA AUC and prediction difference, per record.

    halves: lood.empirical.mia.half_attacks; each pair's row also gets lood.stats.replication_bootstrap: the
    LOOD's rho with a half of the attack beside the rho between two halves, their paired difference and the
    disattenuated rho, with CIs. scores: lood.empirical.model_bootstrap.model_scores of the records; with it,
    each row also gets the two-level (records and models) bootstrap CIs, two_level_*.
    """
    df, pairs = correlation_pairs(mia, lood)
    resampled = model_level(df, scores, n_boot, seed)
    ylabels = {"auc": "NN MIA AUC (in- vs out-models)", "sqrt_diff": "signed √ NN prediction difference (unbiased)"}
    n_nonpos = int((df["diff"] <= 0).sum())
    gap = float(np.mean(np.abs(df["auc_nngp"] - df["auc"])))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    rows = []
    for k, (ax, (name, x, y, xlabel)) in enumerate(zip(axes, pairs, strict=True)):
        if y == "auc":
            ax.errorbar(df[x], df[y], yerr=df["auc_std"], fmt="none", ecolor="0.75", lw=0.8, zorder=0)
        c = scatter_with_stats(ax, df[x].to_numpy(), df[y].to_numpy(), n_boot, seed, k, x == "kl")
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
        u = np.log10(df[x].where(df[x] > 0)) if x == "kl" else df[x]
        if y in resampled:
            extra |= two_level_correlation(u.to_numpy(), df[y].to_numpy(), resampled[y], n_boot, seed, k)
        rep = replication_summary(df.set_index("record")[x], halves, y, n_boot, seed, 100 + k)
        title = replication_title(rep)
        if np.isfinite(extra.get("two_level_spearman_lo", np.nan)):
            title += (
                f"\nrecords and networks resampled: Spearman ρ 95% CI "
                f"[{extra['two_level_spearman_lo']:.2f}, {extra['two_level_spearman_hi']:.2f}]"
            )
        ax.set_title(title, fontsize=8, color="0.3")
        extra |= rep
        rows.append({"pair": name, "x": "log10_kl" if x == "kl" else x, "y": y} | c | extra)
    sigma2 = f" (NNGP σ² = {lood['sigma2'].iloc[0]:.3g})" if "sigma2" in lood else ""
    fig.suptitle(f"Analytic NNGP LOOD vs empirical leakage of trained networks, per record{sigma2}")
    fig.tight_layout()
    table = pd.DataFrame(rows)
    if "sigma2" in lood:
        table["sigma2"] = float(lood["sigma2"].iloc[0])
    return fig, table


def replication_summary(
    x: pd.Series, halves: pd.DataFrame, y: str, n_boot: int, seed: int, key: int
) -> dict[str, float]:
    """lood.stats.replication_bootstrap of x against the halves' auc (y auc) or signed √diff (y sqrt_diff)."""
    if halves.empty:
        return replication_bootstrap(np.zeros(0), np.zeros((0, 2, 0)), n_boot, seed, key)
    measure = "auc" if y == "auc" else "diff"
    xs, reps = halves_array(x, halves, measure)
    if measure == "diff":
        reps = signed_sqrt(reps)
    return replication_bootstrap(xs, reps, n_boot, seed, key)


def replication_title(rep: dict[str, float]) -> str:
    """The panel title: half the models, ρ(LOOD, half) − ρ(half, other half) and the disattenuated ρ, with 95% CIs."""
    if not np.isfinite(rep.get("spearman_half", np.nan)):
        return "too few models for the replication comparison"
    return (
        f"half the models: ρ(LOOD, half) − ρ(half, other half) = {rep['spearman_half_minus_rep']:.2f} "
        f"[{rep['spearman_half_minus_rep_lo']:.2f}, {rep['spearman_half_minus_rep_hi']:.2f}]\n"
        f"disattenuated ρ(LOOD, attack) = {rep['spearman_disattenuated']:.2f} "
        f"[{rep['spearman_disattenuated_lo']:.2f}, {rep['spearman_disattenuated_hi']:.2f}] (95% CIs over records)"
    )
