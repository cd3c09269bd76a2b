"""Privacy units of two isotropic Gaussians (lood.analytic.privacy) against Monte Carlo with planted answers."""

import numpy as np
import pytest
from scipy import stats

from lood.analytic.privacy import (
    PosteriorPairs,
    _quadratic,
    epsilon_at_delta,
    exceedance,
    gdp_delta,
    gdp_tpr,
    hockey_stick,
    pooled_roc,
    privacy_prediction,
    tpr_at_fpr,
)
from lood.errors import LoodInputError

N = 400_000


def planted(C: int, var_F: float, var_D: float, shift: float, seed: int = 0) -> PosteriorPairs:
    rng = np.random.default_rng(seed)
    mean_F = rng.normal(size=C)
    direction = rng.normal(size=C)
    mean_D = mean_F + shift * direction / np.linalg.norm(direction)
    return PosteriorPairs.of(mean_F[None], [var_F], mean_D[None], [var_D])


def samples(p: PosteriorPairs, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo log-likelihood ratios L = log N_in − log N_out under in and under out (one record)."""
    key = (tuple(np.concatenate([f.ravel() for f in p])), seed)
    if key not in _SAMPLES:
        _SAMPLES[key] = _draw(p, seed)
    return _SAMPLES[key]


_SAMPLES: dict = {}


def _draw(p: PosteriorPairs, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    C = p.outputs
    x_in = p.mean_F[0] + np.sqrt(p.var_F[0]) * rng.standard_normal((N, C))
    x_out = p.mean_D[0] + np.sqrt(p.var_D[0]) * rng.standard_normal((N, C))

    def L(x):
        f = stats.multivariate_normal(p.mean_F[0], p.var_F[0] * np.eye(C)).logpdf(x)
        return f - stats.multivariate_normal(p.mean_D[0], p.var_D[0] * np.eye(C)).logpdf(x)

    return L(x_in), L(x_out)


CASES = [  # (C, var_F, var_D, shift): equal and unequal, either way round, C = 2 and more
    (2, 1.0, 1.0, 1.5),
    (5, 0.5, 0.5, 2.0),
    (2, 0.3, 0.8, 0.7),
    (2, 0.3, 0.8, 0.0),
    (4, 1.0, 1.6, 1.2),
    (10, 0.9, 0.6, 1.0),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fpr", [0.001, 0.01, 0.1])
def test_tpr_at_fpr_matches_monte_carlo(case, fpr):
    p = planted(*case)
    s_in, s_out = samples(p, 1)
    tau = np.quantile(s_out, 1 - fpr)
    mc = np.mean(s_in > tau)
    se = np.sqrt(mc * (1 - mc) / N) + 3e-3 * (fpr < 0.01)  # the quantile's own noise at 400 negatives above it
    assert tpr_at_fpr(p, fpr)[0] == pytest.approx(mc, abs=5 * se + 2e-3)


@pytest.mark.parametrize("case", CASES)
def test_exceedance_matches_monte_carlo(case):
    p = planted(*case)
    s_in, s_out = samples(p, 1)
    for tau in np.quantile(s_out, [0.05, 0.5, 0.95]):
        e = exceedance(p, np.array([tau]))
        assert e["in_above"][0] == pytest.approx(np.mean(s_in > tau), abs=4e-3)
        assert e["out_above"][0] == pytest.approx(np.mean(s_out > tau), abs=4e-3)
        assert e["in_above"][0] + e["in_below"][0] == pytest.approx(1.0, abs=1e-12)
        assert e["out_above"][0] + e["out_below"][0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("eps", [0.0, 0.5, 1.5])
def test_hockey_stick_matches_monte_carlo(case, eps):
    """H_ε(P‖Q) = E_P[(1 − e^{ε − L})_+], H_ε(Q‖P) = E_Q[(1 − e^{ε + L})_+]; the profile is their max."""
    p = planted(*case)
    s_in, s_out = samples(p, 1)
    forward = np.maximum(1 - np.exp(eps - s_in), 0)
    backward = np.maximum(1 - np.exp(eps + s_out), 0)
    mc = max(forward.mean(), backward.mean())
    se = max(forward.std(), backward.std()) / np.sqrt(N)
    assert hockey_stick(p, np.array([eps]))[0] == pytest.approx(mc, abs=5 * se + 1e-4)


@pytest.mark.parametrize("mu", [0.3, 1.0, 2.5])
def test_equal_variances_are_mu_gdp(mu):
    """Planted μ: the general (χ²) route at v_D/v_F = 1 + 1e-4 meets the closed GDP forms within 1e-4."""
    v = 0.7
    near = planted(3, v, v * (1 + 1e-4), mu * np.sqrt(v * (1 + 0.5e-4)))
    assert not np.isnan(_quadratic(near).k[0])  # the χ² route, not the normal one
    exact = planted(3, v, v, mu * np.sqrt(v))
    assert exact.mu[0] == pytest.approx(mu)
    for fpr in (0.001, 0.01, 0.2):
        assert tpr_at_fpr(exact, fpr)[0] == pytest.approx(gdp_tpr(fpr, mu))
        assert tpr_at_fpr(near, fpr)[0] == pytest.approx(gdp_tpr(fpr, mu), abs=1e-4)
    eps = np.array([0.0, 0.5, 2.0])
    assert hockey_stick(exact, eps) == pytest.approx(gdp_delta(eps, mu), abs=1e-12)
    assert hockey_stick(near, eps) == pytest.approx(gdp_delta(eps, mu), abs=1e-4)


def test_gdp_delta_against_its_definition():
    """δ(ε) of N(μ, 1) vs N(0, 1) by direct integration of (p − e^ε q)_+."""
    mu, x = 1.3, np.linspace(-12, 14, 400_001)
    for eps in (0.0, 0.7, 2.0):
        integrand = np.maximum(stats.norm.pdf(x, mu) - np.exp(eps) * stats.norm.pdf(x), 0)
        assert gdp_delta(eps, mu) == pytest.approx(np.trapezoid(integrand, x), abs=1e-8)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4]])
def test_epsilon_at_delta_inverts_the_profile(case):
    p = planted(*case)
    for delta in (1e-5, 1e-2):
        eps = epsilon_at_delta(p, delta)[0]
        assert eps > 0
        assert hockey_stick(p, np.array([eps]))[0] == pytest.approx(delta, rel=1e-6)
        assert hockey_stick(p, np.array([eps * 0.99]))[0] > delta


def test_no_difference_no_leakage():
    p = planted(2, 0.5, 0.5, 0.0)
    assert tpr_at_fpr(p, 0.01)[0] == pytest.approx(0.01)
    assert epsilon_at_delta(p, 1e-5)[0] == 0.0


def test_pooled_roc_matches_monte_carlo_of_the_pooled_attack():
    """One threshold on L for three records (equal and unequal, C = 3): Monte Carlo of the pooled scores."""
    recs = [planted(3, 1.0, 1.0, 1.0, seed=4), planted(3, 0.4, 0.9, 0.8, seed=5), planted(3, 0.8, 0.5, 2.0, seed=6)]
    pairs = PosteriorPairs.of(*(np.concatenate([getattr(r, f) for r in recs]) for f in PosteriorPairs._fields))
    s = [samples(r, 10 + i) for i, r in enumerate(recs)]
    s_in, s_out = np.concatenate([a for a, _ in s]), np.concatenate([b for _, b in s])
    for fpr in (0.01, 0.1):
        tau = np.quantile(s_out, 1 - fpr)
        assert pooled_roc(pairs, [fpr])[0] == pytest.approx(np.mean(s_in > tau), abs=5e-3)


def test_prediction_table_and_bad_input():
    p = planted(2, 0.3, 0.8, 0.7)
    t = privacy_prediction(p, [7], [0.001, 0.01], 1e-5)
    assert list(t.columns) == ["record", "distance", "mu", "var_ratio", "tpr_at_0.001", "tpr_at_0.01", "eps", "delta"]
    assert t["var_ratio"].iloc[0] == pytest.approx(0.8 / 0.3)
    with pytest.raises(LoodInputError, match="positive variances"):
        PosteriorPairs.of([[0.0, 1.0]], [0.0], [[0.0, 1.0]], [1.0])
    with pytest.raises(LoodInputError, match="privacy.delta"):
        epsilon_at_delta(p, 0.0)


def test_nngp_privacy_tables_use_the_refit_posteriors():
    """μ, v_D/v_F and TPR from brute-force GP refits with and without each record (closed-form ReLU kernel)."""
    from lood.analytic.privacy import nngp_privacy_tables
    from lood.analytic.tables import prepare
    from lood.settings import Arch, PrivacySettings

    rng = np.random.default_rng(0)
    X, y = rng.random((30, 5)), rng.integers(0, 3, 30)
    arch = Arch(depth=2, width=64, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    s2 = 0.1
    privacy = PrivacySettings.from_schema(fprs=(0.001, 0.01), roc_points=10)
    table, roc = nngp_privacy_tables(prepare(X, y, arch, s2, 2048), [3, 17], privacy, 50)
    K = 2 * X @ X.T / 5  # the ReLU NNGP by the arc-cosine recursion (Cho & Saul 2009), bias-free, w² = 2
    for _ in range(2):
        d = np.sqrt(np.diag(K))
        theta = np.arccos(np.clip(K / np.outer(d, d), -1, 1))
        K = 2 * np.outer(d, d) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    Y = np.eye(3)[y] - 1 / 3
    for row in table.itertuples():
        r, keep = row.record, np.arange(30) != row.record
        post = []
        for idx in (np.arange(30), np.flatnonzero(keep)):
            A = K[np.ix_(idx, idx)] + s2 * np.eye(len(idx))
            k = K[r, idx]
            post.append((k @ np.linalg.solve(A, Y[idx]), K[r, r] - k @ np.linalg.solve(A, k)))
        (mF, vF), (mD, vD) = post
        assert row.var_ratio == pytest.approx(vD / vF, rel=1e-6)
        assert row.mu == pytest.approx(np.linalg.norm(mF - mD) / np.sqrt((vF + vD) / 2), rel=1e-6)
        p = PosteriorPairs.of(mF[None], [vF], mD[None], [vD])
        assert row._7 == pytest.approx(tpr_at_fpr(p, 0.02)[0], rel=1e-5)  # tpr_at_0.02 (FPR 1/n_out)
    assert list(table.columns)[4:7] == ["tpr_at_0.001", "tpr_at_0.01", "tpr_at_0.02"]
    assert {0.001, 0.01, 0.02} <= set(roc["fpr"])
    assert np.all(np.diff(roc["tpr"]) >= -1e-12) and roc["fpr"].iloc[0] == pytest.approx(1e-4)
