"""The group figure: duplicates and neighbour groups, the NNGP beside the networks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullLocator  # noqa: E402


def percentile_of(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Percent of the reference strictly below each value, plus half of the ties (a mid-rank percentile)."""
    ref = np.asarray(reference, dtype=float)
    v = np.asarray(values, dtype=float)[:, None]
    return 100.0 * (np.sum(ref < v, axis=1) + 0.5 * np.sum(ref == v, axis=1)) / max(len(ref), 1)


def duplicate_summary(nngp: pd.DataFrame, mia: pd.DataFrame) -> pd.DataFrame:
    """Per (record, m): NNGP KL/AUC beside the network's MIA AUC; plus the medians over records per m (record = -1).

    auc_lo, auc_hi: the attack's conservative 95% CI per record (lood.studies.group_attack.auc_intervals),
    NaN in the median rows. kl_doubling: kl(m) / kl(m / 2), a property of the GP's closed form (between 2
    and 4 per doubling, docs/math.md §11), not evidence about networks.
    """
    if "auc_lo" not in mia:
        mia = mia.assign(auc_lo=np.nan, auc_hi=np.nan)
    df = nngp[["record", "m", "kl", "mse", "auc_nngp"]].merge(
        mia[["record", "m", "auc", "auc_std", "auc_lo", "auc_hi", "diff"]], on=["record", "m"], validate="one_to_one"
    )
    half = df.assign(m=df["m"] * 2)[["record", "m", "kl"]].rename(columns={"kl": "kl_half"})
    df = df.merge(half, on=["record", "m"], how="left")
    df["kl_doubling"] = df["kl"] / df["kl_half"]
    df = df.drop(columns="kl_half")
    cols = ["kl", "mse", "auc_nngp", "auc", "auc_std", "diff", "kl_doubling"]
    medians = df.groupby("m", as_index=False)[cols].median().assign(record=-1, auc_lo=np.nan, auc_hi=np.nan)
    return pd.concat([df, medians[df.columns]], ignore_index=True)


def duplicate_slopes(summary: pd.DataFrame) -> pd.DataFrame:
    """Per record: least-squares slope of AUC on log2 m, networks (with a 95% CI) and NNGP, and whether they disagree.

    The network slope's standard error combines the per-m AUC CIs as if independent (half-width / 1.96);
    disagree: the NNGP's slope lies outside the networks' CI.
    """
    rows = []
    for r, d in summary[summary.record >= 0].groupby("record"):
        x = np.log2(d["m"].to_numpy(dtype=float))
        if len(x) < 2:
            continue
        w = (x - x.mean()) / np.sum((x - x.mean()) ** 2)
        se = np.sqrt(np.sum((w * (d["auc_hi"] - d["auc_lo"]).to_numpy() / 2 / 1.959963984540054) ** 2))
        net, gp = float(w @ d["auc"].to_numpy()), float(w @ d["auc_nngp"].to_numpy())
        lo, hi = net - 1.959963984540054 * se, net + 1.959963984540054 * se
        rows.append(
            {
                "record": int(r),
                "slope_net": net,
                "slope_net_lo": lo,
                "slope_net_hi": hi,
                "slope_nngp": gp,
                "disagree": bool(np.isfinite(se) and not lo <= gp <= hi),
            }
        )
    return pd.DataFrame(rows, columns=["record", "slope_net", "slope_net_lo", "slope_net_hi", "slope_nngp", "disagree"])


def _copies_axis(ax, ms: pd.Series) -> None:
    """Log x axis with a tick at each multiplicity and no minor ticks."""
    ax.set_xscale("log")
    ax.set_xticks(ms, [str(int(m)) for m in ms])
    ax.xaxis.set_minor_locator(NullLocator())


