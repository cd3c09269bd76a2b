"""The analytic side: NNGP kernel, GP posteriors on F and F minus one record, KL/mean-distance LOOD, NNGP AUC.

Everything follows design.md section 4. One Cholesky factorisation of K_FF + σ²I serves
every record: removing record i is a rank-one update of the posterior (`loo_posteriors`),
and at Q = {x_i} it costs O(1) per record (`lood_at_records`). GP algebra is float64
throughout (NumPy/SciPy LAPACK); kernels and their gradients are JAX (neural-tangents),
on a GPU when JAX sees one.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
import types
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Mapping

# neural_tangents/__init__ imports neural_tangents.experimental, which imports TensorFlow
# (1.9 GB installed, +3.5 s per import). We never use it, so a stub stands in for it.
sys.modules.setdefault("neural_tangents.experimental", types.ModuleType("neural_tangents.experimental"))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
# JAX logs at INFO each accelerator backend it probes and does not find (rocm, tpu): noise in job logs.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.linalg  # noqa: E402

with warnings.catch_warnings():  # neural-tangents 0.6.5 imports names that jax 0.5 deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from neural_tangents import stax  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

from lood import seeds  # noqa: E402
from lood.errors import LoodInputError  # noqa: E402

ACTIVATIONS: dict[str, Callable[[], tuple]] = {"relu": stax.Relu, "gelu": stax.Gelu, "erf": stax.Erf}

# Jitter policy of `fit_gp`: on a failed Cholesky, retry with JITTER_STEPS[k] * mean(diag K) added.
JITTER_STEPS = tuple(10.0**e for e in range(-12, -2))  # 1e-12 ... 1e-3, growing x10
# Below this |x|, x - log1p(x) is evaluated by its Taylor series (the difference cancels).
_SERIES_BELOW = 1e-3
_TINY = np.finfo(np.float64).tiny


# ----------------------------------------------------------------------------- kernel


def _arch_key(arch: Mapping) -> tuple[int, str, bool, float, float]:
    """Validate an architecture dict; return the hashable (depth, activation, bias, w_std, b_std)."""
    missing = [k for k in ("depth", "activation", "bias", "w_std") if k not in arch]
    if missing:
        raise LoodInputError(f"architecture lacks {missing}; it needs depth, activation, bias, w_std (and b_std if bias)")
    act = arch["activation"]
    if act not in ACTIVATIONS:
        raise LoodInputError(f"activation {act!r} has no NNGP kernel here; allowed: {sorted(ACTIVATIONS)}")
    depth, bias, w_std = int(arch["depth"]), bool(arch["bias"]), float(arch["w_std"])
    b_std = float(arch.get("b_std", 0.0)) if bias else 0.0
    if depth < 0 or w_std <= 0 or b_std < 0:
        raise LoodInputError(f"architecture needs depth >= 0, w_std > 0, b_std >= 0; got depth={depth}, w_std={w_std}, b_std={b_std}")
    return depth, act, bias, w_std, b_std


@functools.lru_cache(maxsize=None)
def _kernel_fn(key: tuple) -> Callable:
    depth, act, bias, w_std, b_std = key
    b = b_std if bias else None
    layers = []  # layer widths do not enter the infinite-width kernel
    for _ in range(depth):
        layers += [stax.Dense(1, W_std=w_std, b_std=b), ACTIVATIONS[act]()]
    _, _, fn = stax.serial(*layers, stax.Dense(1, W_std=w_std, b_std=b))
    return fn


def kernel_fn(arch: Mapping) -> Callable:
    """The neural-tangents stax kernel function of `arch` (depth x [Dense, activation] + Dense)."""
    return _kernel_fn(_arch_key(arch))


@functools.lru_cache(maxsize=None)
def _tile_fn(key: tuple, d: int) -> Callable:
    """Jitted (Gram tile, squared norms) -> (NNGP tile, diag K(X1, X1)), for inputs of dimension d.

    The Gram matrix is computed by the caller with BLAS (faster than XLA's float64 matmul
    on CPU, and symmetric when X2 is None); stax then applies the layers to the input Kernel.
    """
    fn = _kernel_fn(key)
    _, _, identity = stax.Identity()

    def tile(gram, sq1, sq2):
        template = identity(jnp.zeros((1, d)), jnp.zeros((1, d)))
        k = template.replace(
            ntk=None, x1_is_x2=False, nngp=gram / d, cov1=sq1 / d, cov2=sq2 / d,
            shape1=(gram.shape[0], d), shape2=(gram.shape[1], d),
        )
        out = fn(k, get=("nngp", "cov1"))
        return out.nngp, out.cov1

    return jax.jit(tile)


def _as_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return np.ascontiguousarray(X.reshape(len(X), -1))


def _n_workers() -> int:
    """Tiles evaluated concurrently: one per CPU core on CPU (XLA runs each tile on one thread)."""
    if jax.default_backend() != "cpu":
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _kernel_and_diag(X1: np.ndarray, X2: np.ndarray | None, key: tuple, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """K(X1, X2) in tiles (lower tiles only when X2 is None), and diag K(X1, X1)."""
    if int(block_size) < 1:
        raise LoodInputError(f"block_size must be a positive integer, got {block_size}")
    X1 = _as_rows(X1)
    sym = X2 is None
    X2 = X1 if sym else _as_rows(X2)
    if X1.shape[1] != X2.shape[1]:
        raise LoodInputError(f"inputs have {X1.shape[1]} and {X2.shape[1]} features")
    n1, n2, d = len(X1), len(X2), X1.shape[1]
    sq1, sq2 = np.einsum("ij,ij->i", X1, X1), np.einsum("ij,ij->i", X2, X2)
    K = X1 @ X2.T  # the Gram matrix (numpy uses syrk when X2 is X1); tiles overwrite it in place
    diag = np.empty(n1)
    b1, b2 = min(int(block_size), n1), min(int(block_size), n2)
    tile = _tile_fn(key, d)

    def pad(a: np.ndarray, shape: tuple, fill: float) -> np.ndarray:
        # Partial tiles are padded to the full tile shape so that one compilation serves all.
        if a.shape == shape:
            return a
        out = np.full(shape, fill)
        out[tuple(slice(0, s) for s in a.shape)] = a
        return out

    def run(i0: int, j0: int) -> None:
        i1, j1 = min(i0 + b1, n1), min(j0 + b2, n2)
        g = pad(K[i0:i1, j0:j1], (b1, b2), 0.0)
        nngp, cov1 = tile(g, pad(sq1[i0:i1], (b1,), 1.0), pad(sq2[j0:j1], (b2,), 1.0))
        block = np.asarray(nngp)[: i1 - i0, : j1 - j0]
        # XLA's vectorised and scalar code paths may round differently: make diagonal tiles exactly symmetric.
        K[i0:i1, j0:j1] = (block + block.T) / 2 if sym and i0 == j0 else block
        if j0 == 0:
            diag[i0:i1] = np.asarray(cov1)[: i1 - i0]

    jobs = [(i0, j0) for i0 in range(0, n1, b1) for j0 in range(0, n2, b2) if not (sym and j0 > i0)]
    with ThreadPoolExecutor(_n_workers()) as pool:
        list(pool.map(lambda ij: run(*ij), jobs))
    if sym:
        for i0 in range(0, n1, b1):
            for j0 in range(i0 + b1, n1, b1):
                K[i0 : i0 + b1, j0 : j0 + b1] = K[j0 : j0 + b1, i0 : i0 + b1].T
    return K, diag


def nngp_kernel(X1: np.ndarray, X2: np.ndarray | None, arch: Mapping, block_size: int = 2048) -> np.ndarray:
    """The NNGP kernel K(X1, X2) (float64, n1 x n2), in tiles; X2 None means K(X1, X1)."""
    return _kernel_and_diag(X1, X2, _arch_key(arch), block_size)[0]


def nngp_diag(X: np.ndarray, arch: Mapping, block_size: int = 2048) -> np.ndarray:
    """The prior variances K(x, x) of the rows of X, in O(n d)."""
    X = _as_rows(X)
    return _kernel_and_diag(X, X[:1], _arch_key(arch), block_size)[1]


# ----------------------------------------------------------------------------- GP fit


def targets(y: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    """Centred one-hot targets e_y - 1/C (C outputs; +-1/2 for two classes); C = max(y) + 1 by default."""
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise LoodInputError("labels must be a 1-D array of non-negative integers")
    C = int(n_classes) if n_classes is not None else max(int(y.max()) + 1, 2)
    if len(y) and y.max() >= C:
        raise LoodInputError(f"label {int(y.max())} out of range for {C} classes")
    return np.eye(C)[y] - 1.0 / C


@dataclass
class GPFit:
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
    def n(self) -> int:
        """Number of training records."""
        return len(self.chol)

    @property
    def noise(self) -> float:
        """The effective σ² (requested σ² plus jitter)."""
        return self.sigma2 + self.jitter

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
    raise LoodInputError(
        f"K_FF + sigma2 I is not positive definite even with jitter {JITTER_STEPS[-1]:g} x mean(diag K) added "
        f"(sigma2={sigma2}); raise nngp.sigma2 or check the data for degenerate records"
    )


def posterior(fit: GPFit, K_QF: np.ndarray, K_QQ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GP posterior of F at queries Q: mean (q, C) and covariance (q, q), shared by the C outputs."""
    K_QF = np.atleast_2d(np.asarray(K_QF, dtype=np.float64))
    V = scipy.linalg.solve_triangular(fit.chol, K_QF.T, lower=True)
    cov = np.asarray(K_QQ, dtype=np.float64) - V.T @ V
    return K_QF @ fit.alpha, (cov + cov.T) / 2


