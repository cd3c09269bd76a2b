"""Fully connected networks matching the NNGP kernel, trained many at once with SGD.

Parameters are plain tensors, ``[W_1, b_1, ..., W_L, b_L, W_out, b_out]`` (biases
only when ``arch['bias']``), with ``W`` of shape (fan_in, fan_out) so that a layer is
``h @ W + b``. A *stack* of M models has the same list with a leading model axis:
``W`` (M, fan_in, fan_out), ``b`` (M, fan_out). ``forward`` accepts either.

Training protocol (one model, seed s): a ``torch.Generator`` seeded with s draws the
initial parameters (layer by layer, W then b) and then, epoch by epoch, a
``torch.randperm`` of the training set; minibatches are consecutive slices of it and
the last partial batch is kept (as ``DataLoader(drop_last=False)``). Plain SGD with
optional momentum (torch.optim.SGD semantics, no dampening, no weight decay); the
learning rate is multiplied by ``lr_gamma`` at every epoch listed in ``lr_milestones``
(MultiStepLR semantics). Losses, each averaged over the batch:

* ``mse``: mean over batch *and* outputs of (f - t)^2 with centred one-hot targets
  t = e_y - 1/C, i.e. ``torch.nn.MSELoss()`` (the regression the NNGP posterior models);
* ``cross_entropy``: ``torch.nn.CrossEntropyLoss()`` on the logits.

``train_models`` trains M models as one stack with batched matmuls and a hand-written
backward pass (no autograd graph): each model's result is the one it would have alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable, NamedTuple

import numpy as np
import torch

from lood.errors import LoodInputError
from lood.seeds import int_seed

ACTIVATIONS = ("relu", "gelu", "erf")
LOSSES = ("mse", "cross_entropy")

Params = list[torch.Tensor]


class TrainResult(NamedTuple):
    """What ``train_models`` returns; the parts not asked for are None."""

    logits: np.ndarray | None  # (M, P, C) float32 on eval_X
    params: Params | None  # final stacked parameters (M, ...), on the CPU
    checkpoints: list[Params] | None  # checkpoints[e]: stacked parameters after epoch e, on the CPU
    lrs: np.ndarray | None  # lrs[e]: the learning rate used during epoch e (TracIn's step weights)


# ----------------------------------------------------------------------------- architecture


def _check_arch(arch: dict) -> None:
    if arch["activation"] not in ACTIVATIONS:
        raise LoodInputError(f"model.activation {arch['activation']!r} unknown; allowed: {', '.join(ACTIVATIONS)}")
    if int(arch["depth"]) < 0 or int(arch["width"]) < 1:
        raise LoodInputError(f"model.depth must be >= 0 and model.width >= 1 (got {arch['depth']}, {arch['width']})")


def _activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    return {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "erf": torch.erf}[name]


def layer_sizes(arch: dict, d: int, n_classes: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every layer, the output layer last."""
    widths = [d] + [int(arch["width"])] * int(arch["depth"]) + [n_classes]
    return list(zip(widths[:-1], widths[1:]))


def _init_from(generator: torch.Generator, arch: dict, d: int, n_classes: int, dtype: torch.dtype) -> Params:
    params: Params = []
    for fan_in, fan_out in layer_sizes(arch, d, n_classes):
        params.append(torch.randn(fan_in, fan_out, generator=generator, dtype=dtype) * (float(arch["w_std"]) / math.sqrt(fan_in)))
        if arch["bias"]:
            params.append(torch.randn(fan_out, generator=generator, dtype=dtype) * float(arch["b_std"]))
    return params


def init_params(arch: dict, d: int, n_classes: int, seed: int, dtype: torch.dtype = torch.float32) -> Params:
    """One model's initial parameters: W ~ N(0, w_std^2 / fan_in), b ~ N(0, b_std^2)."""
    _check_arch(arch)
    return _init_from(torch.Generator().manual_seed(int(seed)), arch, d, n_classes, dtype)


def forward(params: Params, X: torch.Tensor, arch: dict) -> torch.Tensor:
    """Logits of one model (X (n, d) -> (n, C)) or of a stack (X (n, d) or (M, n, d) -> (M, n, C))."""
    act = _activation(arch["activation"])
    step = 2 if arch["bias"] else 1
    n_layers = len(params) // step
    h = X
    for i in range(n_layers):
        h = h @ params[i * step]
        if arch["bias"]:
            h = h + params[i * step + 1].unsqueeze(-2)
        if i < n_layers - 1:
            h = act(h)
    return h


# ----------------------------------------------------------------------------- data


