"""The ensemble of infinitely wide networks trained by gradient descent on MSE, and the in-models' spread.

Lee et al. (2019), "Wide neural networks of any depth evolve as linear models under gradient descent":
a network initialised at random (outputs f₀ ~ GP(0, K), K the NNGP kernel) and trained by gradient
flow on the squared error follows its linearisation, whose tangent kernel Θ (the NTK) stays fixed.
With τ the training time in the units of df/dτ = −Θ(f − Y) (``gd_time``) and, on F,
A(Q) = Θ_QF Θ_FF⁻¹ (I − e^{−τ Θ_FF}), the outputs at queries Q over random initialisations are Gaussian:

    mean  μ(Q) = A(Q) Y
    cov   Σ(Q) = K_QQ + A K_FF Aᵀ − A K_FQ − K_QF Aᵀ

(docs/math.md §17). Θ_FF⁻¹(I − e^{−τΘ_FF}) is evaluated in Θ_FF's
eigenbasis as g(θ) = (1 − e^{−τθ})/θ, which tends to τ as θ → 0, so a singular Θ_FF needs no ridge.
Leave-one-out: the same formulas on D = F \\ {z}, one eigendecomposition of Θ_DD per record.

`spread_scale` is the one output scale c that makes a model's predictive variance match the
in-models' across-seed variance of their logits (training and held-out records; no out-model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lood.errors import LoodInputError


def gd_time(
    lr: float,
    epochs: int,
    batch_size: int,
    n: int,
    n_classes: int,
    momentum: float,
    epoch_factors: Sequence[float] | None = None,
) -> float:
    """τ of the workflow's minibatch SGD on torch's MSELoss (a mean over the batch and the C outputs).

    One step on batch B moves the linearised outputs by −(2η / (|B| C)) Θ_{·B} (f_B − Y_B); over a random
    epoch order its expectation is −(2η / (n C)) Θ (f − Y), so ceil(n / b) steps per epoch give
    τ = Σ_epochs 2 η_e ceil(n / b) / (n C) (= 2 η epochs / (b C) when b divides n). Heavy-ball momentum β
    multiplies the step by 1 / (1 − β) once its velocity settles. `epoch_factors` are the lr multipliers
    of each epoch (lr_milestones); docs/math.md §17 derives it.
    """
    if not (lr > 0 and epochs >= 0 and batch_size >= 1 and n >= 1 and n_classes >= 1 and 0 <= momentum < 1):
        raise LoodInputError(
            f"gd_time needs lr > 0, epochs >= 0, batch_size >= 1, n >= 1, 0 <= momentum < 1; got {lr}, {epochs}, "
            f"{batch_size}, {n}, {momentum}"
        )
    factors = np.ones(int(epochs)) if epoch_factors is None else np.asarray(epoch_factors, dtype=np.float64)
    steps = math.ceil(n / batch_size)
    return float(2.0 * lr * steps * factors.sum() / (n * n_classes * (1.0 - momentum)))


def _flow_operator(theta_FF: np.ndarray, tau: float) -> np.ndarray:
    """Θ_FF⁻¹ (I − e^{−τ Θ_FF}) (n x n), by Θ_FF's eigendecomposition; τ = inf gives the pseudo-inverse."""
    lam, U = np.linalg.eigh((theta_FF + theta_FF.T) / 2)
    lam = np.maximum(lam, 0.0)
    if np.isinf(tau):
        tol = np.finfo(np.float64).eps * len(lam) * max(float(lam.max()), 1e-300)
        g = np.where(lam > tol, 1.0 / np.where(lam > tol, lam, 1.0), 0.0)
    else:
        x = tau * lam
        g = np.where(x > 1e-12, -np.expm1(-x) / np.where(lam > 0, lam, 1.0), tau * (1.0 - x / 2))
    return (U * g) @ U.T