def loo_posteriors(fit: GPFit, i: int, K_QF: np.ndarray, K_QQ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GP posterior at Q of F minus record i, from F's factorisation (design.md §4 rank-one update)."""
    mean_F, cov_F = posterior(fit, K_QF, K_QQ)
    p = fit.p_columns(np.array([i]))[:, 0]
    u = np.atleast_2d(K_QF) @ p
    return mean_F - np.outer(u, fit.alpha[i]) / p[i], cov_F + np.outer(u, u) / p[i]


# ----------------------------------------------------------------------------- divergences


def _x_minus_log1p(x: np.ndarray) -> np.ndarray:
    """x - log(1 + x) >= 0 for x > -1, without cancellation near 0."""
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < _SERIES_BELOW
    xs = np.where(small, x, 0.0)
    series = xs**2 * (1 / 2 - xs * (1 / 3 - xs * (1 / 4 - xs * (1 / 5 - xs / 6))))
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = x - np.log1p(np.where(small, 0.0, x))
    return np.where(small, series, direct)


def _jnp_x_minus_log1p(x: jnp.ndarray) -> jnp.ndarray:
    small = jnp.abs(x) < _SERIES_BELOW
    xs = jnp.where(small, x, 0.0)
    xl = jnp.where(small, 1.0, x)
    series = xs**2 * (1 / 2 - xs * (1 / 3 - xs * (1 / 4 - xs * (1 / 5 - xs / 6))))
    return jnp.where(small, series, xl - jnp.log1p(xl))


def _lam_term(lam: np.ndarray) -> np.ndarray:
    """λ - 1 - log λ >= 0 for λ > 0, without cancellation near λ = 1."""
    lam = np.asarray(lam, dtype=np.float64)
    near = np.abs(lam - 1.0) < _SERIES_BELOW
    far = np.where(near, 2.0, lam)
    return np.where(near, _x_minus_log1p(np.where(near, lam - 1.0, 0.0)), far - 1.0 - np.log(far))


def kl_lood(mean_D: np.ndarray, cov_D: np.ndarray, mean_F: np.ndarray, cov_F: np.ndarray) -> float:
    """KL(N(μ_D, Σ_D) ‖ N(μ_F, Σ_F)) summed over the C outputs (columns of the means); never NaN or negative.

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
    """Mean-distance LOOD: ½ mean over Q x C of (μ_D - μ_F)²."""
    return 0.5 * float(np.mean((np.asarray(mean_D, dtype=np.float64) - np.asarray(mean_F, dtype=np.float64)) ** 2))


def _kl_rank_one(s: np.ndarray, alpha_sq: np.ndarray, p_ii: np.ndarray, C: int) -> np.ndarray:
    """KL for Σ_D = Σ_F + u uᵀ/P_ii, μ_D = μ_F - u α_iᵀ/P_ii, with s = uᵀ Σ_F⁻¹ u / P_ii.

    KL = C/2 (s - log(1 + s)) + ‖α_i‖² s / (2 P_ii): both terms >= 0 for s >= 0.
    """
    s = np.maximum(s, 0.0)
    return C / 2 * _x_minus_log1p(s) + alpha_sq * s / (2 * p_ii)


def _single_query_lood(fit: GPFit, records: np.ndarray, p_ii: np.ndarray, u: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kl, mse) at one query per entry, from u = K_qF P[:, i] and s = u² / (P_ii Σ_F(q))."""
    a = fit.alpha[records]
    kl = _kl_rank_one(s, np.sum(a**2, axis=-1), p_ii, fit.alpha.shape[1])
    mse = 0.5 * np.mean((u[..., None] * a / p_ii[..., None]) ** 2, axis=-1)
    return kl, mse


def _posterior_var_floor(k_qq: np.ndarray | jnp.ndarray) -> np.ndarray | jnp.ndarray:
    """Smallest resolvable posterior variance: K_qq - ‖L⁻¹ k‖² cancels to ~eps K_qq (keeps s finite)."""
    return np.finfo(np.float64).eps * k_qq + _TINY


def lood_at_records(fit: GPFit, K_diag: np.ndarray, records: np.ndarray) -> dict[str, np.ndarray]:
    """KL- and mean-distance LOOD at Q = {x_i} for many records at once, O(1) each after P_ii.

    With σ² the effective noise: u = 1 - σ² P_ii, μ_F = y_i - σ² α_i, Σ_F = σ² u, hence
    s = u / (σ² P_ii) (design.md §4). u lies in [0, 1) for a PSD kernel and is clipped there
    against round-off; K_diag (the prior variances K_ii) bounds Σ_F from above likewise.
    Returns arrays kl, mse (R,), mean_F, mean_D (R, C), var_F, var_D (R,).
    """
    records = _check_records(records, fit.n)
    s2 = fit.noise
    p_ii = fit.p_diag_at(records)
    u = np.clip(1.0 - s2 * p_ii, 0.0, 1.0)
    var_F = np.clip(s2 * u, _TINY, np.asarray(K_diag, dtype=np.float64)[records])
    mean_F = fit.Y[records] - s2 * fit.alpha[records]
    kl, mse = _single_query_lood(fit, records, p_ii, u, u / (s2 * p_ii))
    return {
        "kl": kl,
        "mse": mse,
        "mean_F": mean_F,
        "var_F": var_F,
        "mean_D": mean_F - u[:, None] * fit.alpha[records] / p_ii[:, None],
        "var_D": var_F + u**2 / p_ii,
    }


# ----------------------------------------------------------------------------- NNGP AUC


def nngp_auc(
    mean_D: np.ndarray, var_D: float, mean_F: np.ndarray, var_F: float, n_samples: int, seed: int
) -> tuple[float, float]:
    """AUC of the optimal (likelihood-ratio) test of "in" = N(μ_F, var_F I) vs "out" = N(μ_D, var_D I).

    Seeded Monte Carlo with n_samples per side; the standard error is DeLong's
    (placement values), exact in the limit of many samples. Ties count one half.
    """
    mean_D, mean_F = np.atleast_1d(np.asarray(mean_D, dtype=np.float64)), np.atleast_1d(np.asarray(mean_F, dtype=np.float64))
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


# ----------------------------------------------------------------------------- tables


def _check_records(records: np.ndarray, n: int) -> np.ndarray:
    records = np.atleast_1d(np.asarray(records))
    if not np.issubdtype(records.dtype, np.integer):
        raise LoodInputError(f"record indices must be integers, got dtype {records.dtype}")
    bad = records[(records < 0) | (records >= n)]
    if len(bad):
        raise LoodInputError(f"record indices {bad[:5].tolist()} out of range for {n} training records")
    return records.astype(np.int64)


@dataclass
class NNGP:
    """A training set's kernel diagonal and GP factorisation, shared by the table functions."""

    X: np.ndarray
    y: np.ndarray
    key: tuple
    fit: GPFit
    K_diag: np.ndarray


_PREPARED: dict[tuple, NNGP] = {}


def _digest(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.blake2b(memoryview(a).cast("B"), digest_size=16).hexdigest() + str(a.shape) + str(a.dtype)


def prepare(X: np.ndarray, y: np.ndarray, arch: Mapping, sigma2: float, block_size: int = 2048) -> NNGP:
    """Kernel K_FF and its factorisation for (X, y, arch, σ²), computed once per process.

    The last result is cached by content, so lood_table, lood_all_table, landscape_table and
    optimise_queries called together on the same data share one kernel and one Cholesky.
    """
    X = _as_rows(X)
    y = np.asarray(y)
    if len(y) != len(X):
        raise LoodInputError(f"X has {len(X)} rows but y has {len(y)} labels")
    key = _arch_key(arch)
    cache_key = (_digest(X), _digest(y), key, float(sigma2))
    if cache_key not in _PREPARED:
        Y = targets(y)
        K, K_diag = _kernel_and_diag(X, None, key, block_size)
        fit = fit_gp(K, Y, sigma2)
        del K
        _PREPARED.clear()
        _PREPARED[cache_key] = NNGP(X=X, y=y, key=key, fit=fit, K_diag=K_diag)
    return _PREPARED[cache_key]


def lood_table(
    X: np.ndarray,
    y: np.ndarray,
    records: np.ndarray,
    arch: Mapping,
    sigma2: float,
    auc_samples: int,
    base_seed: int,
    block_size: int = 2048,
) -> pd.DataFrame:
    """KL- and mean-distance LOOD at Q = {z} and the NNGP AUC, one row per requested record (in order)."""
    gp = prepare(X, y, arch, sigma2, block_size)
    records = _check_records(records, gp.fit.n)
    res = lood_at_records(gp.fit, gp.K_diag, records)
    aucs = [
        nngp_auc(res["mean_D"][j], res["var_D"][j], res["mean_F"][j], res["var_F"][j], auc_samples, seeds.int_seed(base_seed, "nngp_auc", int(r)))
        for j, r in enumerate(records)
    ]
    auc, se = np.array(aucs).reshape(-1, 2).T
    return pd.DataFrame({"record": records, "kl": res["kl"], "mse": res["mse"], "auc_nngp": auc, "auc_nngp_se": se})


def lood_all_table(X: np.ndarray, y: np.ndarray, arch: Mapping, sigma2: float, block_size: int = 2048) -> pd.DataFrame:
    """KL- and mean-distance LOOD at Q = {z} of every training record from one factorisation."""
    gp = prepare(X, y, arch, sigma2, block_size)
    records = np.arange(gp.fit.n)
    res = lood_at_records(gp.fit, gp.K_diag, records)
    return pd.DataFrame({"record": records, "label": gp.y, "kl": res["kl"], "mse": res["mse"]})


def landscape_table(
    X: np.ndarray, y: np.ndarray, probes: Mapping[str, np.ndarray], arch: Mapping, sigma2: float, block_size: int = 2048
) -> pd.DataFrame:
    """LOOD of record records[j] at each single query queries[j, k] = z + t[k] r (Q = {that query})."""
    gp = prepare(X, y, arch, sigma2, block_size)
    records = _check_records(probes["records"], gp.fit.n)
    t = np.asarray(probes["t"], dtype=np.float64)
    queries = np.asarray(probes["queries"], dtype=np.float64)
    R, T = len(records), len(t)
    if queries.shape[:2] != (R, T):
        raise LoodInputError(f"probes: queries must be (records, t, ...) = ({R}, {T}, ...), got {queries.shape}")
    Q = queries.reshape(R * T, -1)
    K_QF, K_QQ = _kernel_and_diag(Q, gp.X, gp.key, block_size)
    V = scipy.linalg.solve_triangular(gp.fit.chol, K_QF.T, lower=True)
    var_F = np.maximum(K_QQ - np.einsum("ij,ij->j", V, V), _posterior_var_floor(K_QQ)).reshape(R, T)
    P = gp.fit.p_columns(records)  # (n, R)
    u = np.einsum("rtn,nr->rt", K_QF.reshape(R, T, -1), P)
    p_ii = np.broadcast_to(P[records, np.arange(R)][:, None], (R, T))
    kl, mse = _single_query_lood(gp.fit, np.repeat(records[:, None], T, axis=1), p_ii, u, u**2 / (p_ii * var_F))
    return pd.DataFrame({"record": np.repeat(records, T), "t": np.tile(t, R), "kl": kl.ravel(), "mse": mse.ravel()})


# ----------------------------------------------------------------------------- query optimisation


@functools.lru_cache(maxsize=8)
def _query_kl(key: tuple, n_classes: int) -> Callable:
    """KL-LOOD of record i at one query q, in JAX: f(q, X, L, P[:, i], α_i, P_ii) (rank-one closed form)."""
    fn = _kernel_fn(key)

    def kl(q, X, L, p, alpha_i, p_ii):
        k = fn(q[None], X, "nngp")[0]
        k_qq = fn(q[None], None, "nngp")[0, 0]
        v = jax.scipy.linalg.solve_triangular(L, k, lower=True)
        var_F = jnp.maximum(k_qq - v @ v, _posterior_var_floor(k_qq))
        s = (k @ p) ** 2 / (p_ii * var_F)
        return n_classes / 2 * _jnp_x_minus_log1p(s) + (alpha_i @ alpha_i) * s / (2 * p_ii)

    return jax.jit(kl)


def query_objective(gp: NNGP, record: int) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """q -> KL-LOOD of `record` at the single query q: the differentiable objective of `optimise_queries`."""
    fit = gp.fit
    p = fit.p_columns(np.array([record]))[:, 0]
    kl = _query_kl(gp.key, fit.alpha.shape[1])
    X, L, a = jnp.asarray(gp.X), jnp.asarray(fit.chol), jnp.asarray(fit.alpha[record])
    return lambda q: kl(q, X, L, jnp.asarray(p), a, p[record])


@functools.lru_cache(maxsize=8)
def _query_ascent(key: tuple, n_classes: int, steps: int) -> Callable:
    """Jitted Adam ascent of KL-LOOD(q) for one record; returns (values (steps+1,), best q, best value)."""
    kl = _query_kl(key, n_classes)
    value_and_grad = jax.value_and_grad(kl)
    b1, b2, eps = 0.9, 0.999, 1e-8

    def ascend(q0, lr, X, L, p, alpha_i, p_ii):
        def step(carry, t):
            q, m, v, best_val, best_q = carry
            val, g = value_and_grad(q, X, L, p, alpha_i, p_ii)
            g = jnp.where(jnp.isfinite(g), g, 0.0)  # a kernel derivative undefined at a training point
            better = val > best_val
            best_val, best_q = jnp.where(better, val, best_val), jnp.where(better, q, best_q)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            m_hat, v_hat = m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1))
            return (q + lr * m_hat / (jnp.sqrt(v_hat) + eps), m, v, best_val, best_q), val

        zeros = jnp.zeros_like(q0)
        (q, _, _, best_val, best_q), vals = jax.lax.scan(step, (q0, zeros, zeros, -jnp.inf, q0), jnp.arange(steps))
        last = kl(q, X, L, p, alpha_i, p_ii)
        better = last > best_val
        return jnp.append(vals, last), jnp.where(better, q, best_q), jnp.where(better, last, best_val)

    return jax.jit(ascend)


