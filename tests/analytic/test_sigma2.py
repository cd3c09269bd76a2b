"""σ² rules against brute-force Cholesky fits, dense log-densities and planted answers (docs/math.md §12)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy import stats as st

from lood import seeds
from lood.analytic.divergence import lood_at_records, nngp_auc
from lood.analytic.gp import fit_gp
from lood.analytic.sigma2 import (
    calibration_curve,
    choose_sigma2,
    log_evidence,
    lood_grid_table,
    objective_curve,
    objectives_table,
    read_sigma2,
    sigma2_grid,
    stack_train_logits,
)
from lood.analytic.spectral import eigen, spectral_fit, train_means
from lood.errors import LoodInputError


def rbf(X: np.ndarray, length: float = 1.5) -> np.ndarray:
    sq = np.sum((X[:, None] - X[None]) ** 2, axis=-1)
    return np.exp(-sq / (2 * length**2))


def gp_data(n: int, C: int, noise: float, seed: int, amplitude: float = 1.0):
    """Inputs, kernel, noise-free GP draws f ~ N(0, aK) per output, and Y = f + N(0, a noise)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    K = rbf(X)
    L = np.linalg.cholesky(K + 1e-10 * np.eye(n))
    f = np.sqrt(amplitude) * L @ rng.normal(size=(n, C))
    Y = f + np.sqrt(amplitude * noise) * rng.normal(size=(n, C))
    return X, K, f, Y


def test_spectral_fit_matches_the_cholesky_fit_and_its_lood():
    _, K, _, Y = gp_data(60, 3, 0.1, seed=0)
    eig = eigen(K, Y)
    for s2 in (1e-3, 0.05, 2.0):
        chol = fit_gp(K, Y, s2)
        spec = spectral_fit(eig, s2)
        np.testing.assert_allclose(spec.alpha, chol.alpha, rtol=1e-8, atol=1e-10 * np.abs(chol.alpha).max())
        np.testing.assert_allclose(spec.p_diag, chol.p_diag, rtol=1e-8)
        np.testing.assert_allclose(train_means(eig, s2), Y - s2 * chol.alpha, atol=1e-10)
        records = np.arange(0, 60, 7)
        a, b = lood_at_records(spec, np.diag(K), records), lood_at_records(chol, np.diag(K), records)
        for key in ("kl", "mse", "mean_F", "var_F", "mean_D", "var_D"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-7)


def test_calibration_curve_matches_brute_force_refits():
    _, K, _, Y = gp_data(50, 2, 0.1, seed=1)
    rng = np.random.default_rng(2)
    target = 0.8 * Y + 0.1 * rng.normal(size=Y.shape)
    grid = sigma2_grid(1e-3, 10.0, 9)
    mse = calibration_curve(eigen(K, Y), target, grid, "mse")
    ce_target = 3.0 * target + rng.normal(size=(50, 1))  # a scale and a shift per record
    ce = calibration_curve(eigen(K, Y), ce_target, grid, "cross_entropy")
    for k, s2 in enumerate(grid):
        mu = Y - s2 * fit_gp(K, Y, s2).alpha
        assert mse["objective"][k] == pytest.approx(np.mean((mu - target) ** 2), rel=1e-9)
        assert mse["scale"][k] == 1.0
        f = ce_target - ce_target.mean(axis=1, keepdims=True)
        m = mu - mu.mean(axis=1, keepdims=True)
        a = np.linalg.lstsq(m.reshape(-1, 1), f.ravel(), rcond=None)[0][0]
        assert ce["scale"][k] == pytest.approx(a, rel=1e-9)
        assert ce["objective"][k] == pytest.approx(np.mean((a * m - f) ** 2), rel=1e-9)


def test_log_evidence_matches_dense_densities():
    _, K, _, Y = gp_data(40, 3, 0.2, seed=3)
    grid = np.array([1e-3, 0.1, 1.0, 5.0])
    fixed = log_evidence(eigen(K, Y), grid, fit_scale=False)
    scaled = log_evidence(eigen(K, Y), grid, fit_scale=True)
    for k, s2 in enumerate(grid):
        A = K + s2 * np.eye(40)
        sign, logdet = np.linalg.slogdet(A)
        dense = -0.5 * np.trace(Y.T @ np.linalg.solve(A, Y)) - 1.5 * logdet - 60 * np.log(2 * np.pi)
        assert sign > 0 and fixed["log_evidence"][k] == pytest.approx(dense, rel=1e-10)
        mvn = sum(st.multivariate_normal(np.zeros(40), A).logpdf(Y[:, c]) for c in range(3))
        assert fixed["log_evidence"][k] == pytest.approx(mvn, rel=1e-8)

        def neg(log_a, A=A):
            return -sum(st.multivariate_normal(np.zeros(40), np.exp(log_a) * A).logpdf(Y[:, c]) for c in range(3))

        best = optimize.minimize_scalar(neg, bounds=(-10, 10), method="bounded", options={"xatol": 1e-10})
        assert scaled["scale"][k] == pytest.approx(np.exp(best.x), rel=1e-5)
        assert scaled["log_evidence"][k] == pytest.approx(-best.fun, rel=1e-9)


