"""The HTML report's first page: this run's headline table and one line per figure, from the run's own tables.

Written as reStructuredText (what Snakemake's report reads) in front of report/workflow.rst, so the report
leads with the result and then describes the study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

PAIRS = {
    "kl_vs_auc": "KL-LOOD vs MIA AUC",
    "auc_nngp_vs_auc": "NNGP AUC vs MIA AUC",
    "sqrt_mse_vs_sqrt_diff": "√MD-LOOD vs signed √diff",
}

ESTIMATORS = {"tracin": "TracIn", "influence": "influence function", "sqrt_lood_mse": "√MD-LOOD"}


def _ci(row: Mapping, stat: str) -> str:
    return f"{row[f'{stat}_r']:.2f} [{row[f'{stat}_lo']:.2f}, {row[f'{stat}_hi']:.2f}]"


def headline_rst(tables: Mapping[str, pd.DataFrame]) -> str:
    """A csv-table of every experiment's correlation.csv: Spearman ρ and Pearson r with their CIs."""
    lines = [
        ".. csv-table:: Agreement per record between the NNGP and the networks (95% bootstrap CIs over records)",
        '   :header: "experiment", "pair", "Spearman ρ [CI]", "Pearson r [CI]", "n"',
        "",
    ]
    for experiment, table in tables.items():
        for row in table.to_dict("records"):
            pair = PAIRS.get(row["pair"], row["pair"])
            cells = [experiment, pair, _ci(row, "spearman"), _ci(row, "pearson"), str(int(row["n"]))]
            lines.append("   " + ", ".join(f'"{c}"' for c in cells))
    return "\n".join(lines) + "\n"


def experiment_lines(name: str, run: Path) -> list[str]:
    """One line per figure of experiment `name`, each from the table behind that figure (absent tables skipped)."""
    base = Path(run) / name
    lines = []
    corr = pd.read_csv(base / "figures" / "correlation.csv").set_index("pair")
    mia, lood = pd.read_csv(base / "nn" / "mia.csv"), pd.read_csv(base / "nngp" / "lood.csv")
    kl = corr.loc["kl_vs_auc"]
    gap = corr.loc["auc_nngp_vs_auc", "mean_abs_auc_gap"]
    lines.append(
        f"**Correlation**: Spearman ρ(KL-LOOD, MIA AUC) {_ci(kl, 'spearman')} over {int(kl['n'])} records; "
        f"median MIA AUC {mia['auc'].median():.3f} against median NNGP AUC {lood['auc_nngp'].median():.3f} "
        f"(mean absolute gap {gap:.3f}); the attack agrees with a replication of itself (two halves of the "
        f"models) at ρ {kl['spearman_replication']:.2f}, the LOOD with one half at {kl['spearman_half']:.2f}."
    )
    peaks_path = base / "figures" / "landscape_peaks.csv"
    if peaks_path.exists():
        peaks = pd.read_csv(peaks_path)
        grid = pd.read_csv(base / "nn" / "landscape.csv")["t"].nunique()
        sig = peaks[peaks["significant"]]
        lines.append(
            f"**Landscape**: the NNGP LOOD peaks at the record (t = 0) for {(peaks['nngp_argmax_t'] == 0).sum()} of "
            f"{len(peaks)} records; of the {len(sig)} records whose attack beats chance at t = 0, "
            f"{(sig['nn_argmax_t'] == 0).sum()} peak there (a random argmax: {len(sig) / grid:.1f})."
        )
    lood_all = base / "nngp" / "lood_all.csv"
    if lood_all.exists():
        top = pd.read_csv(lood_all).sort_values("kl", ascending=False, kind="stable").head(5)["record"]
        lines.append(f"**Most exposed records** (KL-LOOD, no retraining): {', '.join(f'#{r}' for r in top)}.")
    query = base / "nngp" / "query.csv"
    if query.exists():
        q = pd.read_csv(query)
        lines.append(
            f"**Reconstruction**: {(q['cosine_to_record'] > 0.99).sum()} of {len(q)} optimised queries end in "
            f"their record's direction (cosine > 0.99)."
        )
    influence = base / "figures" / "influence.csv"
    if influence.exists():
        inf = pd.read_csv(influence).set_index("estimator")
        rho = ", ".join(f"{ESTIMATORS.get(k, k)} {inf.loc[k, 'spearman_r']:.2f}" for k in inf.index)
        lines.append(f"**Influence**: Spearman ρ with the signed √ prediction difference: {rho}.")
    sigma2 = pd.read_csv(base / "nngp" / "sigma2.csv").iloc[0]
    edge = " — on the edge of its grid" if bool(sigma2.get("at_edge", False)) else ""
    lines.append(f"**σ²**: {sigma2['sigma2']:.4g}, chosen by ``{sigma2['rule']}``{edge}; it never reads out-models.")
    return lines


def landing_rst(run: Path, experiments: Sequence[str], workflow_rst: str, activation: Sequence[str]) -> str:
    """The report's first page: the result first (headline table, one line per figure), then the study.

    activation: the two experiments of figures.activation (empty: no activation line).
    """
    tables = {e: pd.read_csv(Path(run) / e / "figures" / "correlation.csv") for e in experiments}
    parts = ["This run's result", "=================", "", headline_rst(tables)]
    for e in experiments:
        parts += [f"**{e}**", ""] + [f"- {line}" for line in experiment_lines(e, run)] + [""]
    if len(activation) == 2:
        a, b = (pd.read_csv(Path(run) / e / "nn" / "mia.csv")["auc"].median() for e in activation)
        parts += [f"**Activation**: median MIA AUC {activation[0]} {a:.3f} against {activation[1]} {b:.3f}.", ""]
    parts += ["", workflow_rst]
    return "\n".join(parts)
