"""Membership scores of every (model, record) pair, each from Gaussians fitted on other models only.

Three attacks, each a score per model on one record (higher = "member"); docs/math.md §14:

* ``lr``: the paper's statistic (lood.empirical.mia): log N(f; m_in, S_in) − log N(f; m_out, S_out) of
  the logit vector f, with the same ridged Gaussian fit, here leave-one-model-out: the scored model
  is left out of the Gaussian of its own side, so no model is scored by a fit that saw it.
* ``lira_offline``: LiRA without in-models (Carlini et al. 2022, offline): the one-sided z-score
  (φ − m_out)/s_out of the logit-scaled confidence φ, out-models' Gaussian leave-one-model-out.
* ``loss``: the loss-threshold attack (Yeom et al. 2018): minus the record's training loss, one
  global threshold, no shadow models.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from lood.empirical.mia import AttackedRecords, _check_logits, _gaussian_logpdf, lira_confidence
from lood.errors import LoodInputError

ATTACKS = ("lr", "lira_offline", "loss")


def _leave_one_out(M: int) -> np.ndarray:
    """(M, M - 1) indices: row i is every model but i."""
    return np.array([np.delete(np.arange(M), i) for i in range(M)])


def lr_scores(in_logits: np.ndarray, out_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-model-out Gaussian likelihood-ratio scores of the in-models (Min,) and out-models (Mout,)."""
    f_in, f_out = np.asarray(in_logits, np.float64), np.asarray(out_logits, np.float64)
    m_in, m_out = len(f_in), len(f_out)
    all_in = np.broadcast_to(f_in, (m_out, *f_in.shape))
    all_out = np.broadcast_to(f_out, (m_in, *f_out.shape))
    s_in = _gaussian_logpdf(f_in[_leave_one_out(m_in)], f_in[:, None]) - _gaussian_logpdf(all_out, f_in[:, None])
    s_out = _gaussian_logpdf(all_in, f_out[:, None]) - _gaussian_logpdf(f_out[_leave_one_out(m_out)], f_out[:, None])
    return s_in[:, 0], s_out[:, 0]


def offline_lira_scores(phi_in: np.ndarray, phi_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(φ − m_out)/s_out with the out-models' mean and std (ddof = 1), leaving the scored out-model out."""
    phi_in, phi_out = np.asarray(phi_in, np.float64), np.asarray(phi_out, np.float64)
    loo = phi_out[_leave_one_out(len(phi_out))]
    m, s = loo.mean(axis=1), loo.std(axis=1, ddof=1)
    floor = 1e-12 * (1 + np.abs(phi_out).max())
    return (phi_in - phi_out.mean()) / max(phi_out.std(ddof=1), floor), (phi_out - m) / np.maximum(s, floor)


def record_losses(logits: np.ndarray, label: int, loss: str) -> np.ndarray:
    """Per model: the record's loss, mse (mean over outputs, centred one-hot target) or cross_entropy."""
    z = np.asarray(logits, np.float64)
    C = z.shape[-1]
    if loss == "mse":
        target = (np.arange(C) == label) - 1.0 / C
        return ((z - target) ** 2).mean(axis=-1)
    if loss == "cross_entropy":
        return logsumexp(z, axis=-1) - z[..., label]
    raise LoodInputError(f"training.loss must be mse or cross_entropy, got {loss!r}")


def attack_scores(attacked: AttackedRecords, loss: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per attack: (in-scores (R, Min), out-scores (R, Mout)), every pair scored by a fit without its model."""
    in_logits, out_logits = np.asarray(attacked.in_logits), np.asarray(attacked.out_logits)
    R = len(attacked.records)
    if len(attacked.labels) != R or in_logits.shape[1] != R or out_logits.shape[0] != R:
        raise LoodInputError(
            f"{R} records but {len(attacked.labels)} labels, in-logits {in_logits.shape}, out-logits {out_logits.shape}"
        )
    out: dict[str, list] = {name: ([], []) for name in ATTACKS}
    for j, label in enumerate(attacked.labels):
        f_in, f_out = in_logits[:, j], out_logits[j]
        _check_logits(f_in, f_out)
        pairs = {
            "lr": lr_scores(f_in, f_out),
            "lira_offline": offline_lira_scores(lira_confidence(f_in, label), lira_confidence(f_out, label)),
            "loss": (-record_losses(f_in, label, loss), -record_losses(f_out, label, loss)),
        }
        for name, (s_in, s_out) in pairs.items():
            out[name][0].append(s_in)
            out[name][1].append(s_out)
    return {name: (np.array(a), np.array(b)) for name, (a, b) in out.items()}
