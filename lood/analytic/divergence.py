"""Divergences between the GP posteriors with and without a record: KL LOOD, mean-distance LOOD, NNGP AUC.

Formulas: docs/math.md §4 (closed form at Q = {z}), §5 (KL, mean distance), §6 (NNGP AUC).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.stats import rankdata

from lood import seeds
from lood.analytic.gp import GPFit
from lood.errors import LoodInputError
from lood.records import check_records

# Below this |x|, x - log1p(x) is evaluated by its Taylor series (the difference cancels).
_SERIES_BELOW = 1e-3
_TINY = np.finfo(np.float64).tiny


def x_minus_log1p(x: np.ndarray, xp=np) -> np.ndarray:
    """x - log(1 + x) >= 0 for x > -1, without cancellation near 0.

    xp: numpy, or jax.numpy for query optimisation (differentiable: log1p never sees the series' inputs).
    """
    if xp is np:
        x = np.asarray(x, dtype=np.float64)
    small = xp.abs(x) < _SERIES_BELOW
    xs = xp.where(small, x, 0.0)
    xl = xp.where(small, 1.0, x)
    series = xs**2 * (1 / 2 - xs * (1 / 3 - xs * (1 / 4 - xs * (1 / 5 - xs / 6))))
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = xl - xp.log1p(xl)
    return xp.where(small, series, direct)


def _lam_term(lam: np.ndarray) -> np.ndarray:
    """λ - 1 - log λ >= 0 for λ > 0, without cancellation near λ = 1."""
    lam = np.asarray(lam, dtype=np.float64)
    near = np.abs(lam - 1.0) < _SERIES_BELOW
    far = np.where(near, 2.0, lam)
    return np.where(near, x_minus_log1p(np.where(near, lam - 1.0, 0.0)), far - 1.0 - np.log(far))


def kl_lood(mean_D: np.ndarray, cov_D: np.ndarray, mean_F: np.ndarray, cov_F: np.ndarray) -> float:
    """KL(N(μ_D, Σ_D) ‖ N(μ_F, Σ_F)) summed over the C outputs (docs/math.md §5); never NaN or negative.

    Whitening by Σ_F (W Σ_F Wᵀ = I) and λ the eigenvalues of W Σ_D Wᵀ:
    KL = C/2 Σ (λ - 1 - log λ) + ½ ‖W(μ_D - μ_F)‖², every term >= 0, so round-off cannot make
    it negative. W = L⁻¹ (Cholesky) when Σ_F is numerically positive definite; otherwise
    W = Λ^-½ Uᵀ with eigenvalues raised to the numerical-rank tolerance eps q max|λ|, so a
    singular Σ_F gives a large finite KL (the exact value is infinite).
    """
    cov_F = np.atleast_2d(np.asarray(cov_F, dtype=np.float64))
    cov_D = np.atleast_2d(np.asarray(cov_D, dtype=np.float64))
    q = len(cov_F)
    mean_D = np.asarray(mean_D, dtype=np.float64).reshape(q, -1)
    mean_F = np.asarray(mean_F, dtype=np.float64).reshape(mean_D.shape)
    L, info = scipy.linalg.lapack.dpotrf((cov_F + cov_F.T) / 2, lower=1, clean=1)
    if info == 0:
        M = scipy.linalg.solve_triangular(L, scipy.linalg.solve_triangular(L, cov_D, lower=True).T, lower=True)
        delta = scipy.linalg.solve_triangular(L, mean_D - mean_F, lower=True)
    else:
        lam_F, U = np.linalg.eigh((cov_F + cov_F.T) / 2)
        W = U / np.sqrt(np.maximum(lam_F, np.finfo(np.float64).eps * q * max(np.max(np.abs(lam_F)), _TINY)))
        M, delta = W.T @ cov_D @ W, W.T @ (mean_D - mean_F)
    lam = np.maximum(np.linalg.eigvalsh((M + M.T) / 2), _TINY)
    kl = mean_D.shape[1] / 2 * float(np.sum(_lam_term(lam))) + 0.5 * float(np.sum(delta**2))
    return max(kl, 0.0)


def mse_lood(mean_D: np.ndarray, mean_F: np.ndarray) -> float:
    """Mean-distance LOOD: ½ mean over Q x C of (μ_D - μ_F)² (docs/math.md §5)."""
    return 0.5 * float(np.mean((np.asarray(mean_D, dtype=np.float64) - np.asarray(mean_F, dtype=np.float64)) ** 2))


def kl_rank_one(s: np.ndarray, alpha_sq: np.ndarray, p_ii: np.ndarray, C: int) -> np.ndarray:
    """KL for Σ_D = Σ_F + u uᵀ/P_ii, μ_D = μ_F - u α_iᵀ/P_ii, with s = uᵀ Σ_F⁻¹ u / P_ii.

    KL = C/2 (s - log(1 + s)) + ‖α_i‖² s / (2 P_ii): both terms >= 0 for s >= 0 (docs/math.md §5).
    """
    s = np.maximum(s, 0.0)
    return C / 2 * x_minus_log1p(s) + alpha_sq * s / (2 * p_ii)


def single_query_lood(
    fit: GPFit, records: np.ndarray, p_ii: np.ndarray, u: np.ndarray, s: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(kl, mse) at one query per entry, from u = K_qF P[:, i] and s = u² / (P_ii Σ_F(q))."""
    a = fit.alpha[records]
    kl = kl_rank_one(s, np.sum(a**2, axis=-1), p_ii, fit.alpha.shape[1])
    mse = 0.5 * np.mean((u[..., None] * a / p_ii[..., None]) ** 2, axis=-1)
    return kl, mse


def posterior_var_floor(k_qq: np.ndarray) -> np.ndarray:
    """Smallest resolvable posterior variance (NumPy or JAX): K_qq - ‖L⁻¹ k‖² cancels to ~eps K_qq (keeps s finite)."""
    return np.finfo(np.float64).eps * k_qq + _TINY


def lood_at_records(fit: GPFit, K_diag: np.ndarray, records: np.ndarray) -> dict[str, np.ndarray]:
    """KL- and mean-distance LOOD at Q = {x_i} for many records at once, O(1) each after P_ii.

    With σ² the effective noise: u = 1 - σ² P_ii, μ_F = y_i - σ² α_i, Σ_F = σ² u, hence
    s = u / (σ² P_ii) (docs/math.md §4). u lies in [0, 1) for a PSD kernel and is clipped there
    against round-off; K_diag (the prior variances K_ii) bounds Σ_F from above likewise.
    Returns arrays kl, mse (R,), mean_F, mean_D (R, C), var_F, var_D (R,).
    """
    records = check_records(records, fit.n)
    s2 = fit.noise
    p_ii = fit.p_diag_at(records)
    u = np.clip(1.0 - s2 * p_ii, 0.0, 1.0)
    var_F = np.clip(s2 * u, _TINY, np.asarray(K_diag, dtype=np.float64)[records])
    mean_F = fit.Y[records] - s2 * fit.alpha[records]
    kl, mse = single_query_lood(fit, records, p_ii, u, u / (s2 * p_ii))
    return {
        "kl": kl,
        "mse": mse,
        "mean_F": mean_F,
        "var_F": var_F,
        "mean_D": mean_F - u[:, None] * fit.alpha[records] / p_ii[:, None],
        "var_D": var_F + u**2 / p_ii,
    }


def nngp_auc(
    mean_D: np.ndarray, var_D: float, mean_F: np.ndarray, var_F: float, n_samples: int, seed: int
) -> tuple[float, float]:
    """AUC of the likelihood-ratio test of "in" = N(μ_F, var_F I) vs "out" = N(μ_D, var_D I) (docs/math.md §6).

    Seeded Monte Carlo with n_samples per side; the standard error is DeLong's
    (placement values), exact in the limit of many samples. Ties count one half.
    """
    mean_D, mean_F = (
        np.atleast_1d(np.asarray(mean_D, dtype=np.float64)),
        np.atleast_1d(np.asarray(mean_F, dtype=np.float64)),
    )
    var_D, var_F = float(var_D), float(var_F)
    if not (var_D > 0 and var_F > 0) or int(n_samples) < 2:
        raise LoodInputError(f"nngp_auc needs positive variances and n_samples >= 2; got {var_D}, {var_F}, {n_samples}")
    m, C = int(n_samples), len(mean_F)
    rng = np.random.default_rng(seed)
    x_in = mean_F + np.sqrt(var_F) * rng.standard_normal((m, C))
    x_out = mean_D + np.sqrt(var_D) * rng.standard_normal((m, C))

    def score(x: np.ndarray) -> np.ndarray:
        # log N(x; μ_F, var_F) - log N(x; μ_D, var_D), up to a constant.
        return np.sum((x - mean_D) ** 2, axis=1) / (2 * var_D) - np.sum((x - mean_F) ** 2, axis=1) / (2 * var_F)

    s_in, s_out = score(x_in), score(x_out)
    ranks = rankdata(np.concatenate([s_in, s_out]))
    v_in = (ranks[:m] - rankdata(s_in)) / m  # fraction of out-scores below each in-score
    v_out = 1.0 - (ranks[m:] - rankdata(s_out)) / m  # fraction of in-scores above each out-score
    auc = float(np.mean(v_in))
    se = float(np.sqrt(np.var(v_in, ddof=1) / m + np.var(v_out, ddof=1) / m))
    return auc, se


def nngp_aucs(
    res: dict[str, np.ndarray], records: np.ndarray, auc_samples: int, base_seed: int, rows: np.ndarray | None = None
) -> np.ndarray:
    """(R, 2): ``nngp_auc`` and its standard error of each of `records`, from row rows[j] (default j) of `res`.

    `res` is what ``lood_at_records`` returns; record r's Monte Carlo seed is int_seed(base, 'nngp_auc', r),
    the same in every table that reports an NNGP AUC (lood.csv, the σ² grid, the depth sweep).
    """
    rows = np.arange(len(records)) if rows is None else rows
    return np.array(
        [
            nngp_auc(
                res["mean_D"][j],
                res["var_D"][j],
                res["mean_F"][j],
                res["var_F"][j],
                auc_samples,
                seeds.int_seed(base_seed, "nngp_auc", int(r)),
            )
            for j, r in zip(rows, records, strict=True)
        ]
    ).reshape(-1, 2)
