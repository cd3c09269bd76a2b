"""Data sources (digits, CIFAR-10, a user .npz), record selection and landscape probes.

Every later stage indexes into the arrays written by `prepare_dataset`, so their
order is canonical and deterministic for a given config.
"""

from __future__ import annotations

import hashlib
import pickle
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from lood import seeds
from lood.errors import LoodInputError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_TRAIN_MEMBERS = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]


# ----------------------------------------------------------------------------- sources


def load_digits_source() -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """scikit-learn's bundled 8x8 digits (no network): X in [0, 1], y, image shape."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float64) / 16.0, d.target.astype(np.int64), (8, 8)


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    """The MD5 hex digest of a file."""
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def download_cifar10(dest: str | Path, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5, timeout: float = 30.0) -> Path:
    """Download the CIFAR-10 python archive to `dest` and verify its MD5.

    Offline or on a checksum mismatch, raise one message naming the URL and where
    to put a manually downloaded copy (the rule then skips the download).
    """
    dest = Path(dest)
    if dest.exists() and md5sum(dest) == md5:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            while block := resp.read(1 << 20):
                out.write(block)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        tmp.unlink(missing_ok=True)
        raise LoodInputError(
            f"could not download CIFAR-10 from {url} ({exc}). Download it on a machine with "
            f"network access and place it at {dest.resolve()} (MD5 {md5}); the workflow then uses it."
        ) from None
    got = md5sum(tmp)
    if got != md5:
        tmp.unlink(missing_ok=True)
        raise LoodInputError(f"CIFAR-10 archive from {url} has MD5 {got}, expected {md5}; delete it and retry, or place a good copy at {dest.resolve()}")
    tmp.replace(dest)
    return dest


def parse_cifar10_archive(archive: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The 50,000 CIFAR-10 training images in canonical order (batches 1..5), X in [0, 1].

    X rows are channel-major (3x1024), as in the archive; the image shape is (3, 32, 32).
    """
    xs, ys = [], []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in CIFAR10_TRAIN_MEMBERS:
                member = tar.extractfile(name)
                if member is None:
                    raise KeyError(name)
                batch = pickle.load(member, encoding="bytes")
                xs.append(np.asarray(batch[b"data"], dtype=np.uint8))
                ys.append(np.asarray(batch[b"labels"], dtype=np.int64))
    except KeyError as exc:
        raise LoodInputError(f"{archive} is not the CIFAR-10 python archive: member {exc} missing") from None
    except (tarfile.TarError, pickle.UnpicklingError, EOFError) as exc:
        raise LoodInputError(f"{archive} is not a readable CIFAR-10 python archive: {exc}") from None
    X = np.concatenate(xs).astype(np.float64) / 255.0
    return X, np.concatenate(ys), (3, 32, 32)


def load_npz_source(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    """A user dataset: an .npz with `X` (n x ...) and integer `y` (n)."""
    path = Path(path)
    if not path.exists():
        raise LoodInputError(f"dataset file {path} does not exist (config data.path)")
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise LoodInputError(f"dataset file {path} is not a readable .npz: {exc}") from None
    with f:
        missing = [k for k in ("X", "y") if k not in f.files]
        if missing:
            raise LoodInputError(f"dataset file {path} lacks array(s) {missing}; it has {f.files}. Save it with np.savez(path, X=..., y=...)")
        X, y = f["X"], f["y"]
    if X.ndim < 2:
        raise LoodInputError(f"dataset file {path}: X must have one row per record (2+ dims), got shape {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise LoodInputError(f"dataset file {path}: y must be 1-D with one label per row of X; X has {len(X)} rows, y has shape {y.shape}")
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise LoodInputError(f"dataset file {path}: X must be finite numbers (dtype {X.dtype})")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise LoodInputError(f"dataset file {path}: y must hold integer class labels, found non-integer values such as {y[y != np.round(y)][:3]}")
    elif not np.issubdtype(y.dtype, np.integer):
        raise LoodInputError(f"dataset file {path}: y must hold integer class labels, got dtype {y.dtype}")
    shape = tuple(X.shape[1:]) if X.ndim > 2 else None
    return X.reshape(len(X), -1).astype(np.float64), y.astype(np.int64), shape


# ----------------------------------------------------------------------------- dataset


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
            raise LoodInputError(f"data.classes {absent} not in the dataset's labels {sorted(present)}")
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
        idx = np.sort(seeds.rng(base_seed, "data").choice(len(X), size=n_records, replace=False))
        X, y = X[idx], y[idx]
        if len(np.unique(y)) < 2:
            raise LoodInputError("the seeded subset holds a single class; raise data.n_records")
    return X, y


def prepare_dataset(cfg: dict, base_seed: int, archive: str | Path | None = None) -> dict[str, np.ndarray]:
    """The experiment's dataset from the config's `data` section: X (n x d, [0, 1] for images), y, image_shape."""
    source = cfg["source"]
    if source == "digits":
        X, y, shape = load_digits_source()
    elif source == "cifar10":
        if archive is None:
            raise LoodInputError("data.source cifar10 needs the downloaded archive")
        X, y, shape = parse_cifar10_archive(archive)
    elif source == "npz":
        X, y, shape = load_npz_source(cfg["path"])
        if cfg.get("image_shape"):
            shape = tuple(cfg["image_shape"])
    else:
        raise LoodInputError(f"data.source {source!r} unknown; allowed: digits, cifar10, npz")
    X, y = select_classes(X, y, cfg.get("classes"), cfg.get("n_records"), base_seed)
    if shape is None or int(np.prod(shape)) != X.shape[1]:
        shape = (X.shape[1],)
    return {"X": X, "y": y, "image_shape": np.asarray(shape, dtype=np.int64)}


# ----------------------------------------------------------------------------- records & probes


def select_records(y: np.ndarray, cfg: dict, base_seed: int) -> pd.DataFrame:
    """The records to study: listed in the config, or R distinct ones drawn with the seed (sorted)."""
    n = len(y)
    if cfg.get("indices"):
        idx = np.asarray(cfg["indices"], dtype=np.int64)
        bad = idx[(idx < 0) | (idx >= n)]
        if len(bad):
            raise LoodInputError(f"records.indices {bad.tolist()} out of range: the dataset has {n} records (0..{n - 1})")
        if len(np.unique(idx)) != len(idx):
            raise LoodInputError("records.indices lists a record twice")
    else:
        count = cfg["count"]
        if count > n:
            raise LoodInputError(f"records.count = {count} but the dataset has only {n} records")
        idx = np.sort(seeds.rng(base_seed, "records").choice(n, size=count, replace=False))
    return pd.DataFrame({"record": idx, "label": y[idx]})


def make_probes(X: np.ndarray, records: Sequence[int], t_grid: Sequence[float], base_seed: int) -> dict[str, np.ndarray]:
    """Landscape queries z + t r for each record, one seeded unit direction r per record.

    Both the network and the NNGP are evaluated at exactly these points.
    """
    records = np.asarray(records, dtype=np.int64)
    t = np.asarray(t_grid, dtype=np.float64)
    d = X.shape[1]
    directions = np.empty((len(records), d))
    for j, rec in enumerate(records):
        r = seeds.rng(base_seed, "probes", int(rec)).standard_normal(d)
        directions[j] = r / np.linalg.norm(r)
    queries = X[records][:, None, :] + t[None, :, None] * directions[:, None, :]
    return {"records": records, "t": t, "directions": directions, "queries": queries}
