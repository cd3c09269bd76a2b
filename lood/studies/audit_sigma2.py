"""σ² for the audit from a few in-models (calibrate), and how much the audit's top list depends on the rule.

`calibrate_sigma2`: the rule of the full workflow (lood.analytic.sigma2.calibration_curve: least
squares between the GP's training means and the in-models' mean logits) from `models` in-models
(audit.calibrate_models, e.g. 4) instead of 100. They are the full workflow's in-models 0..M-1
(lood.empirical.train.train_in_chunk: same seeds and data order), trained on all n records; the
GP's means and their logits are compared on the σ² subset (sigma2_subset),
where the GP is fitted on those m records alone (docs/audit.md says what that changes).

`rule_overlaps`: on that subset, the KL-LOOD of every record at each rule's σ² (one
eigendecomposition serves them all) and the share of the top 1% that two rules have in common.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lood.analytic.divergence import lood_at_records
from lood.analytic.gp import targets
from lood.analytic.kernel import kernel_and_diag
from lood.analytic.sigma2 import (
    calibration_curve,
    choose_sigma2,
    mean_train_logits,
    objective_curve,
    sigma2_grid,
)
from lood.analytic.spectral import KernelEigen, eigen, spectral_fit
from lood.settings import Arch, NNGPSettings, Training


def subset_eigen(
    X: np.ndarray, y: np.ndarray, idx: np.ndarray, arch: Arch, block: int
) -> tuple[KernelEigen, np.ndarray]:
    """The eigendecomposition of K on the records idx (targets of all C classes of y) and diag K there."""
    K, diag = kernel_and_diag(X[idx], None, arch, block)
    return eigen(K, targets(np.asarray(y)[idx], int(np.max(y)) + 1 if len(y) else None)), diag


def in_model_logits(X: np.ndarray, y: np.ndarray, arch: Arch, training: Training, seed: int, models: int, idx):
    """Logits (models, m, C) on the records idx of the full workflow's in-models 0..models-1, trained on all of X."""
    from lood.empirical.train import train_in_chunk
    from lood.empirical.training_job import TrainingJob

    job = TrainingJob(np.asarray(X), np.asarray(y), arch, training, int(seed))
    return train_in_chunk(job, list(range(int(models))), np.asarray(X)[idx])


def calibrate_sigma2(eig: KernelEigen, logits: np.ndarray, nngp: NNGPSettings, loss: str) -> dict:
    """calibrate's σ² on the subset from the in-models' logits there (models, m, C)."""
    m, C = eig.Y.shape
    target = mean_train_logits(logits, m, C)
    grid = sigma2_grid(nngp.grid_min, nngp.grid_max, nngp.grid_points)
    return choose_sigma2(calibration_curve(eig, target, grid, loss), "calibrate") | {"models": int(len(logits))}


def marginal_likelihood_on(eig: KernelEigen, nngp: NNGPSettings) -> dict:
    """The marginal likelihood's σ² on the subset (output scale fitted)."""
    grid = sigma2_grid(nngp.grid_min, nngp.grid_max, nngp.grid_points)
    return choose_sigma2(objective_curve(eig, "marginal_likelihood", grid, None, "mse"), "marginal_likelihood")


def top_overlap(kl_a: np.ndarray, kl_b: np.ndarray, fraction: float = 0.01) -> float:
    """Share of the top `fraction` of records by kl_a that are also in the top `fraction` by kl_b."""
    k = max(1, int(np.ceil(fraction * len(kl_a))))
    top_a = set(np.argsort(-np.asarray(kl_a), kind="stable")[:k].tolist())
    top_b = set(np.argsort(-np.asarray(kl_b), kind="stable")[:k].tolist())
    return len(top_a & top_b) / k


def rule_overlaps(eig: KernelEigen, K_diag: np.ndarray, sigma2s: dict[str, float], chosen: str) -> pd.DataFrame:
    """Per rule: its σ², and the top-1% overlap of the subset's KL-LOOD with that at the chosen rule's σ²."""
    records = np.arange(eig.n)
    kl = {name: lood_at_records(spectral_fit(eig, s2), K_diag, records)["kl"] for name, s2 in sigma2s.items()}
    return pd.DataFrame(
        [
            {
                "rule": name,
                "sigma2": float(s2),
                "top1_overlap_with_chosen": top_overlap(kl[chosen], kl[name]),
                "top1_records": max(1, int(np.ceil(0.01 * eig.n))),
            }
            for name, s2 in sigma2s.items()
        ]
    )


def sigma2_subset(n: int, size: int) -> np.ndarray:
    """`size` records evenly spaced over the dataset's canonical order (all when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, int(size)).round().astype(np.int64))


def audit_sigma2(X, y, arch: Arch, nngp: NNGPSettings, settings, rule: str, training, seed: int, log) -> tuple:
    """(σ², info) of the audit's rule (calibrate or marginal_likelihood) on the σ² subset, with the other rule's
    σ² and the top-1% overlaps between them (info["sigma2_rules"], for the report)."""

    idx = sigma2_subset(len(X), settings.sigma2_records)
    eig, K_diag = subset_eigen(X, y, idx, arch, int(nngp.block_size))
    chosen = {"marginal_likelihood": marginal_likelihood_on(eig, nngp)}
    if rule == "calibrate":
        logits = in_model_logits(X, y, arch, training, seed, settings.calibrate_models, idx)
        chosen["calibrate"] = calibrate_sigma2(eig, logits, nngp, training.loss)
    table = rule_overlaps(eig, K_diag, {k: v["sigma2"] for k, v in chosen.items()}, rule)
    table["at_edge"] = [bool(chosen[r]["at_edge"]) for r in table["rule"]]
    if log:
        for row in table.itertuples():
            log.info(
                "sigma2 by %s on the subset: %.4g%s; top-1%% overlap with %s: %.2f",
                row.rule,
                row.sigma2,
                " (grid edge)" if row.at_edge else "",
                rule,
                row.top1_overlap_with_chosen,
            )
    info = {
        "sigma2_records": int(len(idx)),
        "sigma2_at_edge": bool(chosen[rule]["at_edge"]),
        "sigma2_models": int(settings.calibrate_models) if rule == "calibrate" else 0,
        "sigma2_rules": table.to_dict("records"),
    }
    return float(chosen[rule]["sigma2"]), info
