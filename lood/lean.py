"""Memory-lean GP algebra for large n: one float64 n x n array, factorised and inverted in place.

The kernel is written into one Fortran-ordered array A (lood.kernel.kernel_and_diag(out=A)).
LAPACK's dpotrf overwrites its lower triangle with the Cholesky factor L of K + σ²I and leaves
the strict upper triangle, which still holds K, so a failed factorisation can be undone and
retried with jitter without recomputing the kernel. α = P Y comes from two triangular solves
with L; then LAPACK's dtrtri overwrites L with L⁻¹ and diag P is its squared column norms,
summed block by block (docs/math.md §3). Nothing else of size n x n is allocated; the peak
memory is `bytes_needed` (docs/audit.md).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.linalg import lapack

from lood.blas import UNSAFE_CORES
from lood.errors import LoodInputError
from lood.gp import JITTER_STEPS

# Kernel tiles: float64 b x b arrays each worker holds at once (Gram tile, padded copies, XLA's
# intermediates, the result and its transpose): 4.9 measured at n = 6,000, b = 2,048; 6 for margin.
TILE_ARRAYS = 6
# OpenBLAS's per-thread buffers and LAPACK's workspace, generously (they are tens of MB).
LAPACK_BYTES = 256 * 2**20
# Above this n, a threaded OpenBLAS with an AVX-512 core crashed here (lood/blas.py): one thread instead.
UNSAFE_N = 15_000


# ----------------------------------------------------------------------------- memory


def workspace_bytes(n: int, d: int, block: int, workers: int) -> int:
    """Bytes beside the n x n matrix: the larger of the kernel tiles and LAPACK's buffers, plus n-vectors."""
    b = min(int(block), int(n))
    tiles = int(workers) * TILE_ARRAYS * 8 * b * b
    algebra = LAPACK_BYTES + 3 * 8 * min(int(n), 2000) ** 2 + 8 * b * b  # buffers, the matmul-rate probe, a block
    return max(tiles, algebra) + 16 * 8 * int(n)


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
    """n³/3: the flops of a Cholesky factorisation, and of a triangular inverse."""
    return n**3 / 3


def matmul_rate(size: int) -> float:
    """GFLOP/s of a float64 size x size matrix product on the current BLAS threads (best of 2)."""
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((size, size)), rng.standard_normal((size, size)), np.empty((size, size))
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


