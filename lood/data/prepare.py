"""The data stage: input normalisation, the experiment's dataset, held-out records, records and landscape probes.

The sources it reads live in lood/data/sources.py. Every later stage indexes into the arrays
written by `prepare_dataset`, so their order is canonical and deterministic for a given config.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lood import seeds
from lood.config import check_choice
from lood.data.sources import (
    CIFAR10_TEST_MEMBER,
    FASHION_MNIST_FILES,
    load_digits_source,
    load_fashion_mnist_source,
    load_npz_source,
    parse_cifar10_archive,
)
from lood.errors import LoodInputError
from lood.settings import ProbeSettings

# ----------------------------------------------------------------------------- dataset


def _subset_rows(n: int, n_records: int, base_seed: int) -> np.ndarray:
    """The seeded training subset: n_records of n rows, sorted (canonical order)."""
    return np.sort(seeds.rng(base_seed, "data").choice(n, size=n_records, replace=False))


def select_classes(
    X: np.ndarray, y: np.ndarray, classes: Sequence[int] | None, n_records: int | None, base_seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the given classes (relabelled 0..C-1 in the order given) and optionally a seeded subset.

    The subset keeps canonical order (sorted indices), so row i always means the same record.
    """
    if classes:
        present = set(np.unique(y).tolist())
        absent = [c for c in classes if c not in present]
        if absent:
            raise LoodInputError(
                f"data.classes {absent} not in the dataset's labels {sorted(present)}; "
                "list classes of this dataset, or set data.classes: null to keep every label"
            )
        keep = np.isin(y, classes)
        X, y = X[keep], y[keep]
        remap = {c: i for i, c in enumerate(classes)}
        y = np.array([remap[v] for v in y.tolist()], dtype=np.int64)
    else:
        uniq = np.unique(y)
        y = np.searchsorted(uniq, y).astype(np.int64)
    if len(np.unique(y)) < 2:
        raise LoodInputError(f"the dataset has a single class ({np.unique(y).tolist()}); LOOD needs at least two")
    if n_records is not None:
        if n_records > len(X):
            raise LoodInputError(f"data.n_records = {n_records} but only {len(X)} records have the chosen classes")
        idx = _subset_rows(len(X), n_records, base_seed)
        X, y = X[idx], y[idx]
        if len(np.unique(y)) < 2:
            raise LoodInputError("the seeded subset holds a single class; raise data.n_records")
    return X, y


def resolved_normalise(X: np.ndarray, normalise: str, image: bool) -> str:
    """The normalisation `data.normalise` names for this training set: `auto` resolved, the others as they are.

    auto: `none` when every input already lies in [0, 1] (so [0, 1] images, the digits among them, are
    left exactly as they are); otherwise `unit_range` for images (one range for all pixels, so 0..255
    becomes 0..1 and the pixels keep their relative brightness) and `feature_range` for tables (each
    feature its own range, so a feature in the thousands does not drown one in the hundredths).
    """
    check_choice(normalise, "normalise", "data.normalise")
    if normalise != "auto":
        return normalise
    X = np.asarray(X, dtype=np.float64)
    if X.size == 0 or (X.min() >= 0.0 and X.max() <= 1.0):
        return "none"
    return "unit_range" if image else "feature_range"


def normalisation_stats(X: np.ndarray, normalise: str) -> tuple[np.ndarray, np.ndarray]:
    """(offset, scale) of the affine normalisations from the training set X: X -> (X - offset) / scale.

    standardise: feature means and standard deviations; feature_range: feature minima and ranges;
    unit_range: the minimum and range of all entries. A constant feature (or X) keeps scale 1.
    """
    X = np.asarray(X, dtype=np.float64)
    if normalise == "standardise":
        lo, spread = X.mean(axis=0), X.std(axis=0)
    elif normalise == "feature_range":
        lo, spread = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
    elif normalise == "unit_range":
        lo, spread = np.array(X.min()), np.array(X.max() - X.min())
    else:
        raise LoodInputError(f"normalisation {normalise!r} has no statistics (none and unit_norm act per row)")
    return lo, np.where(spread > 0, spread, 1.0)


