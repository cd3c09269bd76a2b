"""Scale-dependent steps from the data: the learning rate from the NTK, and LiSSA's scale from the Hessian.

`training.lr: auto` takes the largest step that keeps gradient descent on the linearised network
stable, lr < 2 (1 + momentum) / (h λ), with λ the top eigenvalue of the NTK Gram matrix Θ/b of
a minibatch and h the loss's curvature in the outputs, times a safety factor (docs/math.md §13).
`influence.lissa_scale: auto` sets LiSSA's scale a margin above the Hessian's spectral radius
(docs/math.md §10).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from lood import seeds
from lood.config import enum
from lood.errors import LoodInputError
from lood.io import read_lr
from lood.settings import Arch, Training

# Fraction of the linearised stability bound that `lr: auto` takes, per loss (docs/math.md §13).
# The bound is exact for the infinite-width NTK at initialisation; a finite network's own NTK
# scatters around it (single width-128 networks: 0.55-1.57x the expectation on digits) and moves
# during training. With MSE a step past a network's own bound grows without limit: 2-layer
# networks diverged from 4x the bound (digits, Fashion-MNIST), 4-layer ones from 2x (1 of 100),
# so MSE takes half of it. Cross-entropy's gradient is bounded, so an overshoot saturates
# instead; 4-layer networks diverged from 4x (GELU) and 8x (ReLU) the bound, so it takes all of it.
LR_SAFETY = {"mse": 0.5, "cross_entropy": 1.0}
if set(LR_SAFETY) != set(enum("loss")):  # the schema's enum is the one list of losses
    raise ImportError(f"step_size.LR_SAFETY {sorted(LR_SAFETY)} differ from the schema's losses {enum('loss')}")
# The NTK is computed on at most this many training rows (a seeded subsample beyond): the top
# eigenvalue of Θ/n is a mean over pairs of records, which a subsample of 2,048 estimates well.
NTK_MAX_ROWS = 2048
# Minibatches drawn to estimate the top eigenvalue of a batch's Θ_BB / b (their mean is used).
NTK_BATCHES = 32
# `lissa_scale: auto` is this many times the estimated spectral radius of H + damping I: LiSSA
# needs the scale above half of it, and the power-iteration estimate approaches it from below.
LISSA_MARGIN = 1.5


def loss_curvature(loss: str, n_classes: int) -> float:
    """The largest eigenvalue h of the per-record loss's Hessian in the logits (per unit of 1/batch), docs/math.md §13.

    mse (torch's MSELoss, a mean over the C outputs): 2/C. cross_entropy: the Hessian
    diag(p) − p pᵀ has eigenvalues at most 1/2, reached by two classes at p = 1/2.
    """
    if loss == "mse":
        return 2.0 / int(n_classes)
    if loss == "cross_entropy":
        return 0.5
    raise LoodInputError(f"training.loss {loss!r} unknown; allowed: mse, cross_entropy")


def ntk_eigenvalues(theta: np.ndarray, batch_size: int, seed: int) -> tuple[float, float]:
    """(λ_max(Θ/n), mean over NTK_BATCHES seeded minibatches B of λ_max(Θ_BB/|B|)) for an n x n NTK Θ."""
    n = len(theta)
    full = float(np.linalg.eigvalsh(theta)[-1]) / n
    b = min(int(batch_size), n)
    if b >= n:
        return full, full
    rng = seeds.rng(seed, "step_size", 1)
    per_batch = []
    for _ in range(NTK_BATCHES):
        idx = rng.choice(n, size=b, replace=False)
        per_batch.append(float(np.linalg.eigvalsh(theta[np.ix_(idx, idx)])[-1]) / b)
    return full, float(np.mean(per_batch))


def stable_lr(lam: float, loss: str, n_classes: int, momentum: float) -> float:
    """The linearised stability bound 2 (1 + momentum) / (h λ) on the step (docs/math.md §13)."""
    return 2.0 * (1.0 + float(momentum)) / (loss_curvature(loss, n_classes) * float(lam))


def lr_table(X: np.ndarray, y: np.ndarray, arch: Arch, training: Training, base_seed: int) -> pd.DataFrame:
    """One row: the NTK's top eigenvalues, the stability bound and the step used (training.lr, or auto's choice)."""
    # Imported here: the training and influence jobs read lr tables in the torch environment, without JAX.
    from lood.analytic.kernel import ntk_kernel

    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    n_classes = int(np.max(y)) + 1
    rows = np.arange(len(X))
    if len(X) > NTK_MAX_ROWS:
        rows = np.sort(seeds.rng(base_seed, "step_size", 0).choice(len(X), size=NTK_MAX_ROWS, replace=False))
    theta = ntk_kernel(X[rows], arch)
    lam_full, lam_batch = ntk_eigenvalues(theta, training.batch_size, base_seed)
    lam = max(lam_full, lam_batch)
    bound = stable_lr(lam, training.loss, n_classes, training.momentum)
    auto = training.lr == "auto"
    safety = LR_SAFETY[training.loss]
    lr = safety * bound if auto else float(training.lr)
    return pd.DataFrame(
        {
            "lr_setting": [str(training.lr)],
            "lr": [lr],
            "bound": [bound],
            "fraction_of_bound": [lr / bound],
            "safety": [safety if auto else np.nan],
            "lambda_full": [lam_full],
            "lambda_batch": [lam_batch],
            "curvature": [loss_curvature(training.loss, n_classes)],
            "ntk_rows": [len(rows)],
            "batch_size": [min(int(training.batch_size), len(rows))],
            "loss": [training.loss],
            "momentum": [float(training.momentum)],
        }
    )


def resolved(training: Training, lr_csv: str | Path) -> Training:
    """`training` with its lr taken from the experiment's lr table (the number itself, or auto's choice)."""
    return replace(training, lr=read_lr(lr_csv))


def lissa_scale(radius: float, damping: float) -> float:
    """`influence.lissa_scale: auto`: LISSA_MARGIN x (spectral radius of H + damping I), docs/math.md §10."""
    value = LISSA_MARGIN * (float(radius) + float(damping))
    if not np.isfinite(value) or value <= 0:
        raise LoodInputError(
            f"the Hessian's spectral radius estimate is {radius} (damping {damping}): no LiSSA scale follows; "
            "set influence.lissa_scale to a number or use influence.method: exact"
        )
    return value


def lr_summary(row: Mapping) -> list[tuple[int, str]]:
    """Log lines (level, text) for a row of lr_table: the step and its bound, and a warning above the bound."""
    fraction = row["fraction_of_bound"]
    line = (
        f"training.lr {row['lr_setting']}: lr {row['lr']:.4g} = {fraction:.3g} x the stability bound "
        f"{row['bound']:.4g} ({row['loss']}, momentum {row['momentum']:g}; NTK on {int(row['ntk_rows'])} rows: "
        f"lambda_max(Theta/n) {row['lambda_full']:.4g}, "
        f"mean over minibatches of {int(row['batch_size'])} {row['lambda_batch']:.4g})"
    )
    lines = [(logging.INFO, line)]
    if fraction > 1:
        warning = f"training.lr is {fraction:.3g} x the linearised stability bound: some models may diverge"
        lines.append((logging.WARNING, warning))
    return lines
