"""Data sources (digits, CIFAR-10, Fashion-MNIST, a user .npz), input normalisation, records and landscape probes.

Every later stage indexes into the arrays written by `prepare_dataset`, so their
order is canonical and deterministic for a given config.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lood import seeds
from lood.config import check_choice
from lood.errors import LoodInputError
from lood.settings import ProbeSettings

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_TRAIN_MEMBERS = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
CIFAR10_TEST_MEMBER = "cifar-10-batches-py/test_batch"


@dataclass(frozen=True)
class IdxFile:
    """One file of an idx dataset: its name (without .gz), array shape and checksums."""

    name: str
    shape: tuple[int, ...]
    gz_md5: str  # of the publisher's .gz file (what the download checks)
    raw_md5: str  # of the decompressed idx bytes (what reading checks: any copy, gzipped or not)


# The official files (github.com/zalandoresearch/fashion-mnist, "Get the Data"). Debian's
# dataset-fashion-mnist recompresses the .gz files, so their MD5s differ from gz_md5; the
# decompressed bytes match raw_md5, which is what every copy is checked against when read.
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
FASHION_MNIST_FILES = (
    IdxFile(
        "train-images-idx3-ubyte",
        (60000, 28, 28),
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    ),
    IdxFile(
        "train-labels-idx1-ubyte", (60000,), "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"
    ),
    IdxFile(
        "t10k-images-idx3-ubyte",
        (10000, 28, 28),
        "bef4ecab320f06d8554ea6380940ec79",
        "8181f5470baa50b63fa0f6fddb340f0a",
    ),
    IdxFile("t10k-labels-idx1-ubyte", (10000,), "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FASHION_MNIST_HELP = (
    "Install the Debian package (apt-get install dataset-fashion-mnist) and set data.path: "
    "/usr/share/datasets/fashion-mnist, or delete the file so that the download_fashion_mnist rule fetches it again"
)


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


def _fetch(url: str, dest: Path, md5: str, what: str, timeout: float, hint: str = "") -> Path:
    """Download `url` to `dest` via a .part file and check its MD5; one actionable message when offline or corrupt."""
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
            f"could not download {what} from {url} ({exc}). Download it on a machine with "
            f"network access and place it at {dest.resolve()} (MD5 {md5}); the workflow then uses it.{hint}"
        ) from None
    got = md5sum(tmp)
    if got != md5:
        tmp.unlink(missing_ok=True)
        raise LoodInputError(
            f"{what} from {url} has MD5 {got}, expected {md5}; delete it and retry, "
            f"or place a good copy at {dest.resolve()}"
        )
    tmp.replace(dest)
    return dest


def download_cifar10(dest: str | Path, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5, timeout: float = 30.0) -> Path:
    """Download the CIFAR-10 python archive to `dest` and verify its MD5.

    Offline or on a checksum mismatch, raise one message naming the URL and where
    to put a manually downloaded copy (the rule then skips the download).
    """
    return _fetch(url, Path(dest), md5, "the CIFAR-10 archive", timeout)


def download_fashion_mnist(
    dest_dir: str | Path, base_url: str, files: Sequence[IdxFile], timeout: float = 30.0
) -> list[Path]:
    """Download the gzipped idx `files` from `base_url` into `dest_dir`, each checked against the publisher's MD5."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    hint = (
        " Or set data.path to a directory holding the files, e.g. /usr/share/datasets/fashion-mnist"
        " after apt-get install dataset-fashion-mnist."
    )
    return [
        _fetch(
            base + f.name + ".gz",
            Path(dest_dir) / (f.name + ".gz"),
            f.gz_md5,
            f"Fashion-MNIST file {f.name}.gz",
            timeout,
            hint,
        )
        for f in files
    ]