def normalise_inputs(X: np.ndarray, normalise: str, image: bool = False) -> np.ndarray:
    """X under `data.normalise` (statistics from X itself, the training set): docs/size.md lists the choices.

    none; unit_norm (rows scaled to norm 1); standardise (features to mean 0, std 1); feature_range (each
    feature to [0, 1]); unit_range (all entries together to [0, 1]); auto (``resolved_normalise``; `image`
    says whether rows are images). A constant feature is centred and left unscaled; an all-zero row stays
    zero under unit_norm.
    """
    normalise = resolved_normalise(X, normalise, image)
    X = np.asarray(X, dtype=np.float64)
    if normalise == "unit_norm":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.where(norms > 0, norms, 1.0)
    if normalise in ("standardise", "feature_range", "unit_range"):
        lo, scale = normalisation_stats(X, normalise)
        return (X - lo) / scale
    return X.copy()


def prepare_dataset(cfg: dict, base_seed: int, source_path: str | Path | None = None) -> dict[str, np.ndarray]:
    """The experiment's dataset from the config's `data` section: X (n x d, normalised once here), y, image_shape.

    `source_path` is the downloaded CIFAR-10 archive (cifar10) or the directory holding the idx
    files (fashion_mnist). Both the networks and the NNGP read this X, so they see identical inputs.
    """
    source = cfg["source"]
    if source == "digits":
        X, y, shape = load_digits_source()
    elif source in ("cifar10", "fashion_mnist"):
        if source_path is None:
            raise LoodInputError(
                f"data.source {source} needs its downloaded files (the {source} download rule, or data.path)"
            )
        if source == "cifar10":
            X, y, shape = parse_cifar10_archive(source_path)
        else:
            X, y, shape = load_fashion_mnist_source(source_path, FASHION_MNIST_FILES[:2])
    elif source == "npz":
        X, y, shape = load_npz_source(cfg["path"])
        if cfg.get("image_shape"):
            shape = tuple(cfg["image_shape"])
    else:
        raise LoodInputError(f"data.source {source!r} unknown; allowed: digits, cifar10, fashion_mnist, npz")
    X_source, y_source = X, y  # kept for the held-out records below
    X, y = select_classes(X, y, cfg.get("classes"), cfg.get("n_records"), base_seed)
    X_raw = X
    if shape is None or int(np.prod(shape)) != X.shape[1]:
        shape = (X.shape[1],)
    normalise = resolved_normalise(X_raw, cfg["normalise"], image=len(shape) >= 2)
    X = normalise_inputs(X_raw, normalise)
    # Held-out records (the depth study's test accuracy); nothing else reads them.
    X_test, y_test, test_source = held_out_records(X_source, y_source, cfg, base_seed, source_path)
    X_test = normalise_held_out(X_test, X_raw, normalise)
    return {
        "normalise": np.asarray(normalise),
        "X": X,
        "y": y,
        "image_shape": np.asarray(shape, dtype=np.int64),
        "X_test": X_test,
        "y_test": y_test,
        "test_source": np.asarray(test_source),
    }


# ----------------------------------------------------------------------------- held-out records
# The NNGP's and the networks' test accuracy (lood/studies/depth_nngp.py) need records of the chosen classes that
# are not in the training set. They are stored beside X in dataset.npz and never enter training.


def normalise_held_out(X_test: np.ndarray, X_train_raw: np.ndarray, normalise: str) -> np.ndarray:
    """Held-out rows under `data.normalise` with the training set's statistics (auto resolved on the training set)."""
    X_test = np.asarray(X_test, dtype=np.float64)
    normalise = resolved_normalise(X_train_raw, normalise, image=False) if normalise == "auto" else normalise
    check_choice(normalise, "normalise", "data.normalise")
    if normalise in ("standardise", "feature_range", "unit_range"):
        lo, scale = normalisation_stats(X_train_raw, normalise)
        return (X_test - lo) / scale
    return normalise_inputs(X_test, normalise)  # none and unit_norm act on each row alone


def _source_test_split(source: str, source_path: str | Path | None) -> tuple[np.ndarray, np.ndarray] | str:
    """The source's own test split (Fashion-MNIST t10k, CIFAR-10 test_batch), or why there is none."""
    if source == "fashion_mnist" and source_path is not None:
        try:
            X, y, _ = load_fashion_mnist_source(source_path, FASHION_MNIST_FILES[2:])
        except LoodInputError as exc:
            return f"none: the Fashion-MNIST test files could not be read ({exc})"
        return X, y
    if source == "cifar10" and source_path is not None:
        try:
            X, y, _ = parse_cifar10_archive(source_path, members=(CIFAR10_TEST_MEMBER,))
        except LoodInputError as exc:
            return f"none: the CIFAR-10 test batch could not be read ({exc})"
        return X, y
    return f"none: data.n_records is null (every record of the classes trains) and source {source} has no test split"