def optimise_queries(
    X: np.ndarray,
    y: np.ndarray,
    records: np.ndarray,
    arch: Mapping,
    sigma2: float,
    init: str,
    init_noise: float,
    steps: int,
    lr: float,
    base_seed: int,
) -> tuple[pd.DataFrame, dict[int, dict[str, np.ndarray]]]:
    """Maximise KL-LOOD(q) over a single query q per record by Adam gradient ascent (jax.grad through the kernel).

    init 'data': q0 = x_i + init_noise N(0, I); 'noise': q0 = mean of X + init_noise N(0, I)
    (centred on the data so the query starts in the region the kernel was fitted on).
    Noise comes from seeds.rng(base_seed, 'query', record). A start exactly at a training
    point is harmless (stax's arc-cosine derivatives are finite there; any non-finite
    gradient component is zeroed). lood_optimised is the best value along the trajectory,
    and `query` the point that attains it.
    """
    if init not in ("data", "noise"):
        raise LoodInputError(f"query init {init!r} unknown; allowed: data, noise")
    if not init_noise >= 0 or int(steps) < 0 or not lr > 0:
        raise LoodInputError(f"query needs init_noise >= 0, steps >= 0, lr > 0; got {init_noise}, {steps}, {lr}")
    gp = prepare(X, y, arch, sigma2)
    fit = gp.fit
    records = _check_records(records, fit.n)
    at_record = lood_at_records(fit, gp.K_diag, records)["kl"]
    ascend = _query_ascent(gp.key, fit.alpha.shape[1], int(steps))
    X_dev, L_dev = jnp.asarray(gp.X), jnp.asarray(fit.chol)
    P = fit.p_columns(records)
    rows, per_record = [], {}
    for j, r in enumerate(records):
        noise = init_noise * seeds.rng(base_seed, "query", int(r)).standard_normal(gp.X.shape[1])
        start = (gp.X[r] if init == "data" else gp.X.mean(axis=0)) + noise
        vals, best_q, best = ascend(jnp.asarray(start), float(lr), X_dev, L_dev, jnp.asarray(P[:, j]), jnp.asarray(fit.alpha[r]), float(P[r, j]))
        best_q = np.asarray(best_q)
        per_record[int(r)] = {"query": best_q, "trajectory": np.asarray(vals), "start": start}
        z = gp.X[r]
        cosine = float(best_q @ z / max(np.linalg.norm(best_q) * np.linalg.norm(z), 1e-300))
        rows.append((int(r), float(at_record[j]), float(best), float(np.linalg.norm(best_q - z)), cosine))
    # A bias-free ReLU NNGP is positively homogeneous (K(cq, x) = c K(q, x)), so its LOOD is
    # invariant to rescaling q: the cosine to the record says more than the distance there.
    columns = ["record", "lood_at_record", "lood_optimised", "distance_to_record", "cosine_to_record"]
    table = pd.DataFrame(rows, columns=columns)
    return table, per_record