def training_set(X: np.ndarray, y: np.ndarray, exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """X and y without row `exclude` (every other record keeps its own label), or unchanged."""
    if exclude is None:
        return X, y
    exclude = int(exclude)
    if not 0 <= exclude < len(X):
        raise LoodInputError(f"record {exclude} out of range: the training set has {len(X)} records (0..{len(X) - 1})")
    keep = np.arange(len(X)) != exclude
    return X[keep], y[keep]


def epoch_lrs(training: dict) -> np.ndarray:
    """The learning rate used during each epoch (MultiStepLR: x lr_gamma at each milestone)."""
    epochs = np.arange(int(training["epochs"]))
    passed = (np.asarray(training.get("lr_milestones") or [], dtype=np.int64)[None, :] <= epochs[:, None]).sum(axis=1)
    return float(training["lr"]) * float(training.get("lr_gamma", 0.1)) ** passed


def _check_training(training: dict) -> None:
    loss = training.get("loss", "mse")
    if loss not in LOSSES:
        raise LoodInputError(f"training.loss {loss!r} unknown; allowed: {', '.join(LOSSES)}")
    if int(training["epochs"]) < 0 or int(training["batch_size"]) < 1:
        raise LoodInputError(f"training.epochs must be >= 0 and training.batch_size >= 1 (got {training['epochs']}, {training['batch_size']})")


def default_device() -> torch.device:
    """CUDA when available (whichever device the scheduler exposed), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ----------------------------------------------------------------------------- batched SGD


def _act_backward(name: str, g: torch.Tensor, z: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """dL/dz from dL/dh for h = act(z)."""
    if name == "relu":
        return torch.ops.aten.threshold_backward(g, h, 0)
    if name == "gelu":
        return torch.ops.aten.gelu_backward(g, z)
    return g * (2.0 / math.sqrt(math.pi)) * torch.exp(-z * z)


def _sgd_run(
    params: Params,
    X: torch.Tensor,
    T: torch.Tensor,
    order: torch.Tensor,
    arch: dict,
    training: dict,
    lrs: np.ndarray,
    on_epoch: Callable[[int], None] | None,
) -> None:
    """Train the stacked `params` in place: X (N, d), T (N, C) targets, order (M, epochs, n) row ids."""
    act = _activation(arch["activation"])
    bias = bool(arch["bias"])
    step = 2 if bias else 1
    # Weights are trained as (M, fan_out, fan_in) copies (nn.Linear's layout): on CPU the batched
    # matmuls of the narrow output layer (C columns) run several times faster in this layout.
    Wt = [w.transpose(1, 2).contiguous() for w in params[::step]]
    bs = params[1::2] if bias else []
    momentum = float(training.get("momentum", 0.0))
    buf_W = [torch.zeros_like(W) for W in Wt] if momentum else []
    buf_b = [torch.zeros_like(b) for b in bs] if momentum else []
    mse = training.get("loss", "mse") == "mse"
    relu = arch["activation"] == "relu"
    n_layers, n_classes, batch_size = len(Wt), T.shape[1], int(training["batch_size"])

    def sync() -> None:
        for W, w in zip(Wt, params[::step]):
            w.copy_(W.transpose(1, 2))

    for epoch in range(order.shape[1]):
        lr = float(lrs[epoch])
        for start in range(0, order.shape[2], batch_size):
            idx = order[:, epoch, start : start + batch_size]  # (M, b) rows of each model's minibatch
            b = idx.shape[1]
            hs, zs = [X[idx]], []
            for i in range(n_layers):
                z = torch.baddbmm(bs[i].unsqueeze(1), hs[-1], Wt[i].transpose(1, 2)) if bias else torch.bmm(hs[-1], Wt[i].transpose(1, 2))
                if i < n_layers - 1:
                    # ReLU's backward needs only its output, so it can overwrite z in place
                    zs.append(None if relu else z)
                    hs.append(z.clamp_min_(0.0) if relu else act(z))
            # g = dL/dz, starting from the logits z; the loss mean's 1/b (and MSE's 2/C) is folded in here
            if mse:
                g = (z - T[idx]).mul_(2.0 / (b * n_classes))
            else:
                g = torch.softmax(z, dim=-1).sub_(T[idx]).div_(b)
            for i in reversed(range(n_layers)):
                g_below = _act_backward(arch["activation"], torch.bmm(g, Wt[i]), zs[i - 1], hs[i]) if i else None
                # dL/dW = g^T h goes straight into W (or the momentum buffer): fusing the update
                # into the matmul saves a weight-sized temporary and a pass over it
                if momentum:
                    buf_W[i].baddbmm_(g.transpose(1, 2), hs[i], beta=momentum)
                    Wt[i].sub_(buf_W[i], alpha=lr)
                else:
                    Wt[i].baddbmm_(g.transpose(1, 2), hs[i], alpha=-lr)
                if bias:
                    grad = g.sum(dim=1)
                    if momentum:
                        grad = buf_b[i].mul_(momentum).add_(grad)
                    bs[i].sub_(grad, alpha=lr)
                g = g_below
        if on_epoch is not None:
            sync()
            on_epoch(epoch)
    sync()


def train_models(
    X: np.ndarray,
    y: np.ndarray,
    arch: dict,
    training: dict,
    seeds: Sequence[int],
    exclude: int | None = None,
    eval_X: np.ndarray | None = None,
    return_params: bool = False,
    checkpoints: bool = False,
    device: str | torch.device | None = None,
    n_classes: int | None = None,
) -> TrainResult:
    """Train len(seeds) models at once on (X, y) minus row `exclude`; model m's init and data order come from seeds[m]."""
    _check_arch(arch)
    _check_training(training)
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.int64)
    if X.ndim != 2 or y.shape != (len(X),):
        raise LoodInputError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
    C = int(n_classes) if n_classes is not None else int(y.max()) + 1
    if y.min() < 0 or y.max() >= C:
        raise LoodInputError(f"labels must lie in 0..{C - 1}, got {y.min()}..{y.max()}")
    dev = torch.device(device) if device is not None else default_device()
    Xtr, ytr = training_set(X, y, exclude)
    n, d = Xtr.shape
    epochs = int(training["epochs"])

    inits, orders = [], []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        inits.append(_init_from(g, arch, d, C, torch.float32))
        orders.append(torch.stack([torch.randperm(n, generator=g) for _ in range(epochs)]) if epochs else torch.empty(0, n, dtype=torch.int64))
    params = [torch.stack(ps).to(dev) for ps in zip(*inits)]
    order = torch.stack(orders).to(dev)

    Xt = torch.as_tensor(Xtr, dtype=torch.float32, device=dev)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(ytr, device=dev), C).to(torch.float32)
    T = onehot - 1.0 / C if training.get("loss", "mse") == "mse" else onehot
    lrs = epoch_lrs(training)

    saved: list[Params] = []

    def save(_: int) -> None:
        saved.append([p.detach().to("cpu", copy=True) for p in params])

    with torch.no_grad():
        _sgd_run(params, Xt, T, order, arch, training, lrs, save if checkpoints else None)
        logits = None
        if eval_X is not None:
            E = torch.as_tensor(np.asarray(eval_X), dtype=torch.float32, device=dev)
            logits = forward(params, E, arch).cpu().numpy()
            diverged = np.flatnonzero(~np.isfinite(logits).reshape(len(seeds), -1).all(axis=1))
            if len(diverged):
                raise LoodInputError(
                    f"{len(diverged)} of {len(seeds)} models diverged (non-finite logits; first seed "
                    f"{seeds[diverged[0]]}): lower training.lr (now {training['lr']}) or the batch noise"
                )
    return TrainResult(
        logits=logits,
        params=[p.cpu() for p in params] if return_params else None,
        checkpoints=saved if checkpoints else None,
        lrs=lrs if checkpoints else None,
    )


