"""Memory-lean GP algebra for large n: one float64 n x n array, factorised in place.

The kernel is written into one Fortran-ordered array A (lood.kernel.kernel_and_diag(out=A)).
The Cholesky factor L of K + σ²I overwrites its lower triangle (torch's LAPACK, MKL, through a
tensor that shares A's memory), α = P Y comes from two triangular solves with L, and diag P is
the squared column norms of L⁻¹, formed one block of rows at a time from L alone and never
stored (docs/math.md §3). Nothing else of size n x n is allocated; the peak memory is
`bytes_needed` (docs/audit.md). OpenBLAS (NumPy/SciPy) is kept out of the n x n calls: its
threaded Cholesky crashed at n = 16,000 (SkylakeX kernels) and at n = 40,000 (Haswell kernels).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lood.blas import UNSAFE_CORES
from lood.errors import LoodInputError
from lood.gp import JITTER_STEPS

# Kernel tiles: float64 b x b arrays each worker holds at once (Gram tile, padded copies, XLA's
# intermediates, the result and its transpose): 4.9 measured at n = 6,000, b = 2,048; 6 for margin.
TILE_ARRAYS = 6
# LAPACK's and the BLAS threads' buffers, generously (they are tens of MB).
LAPACK_BYTES = 256 * 2**20
# Rows of L⁻¹ formed at once for diag P: 2 x 8 n b bytes, and b n² extra flops over n³/3.
ALGEBRA_BLOCK = 1024
# Above this n, a threaded OpenBLAS with an AVX-512 core crashed here (lood/blas.py): one thread instead.
UNSAFE_N = 15_000


# ----------------------------------------------------------------------------- memory


def workspace_bytes(n: int, d: int, block: int, workers: int) -> int:
    """Bytes beside the n x n matrix: the larger of the kernel tiles and the algebra's row blocks, plus n-vectors."""
    b = min(int(block), int(n))
    tiles = int(workers) * TILE_ARRAYS * 8 * b * b
    a = min(ALGEBRA_BLOCK, int(n))
    algebra = LAPACK_BYTES + 3 * 8 * min(int(n), 2000) ** 2 + 2 * 8 * int(n) * a + 4 * 8 * a * a
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
    """GFLOP/s of a float64 size x size matrix product with torch's BLAS on its current threads (best of 2)."""
    import torch

    a, b = torch.randn(size, size, dtype=torch.float64), torch.randn(size, size, dtype=torch.float64)
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        torch.matmul(a, b)
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
    b x b triangular solve. Reads only the lower triangle of L. n³/3 + b n² flops.
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
        W_II = torch.linalg.solve_triangular(L_II, torch.eye(m, dtype=L.dtype), upper=False)
        s[i0:i1] += (W_II * W_II).sum(0).numpy()
        if i0:
            X = -torch.linalg.solve_triangular(L_II, L[i0:i1, :i0], upper=False)  # (m, i0)
            for k0 in range(i0 - b, -1, -b):
                k1 = k0 + b
                if k1 < i0:
                    X[:, k0:k1] -= X[:, k1:i0] @ L[k1:i0, k0:k1]
                X[:, k0:k1] = torch.linalg.solve_triangular(L[k0:k1, k0:k1], X[:, k0:k1], upper=False, left=False)
            s[:i0] += (X * X).sum(0).numpy()
            del X
        done += m * i0 * i0 + m * m * i0 + m * b * i0 + m**3 / 3
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
    A: np.ndarray,
    Y: np.ndarray,
    sigma2: float,
    threads: int,
    refill: Callable[[np.ndarray], None],
    log: logging.Logger | None,
    every: float,
) -> LeanFit:
    """Factorise A = K (symmetric, Fortran order; overwritten by L) + σ²I in place; α and diag P.

    The jitter policy is lood.gp.fit_gp's: on a failed Cholesky (or σ² = 0) retry with
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
        # LAPACK's factorisation reaches about 70 % of a large matrix product (bench_audit.py (b)).
        rate = 0.7 * matmul_rate(min(n, 2000)) if log is not None else 1.0
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
            raise LoodInputError(
                f"K_FF + sigma2 I is not positive definite even with jitter {JITTER_STEPS[-1]:g} x mean(diag K) "
                f"added (sigma2={sigma2}); raise the sigma2 or check the data for degenerate records"
            )
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
    return LeanFit(Y=Y, alpha=alpha, p_diag=p_diag, sigma2=sigma2, jitter=jitter, seconds=seconds)
