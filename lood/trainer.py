"""The batched SGD kernel behind lood.train: M stacked models, a hand-written backward pass, no autograd graph.

Each model's update is the one it would get alone (lood.train's docstring states the protocol);
the stack only shares the matrix products.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from lood.settings import Arch, Training, enum

Params = list[torch.Tensor]

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
    "erf": torch.erf,
}
if set(_ACTIVATIONS) != set(enum("activation")):  # the schema's enum is the one list of activations
    raise ImportError(f"trainer activations {sorted(_ACTIVATIONS)} differ from the schema's {enum('activation')}")


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The torch function of a schema activation (settings.enum('activation'))."""
    return _ACTIVATIONS[name]


def _act_backward(name: str, g: torch.Tensor, z: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """dL/dz from dL/dh for h = act(z)."""
    if name == "relu":
        return torch.ops.aten.threshold_backward(g, h, 0)
    if name == "gelu":
        return torch.ops.aten.gelu_backward(g, z)
    return g * (2.0 / math.sqrt(math.pi)) * torch.exp(-z * z)


def sgd_run(
    params: Params,
    X: torch.Tensor,
    T: torch.Tensor,
    order: torch.Tensor,
    arch: Arch,
    training: Training,
    lrs: np.ndarray,
    on_epoch: Callable[[int], None] | None,
) -> None:
    """Train the stacked `params` in place: X (N, d), T (N, C) targets, order (M, epochs, n) row ids."""
    act = activation(arch.activation)
    bias = bool(arch.bias)
    step = 2 if bias else 1
    # Weights are trained as (M, fan_out, fan_in) copies (nn.Linear's layout): on CPU the batched
    # matmuls of the narrow output layer (C columns) run several times faster in this layout.
    Wt = [w.transpose(1, 2).contiguous() for w in params[::step]]
    bs = params[1::2] if bias else []
    momentum = float(training.momentum)
    buf_W = [torch.zeros_like(W) for W in Wt] if momentum else []
    buf_b = [torch.zeros_like(b) for b in bs] if momentum else []
    mse = training.loss == "mse"
    relu = arch.activation == "relu"
    n_layers, n_classes, batch_size = len(Wt), T.shape[1], int(training.batch_size)

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
                g_below = _act_backward(arch.activation, torch.bmm(g, Wt[i]), zs[i - 1], hs[i]) if i else None
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
