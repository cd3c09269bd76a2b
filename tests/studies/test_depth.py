"""The activation x depth study (lood.studies.depth_nngp) and the held-out records it reads (lood.data.prepare),
against independent computations: known spectra, the closed-form arc-cosine recursion at depth 10,
dense solves and sklearn's kernel ridge, torch's losses, and sklearn's scaler."""

from __future__ import annotations

import io
import logging
import pickle
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.kernel_ridge import KernelRidge
from sklearn.preprocessing import StandardScaler

from lood.analytic.divergence import lood_at_records
from lood.analytic.gp import fit_gp, targets
from lood.analytic.kernel import kernel_fn, nngp_kernel
from lood.analytic.sigma2 import experiment_sigma2
from lood.analytic.tables import lood_all_table, prepare
from lood.config import fill_defaults
from lood.data.prepare import held_out_records, normalise_held_out, normalise_inputs, prepare_dataset
from lood.errors import LoodInputError
from lood.figures.depth import depth_figure
from lood.settings import Arch, DepthSettings, NNGPSettings
from lood.studies import depth_networks, depth_nngp
from lood.studies.depth_networks import NetworkOutputs

from conftest import FASHION_DIR, ROOT
from reference import arccos_nngp, rel_err

SCHEMA = ROOT / "schemas" / "config.schema.yaml"
MODEL = {"depth": 2, "width": 64, "activation": "relu", "bias": False, "w_std": 2**0.5, "b_std": 0.0}


def defaults(section: str, **values) -> dict:
    """A config section with the schema's defaults filled in."""
    return fill_defaults({section: values}, SCHEMA)[section]


def study(**values) -> DepthSettings:
    return DepthSettings.from_config(defaults("depth_study", **values))


def nngp_settings(**values) -> NNGPSettings:
    return NNGPSettings.from_config(defaults("nngp", **values))


