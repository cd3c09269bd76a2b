"""Dataset sources: scikit-learn's digits, the CIFAR-10 archive, Fashion-MNIST's idx files and a user .npz.

Each loader returns X (n x d, float64), integer y and the image shape (None where the
source has none); the downloads check every file against its publisher's MD5.
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

from lood.errors import LoodInputError

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
        stored_shape = tuple(int(v) for v in f["image_shape"]) if "image_shape" in f.files else None
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
    shape = tuple(X.shape[1:]) if X.ndim > 2 else stored_shape  # an image_shape array saved beside X counts too
    return X.reshape(len(X), -1).astype(np.float64), y.astype(np.int64), shape
