"""Planted canaries: uniform-noise inputs with random labels and real records with a flipped label.

The canary experiment trains on a copy of the dataset: rows 0..n-1 are F (the flipped canaries
are rows of F whose label is changed in place, so no input carries two labels), the noise
canaries are appended as rows n..n+c_noise-1, then the norm-matched noise canaries (uniform noise
rescaled to the median Euclidean norm of F's inputs: a control, raw noise is far larger than real
inputs). The default data stage is not touched.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lood import seeds
from lood.errors import LoodInputError
from lood.settings import CanarySettings

KINDS = ("real", "noise", "noise_scaled", "flipped")


def check_canary_counts(canaries: CanarySettings, n: int, n_studied: int) -> None:
    """A LoodInputError naming the key when the counts are not usable for a training set of n records."""
    noise = int(canaries.noise_count) + int(canaries.noise_scaled_count)
    flipped = int(canaries.flipped_count)
    limit = int(np.floor(float(canaries.max_fraction) * n))
    if noise + flipped > limit:
        raise LoodInputError(
            f"canaries.noise_count + noise_scaled_count + flipped_count = {noise + flipped} exceeds "
            f"canaries.max_fraction = "
            f"{canaries.max_fraction} of the {n} training records ({limit}): plant fewer canaries"
        )
    if int(canaries.real_count) > n_studied:
        raise LoodInputError(
            f"canaries.real_count = {canaries.real_count} but only {n_studied} records are studied: attack fewer"
        )
    if flipped > n - n_studied:
        raise LoodInputError(
            f"canaries.flipped_count = {flipped} but only {n - n_studied} records are not studied (flipped canaries "
            "are drawn among them so that the studied records stay as they are)"
        )


def make_canaries(
    X: np.ndarray, y: np.ndarray, studied: np.ndarray, canaries: CanarySettings, base_seed: int
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """The canary-augmented training set (X, y) and a table of the canaries (record, kind, label, original_label).

    Noise canaries: inputs uniform on [min X, max X] in every feature, labels uniform over the classes.
    Flipped canaries: rows of F drawn among the records not studied, relabelled to a different class
    drawn uniformly. Everything from seeds.rng(base_seed, 'data', 1) (the data role's canary stream).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n, C = len(X), max(int(y.max()) + 1, 2)
    studied = np.asarray(studied, dtype=np.int64)
    check_canary_counts(canaries, n, len(np.unique(studied)))
    rng = seeds.rng(base_seed, "data", 1)
    candidates = np.setdiff1d(np.arange(n), studied)
    flipped = np.sort(rng.choice(candidates, size=int(canaries.flipped_count), replace=False))
    new_labels = (y[flipped] + rng.integers(1, C, size=len(flipped))) % C
    lo, hi = float(X.min()), float(X.max())
    noise_X = rng.uniform(lo, hi, size=(int(canaries.noise_count), X.shape[1]))
    noise_y = rng.integers(0, C, size=int(canaries.noise_count))
    # drawn after the raw noise so that adding them leaves the other canaries as they were
    scaled_X = scaled_noise(rng.uniform(lo, hi, size=(int(canaries.noise_scaled_count), X.shape[1])), X)
    scaled_y = rng.integers(0, C, size=int(canaries.noise_scaled_count))
    X_aug = np.vstack([X, noise_X, scaled_X])
    y_aug = np.concatenate([y, noise_y, scaled_y])
    y_aug[flipped] = new_labels
    noise_rows = np.arange(n, n + len(noise_X))
    scaled_rows = np.arange(n + len(noise_X), n + len(noise_X) + len(scaled_X))
    table = pd.DataFrame(
        {
            "record": np.concatenate([noise_rows, scaled_rows, flipped]),
            "kind": ["noise"] * len(noise_rows) + ["noise_scaled"] * len(scaled_rows) + ["flipped"] * len(flipped),
            "label": np.concatenate([noise_y, scaled_y, new_labels]),
            "original_label": np.concatenate([np.full(len(noise_rows) + len(scaled_rows), -1), y[flipped]]),
        }
    )
    return X_aug, y_aug, table.sort_values("record").reset_index(drop=True)


def scaled_noise(noise: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Each noise row rescaled to the median Euclidean norm of the rows of X."""
    target = float(np.median(np.linalg.norm(np.asarray(X, dtype=np.float64), axis=1)))
    norms = np.maximum(np.linalg.norm(noise, axis=1, keepdims=True), 1e-300)
    return noise * (target / norms)


def attacked_rows(canaries: pd.DataFrame, studied: np.ndarray, settings: CanarySettings, y: np.ndarray) -> pd.DataFrame:
    """Every row the canary models are attacked at: the canaries, then the first real_count studied records.

    The studied records are never flipped, so they are real rows of the augmented set with their own label y;
    their in- and out-models are the canaries' (the same models), not the experiment's.
    """
    real = np.asarray(studied, dtype=np.int64)[: int(settings.real_count)]
    reals = pd.DataFrame({"record": real, "kind": "real", "label": np.asarray(y)[real]})
    return pd.concat([canaries[["record", "kind", "label"]], reals], ignore_index=True)


def record_kinds(n: int, canaries: pd.DataFrame) -> np.ndarray:
    """'real', 'noise' or 'flipped' for each of the n rows of the augmented training set."""
    kinds = np.full(n, "real", dtype=object)
    kinds[canaries["record"].to_numpy()] = canaries["kind"].to_numpy()
    return kinds


def nearest_records(X: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the training row nearest in Euclidean distance and the one of largest cosine."""
    X = np.asarray(X, dtype=np.float64)
    Q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    dist = np.linalg.norm(X[None, :, :] - Q[:, None, :], axis=2)
    norms = np.maximum(np.linalg.norm(X, axis=1)[None, :] * np.linalg.norm(Q, axis=1)[:, None], 1e-300)
    cosine = (Q @ X.T) / norms
    return np.argmin(dist, axis=1), np.argmax(cosine, axis=1)


def reconstruction_table(
    X: np.ndarray, query_table: pd.DataFrame, queries: dict[int, np.ndarray], canaries: pd.DataFrame
) -> pd.DataFrame:
    """optimise_queries' table for the canaries, with kind and whether the canary is the training row nearest to q*.

    Nearness by distance and by cosine: a bias-free ReLU NNGP ignores the query's scale, so the
    cosine is the telling one there.
    """
    table = query_table.merge(canaries[["record", "kind"]], on="record", validate="one_to_one")
    Q = np.stack([queries[int(r)] for r in table["record"]])
    by_distance, by_cosine = nearest_records(X, Q)
    table["nearest_by_distance"] = by_distance
    table["nearest_by_cosine"] = by_cosine
    table["canary_nearest_by_distance"] = by_distance == table["record"].to_numpy()
    table["canary_nearest_by_cosine"] = by_cosine == table["record"].to_numpy()
    return table
