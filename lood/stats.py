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


def _rank_rows(v: np.ndarray) -> np.ndarray:
    return st.rankdata(v, axis=-1)


def disattenuated(r_half: float, r_rep: float) -> float:
    """ρ(x, truth) of a noise-free predictor x from ρ(x, one replication) and ρ(replication, replication).

    One replication h = t + e with reliability ρ(h, h') = var t / var h; ρ(x, h) = ρ(x, t) √ρ(h, h'),
    so ρ(x, t) = ρ(x, h) / √ρ(h, h') (docs/math.md §15).
    NaN where the replications do not agree positively. Not clipped: noise can take it above 1.
    """
    return float(r_half / np.sqrt(r_rep)) if r_rep > 0 else np.nan


def replication_bootstrap(x: np.ndarray, reps: np.ndarray, n_boot: int, base_seed: int, key: int) -> dict[str, float]:
    """The replication comparison with paired bootstrap CIs over records (docs/math.md Appendix A).

    x (n,): a deterministic predictor; reps (K, 2, n): K repeats of two independent replications of
    the attack on the same n records. Per correlation m (pearson, spearman), with r_x = mean over
    repeats and replications of r(x, rep) and r_rep = mean over repeats of r(rep 0, rep 1):
    {m}_half = r_x, {m}_replication = r_rep, {m}_half_minus_rep = r_x − r_rep and
    {m}_disattenuated = r_x / √r_rep, each statistic with _lo and _hi (percentile 95% over `n_boot`
    resamples of the records, every repeat resampled with the same records: the pairing), and
    {m}_half_minus_rep_share_le0, the share of resamples with r_x <= r_rep.
    """
    x, reps = np.asarray(x, dtype=float), np.asarray(reps, dtype=float)
    ok = np.isfinite(x) & np.isfinite(reps).all(axis=(0, 1))
    x, reps = x[ok], reps[..., ok]
    n = len(x)
    names = ("half", "replication", "half_minus_rep", "disattenuated")
    nan = {f"{m}_{s}{k}": np.nan for m in ("pearson", "spearman") for s in names for k in ("", "_lo", "_hi")}
    nan |= {f"{m}_half_minus_rep_share_le0": np.nan for m in ("pearson", "spearman")}
    if n < 3 or np.ptp(x) == 0 or reps.shape[0] == 0:
        return {"n": float(n)} | nan
    idx = seeds.rng(base_seed, "bootstrap", key).integers(0, n, size=(n_boot, n))
    out: dict[str, float] = {"n": float(n)}
    for m, transform in (("pearson", lambda v: v), ("spearman", _rank_rows)):
        # Row 0: the records as they are; rows 1..: the bootstrap resamples.
        xb = transform(np.concatenate([x[None], x[idx]]))  # (1 + B, n)
        rb = transform(np.concatenate([reps[..., None, :], reps[..., idx]], axis=2))  # (K, 2, 1 + B, n)
        r_x = np.nanmean([_rowwise_pearson(xb, rb[k, h]) for k in range(len(rb)) for h in (0, 1)], axis=0)
        r_rep = np.nanmean([_rowwise_pearson(rb[k, 0], rb[k, 1]) for k in range(len(rb))], axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            dis = np.where(r_rep > 0, r_x / np.sqrt(np.where(r_rep > 0, r_rep, 1.0)), np.nan)
        for s, v in zip(names, (r_x, r_rep, r_x - r_rep, dis), strict=True):
            boot = v[1:][np.isfinite(v[1:])]
            lo, hi = np.percentile(boot, [2.5, 97.5]) if len(boot) else (np.nan, np.nan)
            out |= {f"{m}_{s}": float(v[0]), f"{m}_{s}_lo": float(lo), f"{m}_{s}_hi": float(hi)}
        diff = (r_x - r_rep)[1:]
        out[f"{m}_half_minus_rep_share_le0"] = float(np.mean(diff[np.isfinite(diff)] <= 0))
    return out


def halves_array(x: pd.Series, halves: pd.DataFrame, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """(x (n,), reps (K, 2, n)) of `halves` (lood.empirical.mia.half_attacks), replication_bootstrap's input."""
    wide = halves.pivot_table(index="record", columns=["repeat", "half"], values=measure, aggfunc="first")
    K = wide.columns.get_level_values(0).nunique()
    reps = wide.to_numpy().T.reshape(K, 2, len(wide))
    return x.reindex(wide.index).to_numpy(dtype=float), reps


def two_level_correlation(
    x: np.ndarray, y: np.ndarray, y_models: np.ndarray, n_boot: int, base_seed: int, key: int
) -> dict[str, float]:
    """Bootstrap 95% CIs of Pearson r and Spearman ρ of (x, y) with the models resampled too (two_level_{m}_lo/hi).

    y_models (B', R), B' >= n_boot: y of each record under a resample of its models
    (lood.empirical.model_bootstrap); replicate b takes row b and the records' resample b of
    `correlation` (same stream and key, so the two CIs differ only by the model level).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ym = np.asarray(y_models, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, ym = x[ok], ym[:n_boot, ok]
    n = len(x)
    keys = [f"two_level_{m}_{k}" for m in ("pearson", "spearman") for k in ("lo", "hi")]
    if n < 3 or np.ptp(x) == 0 or len(ym) < n_boot:
        return dict.fromkeys(keys, np.nan)
    idx = seeds.rng(base_seed, "bootstrap", key).integers(0, n, size=(n_boot, n))
    xb, yb = x[idx], np.take_along_axis(ym, idx, axis=1)
    out = {}
    for m, a, b in (("pearson", xb, yb), ("spearman", _rank_rows(xb), _rank_rows(yb))):
        lo, hi = np.nanpercentile(_rowwise_pearson(a, b), [2.5, 97.5])
        out |= {f"two_level_{m}_lo": float(lo), f"two_level_{m}_hi": float(hi)}
    return out