def group_figure(duplicates: pd.DataFrame, neighbours: pd.DataFrame) -> plt.Figure:
    """LOOD and MIA AUC against the number of copies m; neighbour-group LOOD against the sum of single LOODs."""
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    per_record = duplicates[duplicates.record >= 0]
    median = duplicates[duplicates.record < 0].sort_values("m")
    ax = axes[0]
    for _, rows in per_record.groupby("record"):
        rows = rows.sort_values("m")
        ax.plot(rows["m"], rows["kl"], color="C0", alpha=0.35, lw=1, marker="o", ms=3)
    ax.plot(median["m"], median["kl"], color="C0", lw=2.5, marker="o", label="median over records")
    ax.set(
        yscale="log",
        xlabel="copies m of the record in F",
        ylabel="NNGP KL-LOOD (remove all m)",
        title="Analytic: LOOD against copies",
    )
    _copies_axis(ax, median["m"])
    ax.legend(fontsize=8)
    ax = axes[1]
    slopes = duplicate_slopes(duplicates).set_index("record")
    for r, rows in per_record.groupby("record"):
        rows = rows.sort_values("m")
        odd = bool(slopes["disagree"].get(r, False))
        ax.plot(rows["m"], rows["auc"], color="C3" if odd else "C1", alpha=0.9 if odd else 0.3, lw=1, marker="o", ms=3)
        if odd:
            ax.errorbar(
                rows["m"],
                rows["auc"],
                yerr=np.abs(np.vstack([rows["auc"] - rows["auc_lo"], rows["auc_hi"] - rows["auc"]])),
                fmt="none",
                color="C3",
                capsize=2,
                lw=0.8,
            )
            ax.annotate(f"#{r}", (rows["m"].iloc[-1], rows["auc"].iloc[-1]), fontsize=6, color="C3")
    n_odd = int(slopes["disagree"].sum()) if len(slopes) else 0
    ax.plot([], [], color="C3", lw=1, label=f"slope: NNGP outside the networks' CI ({n_odd} of {len(slopes)})")
    ax.plot(median["m"], median["auc"], color="C1", lw=2.5, marker="o", label="network MIA AUC, median")
    ax.plot(median["m"], median["auc_nngp"], color="C0", lw=2, ls="--", marker="s", label="NNGP AUC, median")
    ax.axhline(0.5, color="0.6", lw=0.8)
    ax.set(xlabel="copies m of the record in F", ylabel="AUC", title="Empirical: MIA AUC against copies")
    _copies_axis(ax, median["m"])
    ax.legend(fontsize=8)
    if "kind" not in neighbours:
        neighbours = neighbours.assign(kind="nearest")
    controls = neighbours
    neighbours = neighbours[neighbours.kind == "nearest"]
    ax = axes[2]
    for j, (k, rows) in enumerate(neighbours[neighbours.k > 1].groupby("k")):
        ax.scatter(rows["kl_single_sum"], rows["kl_group"], s=16, alpha=0.75, color=f"C{j + 2}", label=f"k = {k}")
    both = neighbours[["kl_single_sum", "kl_group"]].to_numpy().ravel()
    both = both[np.isfinite(both) & (both > 0)]
    if len(both):
        lim = [both.min() / 1.5, both.max() * 1.5]
        ax.plot(lim, lim, color="0.3", lw=1, ls="--", label="additive")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="sum of the members' single KL-LOODs",
        ylabel="group KL-LOOD at Q = G",
        title="Record + k-1 nearest same-label neighbours",
    )
    ax.legend(fontsize=8)
    ax = axes[3]
    ks = sorted(controls[controls.k > 1]["k"].unique())
    kinds = list(dict.fromkeys(controls["kind"]))
    width = 0.8 / max(len(kinds), 1)
    for j, kind in enumerate(kinds):
        data = [controls[(controls.kind == kind) & (controls.k == k)]["ratio"].to_numpy() for k in ks]
        pos = np.arange(len(ks)) - 0.4 + width * (j + 0.5)
        box = ax.boxplot(data, positions=pos, widths=width * 0.85, showfliers=False, patch_artist=True)
        for patch in box["boxes"]:
            patch.set(facecolor=f"C{j}", alpha=0.6)
        ax.plot([], [], color=f"C{j}", lw=6, alpha=0.6, label=kind)
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.axhline(1.0, color="0.3", lw=1, ls="--")
    ax.set(
        xlabel="group size k",
        ylabel="group LOOD / sum of single LOODs",
        title="> 1 super-additive; farthest and random: controls",
    )
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