def held_out_records(
    X_source: np.ndarray, y_source: np.ndarray, cfg: dict, base_seed: int, source_path: str | Path | None
) -> tuple[np.ndarray, np.ndarray, str]:
    """Records of the chosen classes outside the training set (raw, relabelled as y), at most data.test_records.

    With a subset (data.n_records), the records of the classes that the seeded draw left out;
    without one, the source's own test split where it has one, else none. Beyond the cap, a
    seeded subset in canonical order. Returns X_test, y_test and a note of where they came from.
    """
    classes, n_records, cap = cfg.get("classes"), cfg.get("n_records"), cfg.get("test_records")
    if n_records is not None:
        X_all, y_all = select_classes(X_source, y_source, classes, None, base_seed)
        rest = np.setdiff1d(np.arange(len(X_all)), _subset_rows(len(X_all), n_records, base_seed))
        X_test, y_test, note = X_all[rest], y_all[rest], "records of the classes not drawn into the training set"
    else:
        split = _source_test_split(cfg["source"], source_path)
        if isinstance(split, str):
            d = int(np.prod(X_source.shape[1:]))
            return np.empty((0, d)), np.empty(0, dtype=np.int64), split
        if classes:  # filtered and relabelled exactly as the training set
            X_test, y_test = select_classes(split[0], split[1], classes, None, base_seed)
        else:
            X_test, y_test = split[0], np.searchsorted(np.unique(y_source), split[1]).astype(np.int64)
        note = f"the {cfg['source']} test split"
    if cap is not None and len(X_test) > cap:
        idx = np.sort(seeds.rng(base_seed, "test_records").choice(len(X_test), size=int(cap), replace=False))
        X_test, y_test = X_test[idx], y_test[idx]
    return np.asarray(X_test, dtype=np.float64), np.asarray(y_test, dtype=np.int64), note


# ----------------------------------------------------------------------------- records & probes


def select_records(y: np.ndarray, cfg: dict, base_seed: int) -> pd.DataFrame:
    """The records to study: listed in the config, or R distinct ones drawn with the seed (sorted)."""
    n = len(y)
    if cfg.get("indices"):
        idx = np.asarray(cfg["indices"], dtype=np.int64)
        bad = idx[(idx < 0) | (idx >= n)]
        if len(bad):
            raise LoodInputError(
                f"records.indices {bad.tolist()} out of range: the dataset has {n} records (0..{n - 1})"
            )
        if len(np.unique(idx)) != len(idx):
            raise LoodInputError("records.indices lists a record twice")
    else:
        count = cfg["count"]
        if count > n:
            raise LoodInputError(f"records.count = {count} but the dataset has only {n} records")
        idx = np.sort(seeds.rng(base_seed, "records").choice(n, size=count, replace=False))
    return pd.DataFrame({"record": idx, "label": y[idx]})


def make_probes(X: np.ndarray, records: Sequence[int], probes: ProbeSettings, base_seed: int) -> dict[str, np.ndarray]:
    """Landscape queries z + t s r for each record: one seeded unit direction r per record, s its scale.

    s is the record's norm (`probes.scale: record_norm`, docs/math.md §8), so t is a fraction of
    ‖z‖ and the grid means the same on data of any scale; or 1 (`absolute`). Both the network
    and the NNGP are evaluated at exactly these points.
    """
    records = np.asarray(records, dtype=np.int64)
    t = np.asarray(probes.t, dtype=np.float64)
    d = X.shape[1]
    directions = np.empty((len(records), d))
    for j, rec in enumerate(records):
        r = seeds.rng(base_seed, "probes", int(rec)).standard_normal(d)
        directions[j] = r / np.linalg.norm(r)
    if probes.scale == "record_norm":
        scale = np.linalg.norm(X[records], axis=1)
        if np.any(scale == 0):
            raise LoodInputError(
                f"records {records[scale == 0].tolist()} are all-zero rows: probes.scale record_norm "
                "needs a nonzero norm; use absolute"
            )
    else:
        scale = np.ones(len(records))
    offsets = scale[:, None] * t[None, :]
    queries = X[records][:, None, :] + offsets[:, :, None] * directions[:, None, :]
    return {
        "records": records,
        "t": t,
        "scale": scale,
        "offsets": offsets,
        "directions": directions,
        "queries": queries,
    }