@pytest.mark.parametrize("planted", [0.01, 0.1])
def test_rules_recover_a_planted_sigma2(planted):
    """GP draws with known noise σ₀²: the posterior mean at σ₀² is the least-squares (MMSE) estimate of f,
    so calibrating against the noise-free f recovers σ₀²; the evidence peaks there too."""
    _, K, f, Y = gp_data(400, 12, planted, seed=4, amplitude=2.5)
    eig = eigen(K, Y)
    grid = sigma2_grid(1e-4, 10.0, 81)  # 16 points per decade
    cal = choose_sigma2(objective_curve(eig, "calibrate", grid, f, "mse"), "calibrate")
    # a fitted output scale: covariance 2.5 (K + σ²I), so the noise variance 2.5 σ₀² means σ² = σ₀²
    ml = choose_sigma2(objective_curve(eig, "marginal_likelihood", grid, None, "mse"), "marginal_likelihood")
    for chosen in (cal, ml):
        assert not chosen["at_edge"]
        assert planted / 1.6 < chosen["sigma2"] < planted * 1.6, chosen
    assert ml["scale"] == pytest.approx(2.5, rel=0.15)
    # a brute-force grid search with one Cholesky per σ² picks the same point
    brute = [np.mean((Y - s2 * fit_gp(K, Y, s2).alpha - f) ** 2) for s2 in grid]
    assert grid[int(np.argmin(brute))] == cal["sigma2"]


def test_calibrate_finds_a_planted_grid_point_exactly_for_both_losses():
    _, K, _, Y = gp_data(80, 2, 0.05, seed=5)
    eig = eigen(K, Y)
    grid = sigma2_grid(1e-4, 10.0, 21)
    planted = grid[7]
    target = train_means(eig, planted)
    assert choose_sigma2(calibration_curve(eig, target, grid, "mse"), "calibrate")["sigma2"] == planted
    # cross-entropy logits: another scale and an arbitrary shift per record
    logits = 4.0 * target + np.random.default_rng(6).normal(size=(80, 1))
    chosen = choose_sigma2(calibration_curve(eig, logits, grid, "cross_entropy"), "calibrate")
    assert chosen["sigma2"] == planted and chosen["scale"] == pytest.approx(4.0, rel=1e-9)
    assert chosen["objective"] == pytest.approx(0.0, abs=1e-20)


def test_choose_flags_the_edge_and_bad_inputs_are_input_errors():
    curve = pd.DataFrame({"sigma2": [0.1, 1.0, 10.0], "objective": [3.0, 2.0, 1.0], "scale": 1.0})
    assert choose_sigma2(curve, "calibrate") == {
        "sigma2": 10.0,
        "rule": "calibrate",
        "objective": 1.0,
        "scale": 1.0,
        "at_edge": True,
    }
    _, K, _, Y = gp_data(10, 2, 0.1, seed=7)
    with pytest.raises(LoodInputError, match="grid_min"):
        sigma2_grid(1.0, 0.1, 5)
    with pytest.raises(LoodInputError, match="calibrate needs"):
        objective_curve(eigen(K, Y), "calibrate", np.array([0.1]), None, "mse")
    with pytest.raises(LoodInputError, match="unknown"):
        objective_curve(eigen(K, Y), "cross_validation", np.array([0.1]), None, "mse")
    with pytest.raises(LoodInputError, match="one row"):
        read_sigma2(pd.DataFrame({"sigma2": [0.1, 0.2]}))
    assert read_sigma2(pd.DataFrame({"sigma2": [0.05], "rule": ["calibrate"]})) == 0.05


def test_grid_tables_recompute_lood_auc_and_objectives_per_sigma2():
    _, K, _, Y = gp_data(30, 2, 0.1, seed=8)
    records = np.array([1, 4, 9, 16, 25, 27])
    grid = np.array([0.01, 0.3])
    eig = eigen(K, Y)
    table = lood_grid_table(eig, np.diag(K), records, grid, 500, 11)
    target = 0.9 * Y
    obj = objectives_table(eig, grid, target, "mse")
    assert len(table) == 12 and list(obj["sigma2"]) == list(grid)
    for k, s2 in enumerate(grid):
        res = lood_at_records(fit_gp(K, Y, s2), np.diag(K), records)
        auc = [
            nngp_auc(
                res["mean_D"][j],
                res["var_D"][j],
                res["mean_F"][j],
                res["var_F"][j],
                500,
                seeds.int_seed(11, "nngp_auc", int(r)),
            )[0]
            for j, r in enumerate(records)
        ]
        part = table[table["sigma2"] == s2]
        assert part["record"].tolist() == records.tolist()
        np.testing.assert_allclose(part["kl"], res["kl"], rtol=1e-7)
        np.testing.assert_allclose(part["mse"], res["mse"], rtol=1e-7)
        np.testing.assert_allclose(part["auc_nngp"], auc, atol=1e-12)
        mu = Y - s2 * fit_gp(K, Y, s2).alpha
        assert obj["calibration_objective"][k] == pytest.approx(np.mean((mu - target) ** 2), rel=1e-9)
        A = K + s2 * np.eye(30)
        dense = -0.5 * np.trace(Y.T @ np.linalg.solve(A, Y)) - np.linalg.slogdet(A)[1] - 30 * np.log(2 * np.pi)
        assert obj["neg_log_evidence_fixed"][k] == pytest.approx(-dense / 60, rel=1e-10)
    assert objectives_table(eig, grid, None, "mse")["calibration_objective"].isna().all()


