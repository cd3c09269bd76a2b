"""Out-of-core float64 GP algebra: when 8 n² bytes do not fit, stream the Cholesky factor through a file.

The lower triangle of K + σ²I is cut into column panels of w columns; panel j holds rows c_j..n
of columns c_j..c_j+w, C-ordered, at its own offset in one scratch file (8 n (n + w)/2 bytes on
disk), so rows r..n of a panel are one contiguous read. Three panels are in memory at a time: the
one being built and two read buffers (one being used, one being filled by a reader thread while
torch computes), so the working set is about 3 x 8 n w bytes (lood.studies.audit_memory).

1. Cholesky, left-looking (docs/math.md §18): panel j is computed from the kernel
   (its tiles straight into the panel), updated by every earlier panel k read from the file
   (P -= L[c_j:, k] L[j, k]ᵀ, one product each), factorised (L_jj by LAPACK, the rows below by
   a triangular solve) and written. The forward solve z = L⁻¹Y rides along.
2. diag P and α: column block j of L⁻¹ (rows c_j..n) solves L[c_j:, c_j:] W = E_j panel by
   panel (each read once per block); then P_ii = Σ_k W_ki² and α_j = W_jᵀ z (α = L⁻ᵀ z).
Both phases cost n³/3 flops, as in memory (lood.analytic.gp_inplace), and read about
n³/(6w) x 8 bytes from the file each, overlapped with the products.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lood.analytic.gp import JITTER_STEPS, not_positive_definite
from lood.analytic.gp_inplace import InplaceFit
from lood.errors import LoodInputError
from lood.runtime.progress import Progress

# Rows per step of the panel's triangular solve (its temporary is ROW_STEP x w).
ROW_STEP = 4096


def panel_bounds(n: int, width: int) -> list[tuple[int, int]]:
    """Column ranges [c0, c1) of the panels of an n x n matrix, `width` columns each (the last may be narrower)."""
    w = max(1, min(int(width), int(n)))
    return [(c0, min(c0 + w, n)) for c0 in range(0, n, w)]


def disk_bytes(n: int, width: int) -> int:
    """Bytes of the scratch file: every panel's rows c0..n x its columns."""
    return sum(8 * (n - c0) * (c1 - c0) for c0, c1 in panel_bounds(n, width))


class PanelFile:
    """The lower-triangular panels of an n x n float64 matrix in one file (C order within a panel)."""

    def __init__(self, folder: str | os.PathLike | None, n: int, width: int) -> None:
        self.n, self.bounds = int(n), panel_bounds(n, width)
        self.offsets, pos = [], 0
        for c0, c1 in self.bounds:
            self.offsets.append(pos)
            pos += 8 * (self.n - c0) * (c1 - c0)
        fd, self.path = tempfile.mkstemp(prefix="lood_panels_", suffix=".f64", dir=folder)
        self.fd = fd
        os.ftruncate(fd, pos)
        # Unlinked at once: the open descriptor keeps the data, and a killed run leaves no 8 n²/2-byte file behind.
        os.unlink(self.path)

    def write(self, j: int, panel: np.ndarray) -> None:
        """Store panel j (rows c0..n, C order)."""
        c0, c1 = self.bounds[j]
        if panel.shape != (self.n - c0, c1 - c0) or not panel.flags.c_contiguous:
            raise ValueError(f"panel {j} must be C-ordered {(self.n - c0, c1 - c0)}, got {panel.shape}")
        view, pos = memoryview(panel).cast("B"), self.offsets[j]
        while len(view):
            done = os.pwrite(self.fd, view, pos)
            view, pos = view[done:], pos + done

    def read(self, j: int, row0: int, buf: np.ndarray) -> np.ndarray:
        """Rows row0..n of panel j (row0 >= its c0) into the front of the flat buffer `buf`; returns that view."""
        c0, c1 = self.bounds[j]
        w = c1 - c0
        out = buf[: (self.n - row0) * w].reshape(self.n - row0, w)
        view, pos = memoryview(out).cast("B"), self.offsets[j] + 8 * (row0 - c0) * w
        while len(view):
            got = os.preadv(self.fd, [view], pos)
            if got <= 0:
                raise OSError(f"short read from {self.path}")
            view, pos = view[got:], pos + got
        return out

    def close(self) -> None:
        """Close the file (already unlinked: its space is freed now)."""
        os.close(self.fd)


