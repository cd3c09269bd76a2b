"""Data sources, records and probes: determinism, canonical order and clear errors on bad input."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from lood.data import (
    download_cifar10,
    load_npz_source,
    make_probes,
    parse_cifar10_archive,
    prepare_dataset,
    select_records,
)
from lood.errors import LoodInputError


# ----------------------------------------------------------------------------- digits


def test_digits_classes_scaled_and_canonical():
    data = prepare_dataset({"source": "digits", "classes": [3, 5], "n_records": None}, base_seed=1)
    raw = load_digits()
    keep = np.isin(raw.target, [3, 5])
    np.testing.assert_array_equal(data["X"], raw.data[keep] / 16.0)
    np.testing.assert_array_equal(data["y"], (raw.target[keep] == 5).astype(int))
    assert data["X"].min() >= 0 and data["X"].max() <= 1
    assert tuple(data["image_shape"]) == (8, 8)


def test_digits_subset_seeded_and_sorted():
    cfg = {"source": "digits", "classes": [3, 5], "n_records": 50}
    a, b = prepare_dataset(cfg, base_seed=3), prepare_dataset(cfg, base_seed=3)
    c = prepare_dataset(cfg, base_seed=4)
    np.testing.assert_array_equal(a["X"], b["X"])
    assert len(a["y"]) == 50 and not np.array_equal(a["X"], c["X"])
    full = prepare_dataset({**cfg, "n_records": None}, base_seed=3)["X"]
    rows = [np.flatnonzero((full == x).all(axis=1))[0] for x in a["X"]]
    assert rows == sorted(rows), "the subset must keep canonical order"


def test_unknown_class_is_named():
    with pytest.raises(LoodInputError, match=r"\[11\]"):
        prepare_dataset({"source": "digits", "classes": [3, 11]}, base_seed=0)


# ----------------------------------------------------------------------------- CIFAR-10


def write_fake_cifar(path: Path, per_batch: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 python archive in the official layout (5 pickled train batches, bytes keys)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            y = rng.integers(0, 10, size=per_batch).tolist()
            blob = pickle.dumps({b"batch_label": f"training batch {i} of 5".encode(), b"labels": y, b"data": x,
                                 b"filenames": [b"f.png"] * per_batch}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/data_batch_{i}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            xs.append(x)
            ys.append(y)
        meta = pickle.dumps({b"label_names": [b"airplane"] * 10})
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = len(meta)
        tar.addfile(info, io.BytesIO(meta))
    return np.concatenate(xs), np.concatenate(ys)


def test_cifar_parser_on_synthetic_archive(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    x, y = write_fake_cifar(archive)
    X, Y, shape = parse_cifar10_archive(archive)
    np.testing.assert_allclose(X, x / 255.0)
    np.testing.assert_array_equal(Y, y)
    assert shape == (3, 32, 32)
    data = prepare_dataset({"source": "cifar10", "classes": [0, 1], "n_records": None}, base_seed=0, archive=archive)
    keep = np.isin(y, [0, 1])
    np.testing.assert_allclose(data["X"], x[keep] / 255.0)
    np.testing.assert_array_equal(data["y"], y[keep])


def test_cifar_parser_rejects_other_archives(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("something/else")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(LoodInputError, match="data_batch_1"):
        parse_cifar10_archive(bad)


def test_download_verifies_checksum(tmp_path):
    src = tmp_path / "src.tar.gz"
    write_fake_cifar(src)
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    dest = tmp_path / "resources" / "cifar-10-python.tar.gz"
    assert download_cifar10(dest, url=src.as_uri(), md5=md5) == dest
    assert dest.read_bytes() == src.read_bytes()
    other = tmp_path / "other.tar.gz"
    with pytest.raises(LoodInputError, match="expected 0+"):
        download_cifar10(other, url=src.as_uri(), md5="0" * 32)
    assert not other.exists() and not other.with_name(other.name + ".part").exists()


def test_offline_download_names_url_and_destination(tmp_path):
    dest = tmp_path / "resources" / "cifar-10-python.tar.gz"
    url = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # discard port: refused at once
    with pytest.raises(LoodInputError) as exc:
        download_cifar10(dest, url=url, md5="0" * 32, timeout=5)
    assert url in str(exc.value) and str(dest.resolve()) in str(exc.value)


# ----------------------------------------------------------------------------- npz


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"X": np.zeros((4, 2))}, r"lacks array\(s\) \['y'\]"),
        ({"data": np.zeros((4, 2)), "y": np.zeros(4)}, r"lacks array\(s\) \['X'\]"),
        ({"X": np.zeros((4, 2)), "y": np.array([0, 1, 0])}, "X has 4 rows"),
        ({"X": np.zeros((4, 2)), "y": np.array([0, 1.5, 0, 1])}, "integer class labels"),
        ({"X": np.zeros((4, 2)), "y": np.array(["a", "b", "a", "b"])}, "integer class labels"),
    ],
)
def test_bad_npz_files(tmp_path, arrays, message):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(LoodInputError, match=message):
        load_npz_source(path)


def test_single_class_npz(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.random.default_rng(0).random((6, 3)), y=np.zeros(6, dtype=int))
    with pytest.raises(LoodInputError, match="single class"):
        prepare_dataset({"source": "npz", "path": str(path)}, base_seed=0)


def test_good_npz_keeps_image_shape_and_float_labels(tmp_path):
    path = tmp_path / "d.npz"
    X = np.random.default_rng(0).random((6, 2, 3))
    np.savez(path, X=X, y=np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0]))
    data = prepare_dataset({"source": "npz", "path": str(path)}, base_seed=0)
    np.testing.assert_array_equal(data["X"], X.reshape(6, 6))
    np.testing.assert_array_equal(data["y"], [0, 1, 2, 0, 1, 2])
    assert tuple(data["image_shape"]) == (2, 3)


def test_missing_npz_file(tmp_path):
    with pytest.raises(LoodInputError, match="does not exist"):
        load_npz_source(tmp_path / "nope.npz")


# ----------------------------------------------------------------------------- records and probes


def test_records_seeded_distinct_and_labelled():
    y = np.arange(100) % 3
    a = select_records(y, {"count": 20}, base_seed=5)
    b = select_records(y, {"count": 20}, base_seed=5)
    assert a.equals(b) and a["record"].is_unique and len(a) == 20
    np.testing.assert_array_equal(a["label"], y[a["record"]])
    assert not a.equals(select_records(y, {"count": 20}, base_seed=6))


def test_records_listed_and_out_of_range():
    y = np.arange(10) % 2
    t = select_records(y, {"count": 50, "indices": [9, 0, 4]}, base_seed=0)
    assert t["record"].tolist() == [9, 0, 4]
    with pytest.raises(LoodInputError, match=r"\[10\] out of range.*0\.\.9"):
        select_records(y, {"indices": [1, 10, 2]}, base_seed=0)
    with pytest.raises(LoodInputError, match="only 10 records"):
        select_records(y, {"count": 11}, base_seed=0)


def test_probes_seeded_and_centred_on_records():
    X = np.random.default_rng(1).random((30, 5))
    t = [-1.0, 0.0, 2.0]
    p = make_probes(X, [3, 7], t, base_seed=9)
    q = make_probes(X, [3, 7], t, base_seed=9)
    np.testing.assert_array_equal(p["queries"], q["queries"])
    np.testing.assert_allclose(np.linalg.norm(p["directions"], axis=1), 1.0)
    np.testing.assert_array_equal(p["queries"][:, 1], X[[3, 7]])
    np.testing.assert_allclose(p["queries"][0, 2] - X[3], 2.0 * p["directions"][0])
    # A record's direction depends on the record, not on which other records are selected.
    alone = make_probes(X, [7], t, base_seed=9)
    np.testing.assert_array_equal(alone["directions"][0], p["directions"][1])
