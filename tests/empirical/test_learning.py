"""The in-models' learning table and the gate that stops a run on networks that did not learn."""

import numpy as np
import pandas as pd
import pytest

from lood.empirical.learning import experiment_learning, learned_fraction, learning_gate, learning_table
from lood.errors import LoodInputError

CHECKS = {"min_learned": 0.25, "allow_untrained_networks": False, "allow_sigma2_at_edge": False}


def _chunks(train: np.ndarray, test: np.ndarray, parts: int = 2) -> list[dict]:
    return [
        {"logits_train": a, "logits_test": b}
        for a, b in zip(np.array_split(train, parts), np.array_split(test, parts), strict=True)
    ]


def test_learning_table_against_a_hand_computation():
    rng = np.random.default_rng(0)
    y, y_test = rng.integers(0, 3, 30), rng.integers(0, 3, 20)
    train, test = rng.normal(size=(6, 30, 3)), rng.normal(size=(6, 20, 3))
    row = learning_table(_chunks(train, test, 3), y, y_test, "mse").iloc[0]
    Y = np.eye(3)[y] - 1 / 3
    acc = [np.mean(np.argmax(train[m], axis=1) == y) for m in range(6)]
    loss = [np.mean((train[m] - Y) ** 2) for m in range(6)]
    assert row["train_accuracy"] == pytest.approx(np.mean(acc))
    assert row["train_accuracy_sd"] == pytest.approx(np.std(acc))
    assert row["train_loss"] == pytest.approx(np.mean(loss))
    assert row["train_zero_loss"] == pytest.approx(np.mean(Y**2)) == pytest.approx(2 / 9)
    assert row["train_loss_decrease"] == pytest.approx(1 - np.mean(loss) / (2 / 9))
    assert row["test_accuracy"] == pytest.approx(np.mean([np.mean(test[m].argmax(1) == y_test) for m in range(6)]))
    assert row["chance"] == pytest.approx(np.bincount(y).max() / 30)
    assert (row["models"], row["n_train"], row["n_test"]) == (6, 30, 20)


def test_a_planted_non_learning_run_stops_with_one_message_and_the_switch_lets_it_continue():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 50)
    # Planted: logits of size ~20 that ignore the label (the raw-pixel failure), 58 % accuracy at chance 0.5.
    noise = 20 * rng.normal(size=(10, 100, 2))
    dataset = {"y": y, "y_test": y[:40]}
    with pytest.raises(LoodInputError) as err:
        experiment_learning(dataset, _chunks(noise, noise[:, :40]), "mse", CHECKS)
    message = str(err.value)
    assert "did not learn" in message and "data.normalise: auto" in message
    assert "checks.allow_untrained_networks: true" in message
    table = experiment_learning(
        dataset, _chunks(noise, noise[:, :40]), "mse", CHECKS | {"allow_untrained_networks": True}
    )
    assert "did not learn" in table["gate"].iloc[0]
    # Networks that fit the labels pass and leave the gate empty.
    Y = np.eye(2)[y] - 0.5
    good = Y[None] + 0.1 * rng.normal(size=(10, 100, 2))
    table = experiment_learning(dataset, _chunks(good, good[:, :40]), "mse", CHECKS)
    assert table["gate"].iloc[0] == "" and table["learned_fraction"].iloc[0] == pytest.approx(1.0)
    assert table["train_loss_decrease"].iloc[0] > 0.9


def test_gate_threshold_is_a_fraction_of_the_way_from_chance():
    table = pd.DataFrame(
        [{"train_accuracy": 0.72, "chance": 0.6, "test_accuracy": 0.6, "train_loss": 1.0, "train_loss_decrease": 0.0}]
    )
    assert learned_fraction(table) == pytest.approx(0.3)
    assert learning_gate(table, 0.25, allow=False) is None
    with pytest.raises(LoodInputError, match="0.22 of the way"):
        learning_gate(table.assign(train_accuracy=0.69), 0.3, allow=False)
