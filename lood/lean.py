"""Memory-lean GP algebra for large n: one float64 n x n array, factorised in place by blocks.

The kernel is written into one Fortran-ordered array A; its lower triangle becomes the Cholesky
factor L of K + σ²I (left-looking blocked Cholesky, every product a BLAS matrix multiply on views
of A), its strict upper triangle keeps K (so a failed factorisation can retry with jitter without
recomputing the kernel), α = P Y comes from two triangular solves, and diag P from the squared
column norms of L⁻¹, formed one block of rows at a time and never stored (docs/math.md §3).
Nothing else of size n x n is allocated; the peak memory is `bytes_needed` (docs/audit.md).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg import blas, lapack

from lood.blas import UNSAFE_CORES
from lood.errors import LoodInputError
from lood.gp import JITTER_STEPS

# Kernel tiles: float64 b x b arrays each worker holds at once (Gram tile, padded copies, XLA's
# intermediates, the result and its transpose): 4.9 measured at n = 6,000, b = 2,048; 6 for margin.
TILE_ARRAYS = 6
# Above this n, a threaded OpenBLAS with an AVX-512 core crashed here (lood/blas.py): one thread instead.
UNSAFE_N = 15_000


# ----------------------------------------------------------------------------- memory


def workspace_bytes(n: int, d: int, block: int, workers: int) -> int:
    """Bytes beside the n x n matrix: kernel tiles, or two n x b panels of the blocked algebra, plus n-vectors."""
    b = min(int(block), int(n))
    tiles = int(workers) * TILE_ARRAYS * 8 * b * b
    panels = 2 * 8 * n * b + 4 * 8 * b * b
    return max(tiles, panels) + 16 * 8 * n


def bytes_needed(n: int, d: int, block: int, workers: int) -> int:
    """Memory the audit adds once data and libraries are loaded: 8 n² for the matrix plus the workspace."""
    return 8 * int(n) ** 2 + workspace_bytes(n, d, block, workers)


def affordable_n(available: int, d: int, block: int, workers: int) -> int:
    """The largest n whose `bytes_needed` fits in `available` bytes."""
    hi = max(int(math.isqrt(max(int(available), 0) // 8)), 1)
    lo = 0
    while lo < hi:  # bytes_needed grows with n: bisect
        mid = (lo + hi + 1) // 2
        if bytes_needed(mid, d, block, workers) <= available:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_headroom() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, or v1), None without a limit."""
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    best = None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: the tightest limit on the path up to the root
            parts = path.strip("/").split("/") if path.strip("/") else []
            for k in range(len(parts), -1, -1):
                base = os.path.join("/sys/fs/cgroup", *parts[:k])
                limit = _read_int(os.path.join(base, "memory.max"))
                used = _read_int(os.path.join(base, "memory.current"))
                if limit is None or used is None:
                    continue
                used -= _inactive_file(os.path.join(base, "memory.stat"), "inactive_file")
                best = min(best, limit - used) if best is not None else limit - used
        elif "memory" in controllers.split(","):
            base = os.path.join("/sys/fs/cgroup/memory", path.strip("/"))
            limit = _read_int(os.path.join(base, "memory.limit_in_bytes"))
            used = _read_int(os.path.join(base, "memory.usage_in_bytes"))
            if limit is not None and used is not None and limit < 1 << 60:
                used -= _inactive_file(os.path.join(base, "memory.stat"), "total_inactive_file")
                best = min(best, limit - used) if best is not None else limit - used
    return best


