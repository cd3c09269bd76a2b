"""The analytic side (lood.analytic: kernel, gp, divergence, tables, query) against independent references.

Closed-form kernels, brute-force refits, Monte Carlo, quadrature.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import jax
import mpmath
import numpy as np
import pandas as pd
import pytest
import scipy.integrate
import torch
from scipy.stats import multivariate_normal, norm

from lood import seeds
from lood.analytic import divergence, query, tables
from lood.analytic.divergence import kl_lood, lood_at_records, mse_lood, nngp_auc, x_minus_log1p
from lood.analytic.gp import fit_gp, loo_posteriors, posterior, targets
from lood.analytic.kernel import kernel_and_diag, kernel_fn, nngp_diag, nngp_kernel
from lood.analytic.kernel_relu import relu_nngp
from lood.data.prepare import make_probes
from lood.errors import LoodInputError
from lood.settings import Arch, ProbeSettings, QuerySettings

from reference import arccos_nngp, rel_err

RELU = Arch(depth=2, width=64, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
BS = 2048  # kernel tile size


def gp_posterior(K_QF, K_QQ, K_FF, Y, sigma2):
    """Posterior mean and covariance from scratch (dense solve, no shared factorisation)."""
    A = K_FF + sigma2 * np.eye(len(K_FF))
    return K_QF @ np.linalg.solve(A, Y), K_QQ - K_QF @ np.linalg.solve(A, K_QF.T)


def gauss_kl(mD, SD, mF, SF):
    """KL(N(mD, SD) || N(mF, SF)) summed over the columns of the means (textbook trace/logdet form)."""
    q, C = mD.shape
    SFi = np.linalg.inv(SF)
    logdet = np.linalg.slogdet(SF)[1] - np.linalg.slogdet(SD)[1]
    diff = mF - mD
    return C / 2 * (np.trace(SFi @ SD) - q + logdet) + 0.5 * np.sum(diff * (SFi @ diff))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((40, 6))
    y = rng.integers(0, 3, 40)
    return X, y


# ----------------------------------------------------------------------------- kernel


@pytest.mark.parametrize("depth", [0, 1, 2, 3])  # 0: a linear model, the kernel w² x·x'/d + b²
@pytest.mark.parametrize("bias", [False, True])
def test_relu_kernel_matches_arccos_recursion(depth, bias):
    rng = np.random.default_rng(depth)
    X1, X2 = rng.standard_normal((9, 5)), rng.standard_normal((7, 5))
    arch = replace(RELU, depth=depth, bias=bias, w_std=1.3, b_std=0.4)
    b_std = 0.4 if bias else 0.0
    assert rel_err(nngp_kernel(X1, X2, arch, BS), arccos_nngp(X1, X2, depth, 1.3, b_std)) <= 1e-10
    assert rel_err(nngp_kernel(X1, None, arch, BS), arccos_nngp(X1, X1, depth, 1.3, b_std)) <= 1e-10
    assert rel_err(np.asarray(kernel_fn(arch)(X1, X2, "nngp")), arccos_nngp(X1, X2, depth, 1.3, b_std)) <= 1e-10


@pytest.mark.parametrize("depth", [0, 1, 9])
@pytest.mark.parametrize("bias", [False, True])
def test_relu_closed_form_tiles_match_stax(depth, bias):
    """ReLU kernels come from lood.analytic.kernel_relu's tiles: against stax's kernel function, every layout.

    Square (C order, Fortran order as the audit writes it, a C-ordered out=), cross, the diagonal,
    a zero input row, a tile size that does not divide n; and relu_nngp, the GPU path, on the CPU.
    """
    rng = np.random.default_rng(10 + depth)
    X, Q = rng.standard_normal((23, 6)), rng.random((9, 6))
    X[4] = 0.0
    arch = replace(RELU, depth=depth, bias=bias, w_std=1.3, b_std=0.4)
    stax_fn = kernel_fn(arch)
    ref, ref_q = np.asarray(stax_fn(X, X, "nngp")), np.asarray(stax_fn(Q, X, "nngp"))
    K, diag = kernel_and_diag(X, None, arch, 5)
    assert rel_err(K, ref) <= 1e-12 and np.array_equal(K, K.T)
    assert rel_err(diag, np.diag(ref)) <= 1e-12
    for out in (np.empty((23, 23), order="F"), np.empty((23, 23))):
        K_out, diag_out = kernel_and_diag(X, None, arch, 5, out=out)
        assert K_out is out and rel_err(out, ref) <= 1e-12 and np.array_equal(out, out.T)
        np.testing.assert_array_equal(diag_out, diag)
    assert rel_err(kernel_and_diag(Q, X, arch, 4)[0], ref_q) <= 1e-12
    assert rel_err(kernel_and_diag(Q, X, arch, 4, out=np.empty((9, 23), order="F"))[0], ref_q) <= 1e-12
    assert rel_err(relu_nngp(torch.as_tensor(Q), torch.as_tensor(X), arch, 4).numpy(), ref_q) <= 1e-12
    assert rel_err(relu_nngp(torch.as_tensor(X), None, arch, block_size=5).numpy(), ref) <= 1e-12
    with pytest.raises(LoodInputError, match="model.activation is gelu"):
        relu_nngp(torch.as_tensor(X), torch.as_tensor(Q), replace(arch, activation="gelu"), 4)


@pytest.mark.parametrize("activation", ["relu", "gelu", "erf"])
def test_blocked_kernel_equals_unblocked(activation):
    rng = np.random.default_rng(1)
    X1, X2 = rng.random((23, 4)), rng.random((11, 4))
    arch = replace(RELU, activation=activation, bias=True, b_std=0.1)
    direct = np.asarray(kernel_fn(arch)(X1, X2, "nngp"))
    assert rel_err(nngp_kernel(X1, X2, arch, 5), direct) <= 1e-12
    sym = nngp_kernel(X1, None, arch, 5)
    assert np.array_equal(sym, sym.T)
    assert rel_err(sym, nngp_kernel(X1, None, arch, 1000)) <= 1e-12
    assert rel_err(nngp_diag(X1, arch, 5), np.diag(sym)) <= 1e-12


def test_unknown_activation_and_bad_arch_raise():
    with pytest.raises(LoodInputError, match=r"'tanh' unknown; allowed: relu, gelu, erf"):
        Arch(**{**asdict(RELU), "activation": "tanh"})
    with pytest.raises(LoodInputError, match="depth"):
        Arch(**{**asdict(RELU), "depth": -1})


# ----------------------------------------------------------------------------- leave-one-out posteriors


@pytest.mark.parametrize("record", [0, 17, 39])
def test_loo_posteriors_match_refit(data, record):
    X, y = data
    Y = targets(y, None)
    sigma2 = 0.1
    rng = np.random.default_rng(record)
    query_sets = [
        rng.random((1, 6)),
        rng.random((5, 6)),
        X[[record, 3, 30]],
        np.vstack([X[record], rng.random((2, 6))]),
    ]
    K = nngp_kernel(X, None, RELU, BS)
    fit = fit_gp(K, Y, sigma2)
    assert fit.jitter == 0.0
    keep = np.arange(len(X)) != record
    for Q in query_sets:
        K_QF, K_QQ = nngp_kernel(Q, X, RELU, BS), nngp_kernel(Q, None, RELU, BS)
        mean_F, cov_F = posterior(fit, K_QF, K_QQ)
        ref_mF, ref_cF = gp_posterior(K_QF, K_QQ, K, Y, sigma2)
        assert rel_err(mean_F, ref_mF) <= 1e-8 and rel_err(cov_F, ref_cF) <= 1e-8
        mean_D, cov_D = loo_posteriors(fit, record, K_QF, K_QQ)
        # Brute force: a new kernel on X without the record, a new solve.
        X_D = X[keep]
        ref_mD, ref_cD = gp_posterior(
            nngp_kernel(Q, X_D, RELU, BS), K_QQ, nngp_kernel(X_D, None, RELU, BS), Y[keep], sigma2
        )
        assert rel_err(mean_D, ref_mD) <= 1e-8 and rel_err(cov_D, ref_cD) <= 1e-8
        kl = kl_lood(mean_D, cov_D, mean_F, cov_F)
        assert kl == pytest.approx(gauss_kl(ref_mD, ref_cD, ref_mF, ref_cF), rel=1e-8)
        assert mse_lood(mean_D, mean_F) == pytest.approx(0.5 * np.mean((ref_mD - ref_mF) ** 2), rel=1e-8)


def test_lood_at_records_matches_refit_for_every_record(data):
    X, y = data
    Y = targets(y, None)
    sigma2 = 0.05
    K = nngp_kernel(X, None, RELU, BS)
    fit = fit_gp(K, Y, sigma2)
    res = lood_at_records(fit, np.diag(K), np.arange(len(X)))
    for i in range(len(X)):
        keep = np.arange(len(X)) != i
        q = [i]
        mF, cF = gp_posterior(K[q], K[np.ix_(q, q)], K, Y, sigma2)
        mD, cD = gp_posterior(K[np.ix_(q, keep)], K[np.ix_(q, q)], K[np.ix_(keep, keep)], Y[keep], sigma2)
        assert res["kl"][i] == pytest.approx(gauss_kl(mD, cD, mF, cF), rel=1e-8)
        assert res["mse"][i] == pytest.approx(0.5 * np.mean((mD - mF) ** 2), rel=1e-8)
        assert rel_err(res["mean_D"][i], mD[0]) <= 1e-8 and res["var_D"][i] == pytest.approx(cD[0, 0], rel=1e-8)
        assert rel_err(res["mean_F"][i], mF[0]) <= 1e-8 and res["var_F"][i] == pytest.approx(cF[0, 0], rel=1e-8)


def test_p_diag_from_columns_equals_full_diagonal(data):
    X, y = data
    fit = fit_gp(nngp_kernel(X, None, RELU, BS), targets(y, None), 0.1)
    few = fit.p_diag_at(np.array([2, 5]))
    assert rel_err(fit.p_diag, np.diag(np.linalg.inv(nngp_kernel(X, None, RELU, BS) + 0.1 * np.eye(40)))) <= 1e-10
    assert rel_err(few, fit.p_diag[[2, 5]]) <= 1e-12


# ----------------------------------------------------------------------------- divergences


def test_kl_matches_monte_carlo(data):
    X, y = data
    fit = fit_gp(nngp_kernel(X, None, RELU, BS), targets(y, None), 0.1)
    Q = np.vstack([X[4], np.random.default_rng(5).random((2, 6))])
    K_QF, K_QQ = nngp_kernel(Q, X, RELU, BS), nngp_kernel(Q, None, RELU, BS)
    mF, cF = posterior(fit, K_QF, K_QQ)
    mD, cD = loo_posteriors(fit, 4, K_QF, K_QQ)
    rng = np.random.default_rng(7)
    n = 100_000
    total = np.zeros(n)
    for c in range(mD.shape[1]):  # outputs are independent: the KL adds up over them
        z = rng.multivariate_normal(mD[:, c], cD, size=n)
        total += multivariate_normal(mD[:, c], cD).logpdf(z) - multivariate_normal(mF[:, c], cF).logpdf(z)
    se = total.std() / np.sqrt(n)
    assert abs(total.mean() - kl_lood(mD, cD, mF, cF)) < 4 * se


def test_kl_is_never_negative_and_zero_for_identical():
    rng = np.random.default_rng(3)
    textbook_negative = 0
    for _ in range(50):
        # Ill-conditioned covariances, where trace - q - logdet cancels to round-off.
        U = np.linalg.qr(rng.standard_normal((6, 6)))[0]
        S = U @ np.diag(np.logspace(-10, 2, 6)) @ U.T
        m = rng.standard_normal((6, 2))
        assert 0.0 <= kl_lood(m, S, m, S) < 1e-8
        textbook_negative += gauss_kl(m, S, m, S) < 0
    assert textbook_negative > 0  # the hazard is real for the trace/logdet form


@pytest.mark.parametrize("x", [1e-12, 1e-7, -3e-4, 9.99e-4, 1.01e-3, 0.3, 5.0, 1e6])
def test_x_minus_log1p_against_mpmath(x):
    mpmath.mp.dps = 50
    ref = float(mpmath.mpf(x) - mpmath.log1p(mpmath.mpf(x)))
    assert float(x_minus_log1p(x)) == pytest.approx(ref, rel=1e-12, abs=0)
    assert float(x_minus_log1p(x, jax.numpy)) == pytest.approx(ref, rel=1e-12, abs=0)
    lam = 1.0 + x  # the eigenvalue form, exact for the float λ
    assert float(divergence._lam_term(lam)) == pytest.approx(
        float(lam - 1 - mpmath.log(mpmath.mpf(lam))), rel=1e-10, abs=0
    )


# ----------------------------------------------------------------------------- NNGP AUC


def test_auc_equal_variances_closed_form():
    mD, mF, var = np.array([0.1, -0.3, 0.2]), np.array([0.4, -0.1, 0.0]), 0.3
    exact = norm.cdf(np.linalg.norm(mF - mD) / np.sqrt(2 * var))
    auc, se = nngp_auc(mD, var, mF, var, 20_000, seed=11)
    assert 0 < se < 0.01
    assert abs(auc - exact) < 4 * se
    assert nngp_auc(mD, var, mF, var, 20_000, seed=11) == (auc, se)  # seeded
    assert nngp_auc(mF, var, mF, var, 1000, seed=1) == (0.5, 0.0)  # identical: every score ties


def auc_1d_quadrature(mD, vD, mF, vF):
    """AUC of the LR test between N(mF, vF) (in) and N(mD, vD) (out), by quadrature over the out-score."""
    a, b = 1 / vD - 1 / vF, -2 * mD / vD + 2 * mF / vF
    g = lambda x: (x - mD) ** 2 / vD - (x - mF) ** 2 / vF  # increasing in the log likelihood ratio

    def p_in_above(c):
        # P_F(g(X) > c): g - c = a x^2 + b x + e is a quadratic in x.
        e = mD**2 / vD - mF**2 / vF - c
        disc = b * b - 4 * a * e
        if disc <= 0:
            return 0.0 if a < 0 else 1.0
        r = np.sort([(-b - np.sqrt(disc)) / (2 * a), (-b + np.sqrt(disc)) / (2 * a)])
        inside = norm.cdf(r[1], mF, np.sqrt(vF)) - norm.cdf(r[0], mF, np.sqrt(vF))
        return inside if a < 0 else 1.0 - inside

    sd = np.sqrt(vD)
    val, _ = scipy.integrate.quad(
        lambda x: norm.pdf(x, mD, sd) * p_in_above(g(x)), mD - 12 * sd, mD + 12 * sd, limit=200, points=[mD, mF]
    )
    return val


@pytest.mark.parametrize("mD,vD,mF,vF", [(0.3, 0.5, 0.0, 0.2), (0.0, 0.1, 0.05, 0.4), (1.0, 1.0, 0.0, 0.9)])
def test_auc_unequal_variances_quadrature(mD, vD, mF, vF):
    exact = auc_1d_quadrature(mD, vD, mF, vF)
    aucs, ses = np.array([nngp_auc([mD], vD, [mF], vF, 4000, seed=s) for s in range(30)]).T
    assert abs(aucs.mean() - exact) < 4 * ses.mean() / np.sqrt(30)
    # The reported standard error matches the spread over seeds.
    assert 0.6 < aucs.std(ddof=1) / ses.mean() < 1.5


# ----------------------------------------------------------------------------- tables


def test_lood_table_independent_of_record_order(data):
    X, y = data
    gp01 = tables.prepare(X, y, RELU, 0.1, BS)
    a = tables.lood_table(gp01, np.array([5, 1, 30]), 2000, base_seed=3)
    b = tables.lood_table(gp01, np.array([30, 5, 1]), 2000, base_seed=3)
    assert list(a.columns) == ["record", "kl", "mse", "auc_nngp", "auc_nngp_se"]
    assert list(a["record"]) == [5, 1, 30]
    pd.testing.assert_frame_equal(a.set_index("record").sort_index(), b.set_index("record").sort_index())
    c = tables.lood_table(gp01, np.array([1]), 2000, base_seed=3)
    pd.testing.assert_frame_equal(c.set_index("record"), a.set_index("record").loc[[1]])
    whole = tables.lood_all_table(gp01)
    assert list(whole.columns) == ["record", "label", "kl", "mse"] and len(whole) == 40
    assert np.allclose(whole.set_index("record").loc[[5, 1, 30], "kl"], a["kl"], rtol=1e-10)
    with pytest.raises(LoodInputError, match="out of range"):
        tables.lood_table(gp01, np.array([40]), 100, base_seed=3)


def test_landscape_matches_brute_force(data):
    X, y = data
    Y = targets(y, None)
    probes = make_probes(X, [3, 22], ProbeSettings(t=(-1.0, 0.0, 0.5), scale="absolute"), base_seed=9)
    table = tables.landscape_table(tables.prepare(X, y, RELU, 0.1, BS), probes)
    assert len(table) == 6 and list(table.columns) == ["record", "t", "kl", "mse"]
    K = nngp_kernel(X, None, RELU, BS)
    for row in table.itertuples():
        j, k = list(probes["records"]).index(row.record), list(probes["t"]).index(row.t)
        q = probes["queries"][j, k][None]
        keep = np.arange(len(X)) != row.record
        K_QF, K_QQ = nngp_kernel(q, X, RELU, BS), nngp_kernel(q, None, RELU, BS)
        mF, cF = gp_posterior(K_QF, K_QQ, K, Y, 0.1)
        mD, cD = gp_posterior(K_QF[:, keep], K_QQ, K[np.ix_(keep, keep)], Y[keep], 0.1)
        assert row.kl == pytest.approx(gauss_kl(mD, cD, mF, cF), rel=1e-8)
        assert row.mse == pytest.approx(0.5 * np.mean((mD - mF) ** 2), rel=1e-8)


# ----------------------------------------------------------------------------- numerics


def test_duplicates_with_zero_noise_and_near_singular_kernel():
    rng = np.random.default_rng(4)
    X = rng.random((12, 3))
    X[5] = X[4]  # exact duplicate
    X[7] = X[6] + 1e-9  # near duplicate
    y = rng.integers(0, 2, 12)
    K = nngp_kernel(X, None, RELU, BS)
    fit = fit_gp(K, targets(y, None), 0.0)
    assert fit.jitter > 0 and fit.noise == fit.jitter
    res = lood_at_records(fit, np.diag(K), np.arange(12))
    for key in ("kl", "mse", "var_F", "var_D"):
        assert np.all(np.isfinite(res[key])) and np.all(res[key] >= 0)
    # The O(1) closed form (which must use σ² + jitter) agrees with the general rank-one path.
    # The system has condition ~1e12, hence the loose tolerance.
    for i in range(12):
        args = (K[[i]], K[np.ix_([i], [i])])
        general = kl_lood(*loo_posteriors(fit, i, *args), *posterior(fit, *args))
        assert res["kl"][i] == pytest.approx(general, rel=1e-2)
    table = tables.lood_all_table(tables.prepare(X, y, RELU, 0.0, BS))
    assert np.all(np.isfinite(table["kl"])) and np.all(table["kl"] >= 0)
    # A rank-3 kernel on 30 records: singular up to round-off, so jitter is needed even with sigma2 > 0 absent.
    V = rng.standard_normal((30, 3))
    K1 = V @ V.T
    fit1 = fit_gp(K1, targets(rng.integers(0, 2, 30), None), 0.0)
    assert fit1.jitter > 0
    res1 = lood_at_records(fit1, np.diag(K1), np.arange(30))
    assert np.all(np.isfinite(res1["kl"])) and np.all(res1["kl"] >= 0)
    mD, cD = loo_posteriors(fit1, 0, K1[:4], K1[:4, :4])
    mF, cF = posterior(fit1, K1[:4], K1[:4, :4])
    assert 0 <= kl_lood(mD, cD, mF, cF) < np.inf


def test_fit_rejects_kernels_that_cannot_be_factorised():
    with pytest.raises(LoodInputError, match="not positive definite"):
        fit_gp(-np.eye(3), np.zeros((3, 2)), 0.1)
    with pytest.raises(LoodInputError, match="non-finite"):
        fit_gp(np.full((2, 2), np.nan), np.zeros((2, 2)), 0.1)


# ----------------------------------------------------------------------------- query optimisation


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_query_gradient_matches_finite_differences(data, activation):
    X, y = data
    arch = replace(RELU, activation=activation)
    gp = tables.prepare(X, y, arch, 0.1, BS)
    f = query.query_objective(gp, 11)
    q = X[11] + 0.2 * np.random.default_rng(2).standard_normal(6)
    grad = np.asarray(jax.grad(f)(q))
    h = 1e-5
    fd = np.array([(float(f(q + h * e)) - float(f(q - h * e))) / (2 * h) for e in np.eye(6)])
    assert rel_err(grad, fd) <= 1e-6
    # At the record itself the objective is the closed form of lood_at_records.
    closed = lood_at_records(gp.fit, gp.K_diag, np.array([11]))["kl"][0]
    assert float(f(X[11])) == pytest.approx(closed, rel=1e-8)


def test_optimise_queries(data):
    X, y = data
    table, per = query.optimise_queries(
        tables.prepare(X, y, RELU, 0.1, BS), np.array([2, 9]), QuerySettings("data", 0.0, 30, 0.02), base_seed=1
    )
    assert list(table.columns) == [
        "record",
        "lood_at_record",
        "lood_optimised",
        "distance_to_record",
        "cosine_to_record",
    ]
    for row in table.itertuples():
        traj = per[row.record]["trajectory"]
        assert traj.shape == (31,) and np.all(np.isfinite(traj))
        assert np.array_equal(per[row.record]["start"], X[row.record])  # noise 0: starts exactly at the record
        assert traj[0] == pytest.approx(row.lood_at_record, rel=1e-8)
        assert row.lood_optimised == pytest.approx(traj.max()) and row.lood_optimised >= row.lood_at_record - 1e-12
        assert row.distance_to_record == pytest.approx(np.linalg.norm(per[row.record]["query"] - X[row.record]))
        from sklearn.metrics.pairwise import cosine_similarity

        cos = cosine_similarity(per[row.record]["query"][None], X[row.record][None])[0, 0]
        assert row.cosine_to_record == pytest.approx(cos, rel=1e-10)
    t2, per2 = query.optimise_queries(
        tables.prepare(X, y, RELU, 0.1, BS), np.array([9]), QuerySettings("noise", 0.5, 20, 0.05), base_seed=1
    )
    start = X.mean(0) + 0.5 * seeds.rng(1, "query", 9).standard_normal(6)
    assert np.allclose(per2[9]["start"], start)
    traj = per2[9]["trajectory"]
    assert np.all(np.isfinite(traj)) and traj[-1] > traj[0]  # ascent from noise increases the LOOD
    with pytest.raises(LoodInputError, match="unknown"):
        QuerySettings("zeros", 0.5, 2, 0.05)


def test_optimise_queries_computes_the_kernel_row_in_blocks_of_block_size(data, monkeypatch):
    """nngp.block_size bounds k(q, X) as it bounds the kernel: 40 rows in blocks of 16 give the same ascent."""
    X, y = data
    settings = QuerySettings("noise", 0.5, 10, 0.05)
    whole, _ = query.optimise_queries(tables.prepare(X, y, RELU, 0.1, BS), np.array([3]), settings, base_seed=1)
    widths = []
    kernel_fn = query.stax_kernel_fn

    def recording(key):
        fn = kernel_fn(key)
        return lambda x1, x2, get: (widths.append(None if x2 is None else len(x2)), fn(x1, x2, get))[1]

    monkeypatch.setattr(query, "stax_kernel_fn", recording)
    query._query_ascent.cache_clear(), query._query_kl.cache_clear()  # built anew, with the recording kernel
    try:
        blocked, _ = query.optimise_queries(tables.prepare(X, y, RELU, 0.1, 16), np.array([3]), settings, base_seed=1)
    finally:
        query._query_ascent.cache_clear(), query._query_kl.cache_clear()
    assert widths and max(w for w in widths if w is not None) == 16 and 8 in widths  # 16 + 16 + 8 rows
    pd.testing.assert_frame_equal(blocked, whole, rtol=1e-10)


def test_bias_free_relu_lood_is_scale_invariant(data):
    """K(cq, x) = c K(q, x) for a bias-free ReLU NNGP, so both posteriors scale together and KL is unchanged."""
    X, y = data
    gp = tables.prepare(X, y, RELU, 0.1, BS)
    f = query.query_objective(gp, 4)
    q = X[4] + 0.3 * np.random.default_rng(5).standard_normal(X.shape[1])
    for c in (0.5, 3.0):
        assert float(f(c * q)) == pytest.approx(float(f(q)), rel=1e-8)
    biased = tables.prepare(X, y, replace(RELU, bias=True, b_std=0.5), 0.1, BS)
    g = query.query_objective(biased, 4)
    assert abs(float(g(3.0 * q)) - float(g(q))) > 1e-6 * float(g(q))
