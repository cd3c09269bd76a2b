"""Memory-lean GP algebra for large n: one float64 n x n array, factorised in place.

The kernel is written into one Fortran-ordered array A (lood.analytic.kernel.kernel_and_diag(out=A)).
The Cholesky factor L of K + σ²I overwrites its lower triangle (torch's LAPACK, MKL, through a
tensor that shares A's memory), α = P Y comes from two triangular solves with L, and diag P is
the squared column norms of L⁻¹, formed one block of rows at a time from L alone and never
stored (docs/math.md §3). Nothing else of size n x n is allocated; the peak memory is
lood.studies.audit_memory.bytes_needed (docs/audit.md). OpenBLAS (NumPy/SciPy) is kept out of the n x n calls: its
threaded Cholesky crashed at n = 16,000 (SkylakeX kernels) and at n = 40,000 (Haswell kernels).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lood.analytic.gp import JITTER_STEPS, FitNoise, not_positive_definite
from lood.errors import LoodInputError
from lood.runtime.openblas import UNSAFE_CORES
from lood.runtime.progress import PhaseTimer, Progress, matmul_rate

# Rows of L⁻¹ formed at once for diag P: 2 x 8 n b bytes, and b n² extra flops over n³/3.
ALGEBRA_BLOCK = 1024
# Above this n, a threaded OpenBLAS with an AVX-512 core crashed here (lood/runtime/openblas.py): one thread instead.
UNSAFE_N = 15_000


# ----------------------------------------------------------------------------- BLAS safety


def blas_threads(n: int, threads: int, log: logging.Logger | None) -> int:
    """Threads OpenBLAS may use for the n x n algebra: `threads`, or 1 where its core crashed at this n.

    lood/runtime/openblas.py sets a safe core before NumPy loads; if that did not happen (NumPy imported first,
    or the user forced an AVX-512 core), threaded level-3 calls at n >= 16,000 segfaulted here, and
    one thread is the measured safe fallback.
    """
    from threadpoolctl import threadpool_info

    unsafe = [
        lib
        for lib in threadpool_info()
        if lib.get("internal_api") == "openblas" and str(lib.get("architecture", "")).lower() in UNSAFE_CORES
    ]
    if unsafe and n > UNSAFE_N and threads > 1:
        if log is not None:
            log.warning(
                "OpenBLAS uses its %s kernels, whose threaded products crashed at n >= 16,000 on this project's "
                "machines: the factorisation runs on 1 thread. Set OPENBLAS_CORETYPE=Haswell before Python starts "
                "to use %d threads safely.",
                unsafe[0]["architecture"],
                threads,
            )
        return 1
    return int(threads)


# ----------------------------------------------------------------------------- in-place algebra


def cholesky_flops(n: int) -> float:
    """n³/3: the flops of a Cholesky factorisation, and of a triangular inverse."""
    return n**3 / 3


def inverse_work(n: int, block: int) -> float:
    """Flops of `inverse_column_norms`: n³/3 plus about b n² for its block solves."""
    b = max(1, min(int(block), n))
    total = 0.0
    for i0 in range(0, n, b):
        m = min(b, n - i0)
        total += m * i0 * i0 + m * m * i0 + m * b * i0 + m**3 / 3
    return total


def inverse_column_norms(L, block: int, progress: Progress | None) -> np.ndarray:
    """Squared column norms of L⁻¹ (L: the lower triangle of an n x n torch tensor), i.e. diag P for P = L⁻ᵀL⁻¹.

    L⁻¹ is formed one block of rows I at a time and never stored. Since (L⁻¹ L)[I, :I] = 0, row
    block I is X = L⁻¹[I, :I] solving X L[:I, :I] = −L_II⁻¹ L[I, :I], column block by column block
    from the right, each step one matrix product with a block of L (a view, no copy) and one
    b x b triangular solve. Reads only the lower triangle of L. n³/3 + b n² flops. L may live on any
    torch device (a GPU: lood.analytic.gp_device); the sums come back to the host.
    """
    import torch

    n = L.shape[0]
    b = max(1, min(int(block), n))
    s = np.zeros(n)
    done = 0.0
    for i0 in range(0, n, b):
        i1 = min(i0 + b, n)
        m = i1 - i0
        L_II = L[i0:i1, i0:i1]
        W_II = torch.linalg.solve_triangular(L_II, torch.eye(m, dtype=L.dtype, device=L.device), upper=False)
        s[i0:i1] += (W_II * W_II).sum(0).cpu().numpy()
        if i0:
            X = -torch.linalg.solve_triangular(L_II, L[i0:i1, :i0], upper=False)  # (m, i0)
            for k0 in range(i0 - b, -1, -b):
                k1 = k0 + b
                if k1 < i0:  # in place: no (m, b) temporary (measured 18% faster at n = 10,000)
                    X[:, k0:k1].addmm_(X[:, k1:i0], L[k1:i0, k0:k1], alpha=-1.0)
                X[:, k0:k1] = torch.linalg.solve_triangular(L[k0:k1, k0:k1], X[:, k0:k1], upper=False, left=False)
            s[:i0] += (X * X).sum(0).cpu().numpy()
            del X
        done += m * i0 * i0 + m * m * i0 + m * b * i0 + m**3 / 3
        if progress is not None:
            progress(done)
    return s


@dataclass(frozen=True)
class InplaceFit(FitNoise):
    """What the closed form at Q = {z} (lood.analytic.divergence.lood_at_records) reads from a GP fit.

    Y: targets (n x C); alpha: α = P Y; p_diag: P_ii; sigma2 and jitter as in lood.analytic.gp.GPFit;
    seconds: wall time of the phases ("cholesky" with α, "inverse"), and CPU time of all threads ("..._cpu").
    """

    Y: np.ndarray
    alpha: np.ndarray
    p_diag: np.ndarray
    sigma2: float
    jitter: float
    seconds: dict[str, float]

    def p_diag_at(self, idx: np.ndarray) -> np.ndarray:
        """P_ii for the given records."""
        return self.p_diag[np.asarray(idx, dtype=np.int64)]


def fit_inplace(
    A: np.ndarray,
    Y: np.ndarray,
    sigma2: float,
    threads: int,
    refill: Callable[[np.ndarray], None],
    log: logging.Logger | None,
    every: float,
) -> InplaceFit:
    """Factorise A = K (symmetric, Fortran order; overwritten by L) + σ²I in place; α and diag P.

    The jitter policy is lood.analytic.gp.fit_gp's: on a failed Cholesky (or σ² = 0) retry with
    eps * mean(diag K) added, eps = 1e-12 ... 1e-3. torch's Cholesky clears the strict upper
    triangle, so before a retry `refill(A)` writes K into A again (the kernel is recomputed; a
    failed factorisation is rare at σ² > 0). threads: torch's threads for the algebra.
    log/every: progress lines with an ETA from the flops at the measured matmul rate.
    """
    import torch

    n = len(A)
    if A.shape != (n, n) or A.dtype != np.float64 or not A.flags.f_contiguous:
        raise LoodInputError(
            f"the kernel matrix must be a float64 n x n Fortran-ordered array, got {A.shape} {A.dtype}"
        )
    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if len(Y) != n:
        raise LoodInputError(f"K is {n} x {n} but Y has {len(Y)} rows")
    sigma2 = float(sigma2)
    if not sigma2 >= 0:
        raise LoodInputError(f"sigma2 must be >= 0, got {sigma2}")
    diag = A.diagonal().copy()
    if not np.all(np.isfinite(diag)):
        raise LoodInputError("the kernel matrix has non-finite entries (check X for NaN/inf)")
    scale = float(np.mean(diag)) or 1.0
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        T = torch.from_numpy(A)  # shares A's memory; Fortran order is LAPACK's layout, so nothing is copied
        # The ETA's rate: the 2,000 x 2,000 product measured here. MKL's Cholesky reached 0.9-1.1 times
        # it (bench_audit.py: 84 GFLOP/s at n = 16,000, 90 at n = 40,000, against 81-97 for the product).
        rate = matmul_rate(min(n, 2000)) if log is not None else 1.0
        seconds = {"cholesky": 0.0, "cholesky_cpu": 0.0}
        info = torch.zeros((), dtype=torch.int32)
        tries = ((0.0,) if sigma2 > 0 else ()) + tuple(e * scale for e in JITTER_STEPS)
        for k, jitter in enumerate(tries):
            if k:
                refill(A)
            A[np.diag_indices(n)] = diag + (sigma2 + jitter)
            label = "Cholesky (LAPACK via torch, in place)" + (f", jitter {jitter:.3g}" if jitter else "")
            with PhaseTimer(log, label, cholesky_flops(n), rate, every) as chol:
                torch.linalg.cholesky_ex(T, out=(T, info))
            seconds["cholesky"] += chol.seconds
            seconds["cholesky_cpu"] += chol.cpu
            if int(info) == 0:
                break
        else:
            raise not_positive_definite(sigma2)
        if not np.all(np.isfinite(A.diagonal())):
            raise LoodInputError("the Cholesky factor has non-finite entries (check X for NaN/inf)")
        Z = torch.linalg.solve_triangular(T, torch.from_numpy(np.asfortranarray(Y)), upper=False)
        alpha = torch.linalg.solve_triangular(T.mT, Z, upper=True).numpy()
        t, cpu = time.perf_counter(), time.process_time()
        label = "diag P (rows of L^-1 by blocks)"
        progress = Progress(log, label, inverse_work(n, ALGEBRA_BLOCK), every) if log is not None else None
        p_diag = inverse_column_norms(T, ALGEBRA_BLOCK, progress)
        seconds |= {"inverse": time.perf_counter() - t, "inverse_cpu": time.process_time() - cpu}
    finally:
        torch.set_num_threads(previous_threads)
    return InplaceFit(Y=Y, alpha=alpha, p_diag=p_diag, sigma2=sigma2, jitter=jitter, seconds=seconds)