def _stream(pf: PanelFile, items: list[tuple[int, int]], bufs: list[np.ndarray], pool) -> Iterator[np.ndarray]:
    """Panels (j, row0) in order, each read by `pool`'s thread while the previous one is in use (two buffers)."""
    if not items:
        return
    future = pool.submit(pf.read, *items[0], bufs[0])
    for k in range(len(items)):
        arr = future.result()
        if k + 1 < len(items):
            future = pool.submit(pf.read, *items[k + 1], bufs[(k + 1) % 2])
        yield arr


def fit_outofcore(
    fill: Callable[[int, int, np.ndarray], None],
    n: int,
    Y: np.ndarray,
    sigma2: float,
    diag: np.ndarray,
    width: int,
    folder: str | os.PathLike | None,
    threads: int,
    log: logging.Logger | None,
    every: float,
) -> InplaceFit:
    """α = P Y and diag P of P = (K + σ²I)⁻¹ with K streamed through a panel file; K never whole in memory.

    fill(c0, c1, out): writes K[c0:n, c0:c1] into the C-ordered (n - c0, c1 - c0) array out.
    diag: diag K (for the jitter scale). width: panel width w (memory ≈ 3 x 8 n w bytes). folder:
    where the scratch file goes (None: the system's temporary folder); it is deleted at the end.
    The jitter policy is lood.analytic.gp.fit_gp's: a failed panel restarts with the next jitter.
    """
    import torch

    Y = np.asarray(Y, dtype=np.float64)
    Y = Y[:, None] if Y.ndim == 1 else Y
    if len(Y) != n or len(diag) != n:
        raise LoodInputError(f"K is {n} x {n} but Y has {len(Y)} rows and diag K {len(diag)} entries")
    sigma2 = float(sigma2)
    if not sigma2 >= 0:
        raise LoodInputError(f"sigma2 must be >= 0, got {sigma2}")
    scale = float(np.mean(diag)) or 1.0
    pf = PanelFile(folder, n, width)
    wmax = max(c1 - c0 for c0, c1 in pf.bounds)
    bufs = [np.empty(n * wmax) for _ in range(3)]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    seconds: dict[str, float] = {}
    try:
        with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
            tries = ((0.0,) if sigma2 > 0 else ()) + tuple(e * scale for e in JITTER_STEPS)
            for jitter in tries:
                t, cpu = time.perf_counter(), time.process_time()
                z = _factorise(pf, fill, Y, sigma2 + jitter, bufs, reader, writer, log, every)
                seconds["cholesky"] = seconds.get("cholesky", 0.0) + time.perf_counter() - t
                seconds["cholesky_cpu"] = seconds.get("cholesky_cpu", 0.0) + time.process_time() - cpu
                if z is not None:
                    break
            else:
                raise not_positive_definite(sigma2)
            t, cpu = time.perf_counter(), time.process_time()
            p_diag, alpha = _inverse(pf, z, bufs, reader, log, every)
            seconds |= {"inverse": time.perf_counter() - t, "inverse_cpu": time.process_time() - cpu}
    finally:
        torch.set_num_threads(previous_threads)
        pf.close()
    return InplaceFit(Y=Y, alpha=alpha, p_diag=p_diag, sigma2=sigma2, jitter=jitter, seconds=seconds)


def _factor_flops(n: int, c0: int, c1: int) -> float:
    """Flops of panel [c0, c1) in the left-looking Cholesky: updates (the diagonal block's lower half), L_jj,
    the solve below it (sum: about n³/3)."""
    w = c1 - c0
    return 2.0 * (n - c1) * c0 * w + float(w) * w * c0 + w**3 / 3 + (n - c1) * w * w


