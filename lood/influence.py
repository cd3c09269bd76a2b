"""Influence baselines: TracIn and influence-function self-influence of training records.

The network is a functional forward `f(params, X) -> logits (n, C)` with `params` a
list of tensors. A record's loss is `loss(logits_row (C,), label) -> scalar`, either a
callable or a name:

- "mse": 0.5 * sum_c (f_c(x) - t_c)^2 with centred one-hot targets t = one_hot(y) - 1/C
  (the regression the NNGP models);
- "mse_mean": mean_c (f_c(x) - t_c)^2, the per-record loss `lood.train` minimises
  (torch.nn.MSELoss); it is (2/C) * "mse", identical for C = 2;
- "cross_entropy" (alias "ce"): logsumexp(f(x)) - f_y(x).

Targets are integer class labels (n,) for the named losses.

- TracIn self-influence (Pruthi et al. 2020, eq. 3 with z' = z):
  sum_e lr_e * ||grad_theta loss(z; theta_e)||^2 over saved checkpoints theta_e.
- Influence-function self-influence (Koh & Liang 2017):
  g_z^T (H + damping I)^-1 g_z / n, H the Hessian of the mean training loss over all
  parameters at the trained parameters, g_z the gradient of z's loss. The 1/n makes it
  the first-order change of z's loss when z's weight in the mean loss drops by 1/n,
  i.e. the leave-one-out change.
"""

from __future__ import annotations

import logging
import warnings
from functools import partial
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.func import grad, vjp, vmap

from lood import seeds, train
from lood.errors import LoodInputError

log = logging.getLogger(__name__)

Forward = Callable[[Sequence[Tensor], Tensor], Tensor]
RecordLoss = Callable[[Tensor, Tensor], Tensor]
LossSpec = str | RecordLoss

METHODS = ("auto", "exact", "lissa")
# The config's `influence` section with its schema defaults (schemas/config.schema.yaml).
# The same defaults as schemas/config.schema.yaml (the workflow always passes every key).
INFLUENCE_DEFAULTS: dict[str, Any] = {
    "method": "auto",
    "exact_max_params": 12000,
    "damping": 0.5,
    "lissa_scale": 20.0,
    "lissa_depth": 500,
    "lissa_repeats": 2,
}
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


def mse_mean_record_loss(logits: Tensor, label: Tensor) -> Tensor:
    """Mean over outputs of the squared error against the centred one-hot target (torch MSELoss)."""
    target = _one_hot(logits, label) - 1.0 / logits.shape[-1]
    return ((logits - target) ** 2).mean()


LOSSES: dict[str, RecordLoss] = {
    "mse": mse_record_loss,
    "mse_mean": mse_mean_record_loss,
    "cross_entropy": ce_record_loss,
    "ce": ce_record_loss,
}
# training.loss names (lood.train) -> the per-record loss SGD actually minimised there.
TRAINING_LOSSES = {"mse": "mse_mean", "cross_entropy": "cross_entropy"}


def record_loss(loss: LossSpec) -> RecordLoss:
    """The per-record loss callable for a name in LOSSES or a callable (logits_row, label) -> scalar."""
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


def _batched_hvp(f: Callable[[Tensor, Tensor, Tensor], Tensor], theta: Tensor, X: Tensor, targets: Tensor) -> Callable[[Tensor], Tensor]:
    """V (k, P) -> the rows H v for H the Hessian of f(., X, targets) at theta."""
    # Reverse-over-reverse: H is symmetric, so the VJP of the gradient is the HVP, and the
    # gradient's graph is built once and reused by every product. Measured 20-30% faster
    # than forward-over-reverse (jvp of grad) on CPU for these MLPs.
    _, vjp_fn = vjp(lambda t: grad(f)(t, X, targets), theta)
    return vmap(lambda v: vjp_fn(v)[0])


