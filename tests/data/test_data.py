"""Data sources (lood.data.sources), the data stage, records and probes: determinism, canonical order, clear errors."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from lood.config import fill_defaults
from lood.data.prepare import make_probes, normalise_inputs, prepare_dataset, select_records
from lood.data.sources import (
    FASHION_MNIST_FILES,
    IdxFile,
    download_cifar10,
    download_fashion_mnist,
    load_fashion_mnist_source,
    load_npz_source,
    parse_cifar10_archive,
    read_idx,
)
from lood.errors import LoodInputError
from lood.settings import ProbeSettings

from conftest import FASHION_DIR, ROOT


def data_cfg(**data) -> dict:
    """A `data` config section with the schema's defaults filled in."""
    return fill_defaults({"data": data}, ROOT / "schemas" / "config.schema.yaml")["data"]


# ----------------------------------------------------------------------------- digits


def test_digits_classes_scaled_and_canonical():
    data = prepare_dataset(data_cfg(source="digits", classes=[3, 5]), base_seed=1)
    raw = load_digits()
    keep = np.isin(raw.target, [3, 5])
    np.testing.assert_array_equal(data["X"], raw.data[keep] / 16.0)
    np.testing.assert_array_equal(data["y"], (raw.target[keep] == 5).astype(int))
    assert data["X"].min() >= 0 and data["X"].max() <= 1
    assert tuple(data["image_shape"]) == (8, 8)


def test_digits_subset_seeded_and_sorted():
    cfg = data_cfg(source="digits", classes=[3, 5], n_records=50)
    a, b = prepare_dataset(cfg, base_seed=3), prepare_dataset(cfg, base_seed=3)
    c = prepare_dataset(cfg, base_seed=4)
    np.testing.assert_array_equal(a["X"], b["X"])
    assert len(a["y"]) == 50 and not np.array_equal(a["X"], c["X"])
    full = prepare_dataset({**cfg, "n_records": None}, base_seed=3)["X"]
    rows = [np.flatnonzero((full == x).all(axis=1))[0] for x in a["X"]]
    assert rows == sorted(rows), "the subset must keep canonical order"


def test_unknown_class_is_named():
    with pytest.raises(LoodInputError, match=r"\[11\]"):
        prepare_dataset(data_cfg(source="digits", classes=[3, 11]), base_seed=0)


# ----------------------------------------------------------------------------- CIFAR-10


