"""Influence baselines: TracIn and influence-function self-influence of training records.

The network is a functional forward `f(params, X) -> logits (n, C)` with `params` a
list of tensors. A record's loss is `loss(logits_row (C,), label) -> scalar`, either a
callable or a name:

- "mse": 0.5 * sum_c (f_c(x) - t_c)^2 with centred one-hot targets t = one_hot(y) - 1/C
  (the regression the NNGP models);
- "ce": cross-entropy, logsumexp(f(x)) - f_y(x).

Targets are integer class labels (n,) for both named losses.

- TracIn self-influence (Pruthi et al. 2020, eq. 3 with z' = z):
  sum_e lr_e * ||grad_theta loss(z; theta_e)||^2 over saved checkpoints theta_e.
- Influence-function self-influence (Koh & Liang 2017):
  g_z^T (H + damping I)^-1 g_z / n, H the Hessian of the mean training loss over all
  parameters at the trained parameters, g_z the gradient of z's loss. The 1/n makes it
  the first-order change of z's loss when z's weight in the mean loss drops by 1/n,
  i.e. the leave-one-out change.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.func import grad, jvp, vmap

from lood import seeds
from lood.errors import LoodInputError

Forward = Callable[[Sequence[Tensor], Tensor], Tensor]
RecordLoss = Callable[[Tensor, Tensor], Tensor]
LossSpec = str | RecordLoss

METHODS = ("auto", "exact", "lissa")
INFLUENCE_KEYS = ("method", "exact_max_params", "damping", "lissa_scale", "lissa_depth", "lissa_repeats")
# Above this many training rows LiSSA draws seeded minibatches of this size per HVP;
# at or below it every HVP is full-batch (then the recursion is deterministic).
LISSA_FULL_BATCH_MAX = 1024


# ----------------------------------------------------------------------------- losses


def _one_hot(logits: Tensor, label: Tensor) -> Tensor:
    # arange comparison rather than F.one_hot / indexing: works under vmap.
    return (torch.arange(logits.shape[-1], device=logits.device) == label).to(logits.dtype)


def mse_record_loss(logits: Tensor, label: Tensor) -> Tensor:
    """0.5 * squared error of one record's logits against its centred one-hot target."""
    target = _one_hot(logits, label) - 1.0 / logits.shape[-1]
    return 0.5 * ((logits - target) ** 2).sum()


def ce_record_loss(logits: Tensor, label: Tensor) -> Tensor:
    """Cross-entropy of one record's logits against its integer label."""
    return torch.logsumexp(logits, dim=-1) - (logits * _one_hot(logits, label)).sum()


LOSSES: dict[str, RecordLoss] = {"mse": mse_record_loss, "ce": ce_record_loss}


def record_loss(loss: LossSpec) -> RecordLoss:
    """The per-record loss callable for a loss name ('mse' | 'ce') or a callable."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise LoodInputError(f"unknown loss {loss!r}; allowed: {sorted(LOSSES)} or a callable (logits_row, label) -> scalar")
    return LOSSES[loss]


# ----------------------------------------------------------------------------- parameters


def flatten(params: Sequence[Tensor]) -> Tensor:
    """All parameters as one flat vector (concatenated in list order)."""
    return torch.cat([p.reshape(-1) for p in params])


def unflatten(theta: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector back into tensors shaped like `like`."""
    parts = torch.split(theta, [p.numel() for p in like])
    return [part.reshape(p.shape) for part, p in zip(parts, like)]


def n_params(params: Sequence[Tensor]) -> int:
    """The total number of scalar parameters."""
    return sum(p.numel() for p in params)


# ----------------------------------------------------------------------------- gradients


def _loss_one(forward: Forward, loss_fn: RecordLoss) -> Callable[[Sequence[Tensor], Tensor, Tensor], Tensor]:
    def one(params: Sequence[Tensor], x: Tensor, label: Tensor) -> Tensor:
        return loss_fn(forward(params, x.unsqueeze(0))[0], label)

    return one


def _mean_loss_flat(forward: Forward, loss_fn: RecordLoss, like: Sequence[Tensor]) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    def mean_loss(theta: Tensor, X: Tensor, labels: Tensor) -> Tensor:
        logits = forward(unflatten(theta, like), X)
        return vmap(loss_fn)(logits, labels).mean()

    return mean_loss


