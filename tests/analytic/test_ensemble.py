"""The gradient-descent ensemble of infinitely wide networks, its time mapping, and the spread scale."""

import numpy as np
import pytest

from lood.analytic.ensemble import (
    ensemble_loo,
    ensemble_posterior,
    ensemble_variances,
    gd_time,
    logit_variance,
    spread_scale,
)
from lood.analytic.jax_setup import jnp
from lood.analytic.kernel import _standard_ntk_fn, as_rows, nngp_kernel, ntk_kernel
from lood.settings import Arch

ARCH = Arch(depth=2, width=64, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)


def _data(n=24, q=5, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X, Xq = rng.uniform(size=(n, d)), rng.uniform(size=(q, d))
    Y = np.eye(2)[np.arange(n) % 2] - 0.5
    return X, Xq, Y


def _kernels(X, Xq):
    both = np.concatenate([X, Xq])
    theta, K = ntk_kernel(both, ARCH), nngp_kernel(both, None, ARCH, 64)
    n = len(X)
    return theta[n:, :n], theta[:n, :n], K[n:, :n], K[:n, :n], K[n:, n:]


@pytest.mark.parametrize("t", [0.5, 20.0, 400.0])
def test_ensemble_mean_and_covariance_match_neural_tangents(t):
    import neural_tangents as nt

    X, Xq, Y = _data()
    fn = _standard_ntk_fn(ARCH.kernel_key, ARCH.width)
    predict = nt.predict.gradient_descent_mse_ensemble(fn, jnp.asarray(X), jnp.asarray(Y))
    ref = predict(t=t, x_test=jnp.asarray(Xq), get="ntk", compute_cov=True)
    tau = t / Y.size  # neural-tangents' exponent is -θ t / (n C) at learning_rate 1
    mean, cov = ensemble_posterior(*_kernels(X, Xq), Y, tau)
    np.testing.assert_allclose(mean, np.asarray(ref.mean), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cov, np.asarray(ref.covariance), rtol=1e-6, atol=1e-9)
    # diagonal form agrees with the full one
    tQF, tFF, KQF, KFF, KQQ = _kernels(X, Xq)
    np.testing.assert_allclose(ensemble_variances(tQF, tFF, KQF, KFF, np.diag(KQQ), tau), np.diag(cov), atol=1e-10)


def test_infinite_time_is_kernel_regression_with_the_ntk():
    X, Xq, Y = _data(seed=1)
    tQF, tFF, KQF, KFF, KQQ = _kernels(X, Xq)
    mean, cov = ensemble_posterior(tQF, tFF, KQF, KFF, KQQ, Y, np.inf)
    A = np.linalg.solve(tFF, tQF.T).T
    np.testing.assert_allclose(mean, A @ Y, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cov, KQQ + A @ KFF @ A.T - A @ KQF.T - KQF @ A.T, rtol=1e-5, atol=1e-8)
    late, _ = ensemble_posterior(tQF, tFF, KQF, KFF, KQQ, Y, 1e7)
    np.testing.assert_allclose(late, mean, rtol=1e-4, atol=1e-6)
    # at time 0 the ensemble is the prior
    zero_mean, zero_cov = ensemble_posterior(tQF, tFF, KQF, KFF, KQQ, Y, 0.0)
    assert np.all(zero_mean == 0) and np.allclose(zero_cov, KQQ)


def test_the_ensemble_is_an_explicit_ensemble_of_linearised_networks():
    """Monte Carlo: f_t = f0 + Θ_QF Θ⁻¹(I − e^{−τΘ})(Y − f0(F)) with f0 ~ GP(0, K), integrated by small Euler steps."""
    X, Xq, Y = _data(n=12, q=3, seed=2)
    tQF, tFF, KQF, KFF, KQQ = _kernels(X, Xq)
    both = np.block([[KFF, KQF.T], [KQF, KQQ]])
    rng = np.random.default_rng(3)
    f0 = rng.multivariate_normal(np.zeros(len(both)), both, size=(6000, 2)).transpose(0, 2, 1)  # (S, n+q, C)
    fF, fQ = f0[:, :12].copy(), f0[:, 12:].copy()
    tau, steps = 3.0, 3000
    h = tau / steps
    for _ in range(steps):  # gradient flow on the linearised network, df/dτ = −Θ (f_F − Y)
        r = fF - Y
        fQ -= h * np.einsum("qi,sic->sqc", tQF, r)
        fF -= h * np.einsum("ji,sic->sjc", tFF, r)
    mean, cov = ensemble_posterior(tQF, tFF, KQF, KFF, KQQ, Y, tau)
    np.testing.assert_allclose(fQ.mean(axis=0), mean, atol=0.03 * np.sqrt(np.diag(KQQ)).max())
    mc_var = fQ.var(axis=0).mean(axis=1)
    np.testing.assert_allclose(mc_var, np.diag(cov), rtol=0.06)


def test_leave_one_out_is_the_ensemble_refitted_without_the_record():
    X, _, Y = _data(n=16, seed=4)
    theta, K = ntk_kernel(X, ARCH), nngp_kernel(X, None, ARCH, 64)
    res = ensemble_loo(theta, K, Y, [0, 7], 5.0)
    for j, z in enumerate([0, 7]):
        keep = np.arange(16) != z
        Xd = as_rows(np.concatenate([X[keep], X[[z]]]))
        th, k = ntk_kernel(Xd, ARCH), nngp_kernel(Xd, None, ARCH, 64)
        m, c = ensemble_posterior(th[-1:, :-1], th[:-1, :-1], k[-1:, :-1], k[:-1, :-1], k[-1:, -1:], Y[keep], 5.0)
        np.testing.assert_allclose(res["mean_D"][j], m[0], rtol=1e-7, atol=1e-10)
        assert res["var_D"][j] == pytest.approx(c[0, 0], rel=1e-6)
        m, c = ensemble_posterior(theta[[z]], theta, K[[z]], K, K[[z]][:, [z]], Y, 5.0)
        np.testing.assert_allclose(res["mean_F"][j], m[0], rtol=1e-7, atol=1e-10)
        assert res["var_F"][j] == pytest.approx(c[0, 0], rel=1e-6)
        assert res["var_D"][j] > res["var_F"][j]  # training on z narrows the ensemble at z


def test_time_mapping_matches_minibatch_sgd_on_a_linear_model():
    """Minibatch SGD on torch's MSELoss (mean over batch and outputs) of f = Φw, averaged over random orders,
    against the ensemble mean at τ = gd_time(...) with Θ = ΦΦᵀ and f0 = 0."""
    rng = np.random.default_rng(5)
    n, p, C, b, lr, epochs = 40, 30, 2, 8, 0.05, 30
    Phi = rng.normal(size=(n, p)) / np.sqrt(p)
    Y = np.eye(C)[rng.integers(0, C, n)] - 0.5
    finals = []
    for _ in range(40):
        w = np.zeros((p, C))
        for _ in range(epochs):
            order = rng.permutation(n)
            for s in range(0, n, b):
                B = order[s : s + b]
                w -= lr * 2 / (len(B) * C) * Phi[B].T @ (Phi[B] @ w - Y[B])
        finals.append(Phi @ w)
    theta = Phi @ Phi.T
    tau = gd_time(lr, epochs, b, n, C, 0.0)
    assert tau == pytest.approx(2 * lr * epochs / (b * C))
    mean, _ = ensemble_posterior(theta, theta, np.zeros((n, n)), np.zeros((n, n)), np.zeros(n), Y, tau)
    np.testing.assert_allclose(np.mean(finals, axis=0), mean, atol=0.02)
    # and not the time of a different mapping (twice or half as long): the test can fail
    for wrong in (tau / 2, 2 * tau):
        other, _ = ensemble_posterior(theta, theta, np.zeros((n, n)), np.zeros((n, n)), np.zeros(n), Y, wrong)
        assert np.abs(np.mean(finals, axis=0) - other).max() > 0.02


def test_spread_scale_recovers_a_planted_scale():
    rng = np.random.default_rng(6)
    model_var = rng.uniform(0.01, 0.1, size=200)
    logits = np.sqrt(3.7 * model_var)[None, :, None] * rng.standard_normal((400, 200, 2))
    fit = spread_scale(model_var, logit_variance(logits))
    assert fit["scale"] == pytest.approx(3.7, rel=0.03)
    assert fit["log_ratio_sd"] < 0.15 and fit["correlation"] > 0.9
    with pytest.raises(Exception, match="spread_scale"):
        spread_scale(np.zeros(3), np.ones(3))