def write_fake_cifar(path: Path, per_batch: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 python archive in the official layout (5 pickled train batches, bytes keys)."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    with tarfile.open(path, "w:gz") as tar:
        for i in range(1, 6):
            x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            y = rng.integers(0, 10, size=per_batch).tolist()
            blob = pickle.dumps(
                {
                    b"batch_label": f"training batch {i} of 5".encode(),
                    b"labels": y,
                    b"data": x,
                    b"filenames": [b"f.png"] * per_batch,
                },
                protocol=2,
            )
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
    data = prepare_dataset(data_cfg(source="cifar10", classes=[0, 1]), base_seed=0, source_path=archive)
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


# ----------------------------------------------------------------------------- Fashion-MNIST (idx files)


def idx_bytes(a: np.ndarray) -> bytes:
    """An idx file of an unsigned-byte array: magic 0x0000 08 ndim, big-endian dims, then the data."""
    return bytes([0, 0, 8, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes() + a.astype(np.uint8).tobytes()


def write_fake_fashion(
    folder: Path, n: int = 30, gz: bool = True, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[IdxFile]]:
    """Training images and labels as idx files (gzipped or not), and IdxFile entries with their true checksums."""
    rng = np.random.default_rng(seed)
    images, labels = rng.integers(0, 256, size=(n, 4, 3)), rng.integers(0, 10, size=n)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, a in [("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)]:
        raw = idx_bytes(a)
        blob = gzip.compress(raw) if gz else raw
        (folder / (name + (".gz" if gz else ""))).write_bytes(blob)
        entries.append(
            IdxFile(name, a.shape, hashlib.md5(gzip.compress(raw, mtime=0)).hexdigest(), hashlib.md5(raw).hexdigest())
        )
    return images, labels, entries


@pytest.mark.parametrize("gz", [True, False])
def test_idx_parser_on_synthetic_files(tmp_path, gz):
    images, labels, entries = write_fake_fashion(tmp_path, gz=gz)
    X, y, shape = load_fashion_mnist_source(tmp_path, entries)
    np.testing.assert_array_equal(X, images.reshape(len(images), -1) / 255.0)
    np.testing.assert_array_equal(y, labels)
    assert shape == (4, 3)


def test_truncated_or_wrong_idx_files_give_one_clear_error(tmp_path):
    _, _, entries = write_fake_fashion(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    good = path.read_bytes()
    cases = [
        (good[:-5], r"is truncated: the header declares shape \(30, 4, 3\)"),
        (good[:9], "shorter than its 16-byte header"),
        (good + b"x", "longer than its header says"),
        (b"PK\x03\x04" + good[4:], "not an idx file"),
        (gzip.compress(good)[:-20], "truncated or corrupt"),
        (good[:-1] + bytes([good[-1] ^ 1]), "is not the official train-images-idx3-ubyte: its contents have MD5"),
    ]
    for blob, message in cases:
        path.write_bytes(blob)
        with pytest.raises(LoodInputError, match=message) as exc:
            read_idx(path, entries[0])
        assert "dataset-fashion-mnist" in str(exc.value)  # every message says how to get a good copy
    path.write_bytes(good)
    with pytest.raises(LoodInputError, match=r"holds shape \(30, 4, 3\), expected \(30,\)"):
        read_idx(path, entries[1])  # the images file where the labels belong
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(LoodInputError, match=r"train-labels-idx1-ubyte.gz \(or train-labels-idx1-ubyte\) not found"):
        load_fashion_mnist_source(tmp_path, entries)


def test_fashion_download_checks_the_publishers_checksum(tmp_path):
    served = tmp_path / "mirror"
    served.mkdir()
    entries = []
    for name, a in [("a-idx1-ubyte", np.arange(5)), ("b-idx1-ubyte", np.arange(7))]:
        blob = gzip.compress(idx_bytes(a), mtime=0)
        (served / (name + ".gz")).write_bytes(blob)
        entries.append(IdxFile(name, a.shape, hashlib.md5(blob).hexdigest(), hashlib.md5(idx_bytes(a)).hexdigest()))
    dest = tmp_path / "resources" / "fashion-mnist"
    paths = download_fashion_mnist(dest, served.as_uri(), entries)
    assert [p.name for p in paths] == ["a-idx1-ubyte.gz", "b-idx1-ubyte.gz"]
    np.testing.assert_array_equal(read_idx(paths[1], entries[1]), np.arange(7))
    wrong = [IdxFile("a-idx1-ubyte", (5,), "0" * 32, entries[0].raw_md5)]
    with pytest.raises(LoodInputError, match="expected 0{32}"):
        download_fashion_mnist(tmp_path / "other", served.as_uri(), wrong)
    assert not list((tmp_path / "other").iterdir())  # nothing half-written is left behind
    url = "http://127.0.0.1:9/"  # discard port: refused at once
    with pytest.raises(LoodInputError) as exc:
        download_fashion_mnist(tmp_path / "offline", url, entries, timeout=5)
    assert url + "a-idx1-ubyte.gz" in str(exc.value) and str(
        (tmp_path / "offline" / "a-idx1-ubyte.gz").resolve()
    ) in str(exc.value)


def test_rules_name_the_same_fashion_files():
    names = re.search(r"FASHION_MNIST_NAMES = \[(.*?)\]", (ROOT / "rules" / "common.smk").read_text(), re.S)[1]
    assert re.findall(r'"([^"]+)"', names) == [f.name for f in FASHION_MNIST_FILES]


@pytest.mark.skipif(
    not FASHION_DIR.is_dir(),
    reason="the real Fashion-MNIST files are absent: apt-get install dataset-fashion-mnist (.ci/run does)",
)
def test_real_fashion_mnist_files():
    for f in FASHION_MNIST_FILES:  # all four: shapes and the decompressed contents' checksums
        a = read_idx(FASHION_DIR / (f.name + ".gz"), f)
        assert a.shape == f.shape and a.dtype == np.uint8
        if a.ndim == 1:
            np.testing.assert_array_equal(np.bincount(a), np.full(10, len(a) // 10))  # balanced classes
    # T-shirt/top (0) vs shirt (6): 6,000 training images each; a seeded subset in canonical order.
    data = prepare_dataset(
        data_cfg(source="fashion_mnist", classes=[0, 6], n_records=500), base_seed=1, source_path=FASHION_DIR
    )
    assert data["X"].shape == (500, 784) and tuple(data["image_shape"]) == (28, 28)
    assert data["X"].min() >= 0 and data["X"].max() <= 1 and set(np.unique(data["y"])) == {0, 1}
    full = prepare_dataset(data_cfg(source="fashion_mnist", classes=[0, 6]), base_seed=1, source_path=FASHION_DIR)
    assert np.bincount(full["y"]).tolist() == [6000, 6000]


# ----------------------------------------------------------------------------- normalisation


def test_normalise_against_independent_computations():
    from sklearn.preprocessing import StandardScaler, normalize

    X = np.random.default_rng(0).random((40, 6)) * 50 + 3
    X[:, 2] = 7.0  # a constant feature
    X[5] = 0.0  # an all-zero record
    np.testing.assert_array_equal(normalise_inputs(X, "none"), X)
    np.testing.assert_allclose(normalise_inputs(X, "unit_norm"), normalize(X), rtol=1e-12)
    np.testing.assert_allclose(
        normalise_inputs(X, "standardise"), StandardScaler().fit_transform(X), rtol=1e-10, atol=1e-12
    )
    with pytest.raises(
        LoodInputError,
        match="data.normalise 'l2' unknown; allowed: auto, none, unit_norm, standardise, feature_range, unit_range",
    ):
        normalise_inputs(X, "l2")


def test_normalisation_is_applied_in_the_data_stage(tmp_path):
    path = tmp_path / "d.npz"
    X = np.random.default_rng(1).random((30, 5)) * 100
    np.savez(path, X=X, y=np.arange(30) % 2)
    for how in ["none", "unit_norm", "standardise"]:
        data = prepare_dataset(data_cfg(source="npz", path=str(path), normalise=how), base_seed=0)
        np.testing.assert_allclose(data["X"], normalise_inputs(X, how))
    # Statistics come from the selected training set, after the class and subset choice.
    digits = prepare_dataset(
        data_cfg(source="digits", classes=[3, 5], n_records=60, normalise="standardise"), base_seed=2
    )
    raw = prepare_dataset(data_cfg(source="digits", classes=[3, 5], n_records=60), base_seed=2)
    np.testing.assert_allclose(digits["X"], normalise_inputs(raw["X"], "standardise"))


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
        prepare_dataset(data_cfg(source="npz", path=str(path)), base_seed=0)


def test_good_npz_keeps_image_shape_and_float_labels(tmp_path):
    path = tmp_path / "d.npz"
    X = np.random.default_rng(0).random((6, 2, 3))
    np.savez(path, X=X, y=np.array([0.0, 1.0, 2.0, 0.0, 1.0, 2.0]))
    data = prepare_dataset(data_cfg(source="npz", path=str(path)), base_seed=0)
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
    grid = ProbeSettings(t=tuple(t), scale="absolute")
    p = make_probes(X, [3, 7], grid, base_seed=9)
    q = make_probes(X, [3, 7], grid, base_seed=9)
    np.testing.assert_array_equal(p["queries"], q["queries"])
    np.testing.assert_allclose(np.linalg.norm(p["directions"], axis=1), 1.0)
    np.testing.assert_array_equal(p["queries"][:, 1], X[[3, 7]])
    np.testing.assert_allclose(p["queries"][0, 2] - X[3], 2.0 * p["directions"][0])
    # A record's direction depends on the record, not on which other records are selected.
    alone = make_probes(X, [7], grid, base_seed=9)
    np.testing.assert_array_equal(alone["directions"][0], p["directions"][1])


def test_relative_grid_follows_the_data_scale():
    X = prepare_dataset(data_cfg(source="digits", classes=[3, 5], n_records=20), base_seed=2)["X"]  # 10X: 10x the scale
    grid = ProbeSettings(t=(-1.0, 0.0, 0.5, 1.0), scale="record_norm")
    p, big = make_probes(X, [4, 9], grid, base_seed=1), make_probes(10 * X, [4, 9], grid, base_seed=1)
    np.testing.assert_allclose(big["queries"], 10 * p["queries"], rtol=1e-12)  # the grid scales with the data
    norms = np.linalg.norm(X[[4, 9]], axis=1)
    np.testing.assert_allclose(p["scale"], norms)
    np.testing.assert_allclose(
        np.linalg.norm(p["queries"] - X[[4, 9]][:, None], axis=2), norms[:, None] * np.abs(grid.t)
    )
    absolute = make_probes(X, [4, 9], ProbeSettings(t=grid.t, scale="absolute"), base_seed=1)
    np.testing.assert_allclose(
        absolute["queries"] - X[[4, 9]][:, None], (p["queries"] - X[[4, 9]][:, None]) / norms[:, None, None]
    )
    with pytest.raises(LoodInputError, match="probes.scale 'norm' unknown; allowed: record_norm, absolute"):
        ProbeSettings(t=(0.0,), scale="norm")


@pytest.mark.e2e
def test_networks_nngp_and_lr_see_the_same_normalised_inputs(workflow_copy):
    """The real rules on the tiny config with data.normalise standardise: every side reads the data stage's X."""
    import pandas as pd
    import torch
    import yaml

    from lood.analytic.tables import lood_table, prepare
    from lood.empirical.step_size import lr_table
    from lood.empirical.train import forward
    from lood.settings import Arch, Training

    from conftest import snakemake

    override = {
        "data": {"normalise": "standardise"},
        "training": {"lr": "auto", "save_weights": True},
        "nngp": {"sigma2": 0.2},
        "run_experiments": ["relu"],
    }
    (workflow_copy / "normalised.yaml").write_text(yaml.safe_dump(override))
    targets = ["results/relu/nn/in/chunk0.npz", "results/relu/nngp/lood.csv", "results/relu/nn/lr.csv"]
    run = snakemake(
        workflow_copy, *targets, "--cores", "2", "--configfile", "tests/configs/tiny.yaml", "normalised.yaml"
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    cfg = fill_defaults(
        yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text()), ROOT / "schemas/config.schema.yaml"
    )
    with np.load(workflow_copy / "results/data/dataset.npz") as f:
        X, y = f["X"], f["y"]
    raw = prepare_dataset({**cfg["data"], "normalise": "none"}, cfg["seed"])["X"]
    np.testing.assert_allclose(X, normalise_inputs(raw, "standardise"))  # normalised once, in the data stage
    arch = Arch.from_config({**cfg["model"], **cfg["experiments"]["relu"]})
    res = workflow_copy / "results/relu"
    with np.load(res / "nn/in/chunk0.npz") as f:
        records, logits = f["records"], f["logits_record"]
    weights = torch.load(res / "nn/in/chunk0_weights.pt")
    with torch.no_grad():
        again = forward(weights, torch.as_tensor(X[records], dtype=torch.float32), arch).numpy()
    np.testing.assert_allclose(logits, again, rtol=1e-5, atol=1e-5)  # the networks were evaluated on X
    gp = prepare(X, y, arch, 0.2, cfg["nngp"]["block_size"])
    expected = lood_table(gp, records, cfg["nngp"]["auc_samples"], cfg["seed"])
    got = pd.read_csv(res / "nngp/lood.csv")
    np.testing.assert_allclose(got["kl"], expected["kl"], rtol=1e-8)  # the NNGP saw the same X
    training = Training.from_config({**cfg["training"], "lr": "auto"})
    np.testing.assert_allclose(pd.read_csv(res / "nn/lr.csv")["lr"], lr_table(X, y, arch, training, cfg["seed"])["lr"])


def test_garbage_npz_is_named_as_not_a_zip(tmp_path):
    """Bytes that are not a zip archive get a message about the file, not numpy's hint about pickles."""
    bad = tmp_path / "garbage.npz"
    bad.write_bytes(b"not an archive" * 20)
    with pytest.raises(LoodInputError, match=r"not a valid \.npz \(zip\) file") as exc:
        load_npz_source(bad)
    assert "pickle" not in str(exc.value)


def test_auto_normalisation_leaves_unit_inputs_exactly_and_brings_raw_ones_to_unit_range():
    from sklearn.preprocessing import MinMaxScaler

    from lood.data.prepare import normalise_held_out, resolved_normalise

    rng = np.random.default_rng(5)
    unit = rng.uniform(size=(30, 16))
    assert resolved_normalise(unit, "auto", image=True) == "none"
    np.testing.assert_array_equal(normalise_inputs(unit, "auto", image=True), unit)  # identical, not close
    pixels = rng.integers(0, 256, size=(30, 16)).astype(float)
    pixels[0, 0], pixels[1, 1] = 0, 255
    assert resolved_normalise(pixels, "auto", image=True) == "unit_range"
    np.testing.assert_allclose(normalise_inputs(pixels, "auto", image=True), pixels / 255, rtol=1e-15)
    table = rng.normal(size=(30, 5)) * np.array([1e3, 1.0, 1e-2, 50.0, 7.0]) + 3.0
    assert resolved_normalise(table, "auto", image=False) == "feature_range"
    np.testing.assert_allclose(normalise_inputs(table, "auto"), MinMaxScaler().fit_transform(table), atol=1e-12)
    held = rng.normal(size=(4, 5)) * np.array([1e3, 1.0, 1e-2, 50.0, 7.0])
    np.testing.assert_allclose(
        normalise_held_out(held, table, "feature_range"), MinMaxScaler().fit(table).transform(held), atol=1e-12
    )
    # The digits source is in [0, 1]: at the new default its dataset is the one `none` gave.
    cfg = data_cfg(source="digits", classes=[3, 5], n_records=60)
    auto, none = prepare_dataset(cfg | {"normalise": "auto"}, 2), prepare_dataset(cfg | {"normalise": "none"}, 2)
    np.testing.assert_array_equal(auto["X"], none["X"])
    np.testing.assert_array_equal(auto["X_test"], none["X_test"])
    assert str(auto["normalise"]) == "none"
