"""Fully connected networks matching the NNGP kernel, trained many at once with SGD.

Parameters are plain tensors, ``[W_1, b_1, ..., W_L, b_L, W_out, b_out]`` (biases
only when ``arch.bias``), with ``W`` of shape (fan_in, fan_out) so that a layer is
``h @ W + b``. A *stack* of M models has the same list with a leading model axis:
``W`` (M, fan_in, fan_out), ``b`` (M, fan_out). ``forward`` accepts either.

Training protocol (one model, seed s): a ``torch.Generator`` seeded with s draws the
initial parameters (layer by layer, W then b) and then, epoch by epoch, a
``torch.randperm`` of the training set; minibatches are consecutive slices of it and
the last partial batch is kept (as ``DataLoader(drop_last=False)``). With a shared data
order (lood.empirical.data_order, ``training.data_order``), seed s draws only the initialisation. Plain SGD with
optional momentum (torch.optim.SGD semantics, no dampening, no weight decay); the
learning rate is multiplied by ``lr_gamma`` at every epoch listed in ``lr_milestones``
(MultiStepLR semantics). Losses (``config.enum('loss')``), each averaged over the batch:

* ``mse``: mean over batch *and* outputs of (f - t)^2 with centred one-hot targets
  t = e_y - 1/C, i.e. ``torch.nn.MSELoss()`` (the regression the NNGP posterior models);
* ``cross_entropy``: ``torch.nn.CrossEntropyLoss()`` on the logits.

``train_models`` trains M models as one stack (lood.empirical.sgd): each model's result is the
one it would have alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

from lood.config import enum
from lood.empirical.data_order import data_order_seed, epoch_orders, shared_order
from lood.empirical.sgd import Params, activation, sgd_run
from lood.empirical.training_job import TrainingJob
from lood.errors import LoodInputError
from lood.records import check_records
from lood.seeds import int_seed
from lood.settings import Arch, Training

# Training targets per loss: centred one-hot for MSE (the GP's regression targets), one-hot for cross-entropy.
_TARGETS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mse": lambda onehot: onehot - 1.0 / onehot.shape[1],
    "cross_entropy": lambda onehot: onehot,
}
if set(_TARGETS) != set(enum("loss")):  # the schema's enum is the one list of losses
    raise ImportError(f"train losses {sorted(_TARGETS)} differ from the schema's {enum('loss')}")


class Models(NamedTuple):
    """The M models ``train_models`` trains as one stack: their seeds, the training set and data order they share."""

    seeds: Sequence[int]  # model m's initialisation (and without order_seed its data order) comes from seeds[m]
    order_seed: int | None = (
        None  # one data order for all M models (lood.empirical.data_order.data_order_seed), or None
    )
    exclude: int | tuple[int, ...] | None = None  # the row(s) of X their training set leaves out, or None


class Outputs(NamedTuple):
    """The parts of ``TrainResult`` that ``train_models`` is asked for; the others are None."""

    eval_X: np.ndarray | None = None  # logits (M, P, C) at these P inputs
    params: bool = False  # the final stacked parameters
    checkpoints: bool = False  # the stacked parameters after every epoch, and the epochs' learning rates


class TrainResult(NamedTuple):
    """What ``train_models`` returns; the parts not asked for are None."""

    logits: np.ndarray | None  # (M, P, C) float32 on eval_X
    params: Params | None  # final stacked parameters (M, ...), on the CPU
    checkpoints: list[Params] | None  # checkpoints[e]: stacked parameters after epoch e, on the CPU
    lrs: np.ndarray | None  # lrs[e]: the learning rate used during epoch e (TracIn's step weights)


# ----------------------------------------------------------------------------- architecture


def layer_sizes(arch: Arch, d: int, n_classes: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of every layer, the output layer last."""
    widths = [d] + [int(arch.width)] * int(arch.depth) + [n_classes]
    return list(zip(widths[:-1], widths[1:], strict=True))


def _init_from(generator: torch.Generator, arch: Arch, d: int, n_classes: int, dtype: torch.dtype) -> Params:
    params: Params = []
    for fan_in, fan_out in layer_sizes(arch, d, n_classes):
        params.append(
            torch.randn(fan_in, fan_out, generator=generator, dtype=dtype) * (float(arch.w_std) / math.sqrt(fan_in))
        )
        if arch.bias:
            params.append(torch.randn(fan_out, generator=generator, dtype=dtype) * float(arch.b_std))
    return params