def test_settings_accept_a_number_or_a_rule_and_choose_passes_a_number_through():
    from lood.analytic.sigma2 import experiment_sigma2
    from lood.settings import Arch, NNGPSettings

    base = {
        "all_records": True,
        "auc_samples": 100,
        "block_size": 64,
        "grid_min": 1e-4,
        "grid_max": 10.0,
        "grid_points": 5,
    }
    assert NNGPSettings.from_config(base | {"sigma2": "calibrate"}).rule == "calibrate"
    assert NNGPSettings.from_config(base | {"sigma2": 0.2}).rule == "fixed"
    with pytest.raises(LoodInputError, match="nngp.sigma2"):
        NNGPSettings.from_config(base | {"sigma2": "cross_validation"})
    with pytest.raises(LoodInputError, match="nngp.sigma2"):
        NNGPSettings.from_config(base | {"sigma2": -1.0})
    arch = Arch(depth=1, width=8, activation="relu", bias=False, w_std=1.4, b_std=0.0)
    X, y = np.random.default_rng(0).uniform(size=(12, 4)), np.arange(12) % 2
    chosen, curve = experiment_sigma2(X, y, arch, NNGPSettings.from_config(base | {"sigma2": 0.2}), None, "mse", False)
    assert chosen.iloc[0][["sigma2", "rule", "loss"]].tolist() == [0.2, "fixed", "mse"] and len(curve) == 1
    chosen, curve = experiment_sigma2(
        X, y, arch, NNGPSettings.from_config(base | {"sigma2": "marginal_likelihood"}), None, "mse", True
    )
    assert chosen.iloc[0]["rule"] == "marginal_likelihood" and len(curve) == 5
    with pytest.raises(LoodInputError, match="calibrate needs"):
        experiment_sigma2(X, y, arch, NNGPSettings.from_config(base | {"sigma2": "calibrate"}), None, "mse", False)
    with pytest.raises(LoodInputError, match="logits_train"):
        stack_train_logits([{"logits_record": np.zeros((2, 3, 2))}])


def test_a_planted_sigma2_at_the_grids_edge_stops_the_run_unless_allowed():
    """In-models whose mean logits are 0 (they learned nothing) pull calibrate to the largest σ²."""
    from lood.analytic.sigma2 import experiment_sigma2
    from lood.settings import Arch, NNGPSettings

    nngp = NNGPSettings.from_config(
        {
            "sigma2": "calibrate",
            "all_records": True,
            "auc_samples": 100,
            "block_size": 64,
            "grid_min": 1e-3,
            "grid_max": 1.0,
            "grid_points": 7,
        }
    )
    arch = Arch(depth=1, width=8, activation="relu", bias=False, w_std=1.4, b_std=0.0)
    rng = np.random.default_rng(3)
    X, y = rng.uniform(size=(20, 4)), np.arange(20) % 2
    flat = 1e-3 * rng.normal(size=(5, 20, 2))
    with pytest.raises(LoodInputError) as err:
        experiment_sigma2(X, y, arch, nngp, flat, "mse", False)
    assert "largest sigma^2 of its grid" in str(err.value) and "checks.allow_sigma2_at_edge: true" in str(err.value)
    chosen, _ = experiment_sigma2(X, y, arch, nngp, flat, "mse", True)
    assert chosen["sigma2"].iloc[0] == pytest.approx(1.0) and "largest" in chosen["gate"].iloc[0]
    # In-models that fit the labels exactly pull it to the smallest: stopped too.
    exact = np.broadcast_to(np.eye(2)[y] - 0.5, (5, 20, 2))
    with pytest.raises(LoodInputError, match="smallest sigma\\^2"):
        experiment_sigma2(X, y, arch, nngp, exact, "mse", False)
    # An interior optimum passes: the mean of a GP fit at σ² = 0.1 as the planted in-model mean.
    from lood.analytic.gp import targets
    from lood.analytic.kernel import kernel_and_diag

    K, _ = kernel_and_diag(X, None, arch, 64)
    Y = targets(y, None)
    mid = K @ np.linalg.solve(K + 0.1 * np.eye(20), Y)
    chosen, _ = experiment_sigma2(X, y, arch, nngp, np.broadcast_to(mid, (5, 20, 2)), "mse", False)
    assert chosen["sigma2"].iloc[0] == pytest.approx(0.1) and chosen["gate"].iloc[0] == ""
