"""Influence-function self-influence, and the table of both influence baselines for the workflow.

- Influence-function self-influence (Koh & Liang 2017; docs/math.md §10):
  g_z^T (H + damping I)^-1 g_z / n, H the Hessian of the mean training loss over all
  parameters at the trained parameters, g_z the gradient of z's loss. The 1/n makes it
  the first-order change of z's loss when z's weight in the mean loss drops by 1/n,
  i.e. the leave-one-out change.
- Influence on the prediction at z: the first-order leave-one-out change of the outputs,
  Δf_c(z) = ∇f_c(z)^T (H + damping I)^-1 g_z / n, summarised as √(mean_c Δf_c²), in the
  units of √(prediction difference).
- Each score averaged over `influence.networks` independently trained reference networks.
- TracIn self-influence lives in lood/influence/tracin.py, the inverse-Hessian solvers in lood/influence/ihvp.py,
  the losses and the (network, loss) pair in lood/empirical/losses.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from lood import seeds
from lood.config import check_choice
from lood.empirical import train
from lood.empirical.losses import Batch, Objective, training_loss
from lood.empirical.params import n_params
from lood.empirical.training_job import TrainingJob
from lood.influence.comparison import ESTIMATORS, SCORE_COLUMNS
from lood.influence.grads import loss_hessian, per_record_grads, per_record_jacobians
from lood.influence.ihvp import exact_solve, lissa
from lood.influence.tracin import tracin_self_influence
from lood.records import check_records
from lood.settings import InfluenceSettings

log = logging.getLogger(__name__)


def choose_method(n_params: int, settings: InfluenceSettings) -> Literal["exact", "lissa"]:
    """'exact' or 'lissa': influence.method itself, or for 'auto' exact when n_params <= exact_max_params."""
    method = check_choice(settings.method, "influence_method", "influence.method")
    if method == "auto":
        return "exact" if n_params <= settings.exact_max_params else "lissa"
    return method  # type: ignore[return-value]


def influence_self(
    objective: Objective,
    params: Sequence[Tensor],
    train_batch: Batch,
    query: Batch,
    settings: InfluenceSettings,
    seed: int,
    lissa_minibatch: int | None = None,
) -> np.ndarray:
    """Self-influence g_z^T (H + damping I)^-1 g_z / n_train for each query row z (docs/math.md §10)."""
    return influence_scores(objective, params, train_batch, query, settings, seed, lissa_minibatch)[0]


def influence_scores(
    objective: Objective,
    params: Sequence[Tensor],
    train_batch: Batch,
    query: Batch,
    settings: InfluenceSettings,
    seed: int,
    lissa_minibatch: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(self-influence, influence on the prediction) of each query row z (docs/math.md §10).

    Self: g_z^T (H + damping I)^-1 g_z / n; prediction: √(mean_c (∇f_c(z)^T (H + damping I)^-1 g_z / n)²),
    the first-order change of z's outputs when z leaves the training set. The method is `choose_method`'s:
    exact builds the float64 Hessian (`loss_hessian`, O(P^2) memory) and solves by Cholesky; lissa runs
    `lood.influence.ihvp.lissa` with minibatches (of `lissa_minibatch` rows, large training sets only) drawn
    from `seed`. One inverse-Hessian product per query serves both.
    """
    params = [torch.as_tensor(p).detach() for p in params]
    method = choose_method(n_params(params), settings)
    log.info("influence: %d parameters, method %s", n_params(params), method)
    if method == "exact":
        H = loss_hessian(objective, params, train_batch)
        G = per_record_grads(objective, [p.double() for p in params], query).detach()
        Hinv_g = exact_solve(H, settings.damping, G)
    else:
        G = per_record_grads(objective, params, query).detach()
        Hinv_g = lissa(objective, params, train_batch, G, settings, seed, lissa_minibatch)
    n = len(train_batch)
    Hinv_g = Hinv_g.double()
    J = per_record_jacobians(objective, params, query.X).detach().double().to(Hinv_g.device)
    delta_f = torch.einsum("ncp,np->nc", J, Hinv_g) / n
    self_inf = (G.double() * Hinv_g).sum(dim=1) / n
    return self_inf.cpu().numpy(), delta_f.pow(2).mean(dim=1).sqrt().cpu().numpy()


def network_seed(base_seed: int, k: int) -> int:
    """Reference network k's seed: int_seed(base, 'influence', 0) for k = 0 (the one network of before), else
    ('influence', 2, k)."""
    return seeds.int_seed(base_seed, "influence", 0) if k == 0 else seeds.int_seed(base_seed, "influence", 2, k)


def influence_table(
    job: TrainingJob,
    records: Sequence[int],
    settings: InfluenceSettings,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """SCORE_COLUMNS: TracIn, influence-function self-influence and influence on the prediction of `records`,
    each the mean over settings.networks reference networks trained on all of job.X (and `_one`: network 0 alone).

    Network k is `lood.empirical.train`'s network trained with seed `network_seed(base_seed, k)`,
    checkpointed after every epoch; TracIn pairs the checkpoint after epoch e with epoch e's learning
    rate. The influence function is taken at the final parameters, over the loss `training.loss` names
    (as lood.empirical.train computes it). LiSSA's minibatches (large sets only) use
    int_seed(base_seed, 'influence', 1).
    """
    per_network = []
    for k in range(settings.networks):
        log.info("influence: reference network %d of %d", k + 1, settings.networks)
        per_network.append(_one_network(job, records, settings, device, network_seed(job.base_seed, k)))
    table = pd.DataFrame({"record": check_records(records, len(job.X))})
    for e in ESTIMATORS:
        table[e] = np.mean([s[e] for s in per_network], axis=0)
        table[f"{e}_one"] = per_network[0][e]
    table["networks"] = settings.networks
    return table[SCORE_COLUMNS]


def _one_network(
    job: TrainingJob, records: Sequence[int], settings: InfluenceSettings, device, seed: int
) -> dict[str, np.ndarray]:
    """The three estimators of `records` under the one network trained with `seed`."""
    arch, training, base_seed = job.arch, job.training, job.base_seed
    X = np.asarray(job.X)
    y = np.asarray(job.y, dtype=np.int64)
    records = check_records(records, len(X))
    loss = training_loss(training.loss)
    dev = torch.device(device) if device is not None else train.default_device()
    n_classes = int(y.max()) + 1
    wanted = train.Outputs(params=True, checkpoints=True)
    result = train.train_models(X, y, arch, training, train.Models([seed]), wanted, device=dev, n_classes=n_classes)
    # train_models returns stacks with a leading model axis of length 1.
    final = [p[0].to(dev) for p in result.params]
    checkpoints = [[p[0].to(dev) for p in ck] for ck in result.checkpoints]
    objective = Objective(partial(train.forward, arch=arch), loss)
    query = Batch(torch.as_tensor(X[records], dtype=torch.float32, device=dev), torch.as_tensor(y[records], device=dev))
    training_batch = Batch(torch.as_tensor(X, dtype=torch.float32, device=dev), torch.as_tensor(y, device=dev))

    tracin = tracin_self_influence(objective, checkpoints, [float(lr) for lr in result.lrs], query)
    influence, prediction = influence_scores(
        objective, final, training_batch, query, settings, seeds.int_seed(base_seed, "influence", 1)
    )
    return {"tracin": tracin, "influence": influence, "influence_prediction": prediction}