def init_params(arch: Arch, d: int, n_classes: int, seed: int, dtype: torch.dtype = torch.float32) -> Params:
    """One model's initial parameters: W ~ N(0, w_std^2 / fan_in), b ~ N(0, b_std^2)."""
    return _init_from(torch.Generator().manual_seed(int(seed)), arch, d, n_classes, dtype)


def forward(params: Params, X: torch.Tensor, arch: Arch) -> torch.Tensor:
    """Logits of one model (X (n, d) -> (n, C)) or of a stack (X (n, d) or (M, n, d) -> (M, n, C))."""
    act = activation(arch.activation)
    step = 2 if arch.bias else 1
    n_layers = len(params) // step
    h = X
    for i in range(n_layers):
        h = h @ params[i * step]
        if arch.bias:
            h = h + params[i * step + 1].unsqueeze(-2)
        if i < n_layers - 1:
            h = act(h)
    return h


# ----------------------------------------------------------------------------- data


def training_set(
    X: np.ndarray, y: np.ndarray, exclude: int | Sequence[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """X and y without row(s) `exclude` (every other record keeps its own label), or unchanged."""
    if exclude is None:
        return X, y
    keep = ~np.isin(np.arange(len(X)), check_records(np.atleast_1d(exclude), len(X)))
    return X[keep], y[keep]


def epoch_lrs(training: Training) -> np.ndarray:
    """The learning rate used during each epoch (MultiStepLR: x lr_gamma at each milestone)."""
    if training.lr == "auto":  # the workflow resolves it per experiment (rule learning_rate)
        raise LoodInputError("training.lr is auto: resolve it first with lood.empirical.step_size.lr_table / resolved")
    epochs = np.arange(int(training.epochs))
    passed = (np.asarray(training.lr_milestones, dtype=np.int64)[None, :] <= epochs[:, None]).sum(axis=1)
    return float(training.lr) * float(training.lr_gamma) ** passed


def init_and_orders(
    arch: Arch,
    d: int,
    n_classes: int,
    n: int,
    epochs: int,
    seeds: Sequence[int],
    order_seed: int | None,
    exclude: int | Sequence[int] | None = None,
) -> tuple[Params, torch.Tensor]:
    """Stacked initial parameters of the models `seeds` and their data order over the rows of X (n) minus `exclude`.

    Row ids index the training set (X without row `exclude`). The order is (M, epochs, n'), model m's
    epochs drawn after its init from seeds[m]'s generator, or with `order_seed` one (epochs, n') order
    for all models (``shared_order``).
    """
    n_train = n - (0 if exclude is None else len(np.unique(np.atleast_1d(exclude))))
    inits, orders = [], []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        inits.append(_init_from(g, arch, d, n_classes, torch.float32))
        if order_seed is None:
            orders.append(epoch_orders(g, n_train, epochs))
    params = [torch.stack(ps) for ps in zip(*inits, strict=True)]
    if order_seed is None:
        return params, torch.stack(orders)
    return params, shared_order(order_seed, n, epochs, exclude)


def default_device() -> torch.device:
    """CUDA when available (whichever device the scheduler exposed), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ----------------------------------------------------------------------------- training


def train_models(
    X: np.ndarray,
    y: np.ndarray,
    arch: Arch,
    training: Training,
    models: Models,
    outputs: Outputs | None = None,
    device: str | torch.device | None = None,
    n_classes: int | None = None,
) -> TrainResult:
    """Train len(models.seeds) models at once on (X, y) minus row models.exclude; model m's init comes from seeds[m].

    The data order comes from models.order_seed, shared by all models, or when it is None from each
    model's own seed (see ``init_and_orders``); ``data_order_seed`` turns training.data_order into it.
    """
    seeds, order_seed, exclude = models
    eval_X, return_params, checkpoints = outputs if outputs is not None else Outputs()
    X = np.asarray(X)
    y = np.asarray(y, dtype=np.int64)
    if X.ndim != 2 or y.shape != (len(X),):
        raise LoodInputError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
    C = int(n_classes) if n_classes is not None else int(y.max()) + 1
    if y.min() < 0 or y.max() >= C:
        raise LoodInputError(f"labels must lie in 0..{C - 1}, got {y.min()}..{y.max()}")
    dev = torch.device(device) if device is not None else default_device()
    Xtr, ytr = training_set(X, y, exclude)
    epochs = int(training.epochs)

    params, order = init_and_orders(arch, X.shape[1], C, len(X), epochs, seeds, order_seed, exclude)
    params, order = [p.to(dev) for p in params], order.to(dev)

    Xt = torch.as_tensor(Xtr, dtype=torch.float32, device=dev)
    T = _TARGETS[training.loss](torch.nn.functional.one_hot(torch.as_tensor(ytr, device=dev), C).to(torch.float32))
    lrs = epoch_lrs(training)

    saved: list[Params] = []

    def save(_: int) -> None:
        saved.append([p.detach().to("cpu", copy=True) for p in params])

    with torch.no_grad():
        sgd_run(params, Xt, T, order, arch, training, lrs, save if checkpoints else None)
        logits = None
        if eval_X is not None:
            E = torch.as_tensor(np.asarray(eval_X), dtype=torch.float32, device=dev)
            logits = forward(params, E, arch).cpu().numpy()
            diverged = np.flatnonzero(~np.isfinite(logits).reshape(len(seeds), -1).all(axis=1))
            if len(diverged):
                raise LoodInputError(
                    f"{len(diverged)} of {len(seeds)} models diverged (non-finite logits; first seed "
                    f"{seeds[diverged[0]]}): lower training.lr (now {training.lr}) or the batch noise"
                )
    return TrainResult(
        logits=logits,
        params=[p.cpu() for p in params] if return_params else None,
        checkpoints=saved if checkpoints else None,
        lrs=lrs if checkpoints else None,
    )


# ----------------------------------------------------------------------------- workflow entry points


def train_in_chunk(
    job: TrainingJob, model_ids: Sequence[int], eval_X: np.ndarray, return_params: bool = False
) -> np.ndarray | tuple[np.ndarray, Params]:
    """Logits (M, P, C) of in-models `model_ids` trained on all of job.X; with their stacked params if asked.

    Model m's seed is int_seed(base, 'train_in', 0, m); a shared data order (``data_order_seed``) is the
    same for every chunk, so the in-models do not depend on how they are split into jobs.
    """
    model_seeds = [int_seed(job.base_seed, "train_in", 0, int(m)) for m in model_ids]
    models = Models(model_seeds, order_seed=data_order_seed(job.training, job.base_seed, None))
    res = train_models(job.X, job.y, job.arch, job.training, models, Outputs(eval_X, params=return_params))
    return (res.logits, res.params) if return_params else res.logits


def train_out_group(
    job: TrainingJob, records: Sequence[int], eval_X_per_record: Sequence[np.ndarray], return_params: bool = False
) -> np.ndarray | tuple[np.ndarray, list[Params]]:
    """Logits (G, n_out, P, C) on eval_X_per_record[g] of training.n_out models trained without row r = records[g].

    Model m of record r has seed int_seed(base, 'train_out', r, m); the data order is ``data_order_seed``'s.
    Also returns the G param stacks if asked.
    """
    stacks = [
        Models(
            [int_seed(job.base_seed, "train_out", int(r), m) for m in range(int(job.training.n_out))],
            order_seed=data_order_seed(job.training, job.base_seed, int(r)),
            exclude=int(r),
        )
        for r in records
    ]
    return train_stacks(job, stacks, eval_X_per_record, return_params)


def train_stacks(
    job: TrainingJob, stacks: Sequence[Models], eval_X_per_stack: Sequence[np.ndarray], return_params: bool = False
) -> np.ndarray | tuple[np.ndarray, list[Params]]:
    """Logits (S, M, P, C) of each stack of models on its own eval_X_per_stack[s]; also the S param stacks if asked.

    Each is one ``train_models`` call on (job.X, job.y) less that stack's excluded row, C taken from all of y;
    the stacks carry their own seeds.
    """
    logits, params = [], []
    for models, eval_X in zip(stacks, eval_X_per_stack, strict=True):
        outputs = Outputs(eval_X, params=return_params)
        res = train_models(job.X, job.y, job.arch, job.training, models, outputs, n_classes=job.n_classes)
        logits.append(res.logits)
        params.append(res.params)
    return (np.stack(logits), params) if return_params else np.stack(logits)
