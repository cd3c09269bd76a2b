"""The NNGP kernel of a fully connected network, evaluated in tiles on a thread per core.

The Gram matrix X1 X2ᵀ comes from BLAS (faster than XLA's float64 matmul on CPU); the layers'
kernel recursion is then applied to it tile by tile: for ReLU by its closed form
(lood.analytic.kernel_relu.relu_tile, 3x less CPU time than stax at depth 9 on an AMD EPYC, equal to
1e-15; where stax measures faster on this machine, relu_path picks stax), for the other activations
by neural-tangents stax. Query optimisation differentiates stax's kernel.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lood.analytic.jax_setup import jax, jnp, stax
from lood.analytic.kernel_relu import relu_diag, relu_tile
from lood.config import enum
from lood.errors import LoodInputError
from lood.settings import Arch

ACTIVATIONS: dict[str, Callable[[], tuple]] = {"relu": stax.Relu, "gelu": stax.Gelu, "erf": stax.Erf}
if set(ACTIVATIONS) != set(enum("activation")):  # the schema's enum is the one list of activations
    raise ImportError(f"kernel.ACTIVATIONS {sorted(ACTIVATIONS)} differ from the schema's {enum('activation')}")


@functools.cache
def stax_kernel_fn(key: tuple) -> Callable:
    depth, act, bias, w_std, b_std = key
    b = b_std if bias else None
    layers = []  # layer widths do not enter the infinite-width kernel
    for _ in range(depth):
        layers += [stax.Dense(1, W_std=w_std, b_std=b), ACTIVATIONS[act]()]
    _, _, fn = stax.serial(*layers, stax.Dense(1, W_std=w_std, b_std=b))
    return fn


def kernel_fn(arch: Arch) -> Callable:
    """The neural-tangents stax kernel function of `arch` (depth x [Dense, activation] + Dense)."""
    return stax_kernel_fn(arch.kernel_key)


@functools.cache
def _tile_fn(key: tuple, d: int) -> Callable:
    """Jitted (Gram tile, squared norms) -> (NNGP tile, diag K(X1, X1)), for inputs of dimension d."""
    fn = stax_kernel_fn(key)
    _, _, identity = stax.Identity()

    def tile(gram, sq1, sq2):
        template = identity(jnp.zeros((1, d)), jnp.zeros((1, d)))
        k = template.replace(
            ntk=None,
            x1_is_x2=False,
            nngp=gram / d,
            cov1=sq1 / d,
            cov2=sq2 / d,
            shape1=(gram.shape[0], d),
            shape2=(gram.shape[1], d),
        )
        out = fn(k, get=("nngp", "cov1"))
        return out.nngp, out.cov1

    return jax.jit(tile)


def as_rows(X: np.ndarray) -> np.ndarray:
    """X as a C-contiguous float64 (n, features) array (images are flattened)."""
    X = np.asarray(X, dtype=np.float64)
    return np.ascontiguousarray(X.reshape(len(X), -1))


def _n_workers() -> int:
    """Tiles evaluated concurrently: one per CPU core on CPU (XLA runs each tile on one thread)."""
    if jax.default_backend() != "cpu":
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# Kernels with at least this many entries measure once per (architecture, d, workers) which ReLU
# path is faster on this machine (relu_path); smaller ones take the closed form without measuring.
MEASURE_ENTRIES = 4096 * 4096
_PROBE = 1024  # the probe tile: _PROBE x _PROBE, one per worker, concurrently
RELU_PATHS: dict[tuple, str] = {}  # (kernel_key, d, workers) -> "closed_form" or "stax", as measured


def relu_path(arch: Arch, d: int, workers: int) -> str:
    """ "closed_form" or "stax": whichever evaluates `workers` concurrent ReLU tiles faster here, measured once.

    The closed form (lood.analytic.kernel_relu) ran 3x faster than stax on an AMD EPYC and 1.25x
    slower on an Intel Xeon with AVX-512 (docs/audit.md): so it is measured, on a probe tile of
    the real depth and d from the same Gram block, best of 2 after stax's compilation, and the
    choice is kept in RELU_PATHS for the process (the audit reports it). Both agree to 1e-12.
    """
    key = (arch.kernel_key, int(d), int(workers))
    if key not in RELU_PATHS:
        rng = np.random.default_rng(0)
        Xp = rng.random((_PROBE, int(d)))
        gram, sq = Xp @ Xp.T, np.einsum("ij,ij->i", Xp, Xp)
        tile = _tile_fn(arch.kernel_key, int(d))
        np.asarray(tile(gram, sq, sq)[0])  # compile

        def closed(_: int) -> None:
            relu_tile(gram, sq, sq, arch, int(d), np.empty_like(gram))

        def jitted(_: int) -> None:
            np.asarray(tile(gram, sq, sq)[0])

        best = {}
        with ThreadPoolExecutor(int(workers)) as pool:
            for name, fn in (("closed_form", closed), ("stax", jitted)):
                times = []
                for _ in range(2):
                    t = time.perf_counter()
                    list(pool.map(fn, range(int(workers))))
                    times.append(time.perf_counter() - t)
                best[name] = min(times)
        RELU_PATHS[key] = min(best, key=best.get)
    return RELU_PATHS[key]


def _pad(a: np.ndarray, shape: tuple, fill: float) -> np.ndarray:
    """Partial tiles are padded to the full tile shape so that one compilation serves all."""
    if a.shape == shape:
        return a
    out = np.full(shape, fill)
    out[tuple(slice(0, s) for s in a.shape)] = a
    return out


def kernel_and_diag(
    X1: np.ndarray,
    X2: np.ndarray | None,
    arch: Arch,
    block_size: int,
    out: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """K(X1, X2) in tiles (lower tiles only when X2 is None), and diag K(X1, X1).

    out: a preallocated float64 (n1, n2) array (e.g. Fortran-ordered for LAPACK) that receives K
    instead of a new one; each tile then takes its own Gram block, so nothing else of size
    n1 x n2 is allocated (lood.analytic.gp_inplace). progress: called as progress(tiles_done, tiles_total).
    """
    if int(block_size) < 1:
        raise LoodInputError(f"nngp.block_size must be a positive integer, got {block_size}")
    X1 = as_rows(X1)
    sym = X2 is None
    X2 = X1 if sym else as_rows(X2)
    if X1.shape[1] != X2.shape[1]:
        raise LoodInputError(f"inputs have {X1.shape[1]} and {X2.shape[1]} features")
    n1, n2, d = len(X1), len(X2), X1.shape[1]
    sq1, sq2 = np.einsum("ij,ij->i", X1, X1), np.einsum("ij,ij->i", X2, X2)
    if out is None:
        K = X1 @ X2.T  # the Gram matrix (numpy uses syrk when X2 is X1); tiles overwrite it in place
    else:
        if out.shape != (n1, n2) or out.dtype != np.float64 or not out.flags.writeable:
            raise LoodInputError(f"out must be a writeable float64 {(n1, n2)} array; got {out.shape} {out.dtype}")
        K = out
    diag = np.empty(n1)
    b1, b2 = min(int(block_size), n1), min(int(block_size), n2)
    # ReLU: the closed form (lood.analytic.kernel_relu), or stax where that measured faster (relu_path)
    relu = arch.activation == "relu" and (
        n1 * n2 < MEASURE_ENTRIES or relu_path(arch, d, _n_workers()) == "closed_form"
    )
    tile = None if relu else _tile_fn(arch.kernel_key, d)
    if relu:
        diag[:] = relu_diag(sq1, arch, d)
    jobs = [(i0, j0) for i0 in range(0, n1, b1) for j0 in range(0, n2, b2) if not (sym and j0 > i0)]
    lock, count = threading.Lock(), [0]

    def relu_run(i0: int, i1: int, j0: int, j1: int) -> np.ndarray:
        """Write the tile into K[i0:i1, j0:j1] along K's contiguous axis; return that region."""
        dest = K[i0:i1, j0:j1]
        if out is None:  # the Gram tile is already in place, C-ordered
            relu_tile(dest, sq1[i0:i1], sq2[j0:j1], arch, d, dest)
        elif out.flags.f_contiguous:  # columns are contiguous: compute K(X2 block, X1 block) into dest.T
            relu_tile(X2[j0:j1] @ X1[i0:i1].T, sq2[j0:j1], sq1[i0:i1], arch, d, dest.T)
        else:
            relu_tile(X1[i0:i1] @ X2[j0:j1].T, sq1[i0:i1], sq2[j0:j1], arch, d, dest)
        return dest

    def run(i0: int, j0: int) -> None:
        i1, j1 = min(i0 + b1, n1), min(j0 + b2, n2)
        if relu:
            block = relu_run(i0, i1, j0, j1)  # already in K
        else:
            gram = K[i0:i1, j0:j1] if out is None else X1[i0:i1] @ X2[j0:j1].T
            g = _pad(gram, (b1, b2), 0.0)
            nngp, cov1 = tile(g, _pad(sq1[i0:i1], (b1,), 1.0), _pad(sq2[j0:j1], (b2,), 1.0))
            block = np.asarray(nngp)[: i1 - i0, : j1 - j0]
            if j0 == 0:
                diag[i0:i1] = np.asarray(cov1)[: i1 - i0]
            K[i0:i1, j0:j1] = block
        if sym and i0 == j0:
            # BLAS's Gram tiles (and XLA's vectorised and scalar paths) may round differently on
            # either side of the diagonal: make diagonal tiles exactly symmetric.
            K[i0:i1, j0:j1] = (block + block.T) / 2
        if out is not None and sym and i0 != j0:
            K[j0:j1, i0:i1] = block.T  # the mirror, while the tile is at hand
        if progress is not None:
            with lock:
                count[0] += 1
                progress(count[0], len(jobs))

    with ThreadPoolExecutor(_n_workers()) as pool:
        list(pool.map(lambda ij: run(*ij), jobs))
    if sym and out is None:
        for i0 in range(0, n1, b1):
            for j0 in range(i0 + b1, n1, b1):
                K[i0 : i0 + b1, j0 : j0 + b1] = K[j0 : j0 + b1, i0 : i0 + b1].T
    return K, diag


