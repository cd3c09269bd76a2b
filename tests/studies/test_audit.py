"""The training-free audit: memory check, in-place algebra against dense fits, exact NNGP AUC, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from lood.analytic import auc_exact, gp_inplace
from lood.analytic.divergence import nngp_auc
from lood.analytic.gp import fit_gp
from lood.analytic.kernel import kernel_and_diag
from lood.analytic.tables import lood_all_table, prepare
from lood.errors import LoodInputError
from lood.runtime import progress
from lood.settings import Arch, AuditSettings, NNGPSettings
from lood.studies import audit, audit_memory

from reference import indefinite_kernel

ARCH = Arch(depth=2, width=1, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)


def nngp_settings(sigma2, block_size: int = 64) -> NNGPSettings:
    return NNGPSettings(
        sigma2=sigma2,
        all_records=True,
        auc_samples=1000,
        block_size=block_size,
        grid_min=1e-4,
        grid_max=10.0,
        grid_points=41,
    )


def audit_settings(sigma2=None, sigma2_records: int = 4000) -> AuditSettings:
    return AuditSettings(
        experiment=None,
        sigma2=sigma2,
        sigma2_records=sigma2_records,
        calibrate_models=4,
        top=5,
        progress_seconds=1.0,
        memory_gb=None,
        scratch=None,
        device="cpu",
    )


def spd(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n // 2 + 3))
    return np.asfortranarray(X @ X.T / X.shape[1] + 0.1 * np.eye(n))


def multiclass(n: int, d: int, C: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    centres = rng.random((C, d))
    return np.clip(centres[y] + 0.3 * rng.standard_normal((n, d)), 0, None), y


# ----------------------------------------------------------------------------- memory


def test_memory_check_refuses_and_names_the_affordable_n():
    n, d, b, w = 40_000, 784, 2048, 2
    available = 8 * 10**9
    with pytest.raises(LoodInputError, match=r"affords n <= ([\d,]+)") as err:
        audit_memory.check_memory(n, d, b, w, available)
    n_max = int(err.value.args[0].split("affords n <= ")[1].split(":")[0].replace(",", ""))
    assert audit_memory.bytes_needed(n_max, d, b, w) <= available < audit_memory.bytes_needed(n_max + 1, d, b, w)
    assert audit_memory.check_memory(n_max, d, b, w, available) <= available


def test_memory_formula_is_the_matrix_plus_blocks():
    n, d, b, w = 40_000, 784, 2048, 2
    # 8 n² for the one matrix, plus the larger of the kernel tiles and the algebra (buffers, the
    # matmul-rate probe, two n x 1024 row blocks of L⁻¹ and small blocks), plus n-vectors.
    tiles = w * audit_memory.TILE_ARRAYS * 8 * b * b
    algebra = audit_memory.LAPACK_BYTES + 3 * 8 * 2000**2 + 2 * 8 * n * 1024 + 4 * 8 * 1024**2
    assert audit_memory.bytes_needed(n, d, b, w) == 8 * n * n + max(tiles, algebra) + 16 * 8 * n
    # the plan docs/audit.md quotes for this case; the measured run's peak RSS was 14.40 GB, which
    # is this plus X (0.25 GB) and the interpreter's base
    assert audit_memory.bytes_needed(n, d, b, w) / 1e9 == pytest.approx(13.86, abs=0.005)


def test_available_bytes_is_positive_and_at_most_physical_memory():
    avail = audit_memory.available_bytes()
    assert 0 < avail <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def test_audit_refuses_before_any_work(monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("the audit started work before its memory check")

    # neither the σ² rule nor the kernel may run once the memory check has said no
    monkeypatch.setattr(audit, "kernel_and_diag", no_work)
    monkeypatch.setattr(audit.audit_sigma2, "audit_sigma2", no_work)  # the σ² phase the audit calls
    X, y = multiclass(300, 5, 3, 0)
    with pytest.raises(LoodInputError, match=r"the audit of n = 300 records needs .* out-of-core route"):
        audit.audit(X, y, ARCH, nngp_settings(0.2), audit_settings(), 2, available=10_000, log=None)
    with pytest.raises(LoodInputError, match="out-of-core route at its narrowest panels"):
        audit.audit(X, y, ARCH, nngp_settings(0.2), audit_settings("marginal_likelihood"), 2, 10_000, None)


# ----------------------------------------------------------------------------- in-place algebra


def test_fit_in_place_matches_the_inverse_and_overwrites_a_with_l():
    A = spd(230)
    K = A.copy(order="F")
    Y = np.random.default_rng(1).standard_normal((230, 3))
    fit = gp_inplace.fit_inplace(A, Y, 0.3, 2, None, None, 1.0)
    P = np.linalg.inv(K + 0.3 * np.eye(230))
    np.testing.assert_allclose(fit.p_diag, np.diag(P), rtol=1e-11)
    np.testing.assert_allclose(fit.alpha, P @ Y, rtol=1e-10, atol=1e-12)
    # In place: A itself now holds L of K + σ²I below the diagonal.
    np.testing.assert_allclose(np.tril(A), np.linalg.cholesky(K + 0.3 * np.eye(230)), atol=1e-12)
    with pytest.raises(LoodInputError, match="Fortran"):
        gp_inplace.fit_inplace(np.ascontiguousarray(K), Y, 0.3, 2, None, None, 1.0)


@pytest.mark.parametrize("block", [16, 45, 500])
def test_inverse_column_norms_are_the_diagonal_of_the_inverse(block):
    import torch

    A = spd(200, seed=3)
    P = np.linalg.inv(A)
    L = np.asfortranarray(np.linalg.cholesky(A) + np.triu(np.full((200, 200), 7.0), 1))  # junk above: never read
    seen = []
    s = gp_inplace.inverse_column_norms(torch.from_numpy(L), block, seen.append)
    np.testing.assert_allclose(s, np.diag(P), rtol=1e-11)
    assert seen[-1] == pytest.approx(gp_inplace.inverse_work(200, block))


def test_phase_timer_logs_the_estimate_progress_and_the_rate(caplog):
    import logging
    import re
    import time

    log = logging.getLogger("test_audit")
    with caplog.at_level(logging.INFO, logger="test_audit"):
        with progress.PhaseTimer(log, "phase", 2e9, 1.0, 0.02) as timer:
            time.sleep(0.3)  # a "LAPACK call" of 0.3 s: lines every 0.02 s while it runs
    text = caplog.text
    assert "phase: 0.002 TFLOP, expected ~0m02s at 1.0 GFLOP/s" in text
    assert "% by the estimate, ETA ~" in text  # progress while the call ran
    assert timer.seconds >= 0.3
    done = re.search(r"phase: done in \S+ \(([\d.]+) GFLOP/s\)", text)
    # the rate it reached, printed to 0.1
    assert done and float(done.group(1)) == pytest.approx(2.0 / timer.seconds, abs=0.051)


def test_kernel_written_into_a_given_array_matches_the_returned_kernel():
    X, _ = multiclass(170, 7, 3, 1)
    K, diag = kernel_and_diag(X, None, ARCH, 64)
    out = np.full((170, 170), np.nan, order="F")
    calls = []
    K2, diag2 = kernel_and_diag(X, None, ARCH, 64, out=out, progress=lambda done, total: calls.append((done, total)))
    assert K2 is out
    np.testing.assert_allclose(out, K, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(diag, diag2)
    assert calls[-1] == (6, 6) and len(calls) == 6  # 3 block rows: 3 + 2 + 1 lower tiles
    Q = X[:20] + 0.1
    out_q = np.empty((20, 170))
    np.testing.assert_allclose(
        kernel_and_diag(Q, X, ARCH, 64, out=out_q)[0], kernel_and_diag(Q, X, ARCH, 64)[0], rtol=1e-13
    )
    with pytest.raises(LoodInputError, match="out must be"):
        kernel_and_diag(X, None, ARCH, 64, out=np.empty((170, 169)))


def test_audit_agrees_with_the_current_implementation():
    X, y = multiclass(700, 12, 10, 2)
    res = audit.audit(
        X, y, ARCH, nngp_settings(0.05, block_size=96), audit_settings(), 2, audit_memory.available_bytes(), None
    )
    ref = lood_all_table(prepare(X, y, ARCH, 0.05, 96))
    for col in ["kl", "mse"]:
        rel = np.max(np.abs(res.table[col].to_numpy() - ref[col].to_numpy()) / np.abs(ref[col].to_numpy()))
        assert rel <= 1e-10, col
    assert list(res.table["label"]) == list(y)
    assert res.table["rank"].min() == 1 and res.table.loc[res.table["rank"] == 1, "kl"].item() == res.table["kl"].max()


def test_fit_in_place_uses_the_jitter_policy_of_fit_gp():
    # An indefinite "kernel" (smallest eigenvalue -1e-7 x the mean diagonal): the Cholesky fails until the
    # jitter exceeds that, and each retry must start from K again (refill), as lood.analytic.gp.fit_gp's retries do.
    K, Y = indefinite_kernel()
    ref = fit_gp(K, Y, 0.0)
    refills = []

    def refill(out):
        refills.append(1)
        out[:] = K

    lf = gp_inplace.fit_inplace(np.array(K, order="F"), Y, 0.0, 2, refill, None, 1.0)
    assert lf.jitter == ref.jitter > 1e-7 * np.mean(np.diag(K))
    failed = int(round(np.log10(ref.jitter / np.mean(np.diag(K))))) + 12  # tries before: 1e-12, 1e-11, ...
    assert len(refills) == failed >= 5
    np.testing.assert_allclose(lf.alpha, ref.alpha, rtol=1e-8)
    np.testing.assert_allclose(lf.p_diag, np.diag(np.linalg.inv(K + ref.jitter * np.eye(120))), rtol=1e-8)


def test_blas_guard_falls_back_to_one_thread_on_a_crashing_core(monkeypatch):
    import threadpoolctl

    info = [{"internal_api": "openblas", "architecture": "SkylakeX", "num_threads": 2}]
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: info)
    assert gp_inplace.blas_threads(40_000, 2, None) == 1
    assert gp_inplace.blas_threads(10_000, 2, None) == 2
    info[0]["architecture"] = "Haswell"
    assert gp_inplace.blas_threads(40_000, 2, None) == 2


@pytest.mark.parametrize(("flags", "expected"), [("avx2 avx512f", "Haswell"), ("avx2", "None")])
def test_safe_core_is_chosen_before_numpy_loads(flags, expected):
    code = (
        "import lood.runtime.openblas as b, sys; b.cpu_flags = lambda: set(sys.argv[1].split()); "
        "print(b.use_safe_core()); import numpy"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    out = subprocess.run([sys.executable, "-c", code, flags], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


# ----------------------------------------------------------------------------- exact NNGP AUC


@pytest.mark.parametrize("C", [2, 3, 10])
@pytest.mark.parametrize("r", [1.001, 1.5, 4.0])
def test_exact_auc_with_equal_means_is_an_f_distribution(C, r):
    # δ = 0: AUC = P(Q_F < r Q_D) with central χ²_C both, i.e. the F(C, C) cdf at r. With the variances
    # swapped the optimal test flips its direction, and its AUC is the same (an optimal test's AUC is >= 1/2).
    z = np.zeros((1, C))
    assert auc_exact.nngp_auc_exact(z, [r], z, [1.0])[0] == pytest.approx(stats.f.cdf(r, C, C), abs=1e-12)
    assert auc_exact.nngp_auc_exact(z, [1.0], z, [r])[0] == pytest.approx(stats.f.cdf(r, C, C), abs=1e-12)


def test_exact_auc_with_equal_variances_is_the_normal_shift():
    mD, mF = np.array([[0.3, -0.1, 0.2]]), np.zeros((1, 3))
    closed = stats.norm.cdf(np.sqrt(0.14 / (2 * 0.5)))
    assert auc_exact.nngp_auc_exact(mD, [0.5], mF, [0.5])[0] == pytest.approx(closed, abs=1e-14)
    # Continuous across the switch to the normal form near equal variances.
    near = [auc_exact.nngp_auc_exact(mD, [0.5 * (1 + e)], mF, [0.5])[0] for e in (1e-3, 1e-4, 3e-5, 1e-5, 1e-7, 1e-9)]
    assert np.all(np.diff(near) > 0) and abs(near[-1] - closed) < 1e-10


def test_quadrature_at_large_noncentrality_approaches_the_normal_form():
    # Near-equal variances: λ = 3e2 .. 3e8; the normal form of the LR statistic is off by O((r - 1)²) only.
    C, vF, d2 = 4, 0.1, 0.3
    for eps in (1e-2, 1e-3, 1e-4, 3e-5):
        vD = vF * (1 + eps)
        mF, mD = np.zeros((1, C)), np.zeros((1, C))
        mD[0, 0] = np.sqrt(d2)
        r = vD / vF
        mean_G = d2 * (1 + 1 / r) / 2 + eps * vF / 2 * C * (1 - 1 / r)
        var_G = d2 * (vD + vF / r**2) + (eps * vF / 2) ** 2 * 2 * C * (1 + 1 / r**2)
        normal = stats.norm.cdf(mean_G / np.sqrt(var_G))
        assert abs(auc_exact.nngp_auc_exact(mD, [vD], mF, [vF])[0] - normal) < eps**2


def test_noncentral_chi2_pieces_match_scipy():
    w = np.linspace(50, 3000, 400)
    for lam in (150.0, 1000.0):
        np.testing.assert_allclose(
            auc_exact._ncx2_cdf(w, 5, np.full_like(w, lam)), special.chndtr(w, 5, lam), atol=1e-13
        )
        np.testing.assert_allclose(
            auc_exact._ncx2_pdf(np.sqrt(w), 5, np.full_like(w, lam)), stats.ncx2.pdf(w, 5, lam), rtol=1e-10, atol=1e-90
        )
    z = np.array([2e8, 5e8, 9e8])
    np.testing.assert_allclose(auc_exact._ive(4.0, z), special.ive(4.0, z), rtol=1e-14)


def test_exact_auc_agrees_with_monte_carlo():
    rng = np.random.default_rng(5)
    for _ in range(6):
        C = int(rng.integers(2, 11))
        mF = 0.3 * rng.standard_normal(C)
        mD = mF + 0.3 * rng.standard_normal(C)
        vF = rng.uniform(0.01, 0.2)
        vD = vF * rng.uniform(1.0, 3.0)
        exact = auc_exact.nngp_auc_exact(mD[None], [vD], mF[None], [vF])[0]
        mc, se = nngp_auc(mD, vD, mF, vF, 100_000, int(rng.integers(1 << 30)))
        assert abs(exact - mc) < 4 * se + 1e-12


def test_exact_auc_matches_monte_carlo_on_real_posteriors():
    X, y = multiclass(200, 6, 4, 6)
    gp = prepare(X, y, ARCH, 0.1, 64)
    from lood.analytic.divergence import lood_at_records

    res = lood_at_records(gp.fit, gp.K_diag, np.arange(0, 200, 25))
    exact = auc_exact.nngp_auc_exact(res["mean_D"], res["var_D"], res["mean_F"], res["var_F"])
    for j in range(len(exact)):
        mc, se = nngp_auc(res["mean_D"][j], res["var_D"][j], res["mean_F"][j], res["var_F"][j], 50_000, j)
        assert abs(exact[j] - mc) < 4 * se + 1e-12


# ----------------------------------------------------------------------------- σ²


def test_sigma2_choice_replaces_calibrate_and_says_so():
    rule, note = audit.sigma2_choice(audit_settings(None), nngp_settings("calibrate"))
    assert rule == "marginal_likelihood" and "calibrate" in note and "trains none" in note
    assert audit.sigma2_choice(audit_settings(None), nngp_settings(0.3))[0] == 0.3
    assert audit.sigma2_choice(audit_settings(0.7), nngp_settings("calibrate"))[0] == 0.7
    assert audit.sigma2_choice(audit_settings("marginal_likelihood"), nngp_settings(0.3))[0] == "marginal_likelihood"


def test_marginal_likelihood_on_all_records_is_the_study_rule():
    from lood.analytic import sigma2 as s2

    X, y = multiclass(150, 6, 3, 7)
    nngp = nngp_settings("marginal_likelihood")
    chosen = audit.marginal_likelihood_sigma2(X, y, ARCH, nngp, 1000)
    study = s2.experiment_sigma2(X, y, ARCH, nngp, None, "mse", True)[0].iloc[0]
    assert chosen["sigma2"] == study["sigma2"] and chosen["records"] == 150
    assert list(audit.sigma2_subset(10, 4)) == [0, 3, 6, 9]


# ----------------------------------------------------------------------------- end to end


@pytest.mark.e2e
def test_audit_target_runs_on_the_default_data(workflow_copy):
    from conftest import snakemake

    run = snakemake(workflow_copy, "--cores", "2", "audit", timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    res = workflow_copy / "results"
    table = pd.read_csv(res / "audit" / "lood_all.csv")
    n = len(np.load(res / "data" / "dataset.npz")["y"])
    assert list(table.columns[:5]) == ["record", "label", "kl", "mse", "auc_nngp"] and len(table) == n
    assert np.all(table["kl"] >= 0) and np.all((table["auc_nngp"] >= 0.5 - 1e-9) & (table["auc_nngp"] <= 1))
    info = json.loads((res / "audit" / "audit_info.json").read_text())
    # nngp.sigma2 is calibrate: the audit trained audit.calibrate_models in-models itself, and its σ² is
    # the full workflow's (0.075 on these data, bench/bench_audit_sigma2.py), off the grid's edge
    assert info["sigma2_rule"] == "calibrate" and info["sigma2_models"] == 4 and not info["sigma2_at_edge"]
    assert {r["rule"] for r in info["sigma2_rules"]} == {"calibrate", "marginal_likelihood"}
    assert (res / "audit" / "figures" / "most_exposed.png").stat().st_size > 10_000
    report = (res / "audit" / "report.md").read_text()
    assert "most exposed" in report and "top-1 % overlap with calibrate" in report
    assert not (res / "relu" / "nn" / "in").exists()  # none of the workflow's in-models were trained
    again = snakemake(workflow_copy, "--cores", "2", "audit", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
