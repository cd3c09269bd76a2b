"""The audit's report: the most exposed records and the spread of LOOD per class, as Markdown (pandas only)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def class_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per label: records, median and max KL, median NNGP AUC, and how many of the top 1% by KL it holds."""
    top = table["rank"] <= max(1, int(np.ceil(0.01 * len(table))))
    g = table.assign(top=top).groupby("label")
    return pd.DataFrame(
        {
            "records": g.size(),
            "median_kl": g["kl"].median(),
            "max_kl": g["kl"].max(),
            "median_auc_nngp": g["auc_nngp"].median(),
            "in_top_1pct": g["top"].sum().astype(np.int64),
        }
    ).reset_index()


def sigma2_rules_lines(info: dict) -> list[str]:
    """The σ² rules compared on the σ² subset (info["sigma2_rules"]): σ², grid edge, top-1% overlap with the chosen."""
    rules = info.get("sigma2_rules") or []
    if not rules:
        return []
    models = info.get("sigma2_models") or 0
    lines = [
        f"σ² was chosen by {info['sigma2_rule']} on {info['sigma2_records']:,} records (evenly spaced)"
        + (f", from {models} in-models trained on all {info['n']:,} records" if models else "")
        + ". The rules side by side on those records (KL-LOOD of each at its own σ²):",
        "",
        f"| rule | σ² | on the grid's edge | top-1 % overlap with {info['sigma2_rule']} |",
        "|---|---|---|---|",
    ]
    for r in rules:
        lines.append(
            f"| {r['rule']} | {r['sigma2']:.4g} | {'yes' if r.get('at_edge') else 'no'} | "
            f"{r['top1_overlap_with_chosen']:.2f} ({r['top1_records']} records) |"
        )
    return lines + [""]


def route_text(info: dict) -> str:
    """Where the algebra ran: in memory, out of core (panel width, disk), or on a device."""
    route = info.get("route", "in_memory")
    if route == "out_of_core":
        return f"out of core: panels of {info['panel_width']:,} columns through a {info['disk_gb']:.1f} GB scratch file"
    if route.startswith("device"):
        return f"on the {info.get('device')} device"
    return "in memory (one n x n array, factorised in place)"


def report_markdown(table: pd.DataFrame, info: dict, top: int) -> str:
    """A short Markdown report: the setting, the phase times and memory, the most exposed records, per-class medians."""
    lines = [
        "# LOOD audit: every training record, no network trained",
        "",
        f"n = {info['n']:,} records, d = {info['d']:,} features, C = {info['classes']} classes; NNGP of a "
        f"{info['depth']}-hidden-layer {info['activation']} network. σ² = {info['sigma2']:.6g} ({info['sigma2_note']})"
        + (f"; Cholesky needed jitter {info['jitter']:.3g}" if info.get("jitter") else "")
        + ".",
        "",
        "KL is the KL-LOOD at the record itself (Q = {z}), mse the mean-distance LOOD, auc_nngp the AUC of the "
        "optimal membership test between the two GP posteriors (0.5: the record leaves no trace).",
        "",
    ]
    lines += sigma2_rules_lines(info)
    lines += [
        f"Computed {route_text(info)}.",
        "",
        "| phase | seconds |",
        "|---|---|",
    ]
    for key, name in [
        ("sigma2", "σ² choice"),
        ("kernel", "kernel tiles"),
        ("cholesky", "Cholesky (in place)"),
        ("inverse", "diag P (column norms of L⁻¹)"),
        ("lood", "LOOD of all records"),
        ("auc", "NNGP AUC (quadrature)"),
        ("total", "total"),
    ]:
        lines.append(f"| {name} | {info.get('seconds_' + key, float('nan')):.1f} |")
    lines += [
        "",
        f"Memory: {info['memory_needed_gb']:.2f} GB planned beside the data "
        f"(8 n² = {8 * info['n'] ** 2 / 1e9:.2f} GB), "
        f"{info['memory_available_gb']:.1f} GB available at the start; peak RSS {info['peak_rss_gb']:.2f} GB.",
        "",
        f"## The {top} most exposed records (largest KL-LOOD)",
        "",
        "| rank | record | label | KL | mean distance | NNGP AUC |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.nsmallest(top, "rank").itertuples():
        lines.append(f"| {row.rank} | {row.record} | {row.label} | {row.kl:.4g} | {row.mse:.4g} | {row.auc_nngp:.4f} |")
    lines += [
        "",
        "## Per class",
        "",
        "| label | records | median KL | max KL | median NNGP AUC | in the top 1 % |",
        "|---|---|---|---|---|---|",
    ]
    for row in class_summary(table).itertuples():
        lines.append(
            f"| {row.label} | {row.records} | {row.median_kl:.4g} | {row.max_kl:.4g} | {row.median_auc_nngp:.4f} "
            f"| {row.in_top_1pct} |"
        )
    q = table["kl"].quantile([0.5, 0.9, 0.99]).to_numpy()
    lines += [
        "",
        f"KL quantiles over all records: median {q[0]:.4g}, 90 % {q[1]:.4g}, 99 % {q[2]:.4g}, "
        f"max {table['kl'].max():.4g}.",
        "",
    ]
    return "\n".join(lines)
