"""The privacy figure: pooled log-log ROCs of the networks' attacks beside the NNGP's predicted ROC, and the
per-record TPR at the lowest supported FPR and ε, predicted against measured."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lood.stats import correlation  # noqa: E402

ATTACK_LABELS = {
    "lr": "LR attack, leave-one-model-out (paper's statistic)",
    "lira_offline": "offline LiRA (out-models only)",
    "loss": "loss threshold",
}


def _tpr_column(alpha: float) -> str:
    return f"tpr_at_{float(alpha):g}"


def privacy_records(nn_records: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """Per record: the measured lr-attack columns beside the NNGP's (pred_tpr_at_lowest, mu, var_ratio, eps)."""
    pred = predicted.set_index("record")
    df = nn_records.copy()
    lowest = df["fpr_lowest"].to_numpy()
    df["pred_tpr_at_lowest"] = [pred.loc[r, _tpr_column(a)] for r, a in zip(df["record"], lowest, strict=True)]
    for col in ("mu", "var_ratio", "distance"):
        df[col] = pred.loc[df["record"], col].to_numpy()
    df["pred_eps"] = pred.loc[df["record"], "eps"].to_numpy()
    df["safe"] = df["pred_eps"] >= df["eps_lower"]
    return df


def privacy_summary(
    pooled_nn: pd.DataFrame, predicted_roc: pd.DataFrame, fprs: list[float], n_neg: int
) -> pd.DataFrame:
    """Pooled rows: each measured attack as lood.empirical.roc.pooled_summary gives it, then nngp_predicted.

    The predicted TPR is read off the predicted ROC (exact where the rate is one of its nodes, as
    lood.analytic.privacy.nngp_privacy_tables makes the reported rates; log-linear between nodes).
    """
    pred = {"attack": "nngp_predicted", "n_pos": np.nan, "n_neg": n_neg}
    for a in fprs:
        pred[_tpr_column(a)] = float(np.interp(np.log(a), np.log(predicted_roc["fpr"]), predicted_roc["tpr"]))
    return pd.concat([pooled_nn, pd.DataFrame([pred])], ignore_index=True)


def privacy_figure(
    pooled_nn: pd.DataFrame,
    roc_nn: pd.DataFrame,
    nn_records: pd.DataFrame,
    predicted: pd.DataFrame,
    predicted_roc: pd.DataFrame,
    fprs: list[float],
    n_boot: int,
    seed: int,
) -> tuple[plt.Figure, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(figure, per-record table, pooled summary, agreement) of measured against predicted leakage.

    agreement: one row per per-record measure (TPR at the lowest FPR, ε) with lood.stats.correlation of
    predicted against measured, and for ε the count of records where the prediction is >= the lower bound.
    """
    df = privacy_records(nn_records, predicted)
    n_neg = int(pooled_nn["n_neg"].iloc[0])
    summary = privacy_summary(pooled_nn, predicted_roc, fprs, n_neg)
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))

    ax = axes[0]
    lo = 1.0 / n_neg
    for k, (name, roc) in enumerate(roc_nn.groupby("attack", sort=False)):
        row = pooled_nn.set_index("attack").loc[name]
        a = fprs[-1]
        label = f"{ATTACK_LABELS.get(name, name)}: TPR@{a:.1%} {row[_tpr_column(a)]:.3f} (AUC {row['auc']:.3f})"
        ax.step(roc["fpr"].clip(lower=lo), roc["tpr"].clip(lower=lo / 10), where="post", color=f"C{k}", label=label)
    ax.plot(predicted_roc["fpr"], predicted_roc["tpr"].clip(lower=lo / 10), "k--", label="NNGP predicted (same test)")
    ax.plot([lo / 10, 1], [lo / 10, 1], color="0.6", lw=0.8, ls=":", label="chance")
    for a in fprs:
        ax.axvline(a, color="0.85", lw=0.8, zorder=0)
    ax.set(xscale="log", yscale="log", xlim=(lo / 2, 1), ylim=(lo / 10, 1.05), xlabel="false-positive rate")
    ax.set(ylabel="true-positive rate", title=f"pooled over (model, record) pairs: {n_neg} negatives")
    ax.legend(fontsize=7, loc="lower right")

    agreement = []
    panels = (
        ("pred_tpr_at_lowest", "tpr_at_lowest", "NNGP predicted TPR at FPR 1/n_out", "measured TPR at FPR 1/n_out"),
        ("pred_eps", "eps_lower", "NNGP predicted ε at δ", "measured ε lower bound (CP)"),
    )
    for k, (ax, (x, y, xlabel, ylabel)) in enumerate(zip(axes[1:], panels, strict=True)):
        c = correlation(df[x].to_numpy(), df[y].to_numpy(), n_boot, seed, 24 + k)
        ax.scatter(df[x], df[y], s=14, alpha=0.8)
        top = float(np.nanmax(np.r_[df[x], df[y]])) if len(df) else 1.0
        ax.plot([0, top], [0, top], color="C2", lw=1, ls=":", label="y = x")
        extra = {}
        if y == "eps_lower":
            if "eps_ceiling" in df and len(df):
                ax.axhline(df["eps_ceiling"].max(), color="C3", lw=0.8, ls="--", label="most the model counts can show")
            n_safe = int(df["safe"].sum())
            extra = {"n_safe": n_safe}
            ax.set_title(f"prediction >= lower bound (safe side) for {n_safe} of {len(df)} records", fontsize=9)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        text = (
            f"Spearman ρ={c['spearman_r']:.2f} [{c['spearman_lo']:.2f}, {c['spearman_hi']:.2f}]"
            if np.isfinite(c.get("spearman_r", np.nan))
            else "ρ undefined"
        )
        ax.legend(title=text, fontsize=8, title_fontsize=8, loc="upper left")
        agreement.append({"predicted": x, "measured": y, "n_records": len(df)} | c | extra)
    delta = float(predicted["delta"].iloc[0]) if len(predicted) else np.nan
    fig.suptitle(f"Leakage in privacy-auditing units: networks measured, NNGP predicted (δ = {delta:g})")
    fig.tight_layout()
    return fig, df, summary, pd.DataFrame(agreement)
