"""Correlation summaries with p-values and seeded bootstrap confidence intervals (docs/math.md Appendix A).

The studied records share their in-models, so they are not independent samples: the scipy
p-values assume they are and overstate the evidence. The percentile bootstrap over records
is the summary to lead with; the p-values are kept for reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from lood import seeds


def signed_sqrt(x: np.ndarray) -> np.ndarray:
    """sign(x) √|x|: a square root that keeps the order of values below 0 (an unbiased diff can be negative)."""
    x = np.asarray(x, dtype=float)
    return np.sign(x) * np.sqrt(np.abs(x))


def _finite_pairs(*arrays: np.ndarray) -> list[np.ndarray]:
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    ok = np.logical_and.reduce([np.isfinite(a) for a in arrays])
    return [a[ok] for a in arrays]


def correlation(x: np.ndarray, y: np.ndarray, n_boot: int, base_seed: int, key: int = 0) -> dict[str, float]:
    """Pearson and Spearman r with p-values and percentile-bootstrap 95% CIs (seeded; `key` names the pair)."""
    x, y = _finite_pairs(x, y)
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
        out |= {
            f"{name}_r": float(r.statistic),
            f"{name}_p": float(r.pvalue),
            f"{name}_lo": float(lo),
            f"{name}_hi": float(hi),
        }
    return out


def paired_difference(
    target: np.ndarray, a: np.ndarray, b: np.ndarray, n_boot: int, base_seed: int, key: int
) -> dict[str, float]:
    """r(a, target) − r(b, target), Pearson and Spearman, with a paired percentile-bootstrap 95% CI over records.

    Both correlations of a resample use the same records (the pairing), so what they share
    (the target's noise, an outlier of the target) cancels in the difference. Keys:
    {pearson,spearman}_diff, _lo, _hi, and _share_le0, the share of resamples with a difference <= 0.
    """
    t, a, b = _finite_pairs(target, a, b)
    n = len(t)
    out: dict[str, float] = {"n": float(n)}
    if n < 3 or min(np.ptp(t), np.ptp(a), np.ptp(b)) == 0:
        return out | {f"{m}_diff{k}": np.nan for m in ("pearson", "spearman") for k in ("", "_lo", "_hi", "_share_le0")}
    idx = seeds.rng(base_seed, "bootstrap", key).integers(0, n, size=(n_boot, n))
    tb, ab, bb = t[idx], a[idx], b[idx]
    rank = lambda v: st.rankdata(v, axis=-1)  # noqa: E731
    for name, point, boot in (
        (
            "pearson",
            st.pearsonr(a, t).statistic - st.pearsonr(b, t).statistic,
            _rowwise_pearson(ab, tb) - _rowwise_pearson(bb, tb),
        ),
        (
            "spearman",
            st.spearmanr(a, t).statistic - st.spearmanr(b, t).statistic,
            _rowwise_pearson(rank(ab), rank(tb)) - _rowwise_pearson(rank(bb), rank(tb)),
        ),
    ):
        lo, hi = np.nanpercentile(boot, [2.5, 97.5])
        share = float(np.mean(boot[np.isfinite(boot)] <= 0))
        out |= {
            f"{name}_diff": float(point),
            f"{name}_diff_lo": float(lo),
            f"{name}_diff_hi": float(hi),
            f"{name}_diff_share_le0": share,
        }
    return out


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair (NaN where a row is constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(axis=1) / den


def legend_text(c: dict[str, float]) -> str:
    """A compact legend: Spearman ρ and Pearson r with bootstrap CIs first, p-values (records share in-models) last."""
    if not np.isfinite(c.get("pearson_r", np.nan)):
        return f"n={int(c['n'])}: correlation undefined"
    return (
        f"Spearman ρ={c['spearman_r']:.2f} [{c['spearman_lo']:.2f}, {c['spearman_hi']:.2f}]\n"
        f"Pearson r={c['pearson_r']:.2f} [{c['pearson_lo']:.2f}, {c['pearson_hi']:.2f}]\n"
        f"n={int(c['n'])}; bootstrap 95% CIs; p={c['spearman_p']:.1g} / {c['pearson_p']:.1g} assume independent records"
    )


def replication(x: pd.Series, halves: pd.DataFrame, measure: str) -> dict[str, float]:
    """Does x predict the attack as well as a replication of the attack does? (math.md, Appendix A)

    x: a predictor indexed by record; halves: lood.empirical.mia.half_attacks. Returns Spearman's rho of x
    with one half's `measure` (mean over repeats and both halves) and between the two halves of a
    repeat (mean over repeats): both at the same number of models, so neither needs a correction.
    """
    if halves.empty:
        return {"spearman_half": np.nan, "spearman_replication": np.nan}
    with_x, between = [], []
    for _, rep in halves.groupby("repeat"):
        wide = rep.pivot(index="record", columns="half", values=measure)
        xs = x.reindex(wide.index).to_numpy()
        with_x += [st.spearmanr(xs, wide[h]).statistic for h in wide.columns]
        between.append(st.spearmanr(wide[0], wide[1]).statistic)
    return {"spearman_half": float(np.mean(with_x)), "spearman_replication": float(np.mean(between))}
