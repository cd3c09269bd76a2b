"""The ReLU network's NNGP kernel in closed form (the arc-cosine recursion), in torch on any device.

lood.kernel evaluates every activation's kernel with neural-tangents stax on the CPU (JAX 0.5,
the newest that neural-tangents 0.6.5 imports with). For a ReLU network the same kernel has a
closed form (Cho & Saul 2009): with K⁰ = w² x·x'/d + b² and, at each of the `depth` layers,
θ = arccos(K¹² / √(K¹¹ K²²)),
K¹² ← w²/(2π) √(K¹¹ K²²) (sin θ + (π − θ) cos θ) + b²,  Kⁱⁱ ← w² Kⁱⁱ/2 + b².
This module runs that recursion in float64 with torch, so the kernel can be built on a GPU
(bench/bench_paper_scale.py); tests/test_analytic.py checks it against stax to 1e-12.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lood.errors import LoodInputError
from lood.settings import Arch


def relu_nngp(X1: torch.Tensor, X2: torch.Tensor | None, arch: Arch, block_size: int = 8192) -> torch.Tensor:
    """K(X1, X2) (n1 x n2, float64, on X1's device) of depth x [Dense, ReLU] + Dense; X2=None: K(X1, X1).

    Built in row blocks of `block_size` so that the recursion's temporaries stay a few blocks in size.
    """
    if arch.activation != "relu":
        raise LoodInputError(f"the closed-form kernel is the ReLU network's; model.activation is {arch.activation}")
    X1 = X1.to(torch.float64)
    X2 = X1 if X2 is None else X2.to(device=X1.device, dtype=torch.float64)
    w2 = float(arch.w_std) ** 2
    b2 = float(arch.b_std) ** 2 if arch.bias else 0.0
    d = X1.shape[1]
    sq1 = w2 * (X1 * X1).sum(1) / d + b2
    sq2 = w2 * (X2 * X2).sum(1) / d + b2
    out = torch.empty((len(X1), len(X2)), dtype=torch.float64, device=X1.device)
    for start in range(0, len(X1), block_size):
        rows = slice(start, start + block_size)
        k = torch.addmm(torch.full((), b2, dtype=torch.float64, device=X1.device), X1[rows], X2.T, alpha=w2 / d)
        k11, k22 = sq1[rows], sq2
        for _ in range(int(arch.depth)):
            s = torch.sqrt(torch.outer(k11, k22))
            cos = (k / s).clamp_(-1.0, 1.0)
            theta = torch.arccos(cos)
            sin = torch.sqrt((1.0 - cos * cos).clamp_(min=0.0))
            k = (sin + (math.pi - theta) * cos).mul_(s).mul_(w2 / (2 * math.pi)).add_(b2)
            k11, k22 = w2 * k11 / 2 + b2, w2 * k22 / 2 + b2
        out[rows] = k
    return out


def relu_nngp_numpy(X1: np.ndarray, X2: np.ndarray | None, arch: Arch) -> np.ndarray:
    """relu_nngp on the CPU, NumPy in and out."""
    t2 = None if X2 is None else torch.as_tensor(np.asarray(X2, dtype=np.float64))
    return relu_nngp(torch.as_tensor(np.asarray(X1, dtype=np.float64)), t2, arch).numpy()
