"""TracIn self-influence over saved checkpoints (Pruthi et al. 2020; docs/math.md §10)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from lood.empirical.losses import Batch, Objective
from lood.errors import LoodInputError
from lood.influence.grads import per_record_grads


def tracin_self_influence(
    objective: Objective,
    checkpoints: Sequence[Sequence[Tensor]],
    lrs: Sequence[float],
    batch: Batch,
    chunk_size: int = 512,
) -> np.ndarray:
    """TracIn self-influence (n,): sum_e lr_e * ||grad loss(z; theta_e)||^2 for each row z of `batch`."""
    if len(checkpoints) != len(lrs) or not checkpoints:
        raise LoodInputError(
            f"TracIn needs one learning rate per checkpoint and at least one; got {len(checkpoints)} checkpoints, "
            f"{len(lrs)} lrs"
        )
    out = np.zeros(len(batch), dtype=np.float64)
    for params, lr in zip(checkpoints, lrs, strict=True):
        params = [torch.as_tensor(p) for p in params]
        with torch.no_grad():
            for s in range(0, len(batch), chunk_size):
                g = per_record_grads(objective, params, batch[s : s + chunk_size], chunk_size)
                out[s : s + chunk_size] += float(lr) * (g.double() ** 2).sum(dim=1).cpu().numpy()
    return out
