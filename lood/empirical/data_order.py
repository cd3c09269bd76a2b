"""The order in which SGD's minibatches visit the training records (lood.empirical.train's data order).

Per model, epoch by epoch, a ``torch.randperm`` of the training set drawn after the model's init from
its own seed; or, with a shared data order, the epochs' randperms come from one generator seeded with an
order seed, the same for a whole group of models: each epoch is a randperm of every row of X with the
excluded row (if any) deleted, the others keeping their sequence. ``training.data_order`` picks the
groups (``data_order_seed``): ``shared``, the in-models share one order and each record's out-models
another; ``aligned``, every model shares the in-models' order, so an out-model sees the in-models'
sequence of records with z deleted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lood.seeds import int_seed
from lood.settings import Training


def shared_order(order_seed: int, n: int, epochs: int, exclude: int | Sequence[int] | None = None) -> torch.Tensor:
    """(epochs, n'): per epoch a randperm of n rows from `order_seed`, row(s) `exclude` deleted, the rest re-indexed.

    The ids index X without the excluded rows, so the same seed gives every training set the same
    sequence of records, less the ones left out.
    """
    perms = epoch_orders(torch.Generator().manual_seed(int(order_seed)), n, epochs)
    if exclude is None:
        return perms
    gone = torch.as_tensor(np.unique(np.atleast_1d(exclude)), dtype=torch.int64)
    kept = perms[~torch.isin(perms, gone)].view(epochs, n - len(gone))
    return kept - torch.searchsorted(gone, kept)


def epoch_orders(g: torch.Generator, n: int, epochs: int) -> torch.Tensor:
    """(epochs, n): one randperm of the n rows per epoch."""
    return (
        torch.stack([torch.randperm(n, generator=g) for _ in range(epochs)])
        if epochs
        else torch.empty(0, n, dtype=torch.int64)
    )


def group_order_seed(
    training: Training, base_seed: int, in_keys: tuple[int, ...], out_keys: tuple[int, ...] | None = None
) -> int | None:
    """The shared order seed of one group of models under training.data_order, or None for per_model.

    in_keys: the seed path (after 'train_in_order') of the in-models the group belongs to; out_keys: that
    (after 'train_out_order') of one record's out-models, None for a group of in-models. shared: every
    group its own seed; aligned: every group the in-models' seed.
    """
    if training.data_order == "per_model":
        return None
    if out_keys is None or training.data_order == "aligned":
        return int_seed(base_seed, "train_in_order", *in_keys)
    return int_seed(base_seed, "train_out_order", *out_keys)


def data_order_seed(training: Training, base_seed: int, record: int | None) -> int | None:
    """The shared order seed of the experiment's in-models (record None) or of record r's out-models.

    per_model: None (each model draws its own order). shared: int_seed(base, 'train_in_order', 0) for the
    in-models, int_seed(base, 'train_out_order', r) for record r's out-models. aligned: the in-models'
    seed for every model.
    """
    return group_order_seed(training, base_seed, (0,), None if record is None else (int(record),))
