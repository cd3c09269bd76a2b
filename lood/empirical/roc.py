"""ROC summaries in privacy auditors' units: TPR at low FPR over pooled (model, record) pairs, and ε lower bounds.

Scores come from lood.empirical.attack_scores (every pair scored by a fit that did not see its model).
Formulas and conventions: docs/math.md §14.

* TPR at FPR α: the largest TPR over thresholds that let at most k = ⌊α n_neg⌋ negatives through
  (scores strictly above the (k + 1)-th largest negative). k is reported: it is how many negatives
  support the FPR.
* Pooled CIs: percentile bootstrap over records (each resample draws R records with replacement and
  pools all their pairs), privacy.bootstrap times, seed rng(seed, 'privacy', 0).
* ε lower bound of one record: over every threshold of its scores, the Clopper-Pearson bounds
  (two-sided at `confidence`) TPR_lo and FPR_hi give the two inequalities of (ε, δ)-DP,
  ε >= log((TPR_lo − δ)/FPR_hi) and ε >= log((1 − FPR_hi − δ)/(1 − TPR_lo)) (Kairouz et al. 2015);
  the best (largest) over thresholds and both. The attack keeps its orientation (higher = member).
  The bounds hold at each threshold; the maximum over thresholds is not corrected for the choice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import beta

from lood import seeds
from lood.empirical.attack_scores import attack_scores
from lood.empirical.mia import AttackedRecords, auc
from lood.errors import LoodInputError
from lood.settings import PrivacySettings

log = logging.getLogger(__name__)

BOOT_CHUNK = 200  # bootstrap resamples per vectorised step (memory: chunk x pairs floats)


def allowed_negatives(alpha: float, n_neg: int) -> int:
    """k = ⌊α n_neg⌋ (with a tolerance for α n_neg that float makes a hair below an integer)."""
    return int(np.floor(alpha * n_neg + 1e-9))


def tpr_at_fpr(pos: np.ndarray, neg: np.ndarray, alpha: float) -> np.ndarray:
    """TPR along the last axis at FPR <= alpha: positives strictly above the (k + 1)-th largest negative."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    k = allowed_negatives(alpha, neg.shape[-1])
    if k >= neg.shape[-1]:
        return np.ones(pos.shape[:-1])
    threshold = -np.partition(-neg, k, axis=-1)[..., k]
    return np.mean(pos > threshold[..., None], axis=-1)


def pooled_summary(
    scores: Mapping[str, tuple[np.ndarray, np.ndarray]], fprs: Sequence[float], n_boot: int, base_seed: int
) -> pd.DataFrame:
    """One row per attack: AUC and TPR at each FPR of all pooled pairs, with record-bootstrap 95% CIs.

    scores[attack] = (in-scores (R, Min), out-scores (R, Mout)). Columns: attack, n_pos, n_neg, auc, auc_lo,
    auc_hi, and per α: tpr_at_<α>, _lo, _hi and negatives_at_<α> (k, the negatives that may pass).
    """
    if int(n_boot) < 1:
        raise LoodInputError(f"privacy.bootstrap must be >= 1, got {n_boot}")
    rows = []
    for name, (s_in, s_out) in scores.items():
        R = len(s_in)
        idx = seeds.rng(base_seed, "privacy", 0).integers(0, R, size=(int(n_boot), R))  # same records per attack
        pos, neg = s_in.ravel(), s_out.ravel()
        row = {"attack": name, "n_pos": len(pos), "n_neg": len(neg), "auc": float(auc(pos, neg))}
        boot: dict[str, list] = {"auc": []} | {f"{a:g}": [] for a in fprs}
        for start in range(0, int(n_boot), BOOT_CHUNK):
            b = idx[start : start + BOOT_CHUNK]
            bp, bn = s_in[b].reshape(len(b), -1), s_out[b].reshape(len(b), -1)
            boot["auc"].append(auc(bp, bn))
            for a in fprs:
                boot[f"{a:g}"].append(tpr_at_fpr(bp, bn, a))
        lo, hi = np.percentile(np.concatenate(boot["auc"]), [2.5, 97.5])
        row |= {"auc_lo": lo, "auc_hi": hi}
        for a in fprs:
            lo, hi = np.percentile(np.concatenate(boot[f"{a:g}"]), [2.5, 97.5])
            col = f"tpr_at_{a:g}"
            row |= {col: float(tpr_at_fpr(pos, neg, a)), f"{col}_lo": lo, f"{col}_hi": hi}
            row[f"negatives_at_{a:g}"] = allowed_negatives(a, len(neg))
        rows.append(row)
    return pd.DataFrame(rows)