class PhaseTimer:
    """Logs `label: elapsed, ~p% by the estimate, ETA` every `every` seconds while one long LAPACK call runs.

    The estimate is `flops` at `gflops` GFLOP/s (a call gives no progress of its own); the line
    at the end gives the rate the call reached, which the next phase can use as its estimate.
    """

    def __init__(self, log: logging.Logger | None, label: str, flops: float, gflops: float, every: float) -> None:
        self.log, self.label, self.flops, self.gflops, self.every = log, label, flops, gflops, every
        self._stop = threading.Event()
        self.seconds = self.cpu = 0.0

    def _report(self) -> None:
        expected = self.flops / (self.gflops * 1e9)
        while not self._stop.wait(self.every):
            elapsed = time.perf_counter() - self.start
            frac = min(elapsed / expected, 0.99)
            eta = max(expected - elapsed, 0.0)
            self.log.info(
                "%s: %s elapsed, ~%.0f%% by the estimate, ETA ~%s", self.label, _clock(elapsed), 100 * frac, _clock(eta)
            )

    def __enter__(self) -> PhaseTimer:
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        if self.log is not None:
            self.log.info(
                "%s: %.3g TFLOP, expected ~%s at %.1f GFLOP/s",
                self.label,
                self.flops / 1e12,
                _clock(self.flops / (self.gflops * 1e9)),
                self.gflops,
            )
            self._thread = threading.Thread(target=self._report, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds, self.cpu = time.perf_counter() - self.start, time.process_time() - self.cpu_start
        self._stop.set()
        if self.log is not None:
            self._thread.join()
            self.log.info("%s: done in %s (%.1f GFLOP/s)", self.label, _clock(self.seconds), self.rate)

    @property
    def rate(self) -> float:
        """GFLOP/s the phase reached."""
        return self.flops / max(self.seconds, 1e-9) / 1e9


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


def lower_column_norms(W: np.ndarray, block: int) -> np.ndarray:
    """Squared column norms of the lower triangle of W (its strict upper triangle ignored), by column blocks."""
    n = len(W)
    b = max(1, min(int(block), n))
    s = np.empty(n)
    for j0 in range(0, n, b):
        j1 = min(j0 + b, n)
        below, diag = W[j1:, j0:j1], np.tril(W[j0:j1, j0:j1])
        s[j0:j1] = np.einsum("ij,ij->j", below, below) + np.einsum("ij,ij->j", diag, diag)
    return s


def _in_place(out: np.ndarray, A: np.ndarray, what: str) -> None:
    """LAPACK through f2py works in place only on a Fortran-ordered float64 array: never silently copy n x n."""
    if not np.shares_memory(out, A):
        raise RuntimeError(f"{what} copied the n x n matrix instead of working in place")


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
    A: np.ndarray, Y: np.ndarray, sigma2: float, block: int, log: logging.Logger | None, every: float
) -> LeanFit:
    """Factorise A = K (full, symmetric, Fortran order; overwritten) + σ²I in place; α and diag P.

    The jitter policy is lood.gp.fit_gp's: on a failed Cholesky (or σ² = 0) retry with
    eps * mean(diag K) added, eps = 1e-12 ... 1e-3; the lower triangle is restored from the
    upper one between tries. A is left holding L⁻¹ below the diagonal and K above it.
    log/every: progress lines with an ETA from the flops at the measured matmul rate.
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
    # LAPACK's factorisation reaches about 70 % of a large matrix product (bench_audit.py (b)).
    rate = 0.7 * matmul_rate(min(n, 2000)) if log is not None else 1.0
    seconds = {"cholesky": 0.0, "cholesky_cpu": 0.0}
    tries = ((0.0,) if sigma2 > 0 else ()) + tuple(e * scale for e in JITTER_STEPS)
    for k, jitter in enumerate(tries):
        if k:
            restore_lower(A, diag, block)
        A[np.diag_indices(n)] = diag + (sigma2 + jitter)
        label = "Cholesky (LAPACK dpotrf, in place)" + (f", jitter {jitter:.3g}" if jitter else "")
        with PhaseTimer(log, label, cholesky_flops(n), rate, every) as chol:
            L, info = lapack.dpotrf(A, lower=1, clean=0, overwrite_a=1)
        _in_place(L, A, "dpotrf")
        seconds["cholesky"] += chol.seconds
        seconds["cholesky_cpu"] += chol.cpu
        if info == 0:
            break
        if info < 0:
            raise RuntimeError(f"dpotrf rejected argument {-info}")
    else:
        raise LoodInputError(
            f"K_FF + sigma2 I is not positive definite even with jitter {JITTER_STEPS[-1]:g} x mean(diag K) added "
            f"(sigma2={sigma2}); raise the sigma2 or check the data for degenerate records"
        )
    if not np.all(np.isfinite(A.diagonal())):
        raise LoodInputError("the Cholesky factor has non-finite entries (check X for NaN/inf)")
    alpha = scipy.linalg.cho_solve((A, True), Y, check_finite=False)
    with PhaseTimer(log, "diag P (LAPACK dtrtri in place, column norms)", cholesky_flops(n), chol.rate, every) as inv:
        W, info = lapack.dtrtri(A, lower=1, overwrite_c=1)
        _in_place(W, A, "dtrtri")
        if info != 0:
            raise np.linalg.LinAlgError(f"triangular inverse failed (info={info})")
        p_diag = lower_column_norms(A, block)
    seconds |= {"inverse": inv.seconds, "inverse_cpu": inv.cpu}
    return LeanFit(Y=Y, alpha=alpha, p_diag=p_diag, sigma2=sigma2, jitter=jitter, seconds=seconds)