def _as_tensors(X: Any, targets: Any, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    X = torch.as_tensor(X).to(device=device, dtype=dtype)
    targets = torch.as_tensor(targets).to(device)
    if X.ndim != 2 or targets.shape[0] != X.shape[0]:
        raise LoodInputError(f"X must be (n, d) with one target per row; got X {tuple(X.shape)} and targets {tuple(targets.shape)}")
    return X, targets


def per_record_grads(
    forward: Forward, params: Sequence[Tensor], X: Tensor, targets: Tensor, loss: LossSpec = "mse", chunk_size: int = 512
) -> Tensor:
    """Flat per-record loss gradients (n, P) at `params`, in the parameters' dtype and device."""
    X, targets = _as_tensors(X, targets, params[0].dtype, params[0].device)
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
                out[s : s + chunk_size] += float(lr) * (g.double() ** 2).sum(dim=1).cpu().numpy()
    return out


# ----------------------------------------------------------------------------- Hessian


def loss_hessian(
    forward: Forward, params: Sequence[Tensor], X: Tensor, targets: Tensor, loss: LossSpec = "mse", chunk_size: int = 256
) -> Tensor:
    """The (P, P) float64 Hessian of the mean loss over (X, targets) w.r.t. all flattened parameters.

    Built block by block as Hessian-vector products against the identity, so the memory
    beyond H itself is one block of `chunk_size` HVPs.
    """
    like = [torch.as_tensor(p).double() for p in params]
    theta = flatten(like)
    X, targets = _as_tensors(X, targets, torch.float64, theta.device)
    f = _mean_loss_flat(forward, record_loss(loss), like)
    hvp = _batched_hvp(f, theta, X, targets)
    P = theta.numel()
    H = torch.empty(P, P, dtype=torch.float64, device=theta.device)
    with torch.no_grad():
        for s in range(0, P, chunk_size):
            k = min(chunk_size, P - s)
            basis = torch.zeros(k, P, dtype=torch.float64, device=theta.device)
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


def _spectral_radius(hvp: Callable[[Tensor], Tensor], theta: Tensor, seed: int, iters: int = 20) -> float:
    """A power-iteration estimate of the largest |eigenvalue| of the Hessian behind `hvp`."""
    g = torch.Generator().manual_seed(int(seed) % (2**63))
    v = torch.randn(1, theta.numel(), generator=g, dtype=theta.dtype).to(theta.device)
    est = 0.0
    with torch.no_grad():
        for _ in range(iters):
            w = hvp(v / v.norm())
            est = float(w.norm())
            if est == 0.0:
                break
            v = w
    return est


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
    full_hvp = _batched_hvp(f, theta, X_train, targets_train) if full else None
    # The recursion converges only if every eigenvalue of (H + damping I)/scale lies in
    # (0, 2); a few power iterations catch a hopeless scale before `depth` wasted steps.
    probe_hvp = full_hvp or _batched_hvp(f, theta, X_train[:batch_size], targets_train[:batch_size])
    radius = _spectral_radius(probe_hvp, theta, seed) + damping
    if radius >= 2.0 * scale:
        raise LoodInputError(
            f"lissa_scale={scale} is too small: the Hessian's spectral radius plus damping is about {radius:.3g}; "
            f"LiSSA diverges unless the scale exceeds half of that. Set influence.lissa_scale above {radius:.3g}."
        )
    for r in range(repeats):
        # Minibatches depend on (seed, repeat) only, not on the query chunk, so the
        # result for a query does not depend on how queries are chunked.
        rng = np.random.default_rng([int(seed), r])
        idx_seq = [] if full else [torch.as_tensor(rng.choice(n, batch_size, replace=False), device=X_train.device) for _ in range(depth)]
        for s in range(0, G.shape[0], query_chunk):
            g = G[s : s + query_chunk]
            h = g.clone()
            with torch.no_grad():
                for j in range(depth):
                    hvp = full_hvp if full else _batched_hvp(f, theta, X_train[idx_seq[j]], targets_train[idx_seq[j]])
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
    with HVPs in the parameters' dtype. Each HVP uses the full
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
        Xt, yt = _as_tensors(X_train, targets_train, dtype, params[0].device)
        G = per_record_grads(forward, params, X_query, targets_query, loss_fn).detach()
        Hinv_g = _lissa(
            forward, loss_fn, params, Xt, yt, G, float(damping), float(lissa_scale), int(lissa_depth),
            int(lissa_repeats), lissa_batch_size, int(seed), query_chunk,
        )
    return ((G.double() * Hinv_g.double()).sum(dim=1) / n_train).cpu().numpy()


# ----------------------------------------------------------------------------- workflow entry point


def _influence_config(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(INFLUENCE_DEFAULTS))
    if unknown:
        raise LoodInputError(f"unknown influence config key(s) {unknown}; allowed: {sorted(INFLUENCE_DEFAULTS)}")
    return {**INFLUENCE_DEFAULTS, **cfg}


def influence_table(
    X: np.ndarray,
    y: np.ndarray,
    records: Sequence[int],
    arch: Mapping[str, Any],
    training: Mapping[str, Any],
    influence_cfg: Mapping[str, Any],
    base_seed: int,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Columns record, tracin, influence: both self-influence scores of `records` under one model trained on all of (X, y).

    The reference model is `lood.train`'s network trained with seed
    int_seed(base_seed, 'influence', 0), checkpointed after every epoch; TracIn pairs
    the checkpoint after epoch e with epoch e's learning rate. The influence function is
    taken at the final parameters, over the loss `training.loss` names (as lood.train
    computes it). LiSSA's minibatches (large sets only) use int_seed(base_seed, 'influence', 1).
    """
    cfg = _influence_config(influence_cfg)
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.int64)
    records = np.asarray(records, dtype=np.int64).reshape(-1)
    bad = records[(records < 0) | (records >= len(X))]
    if bad.size:
        raise LoodInputError(f"record index {int(bad[0])} out of range: the training set has {len(X)} records (0..{len(X) - 1})")
    loss_name = training.get("loss", "mse")
    if loss_name not in TRAINING_LOSSES:
        raise LoodInputError(f"training.loss {loss_name!r} unknown; allowed: {sorted(TRAINING_LOSSES)}")
    dev = torch.device(device) if device is not None else train.default_device()
    n_classes = int(y.max()) + 1
    result = train.train_models(
        X, y, dict(arch), dict(training), [seeds.int_seed(base_seed, "influence", 0)],
        return_params=True, checkpoints=True, device=dev, n_classes=n_classes,
    )
    # train_models returns stacks with a leading model axis of length 1.
    final = [p[0].to(dev) for p in result.params]
    checkpoints = [[p[0].to(dev) for p in ck] for ck in result.checkpoints]
    forward = partial(train.forward, arch=dict(arch))
    loss = TRAINING_LOSSES[loss_name]
    Xq, yq = torch.as_tensor(X[records], dtype=torch.float32, device=dev), torch.as_tensor(y[records], device=dev)

    tracin = tracin_self_influence(forward, checkpoints, [float(lr) for lr in result.lrs], Xq, yq, loss)
    method = choose_method(n_params(final), cfg["method"], int(cfg["exact_max_params"]))
    log.info("influence: %d parameters, method %s", n_params(final), method)
    influence = influence_self(
        forward, final, torch.as_tensor(X, dtype=torch.float32, device=dev), torch.as_tensor(y, device=dev), Xq, yq,
        damping=float(cfg["damping"]), method=method, lissa_scale=float(cfg["lissa_scale"]),
        lissa_depth=int(cfg["lissa_depth"]), lissa_repeats=int(cfg["lissa_repeats"]),
        seed=seeds.int_seed(base_seed, "influence", 1), loss=loss,
    )
    return pd.DataFrame({"record": records, "tracin": tracin, "influence": influence})
