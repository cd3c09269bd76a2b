"""Per-record losses, the loss each `training.loss` minimises, and the network + loss pair they are taken on.

The network is a functional forward `f(params, X) -> logits (n, C)` with `params` a list of
tensors. A record's loss is `loss(logits_row (C,), label) -> scalar`, a callable or a name
in LOSSES, with integer class labels and centred one-hot targets t = e_y - 1/C:

- "mse": 0.5 * sum_c (f_c(x) - t_c)^2 (the regression the NNGP models);
- "mse_mean": mean_c (f_c(x) - t_c)^2, the per-record loss `lood.empirical.train` minimises for
  `training.loss: mse` (torch.nn.MSELoss); it is (2/C) * "mse", identical for C = 2;
- "cross_entropy": logsumexp(f(x)) - f_y(x).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import vmap

from lood.config import check_choice
from lood.empirical.params import unflatten
from lood.errors import LoodInputError

Forward = Callable[[Sequence[Tensor], Tensor], Tensor]
RecordLoss = Callable[[Tensor, Tensor], Tensor]
LossSpec = str | RecordLoss


def _one_hot(logits: Tensor, label: Tensor) -> Tensor:
    # arange comparison rather than F.one_hot / indexing: works under vmap.
    return (torch.arange(logits.shape[-1], device=logits.device) == label).to(logits.dtype)


def mse_record_loss(logits: Tensor, label: Tensor) -> Tensor:
    """0.5 * squared error of one record's logits against its centred one-hot target."""
    target = _one_hot(logits, label) - 1.0 / logits.shape[-1]
    return 0.5 * ((logits - target) ** 2).sum()


def mse_mean_record_loss(logits: Tensor, label: Tensor) -> Tensor:
    """Mean over outputs of the squared error against the centred one-hot target (torch MSELoss)."""
    target = _one_hot(logits, label) - 1.0 / logits.shape[-1]
    return ((logits - target) ** 2).mean()


def ce_record_loss(logits: Tensor, label: Tensor) -> Tensor:
    """Cross-entropy of one record's logits against its integer label."""
    return torch.logsumexp(logits, dim=-1) - (logits * _one_hot(logits, label)).sum()


LOSSES: dict[str, RecordLoss] = {
    "mse": mse_record_loss,
    "mse_mean": mse_mean_record_loss,
    "cross_entropy": ce_record_loss,
}
# Each schema `loss` (training.loss, as lood.empirical.train computes it) -> the per-record loss SGD minimised there.
TRAINING_LOSSES = {"mse": "mse_mean", "cross_entropy": "cross_entropy"}


def record_loss(loss: LossSpec) -> RecordLoss:
    """The per-record loss callable for a name in LOSSES or a callable (logits_row, label) -> scalar."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        allowed = f"{sorted(LOSSES)} or a callable (logits_row, label) -> scalar"
        raise LoodInputError(f"unknown loss {loss!r}; allowed: {allowed}")
    return LOSSES[loss]


def training_loss(name: str) -> str:
    """The LOSSES name of the per-record loss that `training.loss: <name>` minimises."""
    return TRAINING_LOSSES[check_choice(name, "loss", "training.loss")]


@dataclass(frozen=True)
class Batch:
    """Inputs X (n, d) and one integer target per row; slicing gives a Batch of those rows."""

    X: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(self, rows: slice | Tensor) -> Batch:
        return Batch(self.X[rows], self.targets[rows])

    def to(self, dtype: torch.dtype, device: torch.device) -> Batch:
        """As tensors: X in `dtype`, both on `device`; a LoodInputError unless X is (n, d) with n targets."""
        X = torch.as_tensor(self.X).to(device=device, dtype=dtype)
        targets = torch.as_tensor(self.targets).to(device)
        if X.ndim != 2 or targets.shape[0] != X.shape[0]:
            raise LoodInputError(
                f"X must be (n, d) with one target per row; got X {tuple(X.shape)} and targets {tuple(targets.shape)}"
            )
        return Batch(X, targets)


@dataclass(frozen=True)
class Objective:
    """A network's forward and the per-record loss taken on its logits."""

    forward: Forward
    loss: LossSpec

    def __post_init__(self) -> None:
        record_loss(self.loss)  # an unknown name fails here, not deep inside a vmap

    def record(self, params: Sequence[Tensor], x: Tensor, label: Tensor) -> Tensor:
        """The loss of one record x (d,) with its label."""
        return record_loss(self.loss)(self.forward(params, x.unsqueeze(0))[0], label)

    def mean_flat(self, like: Sequence[Tensor]) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
        """(theta, X, labels) -> the mean loss over the rows, theta the flat parameters shaped like `like`."""
        loss_fn = record_loss(self.loss)

        def mean_loss(theta: Tensor, X: Tensor, labels: Tensor) -> Tensor:
            return vmap(loss_fn)(self.forward(unflatten(theta, like), X), labels).mean()

        return mean_loss
