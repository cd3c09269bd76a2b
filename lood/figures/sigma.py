"""The σ² sensitivity figure: the NNGP–network agreement across a σ² grid, with the σ² each rule picks."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lood.stats import correlation, signed_sqrt  # noqa: E402


def sigma_summary(
    grid: pd.DataFrame, objectives: pd.DataFrame, mia: pd.DataFrame, n_boot: int, seed: int
) -> pd.DataFrame:
    """Per σ²: Spearman ρ(KL, MIA AUC) and ρ(√MD-LOOD, signed √diff) with bootstrap CIs, mean |NNGP AUC − MIA AUC|,
    median AUCs, and the rules' objectives; from the per-(σ², record) LOOD table of
    lood.analytic.sigma2.lood_grid_table."""
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
