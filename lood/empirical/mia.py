"""Membership inference on one record from its in- and out-models' logits (the paper's attack).

Protocol for one record with Min in-models and Mout out-models (logits on the record, or on
one landscape query), under one integer seed:

* ``half_splits``: ``rng = np.random.default_rng(seed)``; for each of ``splits`` splits draw
  ``rng.permutation(Min)`` then ``rng.permutation(Mout)``; the first ``M // 2`` of each are the
  reference half, the rest the held-out half.
* Likelihood-ratio attack: fit a Gaussian to the reference in-logits and one to the reference
  out-logits (mean; sample covariance with ddof = 1, plus a ridge ``RIDGE * tr(S) / C + RIDGE_FLOOR``
  on the diagonal so that near-singular covariances, e.g. C = 2 outputs that nearly sum to a
  constant, stay invertible); score every held-out model by log N_in - log N_out; ROC AUC with
  the in-models as positives. ``auc`` is the mean over splits, ``auc_std`` the (population) std.
* LiRA: the same, one-dimensional, on the logit-scaled confidence of the true label
  phi = log(p_y / (1 - p_y)); ``auc_lira`` is the mean over the same splits.
* Prediction difference (docs/math.md §9): ``diff_raw`` = mean over outputs of (mean in-logit -
  mean out-logit)^2 using all models; ``diff`` = diff_raw - mean over outputs of (s2_in / n_in +
  s2_out / n_out), the unbiased estimate of the squared difference of expected logits (s2 the
  sample variances, ddof = 1; it can be negative); ``diff_std`` the bootstrap standard error of
  ``diff``, from ``splits`` resamples (models drawn with replacement within the in- and within the
  out-models) drawn after the splits, from the same rng.
* ``auc_p``: one-sided p-value of "AUC > 1/2", conservative: under no leakage every split's AUC
  is a Mann-Whitney statistic of its held-out halves (sizes h_in, h_out) with mean 1/2 and variance
  v0 = (h_in + h_out + 1) / (12 h_in h_out), and the mean over splits has variance at most v0;
  p = 1 - Phi((auc - 1/2) / sqrt(v0)) (normal approximation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import logsumexp
from scipy.stats import norm, rankdata

from lood import seeds
from lood.errors import LoodInputError

RIDGE = 1e-6
RIDGE_FLOOR = 1e-12
MIN_MODELS = 4  # two reference models for a covariance and at least two held out


def auc(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC of positives vs negatives along the last axis (Mann-Whitney U, ties count one half)."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    n_pos, n_neg = pos.shape[-1], neg.shape[-1]
    ranks = rankdata(np.concatenate([pos, neg], axis=-1), method="average", axis=-1)
    u = ranks[..., :n_pos].sum(axis=-1) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def lira_confidence(logits: np.ndarray, labels: np.ndarray | int) -> np.ndarray:
    """phi = log(p_y / (1 - p_y)) of the softmax, computed as z_y - logsumexp(z_{c != y})."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.broadcast_to(np.asarray(labels, dtype=np.int64), z.shape[:-1])
    z_y = np.take_along_axis(z, y[..., None], axis=-1)[..., 0]
    others = np.where(np.arange(z.shape[-1]) == y[..., None], -np.inf, z)
    return z_y - logsumexp(others, axis=-1)