def _inverse_flops(n: int, c0: int, c1: int) -> float:
    """Flops of column block [c0, c1) of L⁻¹: a triangular solve with L[c0:, c0:] on the identity's columns,
    whose first block stays triangular (sum: about n³/3)."""
    w = c1 - c0
    return float(n - c0) ** 2 * w - float(n - c1) * w * w


def _factorise(pf, fill, Y, shift, bufs, reader, writer, log, every) -> np.ndarray | None:
    """Left-looking Cholesky of K + shift I into the panel file; z = L⁻¹Y, or None if not positive definite.

    bufs: three flat buffers of n x (widest panel) floats. Panel j is built in bufs[j % 3] and
    written by `writer` while panel j + 1's kernel tiles are computed; the reads of panel j + 1's
    updates use the other two buffers, once that write is done.
    """

    n = pf.n
    work = [_factor_flops(n, c0, c1) for c0, c1 in pf.bounds]
    progress = Progress(log, "Cholesky (panels through the disk)", sum(work), every)
    z = Y.copy()
    done, written = 0.0, None
    try:
        for j, (c0, c1) in enumerate(pf.bounds):
            P = bufs[j % 3][: (n - c0) * (c1 - c0)].reshape(n - c0, c1 - c0)
            fill(c0, c1, P)
            if written is not None:
                written.result()  # panel j - 1 is on disk: its buffer may be read into
            if not _factor_panel(pf, j, P, shift, z, [bufs[(j + 1) % 3], bufs[(j + 2) % 3]], reader):
                return None
            written = writer.submit(pf.write, j, P)
            done += work[j]
            progress(done)
    finally:
        if written is not None:
            written.result()
    return z


def _factor_panel(pf, j, P, shift, z, bufs, reader) -> bool:
    """Panel j of L in P (its kernel on entry), and rows c0..c1 of z = L⁻¹Y; False if not positive definite."""
    import torch

    n, (c0, c1) = pf.n, pf.bounds[j]
    w = c1 - c0
    P[np.arange(w), np.arange(w)] += shift
    T, zt = torch.from_numpy(P), torch.from_numpy(z)
    for k, B in enumerate(_stream(pf, [(k, c0) for k in range(j)], bufs, reader)):
        Bt = torch.from_numpy(B)  # L[c0:n, panel k]
        T[w:].addmm_(Bt[w:], Bt[:w].T, alpha=-1.0)
        _sub_lower_gram(T[:w], Bt[:w])  # the diagonal block: its lower triangle is all LAPACK reads
        k0, k1 = pf.bounds[k]
        zt[c0:c1].addmm_(Bt[:w], zt[k0:k1], alpha=-1.0)
    L_jj, info = torch.linalg.cholesky_ex(T[:w])
    if int(info) != 0 or not torch.isfinite(L_jj.diagonal()).all():
        return False
    T[:w] = L_jj
    for r0 in range(w, n - c0, ROW_STEP):  # L[below, j] = P[below] L_jj⁻ᵀ, by row blocks
        r1 = min(r0 + ROW_STEP, n - c0)
        T[r0:r1] = torch.linalg.solve_triangular(L_jj.mT, T[r0:r1], upper=True, left=False)
    zt[c0:c1] = torch.linalg.solve_triangular(L_jj, zt[c0:c1], upper=False)
    return True


