"""Correlation summaries with p-values and seeded bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats as st

from lood import seeds


def correlation(x: np.ndarray, y: np.ndarray, n_boot: int, base_seed: int, key: int = 0) -> dict[str, float]:
    """Pearson and Spearman r with p-values and percentile-bootstrap 95% CIs (seeded; `key` names the pair)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    out: dict[str, float] = {"n": float(n)}
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out | {f"{m}_{k}": np.nan for m in ("pearson", "spearman") for k in ("r", "p", "lo", "hi")}
    pr = st.pearsonr(x, y)
    sr = st.spearmanr(x, y)
    idx = seeds.rng(base_seed, "bootstrap", key).integers(0, n, size=(n_boot, n))
    xb, yb = x[idx], y[idx]
    boot_p = _rowwise_pearson(xb, yb)
    boot_s = _rowwise_pearson(st.rankdata(xb, axis=1), st.rankdata(yb, axis=1))
    for name, r, boot in (("pearson", pr, boot_p), ("spearman", sr, boot_s)):
        lo, hi = np.nanpercentile(boot, [2.5, 97.5])
        out |= {f"{name}_r": float(r.statistic), f"{name}_p": float(r.pvalue), f"{name}_lo": float(lo), f"{name}_hi": float(hi)}
    return out


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair (NaN where a row is constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / den


def legend_text(c: dict[str, float]) -> str:
    """A compact legend line: Pearson and Spearman r [CI], p."""
    if not np.isfinite(c.get("pearson_r", np.nan)):
        return f"n={int(c['n'])}: correlation undefined"
    return (
        f"Pearson r={c['pearson_r']:.2f} [{c['pearson_lo']:.2f}, {c['pearson_hi']:.2f}], p={c['pearson_p']:.1g}\n"
        f"Spearman ρ={c['spearman_r']:.2f} [{c['spearman_lo']:.2f}, {c['spearman_hi']:.2f}], p={c['spearman_p']:.1g}  (n={int(c['n'])})"
    )