def pooled_roc_table(scores: Mapping[str, tuple[np.ndarray, np.ndarray]], grid: Sequence[float]) -> pd.DataFrame:
    """Long table (attack, fpr, tpr) of each attack's pooled ROC at the false-positive rates of `grid`."""
    rows = []
    for name, (s_in, s_out) in scores.items():
        pos, neg = s_in.ravel(), s_out.ravel()
        for a in grid:
            k = allowed_negatives(a, len(neg))
            rows.append({"attack": name, "fpr": k / len(neg), "tpr": float(tpr_at_fpr(pos, neg, a))})
    return pd.DataFrame(rows).drop_duplicates(["attack", "fpr"]).reset_index(drop=True)


def epsilon_lower_bound(pos: np.ndarray, neg: np.ndarray, delta: float, confidence: float) -> dict[str, float]:
    """Best Clopper-Pearson ε lower bound over thresholds "score >= t" of one record (module docstring).

    Returns eps_lower (0 when no threshold gives a positive bound) and the tp, fp of the threshold that gives it.
    """
    if not 0 < confidence < 1:
        raise LoodInputError(f"privacy.confidence must lie in (0, 1), got {confidence}")
    pos, neg = np.sort(np.asarray(pos, np.float64)), np.sort(np.asarray(neg, np.float64))
    n_pos, n_neg = len(pos), len(neg)
    t = np.unique(np.concatenate([pos, neg]))
    tp = n_pos - np.searchsorted(pos, t, side="left")
    fp = n_neg - np.searchsorted(neg, t, side="left")
    a = (1 - confidence) / 2
    tpr_lo = np.where(tp > 0, beta.ppf(a, tp, n_pos - tp + 1), 0.0)
    fpr_hi = np.where(fp < n_neg, beta.ppf(1 - a, fp + 1, n_neg - fp), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        forward = np.log((tpr_lo - delta) / fpr_hi)
        backward = np.log((1 - fpr_hi - delta) / (1 - tpr_lo))
    eps = np.nan_to_num(np.fmax(forward, backward), nan=0.0, neginf=0.0)
    best = int(np.argmax(eps))
    return {"eps_lower": max(float(eps[best]), 0.0), "eps_tp": int(tp[best]), "eps_fp": int(fp[best])}


def _eps_ceiling(n_pos: int, n_neg: int, delta: float, confidence: float) -> float:
    """The ε lower bound of a perfect separation: the most n_pos + n_neg models can show."""
    return epsilon_lower_bound(np.ones(n_pos), np.zeros(n_neg), delta, confidence)["eps_lower"]


def record_privacy_table(
    records: Sequence[int], s_in: np.ndarray, s_out: np.ndarray, delta: float, confidence: float
) -> pd.DataFrame:
    """Per record, from its held-out (leave-one-model-out) scores (R, Min), (R, Mout).

    Columns: record, n_in, n_out, auc_lomo, fpr_lowest (= 1/n_out, the lowest FPR the out-models support),
    tpr_at_lowest (TPR there: at most one out-model above the threshold), eps_lower, eps_tp, eps_fp, delta, and
    eps_ceiling, the largest bound these model counts can show (every in-model caught, no out-model).
    """
    rows = []
    for rec, p, n in zip(records, s_in, s_out, strict=True):
        rows.append(
            {
                "record": int(rec),
                "n_in": len(p),
                "n_out": len(n),
                "auc_lomo": float(auc(p, n)),
                "fpr_lowest": 1.0 / len(n),
                "tpr_at_lowest": float(tpr_at_fpr(p, n, 1.0 / len(n))),
            }
            | epsilon_lower_bound(p, n, delta, confidence)
            | {"delta": float(delta), "eps_ceiling": _eps_ceiling(len(p), len(n), delta, confidence)}
        )
    return pd.DataFrame(rows)


def privacy_tables(
    attacked: AttackedRecords, loss: str, privacy: PrivacySettings, base_seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(pooled summary per attack, pooled ROCs at privacy.roc_points log-spaced FPRs, per-record table of lr)."""
    scores = attack_scores(attacked, loss)
    n_neg = scores["lr"][1].size
    grid = np.geomspace(1.0 / n_neg, 1.0, int(privacy.roc_points))
    pooled = pooled_summary(scores, privacy.fprs, privacy.bootstrap, base_seed)
    per_record = record_privacy_table(attacked.records, *scores["lr"], privacy.delta, privacy.confidence)
    for _, row in pooled.iterrows():
        log.info(
            "%s: AUC %.3f, %s",
            row["attack"],
            row["auc"],
            ", ".join(
                f"TPR at FPR {a:g} {row[f'tpr_at_{a:g}']:.4f} [{row[f'tpr_at_{a:g}_lo']:.4f}, "
                f"{row[f'tpr_at_{a:g}_hi']:.4f}] ({row[f'negatives_at_{a:g}']} of {n_neg} negatives)"
                for a in privacy.fprs
            ),
        )
    log.info(
        "per record (delta %g): eps lower bound median %.3f, max %.3f; TPR at FPR 1/n_out median %.3f",
        privacy.delta,
        per_record["eps_lower"].median(),
        per_record["eps_lower"].max(),
        per_record["tpr_at_lowest"].median(),
    )
    return pooled, pooled_roc_table(scores, grid), per_record