def _as_tensors(X: Any, targets: Any, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    X = torch.as_tensor(np.asarray(X) if not isinstance(X, Tensor) else X).to(dtype)
    targets = torch.as_tensor(np.asarray(targets) if not isinstance(targets, Tensor) else targets)
    if X.ndim != 2 or targets.shape[0] != X.shape[0]:
        raise LoodInputError(f"X must be (n, d) with one target per row; got X {tuple(X.shape)} and targets {tuple(targets.shape)}")
    return X, targets


def per_record_grads(
    forward: Forward, params: Sequence[Tensor], X: Tensor, targets: Tensor, loss: LossSpec = "mse", chunk_size: int = 512
) -> Tensor:
    """Flat per-record loss gradients (n, P) at `params`, in the parameters' dtype."""
    dtype = params[0].dtype
    X, targets = _as_tensors(X, targets, dtype)
    g_fn = vmap(grad(_loss_one(forward, record_loss(loss))), in_dims=(None, 0, 0))
    rows = []
    for s in range(0, X.shape[0], chunk_size):
        g = g_fn(list(params), X[s : s + chunk_size], targets[s : s + chunk_size])
        rows.append(torch.cat([gi.reshape(gi.shape[0], -1) for gi in g], dim=1))
    return torch.cat(rows, dim=0)


# ----------------------------------------------------------------------------- TracIn


def tracin_self_influence(
    forward: Forward,
    checkpoints: Sequence[Sequence[Tensor]],
    lrs: Sequence[float],
    X: Tensor,
    targets: Tensor,
    loss: LossSpec = "mse",
    chunk_size: int = 512,
) -> np.ndarray:
    """TracIn self-influence (n,): sum_e lr_e * ||grad loss(z; theta_e)||^2 for each row z."""
    if len(checkpoints) != len(lrs) or not checkpoints:
        raise LoodInputError(f"TracIn needs one learning rate per checkpoint and at least one; got {len(checkpoints)} checkpoints, {len(lrs)} lrs")
    out = np.zeros(len(X), dtype=np.float64)
    for params, lr in zip(checkpoints, lrs):
        params = [torch.as_tensor(p) for p in params]
        with torch.no_grad():
            for s in range(0, len(X), chunk_size):
                g = per_record_grads(forward, params, X[s : s + chunk_size], targets[s : s + chunk_size], loss, chunk_size)
                out[s : s + chunk_size] += float(lr) * (g.double() ** 2).sum(dim=1).numpy()
    return out


# ----------------------------------------------------------------------------- Hessian


def loss_hessian(
    forward: Forward, params: Sequence[Tensor], X: Tensor, targets: Tensor, loss: LossSpec = "mse", chunk_size: int = 256
) -> Tensor:
    """The (P, P) float64 Hessian of the mean loss over (X, targets) w.r.t. all flattened parameters.

    Built column block by column block as Hessian-vector products against the identity
    (forward-over-reverse), so memory beyond H itself is one block of `chunk_size` HVPs.
    """
    like = [torch.as_tensor(p).double() for p in params]
    theta = flatten(like)
    X, targets = _as_tensors(X, targets, torch.float64)
    f = _mean_loss_flat(forward, record_loss(loss), like)
    hvp = vmap(lambda v: jvp(lambda t: grad(f)(t, X, targets), (theta,), (v,))[1])
    P = theta.numel()
    H = torch.empty(P, P, dtype=torch.float64)
    with torch.no_grad():
        for s in range(0, P, chunk_size):
            k = min(chunk_size, P - s)
            basis = torch.zeros(k, P, dtype=torch.float64)
            basis[torch.arange(k), torch.arange(s, s + k)] = 1.0
            H[s : s + k] = hvp(basis)
    # Exact in exact arithmetic; symmetrise the rounding so the Cholesky sees a symmetric matrix.
    H += H.T.clone()
    H *= 0.5
    return H


# ----------------------------------------------------------------------------- influence functions


def choose_method(n_params: int, method: str = "auto", exact_max_params: int = 20000) -> Literal["exact", "lissa"]:
    """'exact' or 'lissa': `method` itself, or for 'auto' exact when n_params <= exact_max_params."""
    if method not in METHODS:
        raise LoodInputError(f"unknown influence method {method!r}; allowed: {list(METHODS)}")
    if method == "auto":
        return "exact" if n_params <= exact_max_params else "lissa"
    return method  # type: ignore[return-value]


def _solve_exact(H: Tensor, damping: float, G: Tensor) -> Tensor:
    """(H + damping I)^-1 G^T columns, by Cholesky; LU with a warning when H + damping I is not PD."""
    A = H
    A.diagonal().add_(damping)
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return torch.cholesky_solve(G.T, L)
    del L
    warnings.warn(
        f"H + damping*I is not positive definite at the trained parameters (damping={damping}); "
        "influence scores may be negative or unstable. Raise influence.damping.",
        RuntimeWarning,
        stacklevel=3,
    )
    return torch.linalg.solve(A, G.T)


def _lissa(
    forward: Forward,
    loss_fn: RecordLoss,
    params: Sequence[Tensor],
    X_train: Tensor,
    targets_train: Tensor,
    G: Tensor,
    damping: float,
    scale: float,
    depth: int,
    repeats: int,
    batch_size: int | None,
    seed: int,
    query_chunk: int,
) -> Tensor:
    """LiSSA estimates of (H + damping I)^-1 g for the rows g of G, in G's dtype."""
    like = list(params)
    theta = flatten(like).detach()
    f = _mean_loss_flat(forward, loss_fn, like)
    n = X_train.shape[0]
    if batch_size is None:
        batch_size = n if n <= LISSA_FULL_BATCH_MAX else LISSA_FULL_BATCH_MAX
    batch_size = min(int(batch_size), n)
    full = batch_size >= n
    # A full-batch recursion is deterministic: repeating it would give the same answer.
    repeats = 1 if full else repeats
    out = torch.zeros_like(G)
    for r in range(repeats):
        # Minibatches depend on (seed, repeat) only, not on the query chunk, so the
        # result for a query does not depend on how queries are chunked.
        rng = np.random.default_rng([int(seed), r])
        idx_seq = [] if full else [torch.as_tensor(rng.choice(n, batch_size, replace=False)) for _ in range(depth)]
        for s in range(0, G.shape[0], query_chunk):
            g = G[s : s + query_chunk]
            h = g.clone()
            with torch.no_grad():
                for j in range(depth):
                    Xb, yb = (X_train, targets_train) if full else (X_train[idx_seq[j]], targets_train[idx_seq[j]])
                    hvp = vmap(lambda v: jvp(lambda t: grad(f)(t, Xb, yb), (theta,), (v,))[1])
                    # h_j = g + (I - (H + damping I) / scale) h_{j-1}   (Agarwal et al. 2017)
                    h = g + h - (hvp(h) + damping * h) / scale
                    if j % 50 == 49 and not torch.isfinite(h).all():
                        break
            if not torch.isfinite(h).all():
                raise LoodInputError(
                    f"LiSSA diverged (lissa_scale={scale}, damping={damping}): the scale must exceed the largest "
                    "eigenvalue of H + damping*I and H + damping*I must be positive definite. Raise "
                    "influence.lissa_scale or influence.damping, or use method: exact for a small model."
                )
            out[s : s + query_chunk] += h / scale
    return out / repeats


def influence_self(
    forward: Forward,
    params: Sequence[Tensor],
    X_train: Tensor,
    targets_train: Tensor,
    X_query: Tensor,
    targets_query: Tensor,
    damping: float = 0.01,
    method: Literal["exact", "lissa"] = "exact",
    lissa_scale: float = 100.0,
    lissa_depth: int = 500,
    lissa_repeats: int = 1,
    seed: int = 0,
    loss: LossSpec = "mse",
    lissa_batch_size: int | None = None,
    query_chunk: int = 256,
) -> np.ndarray:
    """Self-influence g_z^T (H + damping I)^-1 g_z / n_train for each query row z.

    exact: the full float64 Hessian (`loss_hessian`) and a Cholesky solve; O(P^2) memory.
    lissa: h_j = g + (I - (H + damping I)/scale) h_{j-1}, h_0 = g, estimate h_depth/scale,
    with HVPs by forward-over-reverse in the parameters' dtype. Each HVP uses the full
    training set when it has at most LISSA_FULL_BATCH_MAX rows (deterministic, so
    `lissa_repeats` is moot), else a minibatch of `lissa_batch_size` (default
    LISSA_FULL_BATCH_MAX) rows drawn from `seed`; repeats are averaged.
    """
    if damping < 0:
        raise LoodInputError(f"influence damping must be >= 0; got {damping}")
    if method not in ("exact", "lissa"):
        raise LoodInputError(f"influence_self method must be 'exact' or 'lissa'; got {method!r} (resolve 'auto' with choose_method)")
    loss_fn = record_loss(loss)
    params = [torch.as_tensor(p).detach() for p in params]
    n_train = len(X_train)
    if method == "exact":
        H = loss_hessian(forward, params, X_train, targets_train, loss_fn)
        G = per_record_grads(forward, [p.double() for p in params], X_query, targets_query, loss_fn).detach()
        Hinv_g = _solve_exact(H, float(damping), G).T
    else:
        if lissa_scale <= 0 or lissa_depth < 1 or lissa_repeats < 1:
            raise LoodInputError(f"LiSSA needs lissa_scale > 0, lissa_depth >= 1, lissa_repeats >= 1; got {lissa_scale}, {lissa_depth}, {lissa_repeats}")
        dtype = params[0].dtype
        Xt, yt = _as_tensors(X_train, targets_train, dtype)
        G = per_record_grads(forward, params, X_query, targets_query, loss_fn).detach()
        Hinv_g = _lissa(
            forward, loss_fn, params, Xt, yt, G, float(damping), float(lissa_scale), int(lissa_depth),
            int(lissa_repeats), lissa_batch_size, int(seed), query_chunk,
        )
    return ((G.double() * Hinv_g.double()).sum(dim=1) / n_train).numpy()