def known_kernel(lam: np.ndarray, seed: int) -> np.ndarray:
    """Q diag(lam) Qᵀ with a random orthogonal Q: a kernel whose spectrum is lam."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(lam), len(lam))))
    return (Q * lam) @ Q.T


# ----------------------------------------------------------------------------- effective rank


def test_rank_measures_on_kernels_with_known_spectrum():
    lam = np.array([90.0, 9.0, 0.6, 0.3, 0.1, 0.0, 0.0, 0.0])
    K = known_kernel(lam, 0)
    got = np.linalg.eigvalsh(K).clip(0)  # the spectrum as the study sees it (eigh of K_FF)
    assert depth_nngp.participation_ratio(got) == pytest.approx(100.0**2 / np.sum(lam**2), rel=1e-10)
    # 90 + 9 = 99 holds exactly 99% of the trace (100); 99.6 holds 99.6%.
    assert depth_nngp.trace_rank(got, 0.99) == 2
    assert depth_nngp.trace_rank(got, 0.995) == 3
    assert depth_nngp.trace_rank(got, 0.9) == 1
    assert depth_nngp.trace_rank(got, 1.0) == 5
    # A flat spectrum has full rank; a constant kernel (the deep-ReLU limit) has rank one.
    n = 12
    assert depth_nngp.participation_ratio(np.linalg.eigvalsh(known_kernel(np.full(n, 2.5), 1))) == pytest.approx(n)
    ones = np.linalg.eigvalsh(np.full((n, n), 3.0)).clip(0)
    assert depth_nngp.participation_ratio(ones) == pytest.approx(1.0, rel=1e-10)
    assert depth_nngp.trace_rank(ones, 0.99) == 1
    assert depth_nngp.mean_correlation(np.full((n, n), 3.0)) == pytest.approx(1.0)
    assert depth_nngp.mean_correlation(np.diag(np.arange(1.0, n + 1))) == 0.0
    with pytest.raises(LoodInputError, match="non-negative"):
        depth_nngp.participation_ratio(np.array([1.0, -1.0]))
    with pytest.raises(LoodInputError, match="rank_fraction"):
        depth_nngp.trace_rank(lam, 1.5)


# ----------------------------------------------------------------------------- the depth recursion


@pytest.mark.parametrize("bias", [False, True])
def test_stax_depth_10_matches_arccos_recursion(bias):
    rng = np.random.default_rng(10)
    X1, X2 = rng.standard_normal((9, 5)), rng.standard_normal((7, 5))
    b_std = 0.3 if bias else 0.0
    arch = depth_nngp.variant_arch({**MODEL, "bias": bias, "b_std": b_std}, {"activation": "relu", "w_std": 2**0.5}, 10)
    assert arch.depth == 10
    want = arccos_nngp(X1, X2, 10, 2**0.5, b_std)
    assert rel_err(np.asarray(kernel_fn(arch)(X1, X2, "nngp")), want) <= 1e-10
    assert rel_err(nngp_kernel(X1, X2, arch, 4), want) <= 1e-10  # the tiled path the sweep uses
    # At depth 10 the ReLU kernel has nearly lost the angles between inputs: correlations near 1.
    K = arccos_nngp(X1, X1, 10, 2**0.5, 0.0)
    assert depth_nngp.mean_correlation(K) > depth_nngp.mean_correlation(arccos_nngp(X1, X1, 1, 2**0.5, 0.0))


# ----------------------------------------------------------------------------- the NNGP sweep


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(3)
    X, X_test = rng.random((30, 6)), rng.random((17, 6))
    w = rng.standard_normal(6)
    y, y_test = (X @ w > np.median(X @ w)).astype(int), (X_test @ w > np.median(X @ w)).astype(int)
    return depth_nngp.DataSplit(X, y, X_test, y_test)


@pytest.mark.parametrize("scale", ["absolute", "kernel"])
def test_sweep_point_against_dense_solves_and_kernel_ridge(small, scale):
    X, y, X_test, y_test = small
    arch = depth_nngp.variant_arch(MODEL, {"activation": "gelu", "w_std": 1.9822}, 3)
    records = np.array([0, 4, 29])
    settings = study(sigma2=0.05, sigma2_scale=scale, sigma2_others=[0.5])
    rows, recs = depth_nngp.sweep_point(small, records, arch, settings, nngp_settings(auc_samples=500), "mse", 5)
    assert [(r["sigma2_scale"], r["sigma2_setting"]) for r in rows] == [
        ("kernel", "0.05"),
        ("kernel", "0.5"),
        ("absolute", "0.05"),
        ("absolute", "0.5"),
    ]
    assert len(recs) == 4 * 3 and sum(r["drawn"] for r in rows) == 1
    row = next(r for r in rows if r["sigma2_scale"] == scale and r["sigma2_setting"] == "0.05")
    assert row["drawn"]
    recs = recs[(recs["sigma2_setting"] == "0.05") & (recs["sigma2_scale"] == scale)]
    K, K_TF = nngp_kernel(X, None, arch, 8), nngp_kernel(X_test, X, arch, 8)
    s = np.mean(np.diag(K)) if scale == "kernel" else 1.0  # kernel: the GP sees K / mean(K_ii)
    assert row["kernel_scale"] == pytest.approx(np.mean(np.diag(K))) and row["sigma2"] == 0.05
    K, K_TF = K / s, K_TF / s
    Y = targets(y, None)
    mean_test = K_TF @ np.linalg.solve(K + 0.05 * np.eye(30), Y)
    assert row["test_acc"] == pytest.approx(np.mean(mean_test.argmax(1) == y_test))
    ridge = KernelRidge(alpha=0.05, kernel="precomputed").fit(K, Y)
    assert row["test_acc"] == pytest.approx(np.mean(ridge.predict(K_TF).argmax(1) == y_test))
    assert row["train_acc"] == pytest.approx(np.mean(ridge.predict(K).argmax(1) == y))
    # LOOD from the eigendecomposition equals the Cholesky path's (tested against refits in test_analytic).
    if scale == "absolute":
        chol = lood_all_table(prepare(X, y, arch, 0.05, 8))["kl"].to_numpy()
    else:  # the same Cholesky path on the scaled kernel
        chol = lood_at_records(fit_gp(K, Y, 0.05), np.diag(K), np.arange(30))["kl"]
    np.testing.assert_allclose(recs["kl"], chol[records], rtol=1e-8)
    assert row["kl_median"] == pytest.approx(np.median(chol), rel=1e-8)
    assert row["kl_q75"] == pytest.approx(np.percentile(chol, 75), rel=1e-8)
    lam = np.linalg.eigvalsh(K).clip(0)
    assert row["participation_ratio"] == pytest.approx(lam.sum() ** 2 / np.sum(lam**2), rel=1e-8)
    assert (row["depth"], row["activation"], row["sigma2_rule"], row["n_test"]) == (3, "gelu", "fixed", 17)
    assert np.all((recs["auc_nngp"] >= 0.5 - 0.05) & (recs["auc_nngp"] <= 1))


def test_marginal_likelihood_sigma2_per_depth_is_the_workflows_rule(small):
    X, y = small.X, small.y
    nn = nngp_settings(sigma2="marginal_likelihood", grid_points=21)
    for d in (1, 6):
        arch = depth_nngp.variant_arch(MODEL, {"activation": "relu", "w_std": 2**0.5}, d)
        settings = study(sigma2="marginal_likelihood", sigma2_scale="absolute", sigma2_others=[])
        rows, _ = depth_nngp.sweep_point(small, np.array([1, 2, 3]), arch, settings, nn, "mse", 0)
        chosen, _ = experiment_sigma2(X, y, arch, nn, None, "mse", True)
        absolute = [r for r in rows if r["sigma2_scale"] == "absolute"]
        assert len(absolute) == 1 and absolute[0]["sigma2"] == chosen["sigma2"].iloc[0]
        assert absolute[0]["sigma2_rule"] == "marginal_likelihood"
        # In units of the scaled kernel the rule's grid moves with it (the fitted-scale evidence is scale-free).
        kernel = next(r for r in rows if r["sigma2_scale"] == "kernel")
        assert kernel["sigma2_rule"] == "marginal_likelihood" and kernel["kernel_scale"] == absolute[0]["kernel_scale"]


def test_depth_sweep_table_covers_every_variant_and_depth(small, caplog):
    caplog.set_level(logging.INFO)
    X, y, X_test, y_test = small
    s = study(depths=[1, 4], sigma2=0.1, sigma2_others=[])
    table, recs = depth_nngp.depth_sweep(
        depth_nngp.DataSplit(X, y, X_test[:0], y_test[:0]),
        np.array([2, 5, 7]),
        MODEL,
        s,
        nngp_settings(auc_samples=200),
        "mse",
        1,
        logging.getLogger("depth-test"),
    )
    assert "depth sweep (variant x depth points): 100.0%" in caplog.text  # the progress line at the end
    assert len(table) == 4 * 2 * 2 and len(recs) == 4 * 2 * 2 * 3  # variants x depths x scalings
    assert table.groupby(["activation", "w_std"]).size().tolist() == [4, 4, 4, 4]
    assert table["drawn"].sum() == 4 * 2
    assert table["test_acc"].isna().all()  # no held-out records: NaN, not an error
    deep, shallow = (table[(table.activation == "relu") & (table.depth == d)].iloc[0] for d in (4, 1))
    assert deep["mean_correlation"] > shallow["mean_correlation"]  # the ReLU kernel degenerates with depth
    assert deep["participation_ratio"] < shallow["participation_ratio"]


def test_depth_settings_reject_bad_values():
    with pytest.raises(LoodInputError, match="depth_study.sigma2"):
        study(sigma2="calibrate")
    with pytest.raises(LoodInputError, match="depth_study.sigma2"):
        study(sigma2_others=[0.1, -1.0])
    with pytest.raises(LoodInputError, match="sigma2_scale"):
        study(sigma2_scale="relative")
    assert study(sigma2=0.5, sigma2_others=[0.05, 0.5, "marginal_likelihood"]).sigma2_settings == (
        0.5,
        0.05,
        "marginal_likelihood",
    )
    with pytest.raises(LoodInputError, match="activation"):
        study(variants=[{"activation": "tanh", "w_std": 1.0}])
    with pytest.raises(LoodInputError, match="rank_fraction"):
        DepthSettings.from_config({**defaults("depth_study"), "rank_fraction": 0.0})
    assert study().variants[2] == {"activation": "gelu", "w_std": 1.9822}


# ----------------------------------------------------------------------------- the networks


def test_training_loss_matches_torch():
    rng = np.random.default_rng(0)
    logits, y = rng.standard_normal((4, 11, 3)), rng.integers(0, 3, 11)
    T = torch.nn.functional.one_hot(torch.as_tensor(y), 3).double() - 1 / 3
    mse = [torch.nn.MSELoss()(torch.as_tensor(m), T).item() for m in logits]
    ce = [torch.nn.CrossEntropyLoss()(torch.as_tensor(m), torch.as_tensor(y)).item() for m in logits]
    np.testing.assert_allclose(depth_networks.training_loss(logits, y, "mse"), mse, rtol=1e-12)
    np.testing.assert_allclose(
        depth_networks.training_loss(logits * 40, y, "cross_entropy"),
        [torch.nn.CrossEntropyLoss()(torch.as_tensor(m * 40), torch.as_tensor(y)).item() for m in logits],
        rtol=1e-10,
    )
    np.testing.assert_allclose(depth_networks.training_loss(logits, y, "cross_entropy"), ce, rtol=1e-12)
    np.testing.assert_allclose(depth_networks.model_accuracy(logits, y), [np.mean(m.argmax(1) == y) for m in logits])


def test_network_row_summarises_the_experiment():
    rng = np.random.default_rng(1)
    y, y_test = rng.integers(0, 2, 20), rng.integers(0, 2, 9)
    onehot = np.eye(2)[y] - 0.5
    chunks = [
        {
            "logits_train": onehot[None] + 0.1 * rng.standard_normal((3, 20, 2)),
            "logits_test": rng.standard_normal((3, 9, 2)),
        }
        for _ in range(2)
    ]
    mia = pd.DataFrame({"record": [3, 1, 7, 9], "auc": [0.5, 0.9, 0.7, 0.6]})
    lood = pd.DataFrame({"record": [1, 3, 7, 9], "auc_nngp": [0.52, 0.51, 0.56, 0.6], "sigma2": 0.2})
    arch = Arch.from_config({**MODEL, "depth": 6})
    lr = pd.Series({"lr_setting": 0.02, "lr": 0.02, "bound": 0.05, "fraction_of_bound": 0.4})
    row = depth_networks.network_row("relu_d6", arch, NetworkOutputs(lr, mia, lood, chunks), y, y_test, "mse")
    assert (row["lr"], row["lr_fraction_of_bound"]) == (0.02, 0.4)
    assert (row["depth"], row["n_models"], row["n_records"]) == (6, 6, 4)
    assert row["mia_auc_median"] == pytest.approx(0.65) and row["auc_nngp_median"] == pytest.approx(0.54)
    assert row["train_acc"] == 1.0 and row["sigma2"] == 0.2
    test = np.concatenate([c["logits_test"] for c in chunks])
    assert row["test_acc"] == pytest.approx(np.mean(test.argmax(2) == y_test))
    with pytest.raises(LoodInputError, match="logits_test"):
        lacking = NetworkOutputs(lr, mia, lood, [{"logits_train": chunks[0]["logits_train"]}])
        depth_networks.network_row("relu", arch, lacking, y, y_test, "mse")


# ----------------------------------------------------------------------------- held-out records (lood/data/prepare.py)


def test_held_out_digits_are_the_records_left_out():
    cfg = defaults("data", source="digits", classes=[3, 5], n_records=60)
    data = prepare_dataset(cfg, base_seed=2)
    raw = load_digits()
    keep = np.isin(raw.target, [3, 5])
    pool, labels = raw.data[keep] / 16.0, (raw.target[keep] == 5).astype(int)
    assert len(data["X"]) + len(data["X_test"]) == len(pool) == 365
    train_rows = {tuple(r) for r in data["X"]}
    assert not any(tuple(r) in train_rows for r in data["X_test"])
    rows = [np.flatnonzero((pool == x).all(axis=1))[0] for x in data["X_test"]]
    assert rows == sorted(rows) and len(set(rows) | {tuple(r) for r in data["X"]}) == 365
    np.testing.assert_array_equal(data["y_test"], labels[rows])
    assert "not drawn" in str(data["test_source"])
    capped = prepare_dataset({**cfg, "test_records": 50}, base_seed=2)
    assert len(capped["X_test"]) == 50 and {tuple(r) for r in capped["X_test"]} <= {tuple(r) for r in data["X_test"]}
    np.testing.assert_array_equal(capped["X"], data["X"])  # the training set does not change


def test_held_out_standardised_with_the_training_statistics():
    cfg = defaults("data", source="digits", classes=[3, 5], n_records=80)
    raw = prepare_dataset(cfg, base_seed=4)
    std = prepare_dataset({**cfg, "normalise": "standardise"}, base_seed=4)
    scaler = StandardScaler().fit(raw["X"])
    np.testing.assert_allclose(std["X"], scaler.transform(raw["X"]), atol=1e-12)
    keep = scaler.scale_ > 0  # sklearn leaves constant features unscaled too
    np.testing.assert_allclose(std["X_test"][:, keep], scaler.transform(raw["X_test"])[:, keep], atol=1e-12)
    unit = prepare_dataset({**cfg, "normalise": "unit_norm"}, base_seed=4)
    np.testing.assert_allclose(np.linalg.norm(unit["X_test"], axis=1)[np.linalg.norm(raw["X_test"], axis=1) > 0], 1.0)
    X = np.random.default_rng(0).random((9, 4))
    for how in ("none", "unit_norm", "standardise"):
        np.testing.assert_allclose(normalise_held_out(X, X, how), normalise_inputs(X, how))


def test_no_records_left_says_so():
    data = prepare_dataset(defaults("data", source="digits", classes=[3, 5]), base_seed=0)
    assert data["X_test"].shape == (0, 64) and len(data["y_test"]) == 0
    assert str(data["test_source"]).startswith("none")


def write_fake_cifar_with_test(path: Path, per_batch: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A CIFAR-10 archive with five train batches and a test batch; returns the test batch."""
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            x = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            y = [0, 1, 2] * (per_batch // 3) + [1] * (per_batch % 3)
            blob = pickle.dumps({b"labels": y, b"data": x}, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return x, np.asarray(y)


def test_cifar_test_split_when_every_record_trains(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    x, y = write_fake_cifar_with_test(archive)
    data = prepare_dataset(defaults("data", source="cifar10", classes=[2, 1]), base_seed=0, source_path=archive)
    keep = np.isin(y, [2, 1])
    np.testing.assert_allclose(data["X_test"], x[keep] / 255.0)
    np.testing.assert_array_equal(data["y_test"], np.where(y[keep] == 2, 0, 1))  # relabelled in the order given
    assert "test split" in str(data["test_source"])


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_fashion_test_split_is_t10k():
    cfg = defaults("data", source="fashion_mnist", classes=[0, 6], test_records=300)
    X_test, y_test, note = held_out_records(np.zeros((1, 784)), np.array([0]), cfg, 1, FASHION_DIR)
    assert X_test.shape == (300, 784) and set(np.unique(y_test)) == {0, 1} and "test split" in note
    X_test, y_test, _ = held_out_records(
        np.zeros((1, 784)), np.array([0]), {**cfg, "test_records": None}, 1, FASHION_DIR
    )
    assert np.bincount(y_test).tolist() == [1000, 1000]  # t10k holds 1,000 of each class


def test_arch_override_keeps_model_keys():
    arch = depth_nngp.variant_arch({**MODEL, "bias": True, "b_std": 0.1}, {"activation": "erf", "w_std": 1.2}, 7)
    assert arch == replace(Arch.from_config(MODEL), depth=7, activation="erf", w_std=1.2, bias=True, b_std=0.1)


# ----------------------------------------------------------------------------- figure and workflow


def test_depth_figure_draws_the_drawn_setting_and_the_networks(small):
    s = study(depths=[1, 2, 6], sigma2=0.5, sigma2_others=[0.05], variants=[{"activation": "relu", "w_std": 2**0.5}])
    sweep, _ = depth_nngp.depth_sweep(small, np.array([1, 2]), MODEL, s, nngp_settings(auc_samples=200), "mse", 0, None)
    networks = pd.DataFrame(
        [
            {
                "experiment": "relu_d6",
                "activation": "relu",
                "w_std": 2**0.5,
                "depth": 6,
                "variant": "relu, w 1.41",
                "mia_auc_median": 0.7,
                "mia_auc_q25": 0.6,
                "mia_auc_q75": 0.8,
                "auc_nngp_median": 0.55,
                "train_loss": 0.01,
                "test_acc": 0.9,
            }
        ]
    )
    fig, points = depth_figure(sweep, networks)
    drawn = sweep[(sweep["sigma2_setting"] == "0.5") & (sweep["depth"] == 6)].iloc[0]
    assert points["auc_nngp_sweep"].tolist() == [drawn["auc_nngp_median"]]
    ax_lood, _, _, ax_auc = fig.axes
    # The solid LOOD line is the drawn setting (0.5 x mean K_ii) through its medians.
    np.testing.assert_allclose(ax_lood.lines[0].get_ydata(), sweep[sweep["drawn"]].sort_values("depth")["kl_median"])
    absolute = sweep[(sweep["sigma2_scale"] == "absolute") & (sweep["sigma2_setting"] == "0.5")].sort_values("depth")
    np.testing.assert_allclose(ax_lood.lines[1].get_ydata(), absolute["kl_median"])  # dashed: the other scaling
    assert len(ax_lood.lines) == 3  # and the dashed line's legend entry
    stars = [ln for ln in ax_auc.lines if ln.get_marker() == "*"]
    assert [(ln.get_xdata()[0], ln.get_ydata()[0]) for ln in stars] == [(6, 0.7)]  # one network: no offset
    empty, no_points = depth_figure(sweep, pd.DataFrame())
    assert no_points.empty and len(empty.axes) == 4


@pytest.mark.e2e
def test_fig_depth_builds_from_the_workflow(tmp_path):
    from conftest import copy_workflow, snakemake

    wf = copy_workflow(tmp_path / "wf")
    (wf / "depth.yaml").write_text("depth_study:\n  depths: [1, 3]\n  sigma2_others: [marginal_likelihood]\n")
    args = ["--cores", "2", "fig_depth", "--configfile", "tests/configs/tiny.yaml", "depth.yaml"]
    run = snakemake(wf, *args, timeout=1200)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    sweep = pd.read_csv(wf / "results/depth/nngp.csv")
    assert len(sweep) == 4 * 2 * 2 * 2 and sweep["test_acc"].between(0, 1).all() and (sweep["n_test"] == 325).all()
    networks = pd.read_csv(wf / "results/depth/networks.csv")
    assert networks["experiment"].tolist() == ["relu", "gelu"] and networks["test_acc"].between(0, 1).all()
    assert (wf / "results/depth/depth.png").stat().st_size > 10_000
    again = snakemake(wf, *args, "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