def _inactive_file(stat_path: str, key: str) -> int:
    """Reclaimable page cache counted in a cgroup's usage (0 when unknown)."""
    try:
        with open(stat_path) as fh:
            for line in fh:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def available_bytes() -> int:
    """Memory this process can still take: MemAvailable of /proc/meminfo, capped by its cgroup's limit."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:  # not Linux: trust the physical memory
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cg = _cgroup_headroom()
    return max(min(avail, cg) if cg is not None else avail, 0)


def check_memory(n: int, d: int, block: int, workers: int, available: int) -> int:
    """The bytes the audit needs, or a LoodInputError naming the n that `available` bytes afford."""
    need = bytes_needed(n, d, block, workers)
    if need > available:
        n_max = affordable_n(available, d, block, workers)
        raise LoodInputError(
            f"the audit of n = {n:,} records needs {need / 1e9:.1f} GB (8 n² for the kernel matrix plus "
            f"{workspace_bytes(n, d, block, workers) / 1e9:.2f} GB of blocks) but {available / 1e9:.1f} GB "
            "are available; "
            f"this machine affords n <= {n_max:,}: lower data.n_records, or run on a node with "
            f"{need / 1e9:.0f} GB free"
        )
    return need


# ----------------------------------------------------------------------------- progress


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class Progress:
    """Logs `label: p% (elapsed, ETA)` of a phase whose work is counted in units (tiles, flops)."""

    def __init__(self, log: logging.Logger | None, label: str, total: float, every: float) -> None:
        self.log, self.label, self.total, self.every = log, label, float(total), float(every)
        self.start = self.last = time.perf_counter()
        self.done = 0.0

    def __call__(self, done: float) -> None:
        """Record that `done` units of `total` are finished; log when `every` seconds have passed or at the end."""
        self.done = float(done)
        now = time.perf_counter()
        if self.log is None or (now - self.last < self.every and self.done < self.total):
            return
        self.last = now
        elapsed = now - self.start
        frac = self.done / self.total if self.total else 1.0
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        self.log.info(
            "%s: %5.1f%% after %s, ETA %s", self.label, 100 * frac, _clock(elapsed), _clock(eta) if frac > 0 else "?"
        )

    @property
    def seconds(self) -> float:
        """Wall seconds since the phase started."""
        return time.perf_counter() - self.start


# ----------------------------------------------------------------------------- BLAS safety


def blas_threads(n: int, threads: int, log: logging.Logger | None) -> int:
    """Threads OpenBLAS may use for the n x n algebra: `threads`, or 1 where its core crashed at this n.

    lood/blas.py sets a safe core before NumPy loads; if that did not happen (NumPy imported first,
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
    """n³/3: the flops of a Cholesky factorisation (and of a triangular inverse), leading term."""
    return n**3 / 3


def _cholesky_step(n: int, j0: int, m: int) -> float:
    return 2.0 * m * j0 * (n - j0) + m**3 / 3 + (n - j0 - m) * m * m


def _inverse_step(n: int, i0: int, m: int) -> float:
    return m * i0 * i0 + 2.0 * m * m * i0 + m**3 / 3


def cholesky_work(n: int, block: int) -> float:
    """Flops of `cholesky_inplace` at this n and block (the sum its progress counts to)."""
    b = max(1, min(int(block), n))
    return sum(_cholesky_step(n, j0, min(b, n - j0)) for j0 in range(0, n, b))


def inverse_work(n: int, block: int) -> float:
    """Flops of `inverse_column_norms` at this n and block (the sum its progress counts to)."""
    b = max(1, min(int(block), n))
    return sum(_inverse_step(n, i0, min(b, n - i0)) for i0 in range(0, n, b))


def cholesky_inplace(A: np.ndarray, block: int, progress: Progress | None) -> int:
    """Overwrite the lower triangle of A (n x n, Fortran order) with L, L Lᵀ = A; 0, or the failing pivot (1-based).

    Left-looking blocked Cholesky: for each column block J, A[J:, J] -= L[J:, :J] L[J, :J]ᵀ (one
    BLAS matrix multiply), then a LAPACK Cholesky of the diagonal block and a triangular solve of
    the panel below it. Reads and writes the lower triangle only: the strict upper one is kept.
    """
    n = len(A)
    b = max(1, min(int(block), n))
    mask = np.tril(np.ones((b, b), dtype=bool))
    done = 0.0
    for j0 in range(0, n, b):
        j1 = min(j0 + b, n)
        m = j1 - j0
        D = np.array(A[j0:j1, j0:j1], order="F")
        if j0:
            upd = A[j0:j1, :j0] @ A[j0:, :j0].T  # (m, n - j0): L[J, :J] L[J:, :J]ᵀ
            D -= upd[:, :m].T
            A[j1:, j0:j1] -= upd[:, m:].T
            del upd
        L_jj, info = lapack.dpotrf(D, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            return j0 + info if info > 0 else -1
        np.copyto(A[j0:j1, j0:j1], L_jj, where=mask[:m, :m])
        if j1 < n:
            panel = np.array(A[j1:, j0:j1], order="F")
            A[j1:, j0:j1] = blas.dtrsm(1.0, L_jj, panel, side=1, lower=1, trans_a=1, overwrite_b=1)
            del panel
        done += _cholesky_step(n, j0, m)
        if progress is not None:
            progress(done)
    return 0


def restore_lower(A: np.ndarray, diag: np.ndarray, block: int) -> None:
    """Copy the strict upper triangle of A onto its strict lower one and set its diagonal (undoes a failed Cholesky)."""
    n = len(A)
    b = max(1, min(int(block), n))
    for j0 in range(0, n, b):
        j1 = min(j0 + b, n)
        A[j1:, j0:j1] = A[j0:j1, j1:].T
        blk = A[j0:j1, j0:j1]
        low = np.tril_indices(j1 - j0, -1)
        blk[low] = blk.T[low]
    A[np.diag_indices(n)] = diag


def inverse_column_norms(L: np.ndarray, block: int, progress: Progress | None) -> np.ndarray:
    """Squared column norms of L⁻¹ (L the lower triangle of an n x n array), i.e. diag P for P = L⁻ᵀL⁻¹.

    L⁻¹ is formed one block of rows I at a time and never stored: W_II = L_II⁻¹ and
    W[I, :I] solves X L[:I, :I] = −W_II L[I, :I], column block by block from the right (each step
    a BLAS matrix multiply with a block of L), since (W L)[I, :I] = 0. Reads only the lower
    triangle of L and writes nothing to it. n³/3 flops, like LAPACK's triangular inverse.
    """
    n = len(L)
    b = max(1, min(int(block), n))
    s = np.zeros(n)
    inverses: list[np.ndarray] = []  # W_KK = L_KK⁻¹ of the blocks done so far (n x b numbers in all)
    done = 0.0
    for i0 in range(0, n, b):
        i1 = min(i0 + b, n)
        m = i1 - i0
        T, info = lapack.dtrtri(np.tril(L[i0:i1, i0:i1]), lower=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"triangular inverse of diagonal block {i0}:{i1} failed (info={info})")
        s[i0:i1] += np.einsum("ij,ij->j", T, T)
        if i0:
            X = -(T @ L[i0:i1, :i0])  # (m, i0), C order; becomes W[I, :I] in place
            for k0 in range(i0 - b, -1, -b):
                k1 = k0 + b
                if k1 < i0:
                    X[:, k0:k1] -= X[:, k1:i0] @ L[k1:i0, k0:k1]
                X[:, k0:k1] = X[:, k0:k1] @ inverses[k0 // b]
            s[:i0] += np.einsum("ij,ij->j", X, X)
            del X
        inverses.append(T)
        done += _inverse_step(n, i0, m)
        if progress is not None:
            progress(done)
    return s


@dataclass(frozen=True)
class LeanFit:
    """What the closed form at Q = {z} (lood.divergence.lood_at_records) reads from a GP fit.

    Y: targets (n x C); alpha: α = P Y; p_diag: P_ii; sigma2 and jitter as in lood.gp.GPFit;
    seconds: wall time of the phases ("cholesky" with α, "inverse"), and CPU time of all threads ("..._cpu").
    """

    Y: np.ndarray
    alpha: np.ndarray
    p_diag: np.ndarray
    sigma2: float
    jitter: float
    seconds: dict[str, float]

    @property
    def n(self) -> int:
        """Number of training records."""
        return len(self.p_diag)

    @property
    def noise(self) -> float:
        """The effective σ² (requested σ² plus jitter)."""
        return self.sigma2 + self.jitter

    def p_diag_at(self, idx: np.ndarray) -> np.ndarray:
        """P_ii for the given records."""
        return self.p_diag[np.asarray(idx, dtype=np.int64)]


def fit_inplace(
    A: np.ndarray, Y: np.ndarray, sigma2: float, block: int, progress: Callable[[str, float], Progress] | None
) -> LeanFit:
    """Factorise A = K (full, symmetric, Fortran order, overwritten) + σ²I in place; α and diag P.

    The jitter policy is lood.gp.fit_gp's: on a failed Cholesky (or σ² = 0) retry with
    eps * mean(diag K) added, eps = 1e-12 ... 1e-3; the lower triangle is restored from the
    upper one between tries. progress: called as progress(phase name, total flops) when a phase
    starts, returns the Progress that phase reports to (None: no reporting).
    """
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
    start = progress or (lambda name, total: None)
    seconds = {}
    t, cpu = time.perf_counter(), time.process_time()
    tries = ((0.0,) if sigma2 > 0 else ()) + tuple(e * scale for e in JITTER_STEPS)
    for k, jitter in enumerate(tries):
        if k:
            restore_lower(A, diag, block)
        A[np.diag_indices(n)] = diag + (sigma2 + jitter)
        label = "Cholesky" + (f" (jitter {jitter:.3g})" if jitter else "")
        if cholesky_inplace(A, block, start(label, cholesky_work(n, block))) == 0:
            break
    else:
        raise LoodInputError(
            f"K_FF + sigma2 I is not positive definite even with jitter {JITTER_STEPS[-1]:g} x mean(diag K) added "
            f"(sigma2={sigma2}); raise the sigma2 or check the data for degenerate records"
        )
    if not np.all(np.isfinite(A.diagonal())):
        raise LoodInputError("the Cholesky factor has non-finite entries (check X for NaN/inf)")
    alpha = scipy.linalg.cho_solve((A, True), Y, check_finite=False)
    seconds["cholesky"], seconds["cholesky_cpu"] = time.perf_counter() - t, time.process_time() - cpu
    t, cpu = time.perf_counter(), time.process_time()
    p_diag = inverse_column_norms(A, block, start("diag P (column norms of L^-1)", inverse_work(n, block)))
    seconds["inverse"], seconds["inverse_cpu"] = time.perf_counter() - t, time.process_time() - cpu
    return LeanFit(Y=Y, alpha=alpha, p_diag=p_diag, sigma2=sigma2, jitter=jitter, seconds=seconds)
