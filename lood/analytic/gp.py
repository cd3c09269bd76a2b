"""The GP fit: one factorisation of K_FF + σ²I, the posterior, and leave-one-out by a rank-one update.

Formulas: docs/math.md §1-§3. GP algebra is float64 throughout (NumPy/SciPy LAPACK).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from lood.errors import LoodInputError

# Jitter policy of `fit_gp`: on a failed Cholesky, retry with JITTER_STEPS[k] * mean(diag K) added.
JITTER_STEPS = tuple(10.0**e for e in range(-12, -2))  # 1e-12 ... 1e-3, growing x10


def targets(y: np.ndarray, n_classes: int | None) -> np.ndarray:
    """Centred one-hot targets e_y - 1/C (docs/math.md §1); C = max(y) + 1 (at least 2) when n_classes is None."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise LoodInputError("labels must be a 1-D array of non-negative integers")
    C = int(n_classes) if n_classes is not None else max(int(y.max()) + 1, 2)
    if len(y) and y.max() >= C:
        raise LoodInputError(f"label {int(y.max())} out of range for {C} classes")
    return np.eye(C)[y] - 1.0 / C


class FitNoise:
    """What every fit of K_FF + σ²I shares: targets Y (n, C), the requested σ² and the jitter added to it."""

    Y: np.ndarray
    sigma2: float
    jitter: float

    @property
    def n(self) -> int:
        """Number of training records."""
        return len(self.Y)

    @property
    def noise(self) -> float:
        """The effective σ² (requested σ² plus jitter)."""
        return self.sigma2 + self.jitter


@dataclass
class GPFit(FitNoise):
    """One factorisation of K_FF + (σ² + jitter) I, and what every posterior needs from it.

    chol: lower Cholesky factor L; alpha: α = P Y with P = (K_FF + (σ² + jitter) I)⁻¹.
    `noise` = σ² + jitter is the σ² of every formula (jitter is 0 unless Cholesky needed it).
    """

    chol: np.ndarray
    alpha: np.ndarray
    Y: np.ndarray
    sigma2: float
    jitter: float
    _p_diag: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def p_diag(self) -> np.ndarray:
        """All P_ii, as squared column norms of L⁻¹ (P = L⁻ᵀ L⁻¹): one triangular inverse, n³/3 flops; cached."""
        if self._p_diag is None:
            W, info = scipy.linalg.lapack.dtrtri(self.chol, lower=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"triangular inverse failed (info={info})")
            self._p_diag = np.einsum("ij,ij->j", W, W)
        return self._p_diag

    def p_columns(self, idx: np.ndarray) -> np.ndarray:
        """Columns P[:, idx] (n x len(idx)) by two triangular solves each."""
        E = np.zeros((self.n, len(idx)))
        E[np.asarray(idx), np.arange(len(idx))] = 1.0
        return scipy.linalg.cho_solve((self.chol, True), E)

    def p_diag_at(self, idx: np.ndarray) -> np.ndarray:
        """P_ii for the given records: from columns when few (2 n² each), else from the full diagonal."""
        idx = np.asarray(idx, dtype=np.int64)
        if self._p_diag is None and 6 * len(idx) < self.n:
            return self.p_columns(idx)[idx, np.arange(len(idx))]
        return self.p_diag[idx]


def fit_gp(K_FF: np.ndarray, Y: np.ndarray, sigma2: float) -> GPFit:
    """Factorise K_FF + σ²I once (Cholesky, float64) for targets Y (n x C).

    Jitter policy: if the Cholesky fails (or σ² = 0, where the noise-free posterior is
    degenerate at the training points and KL-LOOD there is infinite), retry with
    jitter = eps * mean(diag K_FF) added to the diagonal, eps = 1e-12, 1e-11, ..., 1e-3;
    the jitter used is recorded in the fit and enters every formula as part of σ².
    Beyond 1e-3 the kernel is not a usable covariance: LoodInputError.
    """
    K_FF = np.asarray(K_FF, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    n = len(K_FF)
    if K_FF.shape != (n, n) or len(Y) != n:
        raise LoodInputError(f"K_FF must be n x n and Y n x C; got {K_FF.shape} and {Y.shape}")
    sigma2 = float(sigma2)
    if not sigma2 >= 0:
        raise LoodInputError(f"sigma2 must be >= 0, got {sigma2}")
    if not np.all(np.isfinite(K_FF)):
        raise LoodInputError("the kernel matrix has non-finite entries (check X for NaN/inf)")
    scale = float(np.mean(np.diag(K_FF))) or 1.0
    for jitter in ((0.0,) if sigma2 > 0 else ()) + tuple(e * scale for e in JITTER_STEPS):
        A = np.array(K_FF, order="F")  # LAPACK works in place on a Fortran-ordered copy
        A[np.diag_indices(n)] += sigma2 + jitter
        L, info = scipy.linalg.lapack.dpotrf(A, lower=1, clean=1, overwrite_a=1)
        if info == 0:
            alpha = scipy.linalg.cho_solve((L, True), Y)
            return GPFit(chol=L, alpha=alpha, Y=Y, sigma2=sigma2, jitter=jitter)
    raise not_positive_definite(sigma2)


def not_positive_definite(sigma2: float) -> LoodInputError:
    """The error of every factorisation of K_FF + σ²I that failed at the last jitter step."""
    return LoodInputError(
        f"K_FF + sigma2 I is not positive definite even with jitter {JITTER_STEPS[-1]:g} x mean(diag K) added "
        f"(sigma2={sigma2}); raise the sigma2 (nngp.sigma2, audit.sigma2) or check the data for degenerate records"
    )


def posterior(fit: GPFit, K_QF: np.ndarray, K_QQ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GP posterior of F at queries Q: mean (q, C) and covariance (q, q), shared by the C outputs."""
    K_QF = np.atleast_2d(np.asarray(K_QF, dtype=np.float64))
    V = scipy.linalg.solve_triangular(fit.chol, K_QF.T, lower=True)
    cov = np.asarray(K_QQ, dtype=np.float64) - V.T @ V
    return K_QF @ fit.alpha, (cov + cov.T) / 2


def loo_posteriors(fit: GPFit, i: int, K_QF: np.ndarray, K_QQ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GP posterior at Q of F minus record i, from F's factorisation (docs/math.md §3)."""
    mean_F, cov_F = posterior(fit, K_QF, K_QQ)
    p = fit.p_columns(np.array([i]))[:, 0]
    u = np.atleast_2d(K_QF) @ p
    return mean_F - np.outer(u, fit.alpha[i]) / p[i], cov_F + np.outer(u, u) / p[i]
