"""Network parameters as a list of tensors, and their flat-vector view."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def flatten(params: Sequence[Tensor]) -> Tensor:
    """All parameters as one flat vector (concatenated in list order)."""
    return torch.cat([p.reshape(-1) for p in params])


def unflatten(theta: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector back into tensors shaped like `like`."""
    parts = torch.split(theta, [p.numel() for p in like])
    return [part.reshape(p.shape) for part, p in zip(parts, like, strict=True)]


def n_params(params: Sequence[Tensor]) -> int:
    """The total number of scalar parameters."""
    return sum(p.numel() for p in params)
