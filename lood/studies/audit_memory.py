"""Memory accounting of the audit: what the in-place algebra (lood.analytic.gp_inplace) needs, what this machine
has, and the check.

The peak is 8 n² for the kernel matrix plus `workspace_bytes` (docs/audit.md, "Peak memory");
`available_bytes` (lood.runtime.memory) reads /proc/meminfo and the process's cgroup limit. Where 8 n² does not fit,
`plan` picks the out-of-core route (lood.analytic.gp_outofcore) with the widest panels that fit,
and refuses up front, naming the bytes it needs, where even its narrowest panels do not.
"""

from __future__ import annotations

import math

from lood.analytic.gp_inplace import ALGEBRA_BLOCK
from lood.analytic.gp_outofcore import ROW_STEP, disk_bytes
from lood.errors import LoodInputError
from lood.runtime.memory import available_bytes  # noqa: F401  (the audit rule's import)

# Kernel tiles: float64 b x b arrays each worker holds at once (Gram tile, padded copies, XLA's
# intermediates, the result and its transpose): 4.9 measured at n = 6,000, b = 2,048; 6 for margin.
TILE_ARRAYS = 6
# LAPACK's and the BLAS threads' buffers, generously (they are tens of MB).
LAPACK_BYTES = 256 * 2**20
# The narrowest panels the out-of-core route accepts: narrower ones read the file n / w times over.
MIN_WIDTH = 512


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


def outofcore_bytes(n: int, d: int, block: int, workers: int, width: int) -> int:
    """Bytes of the out-of-core route at panel width w: three n x w panels (the one being built, two read
    buffers), L_jj and the solve's blocks (w x w, ROW_STEP x w), and the larger of the kernel tiles and LAPACK."""
    n, w = int(n), max(1, min(int(width), int(n)))
    b = min(int(block), n)
    panels = 3 * 8 * n * w + 3 * 8 * w * w + 2 * 8 * min(ROW_STEP, n) * w
    return panels + max(int(workers) * TILE_ARRAYS * 8 * b * b, LAPACK_BYTES) + 16 * 8 * n


def outofcore_width(n: int, d: int, block: int, workers: int, available: int) -> int:
    """The widest panels (a multiple of `block` when wider than it) whose working set fits; 0 if MIN_WIDTH does not."""
    lo, hi = 0, int(n)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if outofcore_bytes(n, d, block, workers, mid) <= available:
            lo = mid
        else:
            hi = mid - 1
    if lo > int(block):
        lo -= lo % int(block)
    return lo if lo >= min(MIN_WIDTH, int(n)) else 0


def plan(n: int, d: int, block: int, workers: int, available: int, disk: int) -> dict:
    """In memory when 8 n² plus blocks fit; else out of core with the widest panels that fit; else refuse.

    Returns {"route": "in_memory" | "out_of_core", "bytes": working set, "width": panel width (out of
    core), "disk_bytes": the scratch file}. disk: free bytes where the scratch file goes.
    """
    need = bytes_needed(n, d, block, workers)
    if need <= available:
        return {"route": "in_memory", "bytes": need, "width": int(n), "disk_bytes": 0}
    width = outofcore_width(n, d, block, workers, available)
    if width == 0:
        w = min(MIN_WIDTH, int(n))
        least = outofcore_bytes(n, d, block, workers, w)
        raise LoodInputError(
            f"the audit of n = {n:,} records needs {need / 1e9:.1f} GB in memory, or {least / 1e9:.2f} GB for the "
            f"out-of-core route at its narrowest panels (3 x 8 n w at w = {w:,}, plus blocks), but "
            f"{available / 1e9:.2f} GB are available; lower data.n_records, or run on a node with "
            f"{least / 1e9:.1f} GB free"
        )
    on_disk = disk_bytes(n, width)
    if on_disk > disk:
        raise LoodInputError(
            f"the out-of-core audit of n = {n:,} records writes {on_disk / 1e9:.1f} GB of panels but the scratch "
            f"folder has {disk / 1e9:.1f} GB free; point audit.scratch at a folder with room"
        )
    return {
        "route": "out_of_core",
        "bytes": outofcore_bytes(n, d, block, workers, width),
        "width": width,
        "disk_bytes": on_disk,
    }
