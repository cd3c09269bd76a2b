"""Confidence intervals that include the models: a two-level bootstrap, records and models (docs/math.md Appendix A).

The attack's per-record AUC is itself an estimate from Min in- and Mout out-models. Rerunning the paper's
attack on a bootstrap resample of the models would put copies of one model in both the reference and the
held-out half of a split and inflate the AUC, and costs a full attack per resample. Instead every model
gets one score, fitted without it (``cross_fitted_scores``: leave-one-model-out Gaussian likelihood
ratio), once; a resample of the models is then a pair of count vectors c (in) and d (out), and its AUC
is cᵀ W d / (Min Mout) with W[i, j] = 1{s_in,i > s_out,j} + ½ 1{=} (``resampled_aucs``). The prediction
difference of a resample is the weighted form of ``diff_unbiased`` (``resampled_diffs``).

One replicate of the two-level bootstrap: one draw of the in-models, shared by all records (they are
the same networks for every record); for each record its own draw of its out-models; then a resample of
the records. The record's measure in the replicate is its measured value shifted by the resample's
change: auc + (AUC of the resample − AUC of all models).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lood import seeds
from lood.empirical.mia import _gaussian_logpdf, auc
from lood.errors import LoodInputError


def cross_fitted_scores(in_logits: np.ndarray, out_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-model-out likelihood-ratio scores log N_in(x) − log N_out(x) of every in- and out-model.

    in (..., Min, C), out (..., Mout, C) -> (..., Min), (..., Mout), the leading axes (records) batched. Model
    i's score uses Gaussians fitted (as the attack fits them, lood.empirical.mia) to every other model of its
    own side and every model of the other side, so no model scores itself.
    """
    inn, out = np.asarray(in_logits, dtype=np.float64), np.asarray(out_logits, dtype=np.float64)
    lead = inn.shape[:-2]
    inn, out = inn.reshape(-1, *inn.shape[-2:]), out.reshape(-1, *out.shape[-2:])  # (R, M, C)

    def loo(a: np.ndarray) -> np.ndarray:  # (R * M, M - 1, C): row (r, i) is record r's models without model i
        R, M, C = a.shape
        keep = ~np.eye(M, dtype=bool)
        return np.broadcast_to(a[:, None], (R, M, M, C))[:, keep].reshape(R * M, M - 1, C)

    R, m_in, m_out = inn.shape[0], inn.shape[1], out.shape[1]
    s_in = _gaussian_logpdf(loo(inn), inn.reshape(R * m_in, 1, -1)).reshape(R, m_in) - _gaussian_logpdf(out, inn)
    s_out = _gaussian_logpdf(inn, out) - _gaussian_logpdf(loo(out), out.reshape(R * m_out, 1, -1)).reshape(R, m_out)
    return s_in.reshape(*lead, m_in), s_out.reshape(*lead, m_out)


class ModelScores(NamedTuple):
    """Per record, every model's cross-fitted score and its logits at the record (what a model resample needs)."""

    records: np.ndarray  # (R,)
    scores_in: np.ndarray  # (R, Min)
    scores_out: np.ndarray  # (R, Mout)
    in_logits: np.ndarray  # (Min, R, C)
    out_logits: np.ndarray  # (R, Mout, C)


def model_scores(records, in_logits: np.ndarray, out_logits: np.ndarray) -> ModelScores:
    """ModelScores of the attacked records (in (Min, R, C), out (R, Mout, C), as lood.empirical.mia.AttackedRecords)."""
    in_logits, out_logits = np.asarray(in_logits, dtype=np.float64), np.asarray(out_logits, dtype=np.float64)
    s_in, s_out = cross_fitted_scores(np.moveaxis(in_logits, 1, 0), out_logits)
    return ModelScores(np.asarray(records), s_in, s_out, in_logits, out_logits)


def model_counts(n_boot: int, n_records: int, m_in: int, m_out: int, base_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Resample counts (with replacement): in-models (B, Min), one draw per replicate; out (B, R, Mout) per record."""
    g = seeds.rng(base_seed, "bootstrap", 1000)
    return _counts(g.integers(0, m_in, (n_boot, m_in)), m_in), _counts(
        g.integers(0, m_out, (n_boot, n_records, m_out)), m_out
    )


def _counts(idx: np.ndarray, m: int) -> np.ndarray:
    """How often each of m models is drawn in each row of idx (..., k) -> (..., m)."""
    rows = np.arange(idx.size // idx.shape[-1]).reshape(*idx.shape[:-1], 1)
    flat = np.bincount((rows * m + idx).ravel(), minlength=rows.size * m)
    return flat.reshape(*idx.shape[:-1], m).astype(np.float64)


def resampled_aucs(s: ModelScores, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(B, R) AUC of the cross-fitted scores on each resample: cᵀ W_r d_r / (Min Mout); and (R,) on all models."""
    R, m_in, m_out = s.scores_in.shape[0], c.shape[1], d.shape[2]
    out = np.empty((c.shape[0], R))
    for r in range(R):
        gt = s.scores_in[r][:, None] - s.scores_out[r][None, :]
        W = (gt > 0) + 0.5 * (gt == 0)
        out[:, r] = np.einsum("bj,bj->b", c @ W, d[:, r]) / (m_in * m_out)
    return out


def resampled_diffs(s: ModelScores, c: np.ndarray, d: np.ndarray) -> np.ndarray:
    """(B, R) unbiased prediction difference (lood.empirical.mia.diff_unbiased) of each resample, in weighted form."""
    m_in, m_out = c.shape[1], d.shape[2]
    R, C = s.out_logits.shape[0], s.out_logits.shape[2]
    in_l = s.in_logits.reshape(m_in, R * C)
    mu_in = (c @ in_l / m_in).reshape(-1, R, C)  # the in-draw is shared by all records
    v_in = ((c @ in_l**2).reshape(-1, R, C) - m_in * mu_in**2) / (m_in - 1)
    mu_out = np.einsum("brm,rmc->brc", d, s.out_logits) / m_out
    v_out = (np.einsum("brm,rmc->brc", d, s.out_logits**2) - m_out * mu_out**2) / (m_out - 1)
    return ((mu_in - mu_out) ** 2).mean(axis=-1) - (v_in / m_in + v_out / m_out).mean(axis=-1)


def full_sample_auc(s: ModelScores) -> np.ndarray:
    """(R,) AUC of the cross-fitted scores on all the models."""
    return np.array([auc(a, b) for a, b in zip(s.scores_in, s.scores_out, strict=True)])


def model_resampled_measures(s: ModelScores, n_boot: int, base_seed: int) -> dict[str, np.ndarray]:
    """(B, R) per-record changes under the model level of the bootstrap: 'auc_shift' (the resample's cross-fitted
    AUC minus that of all models, to add to the measured AUC) and 'diff' (recomputed on the resample)."""
    if s.scores_in.shape[1] < 2 or s.scores_out.shape[1] < 2:
        raise LoodInputError("the model bootstrap needs at least 2 in- and 2 out-models per record")
    c, d = model_counts(n_boot, len(s.records), s.scores_in.shape[1], s.scores_out.shape[1], base_seed)
    return {"auc_shift": resampled_aucs(s, c, d) - full_sample_auc(s)[None], "diff": resampled_diffs(s, c, d)}