def ensemble_posterior(
    theta_QF: np.ndarray,
    theta_FF: np.ndarray,
    K_QF: np.ndarray,
    K_FF: np.ndarray,
    K_QQ: np.ndarray,
    Y: np.ndarray,
    tau: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (q, C) and covariance (q, q) of the infinite ensemble's outputs at Q after training time τ.

    K_QQ may be the full (q, q) prior covariance or its diagonal (q,); the covariance returned has the same form.
    """
    if not tau >= 0:
        raise LoodInputError(f"training time tau must be >= 0, got {tau}")
    theta_QF, K_QF = np.atleast_2d(theta_QF), np.atleast_2d(K_QF)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(theta_FF), -1)
    A = theta_QF @ _flow_operator(np.asarray(theta_FF, dtype=np.float64), tau)
    mean = A @ Y
    K_QQ = np.asarray(K_QQ, dtype=np.float64)
    if K_QQ.ndim == 1:
        var = K_QQ + np.einsum("qi,qi->q", A @ K_FF, A) - 2 * np.einsum("qi,qi->q", A, K_QF)
        return mean, np.maximum(var, 0.0)
    AK = A @ K_QF.T
    cov = K_QQ + A @ K_FF @ A.T - AK - AK.T
    return mean, (cov + cov.T) / 2


def ensemble_loo(
    theta: np.ndarray, K: np.ndarray, Y: np.ndarray, records: Sequence[int], tau: float
) -> dict[str, np.ndarray]:
    """At Q = {x_z} for each record z: the ensemble trained on F and on F \\ {z} (means (R, C), variances (R,)).

    theta, K: NTK and NNGP on the n training records; one eigendecomposition of Θ_FF for F, one of
    Θ_DD per record for D (O(R n³)).
    """
    n = len(K)
    records = np.asarray(records, dtype=np.int64)
    Y = np.asarray(Y, dtype=np.float64)
    G = _flow_operator(theta, tau)
    A = theta[records] @ G
    mean_F = A @ Y
    var_F = np.diag(K)[records] + np.einsum("qi,qi->q", A @ K, A) - 2 * np.einsum("qi,qi->q", A, K[records])
    mean_D, var_D = np.empty_like(mean_F), np.empty(len(records))
    for j, z in enumerate(records):
        keep = np.arange(n) != z
        m, v = ensemble_posterior(
            theta[z, keep], theta[np.ix_(keep, keep)], K[z, keep], K[np.ix_(keep, keep)], K[[z], [z]], Y[keep], tau
        )
        mean_D[j], var_D[j] = m[0], v[0]
    return {"mean_F": mean_F, "var_F": np.maximum(var_F, 0.0), "mean_D": mean_D, "var_D": var_D}


def ensemble_variances(
    theta_QF: np.ndarray, theta_FF: np.ndarray, K_QF: np.ndarray, K_FF: np.ndarray, K_QQ_diag: np.ndarray, tau: float
) -> np.ndarray:
    """The ensemble's predictive variances at the rows of Q (training or held-out records)."""
    C1 = np.zeros((len(theta_FF), 1))
    return ensemble_posterior(theta_QF, theta_FF, K_QF, K_FF, K_QQ_diag, C1, tau)[1]


def logit_variance(logits: np.ndarray) -> np.ndarray:
    """The in-models' across-seed variance of their logits per record, mean over the C outputs: (M, q, C) → (q,)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 3 or len(logits) < 2:
        raise LoodInputError(f"logits must be (models >= 2, records, outputs), got {logits.shape}")
    return logits.var(axis=0, ddof=1).mean(axis=1)


def spread_scale(model_var: np.ndarray, network_var: np.ndarray) -> dict[str, float]:
    """The output scale c with Σ c v_model = Σ v_network (moments matched over the records given), and the fit.

    Scaling K (and σ², or the ensemble's prior) by c leaves the mean unchanged and multiplies every
    covariance by c (docs/math.md); `log_ratio_sd` is the spread of log(v_network / (c v_model)) over records.
    """
    mv, nv = np.asarray(model_var, dtype=np.float64), np.asarray(network_var, dtype=np.float64)
    if mv.shape != nv.shape or mv.size == 0 or not (np.all(mv >= 0) and np.all(nv >= 0)) or mv.sum() <= 0:
        raise LoodInputError(
            f"spread_scale needs matching non-negative variances with a positive sum; got {mv.shape}, {nv.shape}"
        )
    c = float(nv.sum() / mv.sum())
    ok = (mv > 0) & (nv > 0)
    log_ratio = np.log(nv[ok] / (c * mv[ok]))
    return {
        "scale": c,
        "records": int(mv.size),
        "model_var_mean": float(mv.mean()),
        "network_var_mean": float(nv.mean()),
        "log_ratio_sd": float(log_ratio.std()) if ok.any() else float("nan"),
        "correlation": float(np.corrcoef(mv, nv)[0, 1]) if mv.size > 2 else float("nan"),
    }
