"""Did the in-models learn? Their accuracy and loss on the training and held-out records, from the stored logits.

The in-models' logits on every training record (`logits_train`) and on the held-out records
(`logits_test`) are stored by train_in_models (lood.empirical.logits). From them, per model and
then averaged over models: accuracy, and the mean squared error against the centred one-hot
targets (the MSE the networks minimise, per record and output). The loss decrease is measured
against the zero predictor (loss mean(Y²)): the logits at initialisation are not stored, and at
the default init their expected squared size is the NNGP prior variance, so the zero predictor is
the kinder baseline and a decrease below it is not an artefact of a large init. Chance is the
share of the commonest class. `learning_gate` stops a run whose in-models stay near chance
(docs/size.md): everything the workflow reports compares the NNGP with these networks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lood.analytic.gp import targets
from lood.errors import LoodInputError

log = logging.getLogger(__name__)


def _split_rows(logits: np.ndarray, y: np.ndarray, C: int, split: str) -> dict[str, float]:
    """Accuracy and MSE of (models, n, C) logits against labels y: per-model means and the models' spread."""
    if logits.shape[1] == 0:
        return {f"{split}_{k}": np.nan for k in ("accuracy", "accuracy_sd", "loss", "zero_loss", "loss_decrease")}
    Y = targets(y, C)
    acc = (logits.argmax(axis=2) == y[None]).mean(axis=1)
    loss = ((logits - Y[None]) ** 2).mean(axis=(1, 2))
    zero = float(np.mean(Y**2))
    return {
        f"{split}_accuracy": float(acc.mean()),
        f"{split}_accuracy_sd": float(acc.std()),
        f"{split}_loss": float(loss.mean()),
        f"{split}_zero_loss": zero,
        f"{split}_loss_decrease": float(1.0 - loss.mean() / zero),
    }


def learning_table(
    chunks: Sequence[Mapping[str, np.ndarray]], y: np.ndarray, y_test: np.ndarray | None, loss: str
) -> pd.DataFrame:
    """One row: the in-models' training and held-out accuracy, loss and loss decrease, and chance.

    `loss` (training.loss) says which loss the networks minimised; the table's loss is the MSE against
    centred one-hot targets in both cases (for cross_entropy only the accuracies are comparable).
    """
    missing = [i for i, c in enumerate(chunks) if "logits_train" not in c]
    if not chunks or missing:
        raise LoodInputError(
            f"in-model chunks {missing} have no logits_train: delete results/<experiment>/nn/in and rerun"
        )
    y = np.asarray(y, dtype=np.int64)
    C = max(int(y.max()) + 1, 2)
    train = np.concatenate([np.asarray(c["logits_train"], dtype=np.float64) for c in chunks])
    if train.shape[1:] != (len(y), C):
        raise LoodInputError(f"in-model logits_train are {train.shape}, expected (models, {len(y)}, {C})")
    y_test = np.asarray(y_test if y_test is not None else [], dtype=np.int64)
    has_test = all("logits_test" in c for c in chunks) and len(y_test) > 0
    test = (
        np.concatenate([np.asarray(c["logits_test"], dtype=np.float64) for c in chunks])
        if has_test
        else np.empty((len(train), 0, C))
    )
    counts = np.bincount(y, minlength=C)
    row = {"models": len(train), "n_train": len(y), "n_test": test.shape[1], "classes": C}
    row |= {"chance": float(counts.max() / counts.sum()), "training_loss": loss}
    row |= _split_rows(train, y, C, "train") | _split_rows(test, y_test[: test.shape[1]], C, "test")
    return pd.DataFrame([row])


def learned_fraction(table: pd.DataFrame) -> float:
    """How far the in-models' mean training accuracy got from chance towards 1: (acc − chance) / (1 − chance)."""
    row = table.iloc[0]
    return float((row["train_accuracy"] - row["chance"]) / (1.0 - row["chance"]))


def learning_gate(table: pd.DataFrame, min_learned: float, allow: bool) -> str | None:
    """None when the in-models learned; else the one message that names the cause and the fix.

    Learned: mean training accuracy at least `min_learned` of the way from chance to 1 (checks.min_learned).
    Raises LoodInputError with the message unless `allow` (checks.allow_untrained_networks), in which
    case the message is returned for the log and the report.
    """
    frac = learned_fraction(table)
    if frac >= min_learned:
        return None
    row = table.iloc[0]
    message = (
        f"the in-models did not learn: mean training accuracy {row['train_accuracy']:.3f} against chance "
        f"{row['chance']:.3f} ({frac:.2f} of the way to 1; checks.min_learned = {min_learned}), held-out "
        f"accuracy {row['test_accuracy']:.3f}, training loss {row['train_loss']:.4g} "
        f"({row['train_loss_decrease']:+.2f} below the zero predictor's). Every LOOD the workflow reports is "
        "compared with these networks, so it stops here. Likely cause: inputs far from [0, 1] "
        "(set data.normalise: auto) or too few epochs / too small a step (training.epochs, training.lr). "
        "To continue anyway, set checks.allow_untrained_networks: true (the report then says so first)."
    )
    if not allow:
        raise LoodInputError(message)
    return message


def experiment_learning(
    dataset: Mapping[str, np.ndarray], chunks: Sequence[Mapping[str, np.ndarray]], loss: str, checks: Mapping
) -> pd.DataFrame:
    """learning.csv of an experiment: ``learning_table`` and the gate's verdict (raises unless allowed); logged."""
    from lood.settings import CheckSettings

    settings = CheckSettings.from_config(checks, "checks")
    table = learning_table(chunks, dataset["y"], dataset.get("y_test"), loss)
    row = table.iloc[0]
    log.info(
        "in-models (%d): training accuracy %.3f (sd %.3f), held-out %.3f, chance %.3f; training loss %.4g, "
        "%.2f below the zero predictor's",
        row["models"],
        row["train_accuracy"],
        row["train_accuracy_sd"],
        row["test_accuracy"],
        row["chance"],
        row["train_loss"],
        row["train_loss_decrease"],
    )
    gate = learning_gate(table, settings.min_learned, settings.allow_untrained_networks)
    if gate:
        log.warning("continuing (checks.allow_untrained_networks): %s", gate)
    return table.assign(learned_fraction=learned_fraction(table), gate=gate or "")