def _inverse(pf, z, bufs, reader, log, every) -> tuple[np.ndarray, np.ndarray]:
    """diag P = squared column norms of L⁻¹ and α = L⁻ᵀ z, one column block of L⁻¹ at a time.

    bufs: the three flat buffers: the block is built in the third, panels are read into the first two.
    """
    import torch

    n = pf.n
    work = [_inverse_flops(n, c0, c1) for c0, c1 in pf.bounds]
    progress = Progress(log, "diag P and alpha (column blocks of L^-1)", sum(work), every)
    done = 0.0
    p_diag, alpha = np.zeros(n), np.zeros_like(z)
    zt = torch.from_numpy(z)
    for j, (c0, c1) in enumerate(pf.bounds):
        w = c1 - c0
        W = torch.from_numpy(bufs[2][: (n - c0) * w].reshape(n - c0, w))
        W.zero_()
        items = [(m, pf.bounds[m][0]) for m in range(j, len(pf.bounds))]
        for (m, _), B in zip(items, _stream(pf, items, bufs[:2], reader), strict=True):
            m0, m1 = pf.bounds[m]
            Bt = torch.from_numpy(B)  # L[m0:n, panel m]
            rows = slice(m0 - c0, m1 - c0)
            if m == j:  # W[rows] = L_jj⁻¹ I
                W[rows] = _lower_inverse(Bt[:w])
            else:
                W[rows] = torch.linalg.solve_triangular(Bt[: m1 - m0], W[rows], upper=False)
            if m1 < n and m == j:  # W[rows] = L_jj⁻¹ is lower triangular
                _sub_lower_product(W[m1 - c0 :], Bt[m1 - m0 :], W[rows])
            elif m1 < n:
                W[m1 - c0 :].addmm_(Bt[m1 - m0 :], W[rows], alpha=-1.0)
        p_diag[c0:c1] = torch.linalg.vector_norm(W, dim=0).square().numpy()  # no n x w temporary
        alpha[c0:c1] = (W.T @ zt[c0:]).numpy()
        done += work[j]
        progress(done)
    return p_diag, alpha


# Products on triangular blocks are split in halves down to this size, so that the zero (or unused) triangle
# costs no flops: C -= A Bᵀ on a diagonal block needs its lower triangle only, and B X with X lower triangular
# needs half of a full product. Without it a panel width w adds n² w / 2 flops to each phase (+21% at
# n = 60,000, w = 8,192); the halves stay large enough for the BLAS's full rate.
TRIANGLE_LEAF = 1024


def _sub_lower_gram(C, A) -> None:
    """C -= A Aᵀ on the lower triangle of the square C (its strict upper triangle is left inexact)."""
    s = C.shape[0]
    if s <= TRIANGLE_LEAF:
        C.addmm_(A, A.T, alpha=-1.0)
        return
    h = s // 2
    _sub_lower_gram(C[:h, :h], A[:h])
    C[h:, :h].addmm_(A[h:], A[:h].T, alpha=-1.0)
    _sub_lower_gram(C[h:, h:], A[h:])


def _sub_lower_product(C, B, X) -> None:
    """C -= B X for a lower-triangular X (zero above its diagonal: the leaf products read their whole block)."""
    s = X.shape[0]
    if s <= TRIANGLE_LEAF:
        C.addmm_(B, X, alpha=-1.0)
        return
    h = s // 2
    _sub_lower_product(C[:, :h], B[:, :h], X[:h, :h])
    C[:, :h].addmm_(B[:, h:], X[h:, :h], alpha=-1.0)
    _sub_lower_product(C[:, h:], B[:, h:], X[h:, h:])


def _lower_inverse(L):
    """L⁻¹ of a lower-triangular L, zero above the diagonal: [[A, 0], [B, C]]⁻¹ = [[A⁻¹, 0], [−C⁻¹ B A⁻¹, C⁻¹]],
    halved recursively down to TRIANGLE_LEAF (about s³/2 flops, mostly products, where solving on the identity's
    columns costs s³ at the triangular solve's lower rate)."""
    import torch

    s = L.shape[0]
    if s <= TRIANGLE_LEAF:
        return torch.linalg.solve_triangular(L, torch.eye(s, dtype=L.dtype), upper=False)
    h = s // 2
    X = torch.zeros((s, s), dtype=L.dtype)
    X[:h, :h], X[h:, h:] = _lower_inverse(L[:h, :h]), _lower_inverse(L[h:, h:])
    T = torch.zeros((s - h, h), dtype=L.dtype)
    _sub_lower_product(T, L[h:, :h], X[:h, :h])  # T = −B A⁻¹
    X[h:, :h] = X[h:, h:] @ T
    return X