def parse_cifar10_archive(
    archive: str | Path, members: Sequence[str] = tuple(CIFAR10_TRAIN_MEMBERS)
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The 50,000 CIFAR-10 training images in canonical order (batches 1..5), X in [0, 1].

    X rows are channel-major (3x1024), as in the archive; the image shape is (3, 32, 32).
    `members` names other batches to read instead (the test split: CIFAR10_TEST_MEMBER).
    """
    xs, ys = [], []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in members:
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


IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def idx_file(directory: str | Path, name: str) -> Path:
    """The file `name`.gz or `name` (uncompressed) in `directory`, whichever exists (gzipped first)."""
    directory = Path(directory)
    for candidate in (directory / (name + ".gz"), directory / name):
        if candidate.is_file():
            return candidate
    raise LoodInputError(f"{name}.gz (or {name}) not found in {directory} (config data.path). {FASHION_MNIST_HELP}")


def read_idx(path: str | Path, expected: IdxFile | None) -> np.ndarray:
    """The array in an idx file (gzipped or not), checked for completeness and against `expected` (shape, MD5)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError; a cut .gz raises EOFError
        raise LoodInputError(
            f"{path} is not a readable idx file ({exc}): truncated or corrupt. {FASHION_MNIST_HELP}"
        ) from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_DTYPES or raw[3] < 1:
        raise LoodInputError(f"{path} is not an idx file (bad magic number {raw[:4].hex()}). {FASHION_MNIST_HELP}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise LoodInputError(
            f"{path} is truncated: {len(raw)} bytes, shorter than its {header}-byte header. {FASHION_MNIST_HELP}"
        )
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    size = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != size:
        state = "truncated" if len(raw) < size else "longer than its header says"
        raise LoodInputError(
            f"{path} is {state}: the header declares shape {shape} ({size} bytes), "
            f"the data hold {len(raw)} bytes. {FASHION_MNIST_HELP}"
        )
    if expected is not None:
        if shape != expected.shape:
            raise LoodInputError(
                f"{path} holds shape {shape}, expected {expected.shape} for {expected.name}. {FASHION_MNIST_HELP}"
            )
        got = hashlib.md5(raw).hexdigest()
        if got != expected.raw_md5:
            raise LoodInputError(
                f"{path} is not the official {expected.name}: its contents have MD5 {got}, "
                f"expected {expected.raw_md5}. {FASHION_MNIST_HELP}"
            )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_fashion_mnist_source(
    directory: str | Path, files: Sequence[IdxFile]
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Fashion-MNIST's training images (`files[0]`) and labels (`files[1]`) in `directory`: X in [0, 1], y, (28, 28)."""
    images_file, labels_file = files[0], files[1]
    images = read_idx(idx_file(directory, images_file.name), images_file)
    labels = read_idx(idx_file(directory, labels_file.name), labels_file)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise LoodInputError(
            f"{directory}: images {images.shape} and labels {labels.shape} do not pair up (one label per 2-D image)"
        )
    X = images.reshape(len(images), -1).astype(np.float64) / 255.0
    return X, labels.astype(np.int64), tuple(images.shape[1:])


def load_npz_source(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[int, ...] | None]:
    """A user dataset: an .npz with `X` (n x ...) and integer `y` (n)."""
    path = Path(path)
    if not path.exists():
        raise LoodInputError(f"dataset file {path} does not exist (config data.path)")
    if not zipfile.is_zipfile(path):  # np.load would blame pickling for any non-zip bytes
        raise LoodInputError(
            f"dataset file {path} is not a valid .npz (zip) file; write it with np.savez(path, X=..., y=...)"
        )
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several types for a bad file
        raise LoodInputError(f"dataset file {path} is not a readable .npz: {exc}") from None
    with f:
        missing = [k for k in ("X", "y") if k not in f.files]
        if missing:
            raise LoodInputError(
                f"dataset file {path} lacks array(s) {missing}; it has {f.files}. "
                "Save it with np.savez(path, X=..., y=...)"
            )
        X, y = f["X"], f["y"]
    if X.ndim < 2:
        raise LoodInputError(f"dataset file {path}: X must have one row per record (2+ dims), got shape {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise LoodInputError(
            f"dataset file {path}: y must be 1-D with one label per row of X; "
            f"X has {len(X)} rows, y has shape {y.shape}"
        )
    if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
        raise LoodInputError(f"dataset file {path}: X must be finite numbers (dtype {X.dtype})")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise LoodInputError(
                f"dataset file {path}: y must hold integer class labels, "
                f"found non-integer values such as {y[y != np.round(y)][:3]}"
            )
    elif not np.issubdtype(y.dtype, np.integer):
        raise LoodInputError(f"dataset file {path}: y must hold integer class labels, got dtype {y.dtype}")
    shape = tuple(X.shape[1:]) if X.ndim > 2 else None
    return X.reshape(len(X), -1).astype(np.float64), y.astype(np.int64), shape


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


def normalise_inputs(X: np.ndarray, normalise: str) -> np.ndarray:
    """X under `data.normalise`: none; unit_norm (rows scaled to norm 1); standardise (features to mean 0, std 1).

    Statistics come from X itself (the training set). A constant feature is centred and left
    unscaled; an all-zero row stays zero under unit_norm.
    """
    check_choice(normalise, "normalise", "data.normalise")
    X = np.asarray(X, dtype=np.float64)
    if normalise == "unit_norm":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return X / np.where(norms > 0, norms, 1.0)
    if normalise == "standardise":
        std = X.std(axis=0)
        return (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
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
    X_source, y_source = X, y  # kept for the held-out records below (issue 14)
    X, y = select_classes(X, y, cfg.get("classes"), cfg.get("n_records"), base_seed)
    X_raw = X
    X = normalise_inputs(X, cfg["normalise"])
    if shape is None or int(np.prod(shape)) != X.shape[1]:
        shape = (X.shape[1],)
    # Held-out records (issue 14, the depth study's test accuracy); nothing else reads them.
    X_test, y_test, test_source = held_out_records(X_source, y_source, cfg, base_seed, source_path)
    X_test = normalise_held_out(X_test, X_raw, cfg["normalise"])
    return {
        "X": X,
        "y": y,
        "image_shape": np.asarray(shape, dtype=np.int64),
        "X_test": X_test,
        "y_test": y_test,
        "test_source": np.asarray(test_source),
    }


# ----------------------------------------------------------------------------- held-out records (issue 14)
# The NNGP's and the networks' test accuracy (lood/depth.py) need records of the chosen classes that
# are not in the training set. They are stored beside X in dataset.npz and never enter training.


def normalise_held_out(X_test: np.ndarray, X_train_raw: np.ndarray, normalise: str) -> np.ndarray:
    """Held-out rows under `data.normalise` with the training set's statistics (standardise: its mean and std)."""
    check_choice(normalise, "normalise", "data.normalise")
    X_test = np.asarray(X_test, dtype=np.float64)
    if normalise == "standardise":
        X_train_raw = np.asarray(X_train_raw, dtype=np.float64)
        std = X_train_raw.std(axis=0)
        return (X_test - X_train_raw.mean(axis=0)) / np.where(std > 0, std, 1.0)
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
