"""One eigendecomposition of the kernel, K_FF = V diag(λ) Vᵀ, and the GP fit it gives at any σ² (docs/math.md §12).

α(σ²) = V (Λ + σ²)⁻¹ Vᵀ Y, μ_F = Y − σ²α = V Λ(Λ + σ²)⁻¹ Vᵀ Y and P_ii = Σ_j V_ij² / (λ_j + σ²), each
O(n²) or less per σ²: what lood.analytic.sigma2's grids and lood.studies.depth_nngp's sweep evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lood.errors import LoodInputError


@dataclass(frozen=True)
class KernelEigen:
    """K_FF = V diag(lam) Vᵀ with the targets in the eigenbasis, VtY = Vᵀ Y."""

    lam: np.ndarray
    V: np.ndarray
    Y: np.ndarray
    VtY: np.ndarray

    @property
    def n(self) -> int:
        """Number of training records."""
        return len(self.lam)


@dataclass(frozen=True)
class SpectralFit:
    """What the closed form at Q = {z} (lood.analytic.divergence.lood_at_records) reads from a GP fit, at one σ²."""

    Y: np.ndarray
    alpha: np.ndarray
    p_diag: np.ndarray
    sigma2: float

    @property
    def n(self) -> int:
        """Number of training records."""
        return len(self.p_diag)

    @property
    def noise(self) -> float:
        """The σ² of every formula (no jitter: the grid's σ² > 0)."""
        return self.sigma2

    def p_diag_at(self, idx: np.ndarray) -> np.ndarray:
        """P_ii for the given records."""
        return self.p_diag[np.asarray(idx, dtype=np.int64)]


def eigen(K_FF: np.ndarray, Y: np.ndarray) -> KernelEigen:
    """Eigendecomposition of the kernel (float64; eigenvalues below 0 from round-off set to 0)."""
    K_FF = np.asarray(K_FF, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    n = len(K_FF)
    if K_FF.shape != (n, n) or len(Y) != n:
        raise LoodInputError(f"K_FF must be n x n and Y n x C; got {K_FF.shape} and {Y.shape}")
    if not np.all(np.isfinite(K_FF)):
        raise LoodInputError("the kernel matrix has non-finite entries (check X for NaN/inf)")
    lam, V = np.linalg.eigh((K_FF + K_FF.T) / 2)
    return KernelEigen(lam=np.maximum(lam, 0.0), V=V, Y=Y, VtY=V.T @ Y)


def check_sigma2(sigma2: np.ndarray) -> np.ndarray:
    """σ² as a 1-d float64 array, every value > 0."""
    sigma2 = np.atleast_1d(np.asarray(sigma2, dtype=np.float64))
    if not np.all(sigma2 > 0):
        raise LoodInputError(f"every sigma2 of the grid must be > 0, got {sigma2.min()}")
    return sigma2


def spectral_fit(eig: KernelEigen, sigma2: float) -> SpectralFit:
    """α = V (Λ + σ²)⁻¹ Vᵀ Y and P_ii = Σ_j V_ij² / (λ_j + σ²): O(n²) for one σ²."""
    s2 = float(check_sigma2(sigma2)[0])
    inv = 1.0 / (eig.lam + s2)
    return SpectralFit(Y=eig.Y, alpha=eig.V @ (inv[:, None] * eig.VtY), p_diag=(eig.V**2) @ inv, sigma2=s2)


def train_means(eig: KernelEigen, sigma2: float) -> np.ndarray:
    """μ_F at the training inputs, Y − σ²α = V Λ(Λ + σ²)⁻¹ Vᵀ Y (n x C; docs/math.md §4, §12)."""
    s2 = float(check_sigma2(sigma2)[0])
    return eig.V @ ((eig.lam / (eig.lam + s2))[:, None] * eig.VtY)
