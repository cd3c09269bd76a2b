"""Which OpenBLAS kernels a large-matrix job uses; importable before NumPy (it imports no NumPy).

Measured on this project's machines (AMD EPYC with AVX-512, the OpenBLAS 0.3.29 of the pinned
NumPy/SciPy wheels): OpenBLAS picks its SkylakeX kernels there, and a multithreaded `X @ X.T` or
`scipy.linalg.cholesky` at n = 16,000 dies with a segmentation fault. The same calls run with
`OPENBLAS_CORETYPE=Haswell` (AVX2 kernels, same speed on that CPU) or on one thread.
OpenBLAS reads the variable once, when NumPy loads it: `use_safe_core` must run first.
"""

from __future__ import annotations

import os
import sys

# OpenBLAS core names (threadpoolctl's "architecture") whose threaded level-3 paths crashed at n >= 16,000.
UNSAFE_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})
SAFE_CORE = "Haswell"


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where it does not exist)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def use_safe_core() -> str | None:
    """Set OPENBLAS_CORETYPE=Haswell for this process on an AVX-512 x86 CPU; return the core type in effect.

    Does nothing when the user chose a core type, when the CPU lacks AVX-512 (OpenBLAS then
    picks a kernel that did not crash) or AVX2, or when NumPy is already loaded (too late:
    the caller's run-time guard, `lood.analytic.gp_inplace.blas_threads`, then falls back to one thread).
    """
    if "OPENBLAS_CORETYPE" in os.environ or "numpy" in sys.modules:
        return os.environ.get("OPENBLAS_CORETYPE")
    flags = cpu_flags()
    if "avx512f" in flags and "avx2" in flags:
        os.environ["OPENBLAS_CORETYPE"] = SAFE_CORE
    return os.environ.get("OPENBLAS_CORETYPE")
