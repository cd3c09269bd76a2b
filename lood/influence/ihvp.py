"""Inverse-Hessian-vector products (H + damping I)^-1 g: exact Cholesky, and LiSSA with its scale check.

docs/math.md §10: the exact solve, the LiSSA recursion and the condition on its scale.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from lood.empirical import step_size
from lood.empirical.losses import Batch, Objective
from lood.empirical.params import n_params
from lood.errors import LoodInputError
from lood.influence.grads import batched_hvp
from lood.settings import InfluenceSettings

# Above this many training rows LiSSA draws seeded minibatches of this size per HVP;
# at or below it every HVP is full-batch (then the recursion is deterministic).
LISSA_FULL_BATCH_MAX = 1024
# Queries recursed together; a query's result does not depend on it.
LISSA_QUERY_CHUNK = 256
POWER_ITERATIONS = 20

HVP = Callable[[Tensor], Tensor]
log = logging.getLogger(__name__)


def exact_solve(H: Tensor, damping: float, G: Tensor) -> Tensor:
    """Rows (H + damping I)^-1 g for the rows g of G, by Cholesky; LU with a warning when not PD. Overwrites H."""
    A = H
    A.diagonal().add_(float(damping))
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return torch.cholesky_solve(G.T, L).T
    del L
    warnings.warn(
        f"H + damping*I is not positive definite at the trained parameters (damping={damping}); "
        "influence scores may be negative or unstable. Raise influence.damping.",
        RuntimeWarning,
        stacklevel=3,
    )
    return torch.linalg.solve(A, G.T).T


def spectral_radius(hvp: HVP, size: int, like: Tensor, seed: int, iters: int = POWER_ITERATIONS) -> float:
    """A power-iteration estimate of the largest |eigenvalue| of the (size x size) Hessian behind `hvp`."""
    g = torch.Generator().manual_seed(int(seed) % (2**63))
    v = torch.randn(1, size, generator=g, dtype=like.dtype).to(like.device)
    est = 0.0
    with torch.no_grad():
        for _ in range(iters):
            w = hvp(v / v.norm())
            est = float(w.norm())
            if est == 0.0:
                break
            v = w
    return est


def _check_scale(radius: float, settings: InfluenceSettings) -> None:
    # The recursion converges only if every eigenvalue of (H + damping I)/scale lies in
    # (0, 2); a few power iterations catch a hopeless scale before `depth` wasted steps.
    scale = settings.lissa_scale
    if radius >= 2.0 * scale:
        raise LoodInputError(
            f"lissa_scale={scale} is too small: the Hessian's spectral radius plus damping is about {radius:.3g}; "
            f"LiSSA diverges unless the scale exceeds half of that. Set influence.lissa_scale above {radius:.3g}."
        )


def _recursion(g: Tensor, step_hvp: Callable[[int], HVP], settings: InfluenceSettings) -> Tensor:
    """h_depth / scale for h_0 = g, h_j = g + (I - (H + damping I)/scale) h_{j-1}, H_j from step_hvp(j)."""
    damping, scale = float(settings.damping), float(settings.lissa_scale)
    h = g.clone()
    with torch.no_grad():
        for j in range(int(settings.lissa_depth)):
            h = g + h - (step_hvp(j)(h) + damping * h) / scale  # Agarwal et al. 2017
            if j % 50 == 49 and not torch.isfinite(h).all():
                break
    if not torch.isfinite(h).all():
        raise LoodInputError(
            f"LiSSA diverged (lissa_scale={scale}, damping={damping}): the scale must exceed the largest "
            "eigenvalue of H + damping*I and H + damping*I must be positive definite. Raise "
            "influence.lissa_scale or influence.damping, or use method: exact for a small model."
        )
    return h / scale


def _hvp_schedule(
    objective: Objective, like: list[Tensor], train: Batch, rows: list[np.ndarray] | None, full_hvp: HVP | None
) -> Callable[[int], HVP]:
    """Step j -> its HVP: the full-batch one when `rows` is None, else the one on the training rows rows[j]."""
    if rows is None:
        return lambda j: full_hvp
    return lambda j: batched_hvp(objective, like, train[torch.as_tensor(rows[j], device=train.X.device)])


def lissa(
    objective: Objective,
    params: Sequence[Tensor],
    train: Batch,
    G: Tensor,
    settings: InfluenceSettings,
    seed: int,
    minibatch: int | None = None,
) -> Tensor:
    """LiSSA estimates of (H + damping I)^-1 g for the rows g of G, H the Hessian of the mean loss over `train`.

    HVPs run in the parameters' dtype. Each uses the whole training set when it has at most
    `minibatch` rows (default LISSA_FULL_BATCH_MAX): the recursion is then deterministic and
    run once; otherwise a minibatch of `minibatch` rows drawn from (seed, repeat), and the
    `lissa_repeats` runs are averaged.
    """
    like = [p.detach() for p in params]
    train = train.to(like[0].dtype, like[0].device)
    n = len(train)
    size = min(int(minibatch or LISSA_FULL_BATCH_MAX), n)
    full = size >= n
    full_hvp = batched_hvp(objective, like, train) if full else None
    probe_hvp = full_hvp or batched_hvp(objective, like, train[:size])
    radius = spectral_radius(probe_hvp, n_params(like), like[0], seed)
    if settings.lissa_scale == "auto":  # the scale follows the estimated radius (lood.empirical.step_size)
        settings = replace(settings, lissa_scale=step_size.lissa_scale(radius, settings.damping))
        log.info(
            "influence.lissa_scale auto: %.4g (Hessian spectral radius about %.4g, damping %g)",
            settings.lissa_scale,
            radius,
            settings.damping,
        )
    _check_scale(radius + settings.damping, settings)
    # A full-batch recursion is deterministic: repeating it would give the same answer.
    repeats = 1 if full else int(settings.lissa_repeats)
    out = torch.zeros_like(G)
    for r in range(repeats):
        # Minibatches depend on (seed, repeat) only, not on the query chunk, so the
        # result for a query does not depend on how queries are chunked.
        rng = np.random.default_rng([int(seed), r])
        rows = None if full else [rng.choice(n, size, replace=False) for _ in range(int(settings.lissa_depth))]
        step_hvp = _hvp_schedule(objective, like, train, rows, full_hvp)
        for s in range(0, G.shape[0], LISSA_QUERY_CHUNK):
            out[s : s + LISSA_QUERY_CHUNK] += _recursion(G[s : s + LISSA_QUERY_CHUNK], step_hvp, settings)
    return out / repeats
