"""The ReLU network's NNGP kernel in closed form (the arc-cosine recursion), in torch.

lood.analytic.kernel evaluates the kernel of every activation with neural-tangents stax (JAX 0.5, the
newest that neural-tangents 0.6.5 imports with). For a ReLU network the same kernel has a
closed form (Cho & Saul 2009): with K⁰ = w² x·x'/d + b² and, at each of the `depth` layers,
θ = arccos(K¹² / √(K¹¹ K²²)),
K¹² ← w²/(2π) √(K¹¹ K²²) (sin θ + (π − θ) cos θ) + b²,  Kⁱⁱ ← w² Kⁱⁱ/2 + b².
Two uses, both in float64 and checked against stax to 1e-12 (tests/analytic/test_analytic.py):
- `relu_tile`: one CPU tile of lood.analytic.kernel.kernel_and_diag, run on the correlation
  c = K¹²/√(K¹¹ K²²) in cache-sized chunks on the calling thread. It costs 0.24 CPU-s per
  2,048² tile at depth 9 where stax's jitted tile costs 0.75 (XLA spreads it over 2 threads;
  docs/audit.md and bench/bench_audit.py (c) have the end-to-end effect);
- `relu_nngp`: a whole kernel on any torch device, e.g. a GPU (bench/bench_paper_scale.py).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lood.errors import LoodInputError
from lood.settings import Arch

# Entries per step of the CPU tile recursion: its temporaries stay in a core's L2 cache, and each
# torch operation stays below torch's 32,768-element grain, so it runs on the calling thread alone.
CHUNK = 16384


def _weight_variances(arch: Arch) -> tuple[float, float]:
    """(w², b²) of the layers; b² = 0 without bias."""
    return float(arch.w_std) ** 2, float(arch.b_std) ** 2 if arch.bias else 0.0


def _variances(sq1: torch.Tensor, sq2: torch.Tensor, arch: Arch, d: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer (input first), the prior variances k of the rows and of the columns, k ← w² k/2 + b²."""
    w2, b2 = _weight_variances(arch)
    out = [(w2 * sq1 / d + b2, w2 * sq2 / d + b2)]
    for _ in range(int(arch.depth)):
        out.append((w2 * out[-1][0] / 2 + b2, w2 * out[-1][1] / 2 + b2))
    return out


def _inv_root(v: torch.Tensor) -> torch.Tensor:
    """1/√v, and 0 where v = 0 (an input x = 0 without bias, whose kernel row is 0)."""
    return torch.where(v > 0, v.clamp(min=1e-300).rsqrt(), torch.zeros_like(v))


def _recursion(gram: torch.Tensor, rows: slice, var: list, arch: Arch, d: int) -> torch.Tensor:
    """K of the rows `rows` of a tile from their Gram rows (r x b2): a new tensor on gram's device.

    var: _variances of the whole tile. The recursion runs on c = K¹²/√(K¹¹K²²): without bias
    c ← J(c)/π with J(c) = sin θ + (π − θ) cos θ (the variances scale by w²/2 exactly); with bias
    c ← w²/(2π) √(k₁k₂/(k₁'k₂')) J(c) + b²/√(k₁'k₂').
    """
    w2, b2 = _weight_variances(arch)
    c = gram * (w2 / d)
    if b2:
        c.add_(b2)
    c.mul_(_inv_root(var[0][0][rows])[:, None]).mul_(_inv_root(var[0][1])[None])
    nxt, s = torch.empty_like(c), torch.empty_like(c)
    for layer in range(1, len(var)):
        torch.arccos(c.clamp_(-1.0, 1.0), out=nxt)  # round-off can put c a hair outside [-1, 1]
        torch.mul(c, c, out=s)
        s.neg_().add_(1.0).clamp_(min=0.0).sqrt_()  # sin θ
        nxt.neg_().add_(math.pi).mul_(c).add_(s)  # J(c)
        if b2:
            inv1, inv2 = _inv_root(var[layer][0][rows]), _inv_root(var[layer][1])
            nxt.mul_((var[layer - 1][0][rows].sqrt() * inv1)[:, None]).mul_((var[layer - 1][1].sqrt() * inv2)[None])
            nxt.mul_(w2 / (2 * math.pi)).addcmul_(inv1[:, None], inv2[None], value=b2)
        else:
            nxt.mul_(1.0 / math.pi)
        c, nxt = nxt, c
    return c.mul_(var[-1][0][rows].sqrt()[:, None]).mul_(var[-1][1].sqrt()[None])


def relu_tile(gram: np.ndarray, sq1: np.ndarray, sq2: np.ndarray, arch: Arch, d: int, out: np.ndarray) -> None:
    """out (b1 x b2, unit stride along rows) <- K from the Gram block gram = X1 X2ᵀ (b1 x b2) and squared norms.

    On the calling thread, CHUNK entries at a time; gram may be out itself (a chunk is read before it is written).
    """
    G, dest = torch.from_numpy(gram), torch.from_numpy(out)
    var = _variances(
        torch.from_numpy(np.asarray(sq1, np.float64)), torch.from_numpy(np.asarray(sq2, np.float64)), arch, d
    )
    step = max(1, CHUNK // max(1, G.shape[1]))
    for r0 in range(0, G.shape[0], step):
        rows = slice(r0, r0 + step)
        dest[rows] = _recursion(G[rows], rows, var, arch, d)


def relu_diag(sq: np.ndarray, arch: Arch, d: int) -> np.ndarray:
    """K(x, x) of the rows whose squared norms are sq."""
    v = torch.from_numpy(np.asarray(sq, dtype=np.float64))
    return _variances(v, v, arch, d)[-1][0].numpy()


def relu_nngp(X1: torch.Tensor, X2: torch.Tensor | None, arch: Arch, block_size: int) -> torch.Tensor:
    """K(X1, X2) (n1 x n2, float64, on X1's device) of depth x [Dense, ReLU] + Dense; X2=None: K(X1, X1).

    Built in row blocks of `block_size`, so that the recursion's temporaries stay a few blocks in size.
    """
    if arch.activation != "relu":
        raise LoodInputError(f"the closed-form kernel is the ReLU network's; model.activation is {arch.activation}")
    X1 = X1.to(torch.float64)
    X2 = X1 if X2 is None else X2.to(device=X1.device, dtype=torch.float64)
    var = _variances((X1 * X1).sum(1), (X2 * X2).sum(1), arch, X1.shape[1])
    out = torch.empty((len(X1), len(X2)), dtype=torch.float64, device=X1.device)
    for start in range(0, len(X1), block_size):
        rows = slice(start, start + block_size)
        out[rows] = _recursion(X1[rows] @ X2.T, rows, var, arch, X1.shape[1])
    return out
