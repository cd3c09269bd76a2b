"""The landscape figure: LOOD and the attack's AUC as a query moves away from its record."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

# A record's landscape peak counts only where its MIA AUC at t = 0 is significantly above 1/2
# (one-sided, conservative test of lood.empirical.mia: column auc_p); elsewhere the argmax is noise.
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


def landscape_normalised(nn: pd.DataFrame, gp: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each record's curves scaled by their largest value: `v` = KL / max KL, and (AUC − ½) / max |AUC − ½|.

    Both lie in [−1, 1]; records whose AUC is ½ at every t (nothing to scale by) are left out of the second.
    """
    norm_gp = gp.assign(v=gp["kl"] / gp.groupby("record")["kl"].transform("max"))
    excess = nn["auc"] - 0.5
    scale = excess.abs().groupby(nn["record"]).transform("max")
    norm_nn = nn.assign(v=excess / scale)[scale > 0]
    return norm_gp, norm_nn


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
    # Average of each record's curve scaled by its own largest value, so records of different scale weigh
    # alike: KL / max KL in (0, 1]; (AUC − ½) / max |AUC − ½| in [−1, 1], bounded also for a record whose
    # AUC never exceeds ½. Records whose AUC is ½ at every t carry no shape and are left out.
    ax = axes[n_shown]
    norm_gp, norm_nn = landscape_normalised(nn, gp)
    sns.lineplot(data=norm_gp, x="t", y="v", ax=ax, label="NNGP: KL / max KL", errorbar=("ci", 95), color="C0")
    sns.lineplot(
        data=norm_nn, x="t", y="v", ax=ax, label="NN: (AUC − ½) / max |AUC − ½|", errorbar=("ci", 95), color="C3"
    )
    ax.set_ylim(-1.05, 1.05)
    ax.axhline(0.0, color="0.6", lw=0.8)
    left_out = len(records) - norm_nn["record"].nunique()
    title = f"average over {len(records)} records" + (
        f"\n({left_out} with AUC ½ throughout left out)" if left_out else ""
    )
    ax.set(title=title, xlabel="t", ylabel="leakage / the record's largest")
    ax.legend(fontsize=7, loc="lower center")
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
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.tight_layout()
    return fig, peaks