def half_splits(
    n_in: int, n_out: int, splits: int, seed: int | np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (splits, .) of the reference and held-out halves: ref_in, held_in, ref_out, held_out."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    perms_in, perms_out = [], []
    for _ in range(int(splits)):
        perms_in.append(rng.permutation(n_in))
        perms_out.append(rng.permutation(n_out))
    p_in, p_out = np.array(perms_in), np.array(perms_out)
    return p_in[:, : n_in // 2], p_in[:, n_in // 2 :], p_out[:, : n_out // 2], p_out[:, n_out // 2 :]


def _gaussian_logpdf(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log N(x; mean, cov) with mean and ridged covariance fitted to ref; ref (S, m, C), x (S, k, C) -> (S, k)."""
    C = ref.shape[-1]
    mu = ref.mean(axis=1, keepdims=True)
    centred = ref - mu
    cov = np.einsum("smi,smj->sij", centred, centred) / (ref.shape[1] - 1)
    ridge = RIDGE * np.trace(cov, axis1=1, axis2=2) / C + RIDGE_FLOOR
    cov = cov + ridge[:, None, None] * np.eye(C)
    L = np.linalg.cholesky(cov)
    sol = np.linalg.solve(L, np.swapaxes(x - mu, 1, 2))  # (S, C, k)
    logdet = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    return -0.5 * ((sol**2).sum(axis=1) + logdet[:, None] + C * np.log(2.0 * np.pi))


def _lr_auc(feat_in: np.ndarray, feat_out: np.ndarray, split: tuple[np.ndarray, ...]) -> np.ndarray:
    """Per-split AUC of the Gaussian likelihood-ratio attack on features (M, C)."""
    ref_in, held_in, ref_out, held_out = split
    held = np.concatenate([feat_in[held_in], feat_out[held_out]], axis=1)
    score = _gaussian_logpdf(feat_in[ref_in], held) - _gaussian_logpdf(feat_out[ref_out], held)
    n_pos = held_in.shape[1]
    return auc(score[:, :n_pos], score[:, n_pos:])


def _check_logits(in_logits: np.ndarray, out_logits: np.ndarray) -> None:
    if in_logits.ndim != 2 or out_logits.ndim != 2 or in_logits.shape[1] != out_logits.shape[1]:
        raise LoodInputError(
            f"in/out logits must be (models, classes) with equal classes, got {in_logits.shape} and {out_logits.shape}"
        )
    if min(len(in_logits), len(out_logits)) < MIN_MODELS:
        raise LoodInputError(
            f"the attack needs at least {MIN_MODELS} in- and {MIN_MODELS} out-models, "
            f"got {len(in_logits)} and {len(out_logits)} (training.n_in / n_out)"
        )
    if not (np.all(np.isfinite(in_logits)) and np.all(np.isfinite(out_logits))):
        raise LoodInputError("model logits contain NaN or inf: training diverged; lower training.lr")


def diff_unbiased(in_logits: np.ndarray, out_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(diff, diff_raw) along the model axis -2 of (..., M, C) logits.

    diff_raw = mean_c Δ̂_c²; diff subtracts its noise floor (docs/math.md §9).
    """
    m_in, m_out = in_logits.shape[-2], out_logits.shape[-2]
    raw = ((in_logits.mean(axis=-2) - out_logits.mean(axis=-2)) ** 2).mean(axis=-1)
    floor = (in_logits.var(axis=-2, ddof=1) / m_in + out_logits.var(axis=-2, ddof=1) / m_out).mean(axis=-1)
    return raw - floor, raw


def auc_p_value(auc_mean: float, held_in: int, held_out: int) -> float:
    """Conservative one-sided p-value of mean split AUC > 1/2 (module docstring; normal approximation)."""
    v0 = (held_in + held_out + 1) / (12.0 * held_in * held_out)
    return float(norm.sf((auc_mean - 0.5) / np.sqrt(v0)))


def mia_record(in_logits: np.ndarray, out_logits: np.ndarray, label: int, splits: int, seed: int) -> dict[str, float]:
    """Attack AUC (mean, std over half-splits, p-value), prediction difference (unbiased, raw, SE), LiRA AUC."""
    in_logits = np.asarray(in_logits, dtype=np.float64)
    out_logits = np.asarray(out_logits, dtype=np.float64)
    _check_logits(in_logits, out_logits)
    if not 0 <= int(label) < in_logits.shape[1]:
        raise LoodInputError(f"label {label} out of range for {in_logits.shape[1]} classes")
    if int(splits) < 1:
        raise LoodInputError(f"mia.splits must be >= 1, got {splits}")
    rng = np.random.default_rng(seed)
    split = half_splits(len(in_logits), len(out_logits), splits, rng)
    aucs = _lr_auc(in_logits, out_logits, split)
    phi_in, phi_out = lira_confidence(in_logits, label)[:, None], lira_confidence(out_logits, label)[:, None]
    lira = _lr_auc(phi_in, phi_out, split)

    boot_in = rng.integers(0, len(in_logits), size=(int(splits), len(in_logits)))
    boot_out = rng.integers(0, len(out_logits), size=(int(splits), len(out_logits)))
    boot, _ = diff_unbiased(in_logits[boot_in], out_logits[boot_out])
    diff, diff_raw = diff_unbiased(in_logits, out_logits)
    return {
        "auc": float(aucs.mean()),
        "auc_std": float(aucs.std()),
        "auc_p": auc_p_value(float(aucs.mean()), split[1].shape[1], split[3].shape[1]),
        "diff": float(diff),
        "diff_raw": float(diff_raw),
        "diff_std": float(boot.std()),
        "auc_lira": float(lira.mean()),
    }


MIA_COLUMNS = ["record", "auc", "auc_std", "diff", "diff_std", "auc_lira", "auc_p", "diff_raw"]
LANDSCAPE_COLUMNS = ["record", "t", "auc", "auc_std", "diff", "auc_p", "diff_raw"]


class AttackedRecords(NamedTuple):
    """The attack's input: the records, their labels, and the models' logits at them."""

    records: Sequence[int]
    labels: Sequence[int]
    in_logits: np.ndarray  # (Min, R, C)
    out_logits: np.ndarray  # (R, Mout, C)

    def models(self, in_models: np.ndarray, out_models: np.ndarray) -> AttackedRecords:
        """The same records with a subset of the in- and out-models."""
        return self._replace(in_logits=self.in_logits[in_models], out_logits=self.out_logits[:, out_models])


def mia_table(attacked: AttackedRecords, splits: int, base_seed: int) -> pd.DataFrame:
    """One row per record; seed int_seed(base, 'mia', record)."""
    records, labels = attacked.records, attacked.labels
    in_logits, out_logits = np.asarray(attacked.in_logits), np.asarray(attacked.out_logits)
    R = len(records)
    if len(labels) != R or in_logits.shape[1] != R or out_logits.shape[0] != R:
        raise LoodInputError(
            f"{R} records but {len(labels)} labels, in-logits {in_logits.shape}, out-logits {out_logits.shape}"
        )
    rows = []
    for j, (rec, lab) in enumerate(zip(records, labels, strict=True)):
        res = mia_record(in_logits[:, j], out_logits[j], int(lab), splits, seeds.int_seed(base_seed, "mia", int(rec)))
        rows.append({"record": int(rec), **res})
    return pd.DataFrame(rows, columns=MIA_COLUMNS)


HALVES_COLUMNS = ["repeat", "half", "record", "auc", "diff"]


def half_attacks(attacked: AttackedRecords, splits: int, base_seed: int, repeats: int) -> pd.DataFrame:
    """The attack (AUC, unbiased diff) run on each of two disjoint halves of the models, `repeats` times.

    Each repeat splits the in-models and the out-models at random into two halves (seed
    rng(base, 'mia_halves', repeat)); each half is attacked alone, every record with its own
    'mia' seed as in mia_table. Two halves are two independent replications of the attack at half
    the models: lood.stats.replication compares a predictor's agreement with one half to the
    halves' agreement with each other. With fewer than 2 x MIN_MODELS in- or out-models a half
    cannot be attacked, and the table is empty.
    """
    attacked = attacked._replace(in_logits=np.asarray(attacked.in_logits), out_logits=np.asarray(attacked.out_logits))
    n_in, n_out = attacked.in_logits.shape[0], attacked.out_logits.shape[1]
    if int(repeats) < 1:
        raise LoodInputError(f"mia.replication_repeats must be >= 1, got {repeats}")
    tables = []
    for k in range(int(repeats) if min(n_in, n_out) >= 2 * MIN_MODELS else 0):
        g = seeds.rng(base_seed, "mia_halves", k)
        p_in, p_out = g.permutation(n_in), g.permutation(n_out)
        halves = [(p_in[: n_in // 2], p_out[: n_out // 2]), (p_in[n_in // 2 :], p_out[n_out // 2 :])]
        for h, (h_in, h_out) in enumerate(halves):
            t = mia_table(attacked.models(h_in, h_out), splits, base_seed)
            tables.append(t[["record", "auc", "diff"]].assign(repeat=k, half=h))
    if not tables:
        return pd.DataFrame(columns=HALVES_COLUMNS)
    return pd.concat(tables, ignore_index=True)[HALVES_COLUMNS]


def mia_landscape_table(
    records: Sequence[int],
    labels: Sequence[int],
    t: Sequence[float],
    in_probe_logits: np.ndarray,
    out_probe_logits: np.ndarray,
    splits: int,
    base_seed: int,
) -> pd.DataFrame:
    """One row per (record, t): in (Min, R, T, C), out (R, Mout, T, C); a record's splits are the same at every t."""
    in_p, out_p = np.asarray(in_probe_logits), np.asarray(out_probe_logits)
    R, T = len(records), len(t)
    if len(labels) != R or in_p.shape[1:3] != (R, T) or out_p.shape[0] != R or out_p.shape[2] != T:
        raise LoodInputError(
            f"{R} records x {T} offsets but {len(labels)} labels, in-logits {in_p.shape}, out-logits {out_p.shape}"
        )
    rows = []
    for j, (rec, lab) in enumerate(zip(records, labels, strict=True)):
        seed = seeds.int_seed(base_seed, "mia", int(rec))
        for k, tk in enumerate(t):
            res = mia_record(in_p[:, j, k], out_p[j, :, k], int(lab), splits, seed)
            rows.append({"record": int(rec), "t": float(tk)} | {c: res[c] for c in LANDSCAPE_COLUMNS[2:]})
    return pd.DataFrame(rows, columns=LANDSCAPE_COLUMNS)
