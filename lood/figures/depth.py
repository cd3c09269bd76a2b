"""The activation x depth figure, drawn from the sweep's and the networks' cached tables (no JAX needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _colours(variants: list[str]) -> dict[str, str]:
    return {v: f"C{i}" for i, v in enumerate(variants)}


def network_auc_points(networks: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    """Per network: its median MIA AUC with quartiles, and the sweep's median NNGP AUC at the same variant and depth.

    Both medians are over the same studied records (records.csv); NaN where the sweep has no
    such (variant, depth).
    """
    rows = []
    for _, net in networks.iterrows():
        at = sweep[
            (sweep["activation"] == net["activation"])
            & np.isclose(sweep["w_std"], net["w_std"])
            & (sweep["depth"] == net["depth"])
        ]
        rows.append(
            {
                "experiment": net["experiment"],
                "variant": net["variant"],
                "depth": int(net["depth"]),
                "mia_auc_median": net["mia_auc_median"],
                "mia_auc_q25": net["mia_auc_q25"],
                "mia_auc_q75": net["mia_auc_q75"],
                "auc_nngp_sweep": float(at["auc_nngp_median"].iloc[0]) if len(at) else np.nan,
                "auc_nngp_experiment": net["auc_nngp_median"],
            }
        )
    return pd.DataFrame(rows)


def depth_figure(sweep: pd.DataFrame, networks: pd.DataFrame) -> tuple[plt.Figure, pd.DataFrame]:
    """Against depth: KL-LOOD (median, quartiles), effective rank, test accuracy, median AUC (NNGP and networks).

    Also returns the networks' points of the AUC panel (`network_auc_points`).
    """
    drawn = sweep["drawn"].astype(bool)
    # The same σ² setting in the other kernel scaling, drawn dashed: whether a finding depends on the kernel's size.
    other = sweep.iloc[:0]
    if drawn.any():
        first = sweep[drawn].iloc[0]
        other = sweep[
            (sweep["sigma2_setting"].astype(str) == str(first["sigma2_setting"]))
            & (sweep["sigma2_scale"] != first["sigma2_scale"])
        ]
    sweep = sweep[drawn]  # the depth_study.sigma2 setting; the others are for the text
    variants = list(dict.fromkeys(sweep["variant"]))
    colour = _colours(variants)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    ax_lood, ax_rank, ax_acc, ax_auc = axes.ravel()
    sigma_note = ""
    if len(sweep):
        first = sweep.iloc[0]
        sigma_note = str(first["sigma2_setting"])
        if first["sigma2_rule"] == "fixed" and first["sigma2_scale"] == "kernel":
            sigma_note += " × mean K_ii"
        elif first["sigma2_rule"] == "fixed":
            sigma_note += " (absolute)"
    for v in variants:
        s = sweep[sweep["variant"] == v].sort_values("depth")
        c = colour[v]
        ax_lood.plot(s["depth"], s["kl_median"], "o-", color=c, label=v)
        ax_lood.fill_between(s["depth"], s["kl_q25"], s["kl_q75"], color=c, alpha=0.15)
        o = other[other["variant"] == v].sort_values("depth")
        ax_lood.plot(o["depth"], o["kl_median"], "--", color=c, lw=1)
        ax_auc.plot(o["depth"], o["auc_nngp_median"], "--", color=c, lw=1)
        ax_rank.plot(s["depth"], s["participation_ratio"], "o-", color=c, label=f"{v}: participation ratio")
        ax_rank.plot(
            s["depth"],
            s["trace_rank"],
            "s--",
            color=c,
            ms=3,
            lw=1,
            label=f"{v}: {s['rank_fraction'].iloc[0]:.0%} of trace",
        )
        ax_acc.plot(s["depth"], s["test_acc"], "o-", color=c, label=f"NNGP {v}")
        ax_auc.plot(s["depth"], s["auc_nngp_median"], "o-", color=c, lw=1, label=f"NNGP {v}")
    ax_lood.set(
        yscale="log",
        xlabel="hidden layers",
        ylabel="KL-LOOD at Q = {z} (all training records)",
        title=f"LOOD: median and quartiles (σ²: {sigma_note})",
    )
    ax_rank.set(yscale="log", xlabel="hidden layers", ylabel="effective rank of K_FF", title="kernel rank")
    n_test = int(sweep["n_test"].iloc[0]) if len(sweep) else 0
    ax_acc.set(xlabel="hidden layers", ylabel="test accuracy", title=f"accuracy on {n_test} held-out records")
    ax_auc.set(xlabel="hidden layers", ylabel="median AUC over the studied records", title="leakage: networks vs NNGP")
    points = network_auc_points(networks, sweep)
    if len(networks):
        # Networks at the same depth sit side by side, 0.12 apart, in config order.
        shift = networks.groupby("depth").cumcount() - (networks.groupby("depth")["depth"].transform("size") - 1) / 2
        offset = 0.12 * shift.to_numpy()
        for i, (_, p) in enumerate(points.iterrows()):
            c = colour.get(p["variant"], "k")
            err = [[p["mia_auc_median"] - p["mia_auc_q25"]], [p["mia_auc_q75"] - p["mia_auc_median"]]]
            ax_auc.errorbar(
                p["depth"] + offset[i],
                p["mia_auc_median"],
                yerr=err,
                fmt="*",
                ms=13,
                color=c,
                mec="k",
                capsize=3,
                label=f"network {p['experiment']}: MIA AUC (quartiles)",
            )
            ax_auc.plot(
                p["depth"] + offset[i],
                p["auc_nngp_experiment"],
                "D",
                mfc="none",
                color=c,
                ms=8,
                label=f"NNGP at {p['experiment']}'s own σ²",
            )
        for i, (_, net) in enumerate(networks.iterrows()):
            c = colour.get(net["variant"], "k")
            ax_acc.plot(
                net["depth"] + offset[i],
                net["test_acc"],
                "*",
                ms=13,
                color=c,
                mec="k",
                label=f"network {net['experiment']} (train loss {net['train_loss']:.3g})",
            )
    ax_auc.axhline(0.5, color="grey", lw=0.8, ls=":")
    if len(other):
        o = other.iloc[0]
        note = f"dashed: σ² = {o['sigma2_setting']}" + (
            " × mean K_ii" if o["sigma2_scale"] == "kernel" else " (absolute)"
        )
        for ax in (ax_lood, ax_auc):
            ax.plot([], [], "--", color="grey", lw=1, label=note)
    for ax in axes.ravel():
        ax.legend(fontsize=6.5)
        depths = np.sort(sweep["depth"].unique()) if len(sweep) else []
        if len(depths):
            ax.set_xticks(depths)
    fig.tight_layout()
    return fig, points
