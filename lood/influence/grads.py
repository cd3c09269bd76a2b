"""Per-record gradients, Hessian-vector products and the full Hessian of a mean training loss."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torch.func import grad, jacrev, vjp, vmap

from lood.empirical.losses import Batch, Objective
from lood.empirical.params import flatten, n_params


def per_record_grads(objective: Objective, params: Sequence[Tensor], batch: Batch, chunk_size: int = 512) -> Tensor:
    """Flat per-record loss gradients (n, P) at `params`, in the parameters' dtype and device."""
    batch = batch.to(params[0].dtype, params[0].device)
    g_fn = vmap(grad(objective.record), in_dims=(None, 0, 0))
    rows = []
    for s in range(0, len(batch), chunk_size):
        part = batch[s : s + chunk_size]
        g = g_fn(list(params), part.X, part.targets)
        rows.append(torch.cat([gi.reshape(gi.shape[0], -1) for gi in g], dim=1))
    return torch.cat(rows, dim=0)


def batched_hvp(objective: Objective, params: Sequence[Tensor], batch: Batch) -> Callable[[Tensor], Tensor]:
    """V (k, P) -> the rows H v, H the Hessian of the mean loss over `batch` at `params` (flattened)."""
    like = list(params)
    f = objective.mean_flat(like)
    # Reverse-over-reverse: H is symmetric, so the VJP of the gradient is the HVP, and the
    # gradient's graph is built once and reused by every product. Measured 20-30% faster
    # than forward-over-reverse (jvp of grad) on CPU for these MLPs.
    _, vjp_fn = vjp(lambda t: grad(f)(t, batch.X, batch.targets), flatten(like).detach())
    return vmap(lambda v: vjp_fn(v)[0])


def loss_hessian(objective: Objective, params: Sequence[Tensor], batch: Batch, chunk_size: int = 256) -> Tensor:
    """The (P, P) float64 Hessian of the mean loss over `batch` w.r.t. all flattened parameters.

    Built block by block as Hessian-vector products against the identity, so the memory
    beyond H itself is one block of `chunk_size` HVPs.
    """
    like = [torch.as_tensor(p).double() for p in params]
    device = like[0].device
    hvp = batched_hvp(objective, like, batch.to(torch.float64, device))
    P = n_params(like)
    H = torch.empty(P, P, dtype=torch.float64, device=device)
    with torch.no_grad():
        for s in range(0, P, chunk_size):
            k = min(chunk_size, P - s)
            basis = torch.zeros(k, P, dtype=torch.float64, device=device)
            basis[torch.arange(k), torch.arange(s, s + k)] = 1.0
            H[s : s + k] = hvp(basis)
    # Exact in exact arithmetic; symmetrise the rounding so the Cholesky sees a symmetric matrix.
    H += H.T.clone()
    H *= 0.5
    return H


def per_record_jacobians(objective: Objective, params: Sequence[Tensor], X: Tensor, chunk_size: int = 512) -> Tensor:
    """Flat Jacobians (n, C, P) of the network's outputs f(x) at the rows x of X (the parameters' dtype, device)."""
    X = X.to(params[0].dtype).to(params[0].device)

    def f(ps, x):
        return objective.forward(ps, x.unsqueeze(0))[0]

    j_fn = vmap(jacrev(f), in_dims=(None, 0))
    rows = []
    for s in range(0, len(X), chunk_size):
        J = j_fn(list(params), X[s : s + chunk_size])
        rows.append(torch.cat([j.reshape(j.shape[0], j.shape[1], -1) for j in J], dim=2))
    return torch.cat(rows, dim=0)
