"""Activation x depth, the networks' side: each network experiment's MIA AUC, training loss and accuracy.

Summarised from the experiments' outputs, beside lood.studies.depth_nngp's NNGP sweep at the same variant and depth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from lood.config import check_choice
from lood.errors import LoodInputError
from lood.settings import Arch
from lood.studies.depth_nngp import variant_label

# ----------------------------------------------------------------------------- per-model fit


def training_loss(logits: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """Each model's loss on (logits (M, n, C), labels y) as lood.empirical.train minimises it (MSE / cross-entropy)."""
    check_choice(loss, "loss", "training.loss")
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if logits.ndim != 3 or logits.shape[1] != len(y):
        raise LoodInputError(f"logits must be (models, {len(y)} records, outputs), got {logits.shape}")
    C = logits.shape[2]
    onehot = np.eye(C)[y]
    if loss == "mse":  # mean over records and outputs of (f - (e_y - 1/C))²
        return np.mean((logits - (onehot - 1.0 / C)) ** 2, axis=(1, 2))
    top = logits.max(axis=2, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(axis=2)) + top[..., 0]
    return np.mean(lse - np.sum(logits * onehot, axis=2), axis=1)


def model_accuracy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each model's accuracy on (logits (M, n, C), labels y); NaN for no records."""
    logits = np.asarray(logits)
    if len(y) == 0:
        return np.full(len(logits), np.nan)
    return np.mean(np.argmax(logits, axis=2) == np.asarray(y)[None, :], axis=1)


# ----------------------------------------------------------------------------- the networks


class NetworkOutputs(NamedTuple):
    """What one network experiment wrote that the depth study reads."""

    lr: Mapping  # a row of nn/lr.csv: the step used and its fraction of the linearised stability bound
    mia: pd.DataFrame  # nn/mia.csv: the attack's AUC per studied record
    lood: pd.DataFrame  # nngp/lood.csv (the experiment's own σ² rule): the NNGP AUC of the same records
    in_chunks: Sequence[Mapping[str, np.ndarray]]  # nn/in chunks with logits_train (every record) and logits_test


def network_row(
    experiment: str, arch: Arch, outputs: NetworkOutputs, y: np.ndarray, y_test: np.ndarray, loss: str
) -> dict:
    """One network experiment beside the sweep: MIA AUC over the studied records, the in-models' fit and test accuracy.

    The in-model chunks need logits_train (every training record) and logits_test (X_test).
    """
    lr, mia, lood, in_chunks = outputs
    missing = [k for k in ("logits_train", "logits_test") for c in in_chunks if k not in c]
    if missing:
        raise LoodInputError(
            f"experiment {experiment}: in-model chunks lack {sorted(set(missing))}; rerun train_in_models "
            "(older runs did not save them): delete results/<experiment>/nn/in"
        )
    train = np.concatenate([np.asarray(c["logits_train"]) for c in in_chunks])
    test = np.concatenate([np.asarray(c["logits_test"]) for c in in_chunks])
    losses = training_loss(train, y, loss)
    train_acc, test_acc = model_accuracy(train, y), model_accuracy(test, y_test)
    auc = mia["auc"].to_numpy(dtype=float)
    joined = mia[["record"]].merge(lood[["record", "auc_nngp"]], on="record", how="left")
    return {
        "experiment": experiment,
        "activation": arch.activation,
        "w_std": float(arch.w_std),
        "depth": int(arch.depth),
        "width": int(arch.width),
        "variant": variant_label(arch.activation, arch.w_std),
        "lr": float(lr["lr"]),
        "lr_fraction_of_bound": float(lr.get("fraction_of_bound", np.nan)),
        "loss": loss,
        "n_models": len(train),
        "n_records": len(auc),
        "mia_auc_median": float(np.median(auc)),
        "mia_auc_q25": float(np.percentile(auc, 25)),
        "mia_auc_q75": float(np.percentile(auc, 75)),
        "auc_nngp_median": float(np.median(joined["auc_nngp"])),
        "sigma2": float(lood["sigma2"].iloc[0]) if "sigma2" in lood else np.nan,
        "train_loss": float(np.mean(losses)),
        "train_loss_sd": float(np.std(losses)),
        "train_acc": float(np.mean(train_acc)),
        "test_acc": float(np.mean(test_acc)),
        "test_acc_sd": float(np.std(test_acc)),
        "n_test": len(y_test),
    }


NETWORK_COLUMNS = ["experiment", "activation", "w_std", "depth", "mia_auc_median", "train_loss", "test_acc"]


def split_chunks(files: Sequence[str], networks: Sequence[str], per_network: int) -> dict[str, list[str]]:
    """The flat list of in-model chunk files, `per_network` per network in `networks`' order, grouped by network."""
    if len(files) != per_network * len(networks):
        raise LoodInputError(f"{len(files)} in-model chunk files for {len(networks)} networks x {per_network} chunks")
    return {name: list(files[k * per_network : (k + 1) * per_network]) for k, name in enumerate(networks)}


def network_summary(row: Mapping) -> str:
    """One log line for a network_row."""
    return (
        f"{row['experiment']} (depth {row['depth']}, {row['variant']}; lr {row['lr']:.4g} = "
        f"{row['lr_fraction_of_bound']:.3g} x the stability bound): median MIA AUC {row['mia_auc_median']:.3f} "
        f"[{row['mia_auc_q25']:.3f}, {row['mia_auc_q75']:.3f}], NNGP AUC {row['auc_nngp_median']:.4f}, "
        f"train loss {row['train_loss']:.4g}, train acc {row['train_acc']:.4f}, test acc {row['test_acc']:.4f} "
        f"over {row['n_test']} held-out records"
    )


def networks_table(rows: Sequence[Mapping]) -> pd.DataFrame:
    """The depth study's networks.csv (its columns even when no network was trained)."""
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=NETWORK_COLUMNS)
