"""Leakage in size: each analytic model's predicted AUC at the studied records beside the attack's.

Models (`nngp.model`): `posterior`, the NNGP's Bayesian posterior with σ² from its rule; `ensemble`,
the gradient-descent ensemble of infinitely wide networks at the workflow's training time
(lood.analytic.ensemble). Spreads (`nngp.spread`): `none`, the model's covariance as it is;
`calibrate`, scaled by the one output scale c that matches the model's predictive variance to the
in-models' across-seed logit variance on the training and held-out records. Neither σ², τ nor c
reads an out-model or the attack: `model_predictions` takes the in-models only, and the attack's
AUC enters only `size_summary`, which compares. The models live in lood.analytic.models.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lood import seeds
from lood.analytic.models import model_predictions, size_rows, training_time
from lood.errors import LoodInputError
from lood.settings import Arch, Training
from lood.stats import correlation

log = logging.getLogger(__name__)


def size_summary(rows: pd.DataFrame, mia: pd.DataFrame, n_boot: int, base_seed: int) -> pd.DataFrame:
    """Per model and spread: median predicted and attack AUC, mean |gap| and Spearman ρ(KL, AUC), with bootstrap CIs."""
    if not {"record", "auc"} <= set(mia.columns):
        raise LoodInputError(f"mia.csv needs columns record and auc, has {list(mia.columns)}")
    merged = rows.merge(mia[["record", "auc"]], on="record")
    out = []
    for k, ((name, spread), g) in enumerate(merged.groupby(["model", "spread"], sort=False)):
        gap = np.abs(g["auc_pred"].to_numpy() - g["auc"].to_numpy())
        idx = seeds.rng(base_seed, "bootstrap", 1000 + k).integers(0, len(gap), size=(n_boot, len(gap)))
        lo, hi = np.percentile(gap[idx].mean(axis=1), [2.5, 97.5])
        c = correlation(g["kl"].to_numpy(), g["auc"].to_numpy(), n_boot, base_seed, key=k)
        out.append(
            {
                "model": name,
                "spread": spread,
                "records": len(g),
                "scale": float(g["scale"].iloc[0]),
                "median_auc_pred": float(g["auc_pred"].median()),
                "median_auc_mia": float(g["auc"].median()),
                "mean_abs_gap": float(gap.mean()),
                "mean_abs_gap_lo": float(lo),
                "mean_abs_gap_hi": float(hi),
                "mean_gap": float((g["auc_pred"] - g["auc"]).mean()),
                "spearman_r": c.get("spearman_r"),
                "spearman_lo": c.get("spearman_lo"),
                "spearman_hi": c.get("spearman_hi"),
            }
        )
    return pd.DataFrame(out)


def size_study(
    dataset: Mapping[str, np.ndarray],
    records: Sequence[int],
    arch: Arch,
    training: Training,
    lr: float,
    sigma2: float,
    chunks: Sequence[Mapping[str, np.ndarray]],
    mia: pd.DataFrame,
    auc_samples: int,
    n_boot: int,
    base_seed: int,
    block_size: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(size.csv, size_summary.csv, spread.csv) of one experiment: every model and spread at the studied records."""
    X, y = np.asarray(dataset["X"]), np.asarray(dataset["y"])
    X_test = np.asarray(dataset.get("X_test", np.empty((0, X.shape[1]))))
    train = np.concatenate([np.asarray(c["logits_train"]) for c in chunks])
    test = (
        np.concatenate([np.asarray(c["logits_test"]) for c in chunks])
        if all("logits_test" in c for c in chunks)
        else np.empty((len(train), 0, train.shape[2]))
    )
    C = max(int(y.max()) + 1, 2)
    tau = training_time(training, lr, len(X), C)
    predictions, fits = model_predictions(X, y, X_test, records, arch, sigma2, tau, train, test, block_size)
    rows = size_rows(predictions, records, auc_samples, base_seed)
    return rows, size_summary(rows, mia, n_boot, base_seed), fits


def experiment_size_study(
    dataset: Mapping[str, np.ndarray],
    records: Sequence[int],
    arch: Mapping,
    training: Mapping,
    nngp: Mapping,
    sigma2_csv: str,
    lr_csv: str,
    chunks: Sequence[Mapping[str, np.ndarray]],
    mia: pd.DataFrame,
    n_boot: int,
    base_seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """size.csv, size_summary.csv and spread.csv of an experiment (rule size_study), logged."""
    from lood.analytic.sigma2 import read_sigma2
    from lood.io import read_lr
    from lood.settings import NNGPSettings

    settings = NNGPSettings.from_config(nngp)
    training_s = Training.from_config(training)
    lr = read_lr(lr_csv)  # the step the networks were trained with: the number, or auto's choice
    out = size_study(
        dataset,
        records,
        Arch.from_config(arch),
        training_s,
        lr,
        read_sigma2(pd.read_csv(sigma2_csv)),
        chunks,
        mia,
        settings.auc_samples,
        n_boot,
        base_seed,
        settings.block_size,
    )
    log.info("size agreement per model and spread:\n%s", out[1].round(4).to_string())
    log.info("spread fits:\n%s", out[2].round(5).to_string())
    return out
