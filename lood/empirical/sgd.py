"""The batched SGD step behind lood.empirical.train: M stacked models, a hand-written backward pass, no autograd.

Each model's update is the one it would get alone (lood.empirical.train's docstring states the protocol);
the stack only shares the matrix products. Two paths, chosen by the shape of the data order:

* per-model orders (M, epochs, n): every layer is a batched matmul (bmm) of M small products;
* one shared order (epochs, n): all models see the same minibatch x (b, d). The minibatch is
  gathered once instead of M times, the first layer's forward is a bmm against x broadcast
  (no copy), and its weight gradient one G^T (M*width, b) @ x (b, d) product. The layers above
  stay batched. Every product reuses each weight b times however it is grouped, so neither
  path reaches the BLAS's large-matmul rate at b = 64 (bench/README.md has the measurements).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from lood.config import enum
from lood.settings import Arch, Training

Params = list[torch.Tensor]

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "gelu": torch.nn.functional.gelu,
    "erf": torch.erf,
}
if set(_ACTIVATIONS) != set(enum("activation")):  # the schema's enum is the one list of activations
    raise ImportError(f"trainer activations {sorted(_ACTIVATIONS)} differ from the schema's {enum('activation')}")


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The torch function of a schema activation (config.enum('activation'))."""
    return _ACTIVATIONS[name]


def _act_backward(name: str, g: torch.Tensor, z: torch.Tensor | None, h: torch.Tensor) -> torch.Tensor:
    """dL/dz from dL/dh for h = act(z)."""
    if name == "relu":
        return torch.ops.aten.threshold_backward(g, h, 0)
    if name == "gelu":
        return torch.ops.aten.gelu_backward(g, z)
    return g * (2.0 / math.sqrt(math.pi)) * torch.exp(-z * z)


def _first_layer_shared(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """z (M, b, f) of every model on one shared minibatch x (b, d): a bmm against x broadcast (stride 0, no copy).

    Measured (1 and 2 MKL threads, 100 x 256 x 784 weights, b = 64): the bmm runs at 69-76 and
    146 GFLOP/s where the single (b, d) @ (d, M*f) product runs at 60 and 87: the product's small
    side is b whichever way it is grouped, and MKL handles the wide single product worse.
    """
    M = W.shape[0]
    xs = x.expand(M, *x.shape)
    return torch.baddbmm(b.unsqueeze(1), xs, W.transpose(1, 2)) if b is not None else torch.bmm(xs, W.transpose(1, 2))


def _first_layer_grad_shared(target: torch.Tensor, g: torch.Tensor, x: torch.Tensor, beta: float, alpha: float) -> None:
    """target (M, f, d) <- beta * target + alpha * g_m^T x for every model m, as one (M*f, b) @ (b, d) product."""
    M, f, d = target.shape
    G = g.transpose(0, 1).reshape(len(x), M * f)  # (b, M*f); a copy only when g is laid out (M, b, f)
    target.view(M * f, d).addmm_(G.T, x, beta=beta, alpha=alpha)


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
    """Train stacked `params` in place on X (N, d), targets T (N, C), row order (M, epochs, n) or shared (epochs, n)."""
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
    shared = order.dim() == 2
    n_layers, n_classes, batch_size = len(Wt), T.shape[1], int(training.batch_size)
    epochs, n = order.shape[-2:]

    def sync() -> None:
        for W, w in zip(Wt, params[::step], strict=True):
            w.copy_(W.transpose(1, 2))

    for epoch in range(epochs):
        lr = float(lrs[epoch])
        for start in range(0, n, batch_size):
            # rows of the minibatch: (b,) shared by all models, or (M, b) one row per model
            idx = order[epoch, start : start + batch_size] if shared else order[:, epoch, start : start + batch_size]
            b = idx.shape[-1]
            hs, zs = [X[idx]], []
            for i in range(n_layers):
                if i == 0 and shared:
                    z = _first_layer_shared(hs[0], Wt[0], bs[0] if bias else None)
                elif bias:
                    z = torch.baddbmm(bs[i].unsqueeze(1), hs[-1], Wt[i].transpose(1, 2))
                else:
                    z = torch.bmm(hs[-1], Wt[i].transpose(1, 2))
                if i < n_layers - 1:
                    # ReLU's backward needs only its output, so it can overwrite z in place
                    zs.append(None if relu else z)
                    hs.append(z.clamp_min_(0.0) if relu else act(z))
            # g = dL/dz, starting from the logits z; the loss mean's 1/b (and MSE's 2/C) is folded in here.
            # T[idx] is (b, C) when shared and broadcasts over the models.
            if mse:
                g = (z - T[idx]).mul_(2.0 / (b * n_classes))
            else:
                g = torch.softmax(z, dim=-1).sub_(T[idx]).div_(b)
            for i in reversed(range(n_layers)):
                g_below = _act_backward(arch.activation, torch.bmm(g, Wt[i]), zs[i - 1], hs[i]) if i else None
                # dL/dW = g^T h goes straight into W (or the momentum buffer): fusing the update
                # into the matmul saves a weight-sized temporary and a pass over it
                target, beta, alpha = (buf_W[i], momentum, 1.0) if momentum else (Wt[i], 1.0, -lr)
                if i == 0 and shared:
                    _first_layer_grad_shared(target, g, hs[0], beta, alpha)
                else:
                    target.baddbmm_(g.transpose(1, 2), hs[i], beta=beta, alpha=alpha)
                if momentum:
                    Wt[i].sub_(buf_W[i], alpha=lr)
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