def nngp_kernel(X1: np.ndarray, X2: np.ndarray | None, arch: Arch, block_size: int) -> np.ndarray:
    """The NNGP kernel K(X1, X2) (float64, n1 x n2), in tiles; X2 None means K(X1, X1)."""
    return kernel_and_diag(X1, X2, arch, block_size)[0]


def nngp_diag(X: np.ndarray, arch: Arch, block_size: int) -> np.ndarray:
    """The prior variances K(x, x) of the rows of X, in O(n d)."""
    X = as_rows(X)
    return kernel_and_diag(X, X[:1], arch, block_size)[1]


@functools.cache
def _standard_ntk_fn(key: tuple, width: int) -> Callable:
    depth, act, bias, w_std, b_std = key
    b = b_std if bias else None
    layers = []  # the standard parameterisation's NTK depends on the widths (docs/math.md §13)
    for _ in range(depth):
        layers += [stax.Dense(width, W_std=w_std, b_std=b, parameterization="standard"), ACTIVATIONS[act]()]
    _, _, fn = stax.serial(*layers, stax.Dense(1, W_std=w_std, b_std=b, parameterization="standard"))
    return jax.jit(fn, static_argnames="get")


def ntk_kernel(X: np.ndarray, arch: Arch) -> np.ndarray:
    """The NTK Gram matrix Θ(X, X) (per output, n x n) of `arch` as lood.empirical.train builds it,
    at its finite widths.

    Standard parameterisation (W ~ N(0, w_std²/fan_in), trained as stored), the infinite-width
    expectation of J Jᵀ at initialisation (docs/math.md §13); one call, so meant for n up to a few thousand.
    """
    X = as_rows(X)
    return np.asarray(_standard_ntk_fn(arch.kernel_key, int(arch.width))(X, None, get="ntk"))