# ----------------------------------------------------------------------------- workflow entry points


def train_in_chunk(
    X: np.ndarray,
    y: np.ndarray,
    arch: dict,
    training: dict,
    base_seed: int,
    model_ids: Sequence[int],
    eval_X: np.ndarray,
    return_params: bool = False,
) -> np.ndarray | tuple[np.ndarray, Params]:
    """Logits (M, P, C) of in-models `model_ids` (seeds int_seed(base, 'train_in', 0, m)) trained on all of X; with their stacked params if asked."""
    model_seeds = [int_seed(base_seed, "train_in", 0, int(m)) for m in model_ids]
    res = train_models(X, y, arch, training, model_seeds, eval_X=eval_X, return_params=return_params)
    return (res.logits, res.params) if return_params else res.logits


def train_out_group(
    X: np.ndarray,
    y: np.ndarray,
    arch: dict,
    training: dict,
    base_seed: int,
    records: Sequence[int],
    n_out: int,
    eval_X_per_record: np.ndarray | Sequence[np.ndarray],
    return_params: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[Params]]:
    """Logits (G, n_out, P, C) on eval_X_per_record[g] of n_out models trained without row r = records[g] (seeds int_seed(base, 'train_out', r, m)); with G param stacks if asked."""
    C = int(np.max(y)) + 1
    logits, params = [], []
    for r, eval_X in zip(records, eval_X_per_record, strict=True):
        model_seeds = [int_seed(base_seed, "train_out", int(r), m) for m in range(int(n_out))]
        res = train_models(X, y, arch, training, model_seeds, exclude=int(r), eval_X=eval_X, return_params=return_params, n_classes=C)
        logits.append(res.logits)
        params.append(res.params)
    return (np.stack(logits), params) if return_params else np.stack(logits)
