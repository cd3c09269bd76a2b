"""Out-of-core GP algebra (lood.analytic.gp_outofcore) against dense inverses computed by NumPy."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lood.analytic import gp_outofcore
from lood.analytic.gp import fit_gp
from lood.errors import LoodInputError

from reference import indefinite_kernel


def spd(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n // 2 + 3))
    return X @ X.T / X.shape[1]


def filler(K: np.ndarray, calls: list | None = None):
    def fill(c0: int, c1: int, out: np.ndarray) -> None:
        if calls is not None:
            calls.append((c0, c1, out.shape))
        out[:] = K[c0:, c0:c1]
        out[: c1 - c0] += np.triu(np.full((c1 - c0, c1 - c0), 5.0), 1)  # junk above the diagonal: never read

    return fill


@pytest.mark.parametrize("leaf", [1024, 7])  # 7: the triangular blocks are split in halves (TRIANGLE_LEAF)
@pytest.mark.parametrize("width", [23, 64, 100, 230, 1000])
def test_alpha_and_diag_p_match_the_dense_inverse(width, leaf, tmp_path, monkeypatch):
    monkeypatch.setattr(gp_outofcore, "TRIANGLE_LEAF", leaf)
    n = 230
    K = spd(n)
    Y = np.random.default_rng(1).standard_normal((n, 3))
    calls = []
    fit = gp_outofcore.fit_outofcore(filler(K, calls), n, Y, 0.3, np.diag(K).copy(), width, tmp_path, 2, None, 1.0)
    P = np.linalg.inv(K + 0.3 * np.eye(n))
    np.testing.assert_allclose(fit.p_diag, np.diag(P), rtol=1e-11)
    np.testing.assert_allclose(fit.alpha, P @ Y, rtol=1e-10, atol=1e-12)
    w = min(width, n)
    # each panel was asked for once, rows c0..n of its columns, and the scratch file is gone
    assert [c[:2] for c in calls] == [(c0, min(c0 + w, n)) for c0 in range(0, n, w)]
    assert all(shape == (n - c0, c1 - c0) for c0, c1, shape in calls)
    assert os.listdir(tmp_path) == []
    assert fit.jitter == 0.0 and fit.sigma2 == 0.3


def test_triangular_block_products_match_dense_ones(monkeypatch):
    import torch

    monkeypatch.setattr(gp_outofcore, "TRIANGLE_LEAF", 5)
    rng = np.random.default_rng(3)
    A, C = rng.standard_normal((37, 11)), rng.standard_normal((37, 37))
    out = torch.from_numpy(C.copy())
    gp_outofcore._sub_lower_gram(out, torch.from_numpy(A))
    np.testing.assert_allclose(np.tril(out.numpy()), np.tril(C - A @ A.T), rtol=1e-13, atol=1e-13)
    X, B, D = np.tril(rng.standard_normal((37, 37))), rng.standard_normal((20, 37)), rng.standard_normal((20, 37))
    out = torch.from_numpy(D.copy())
    gp_outofcore._sub_lower_product(out, torch.from_numpy(B), torch.from_numpy(X))
    np.testing.assert_allclose(out.numpy(), D - B @ X, rtol=1e-13, atol=1e-13)
    L = np.tril(rng.standard_normal((37, 37))) + 6 * np.eye(37)
    inv = gp_outofcore._lower_inverse(torch.from_numpy(L)).numpy()
    np.testing.assert_allclose(inv, np.linalg.inv(L), rtol=1e-12, atol=1e-14)
    assert np.all(np.triu(inv, 1) == 0)


def test_panel_file_round_trip_and_size(tmp_path):
    n, w = 50, 16
    pf = gp_outofcore.PanelFile(tmp_path, n, w)
    rng = np.random.default_rng(2)
    panels = [rng.standard_normal((n - c0, c1 - c0)) for c0, c1 in pf.bounds]
    for j, p in enumerate(panels):
        pf.write(j, p)
    assert os.fstat(pf.fd).st_size == gp_outofcore.disk_bytes(n, w) == 8 * sum(p.size for p in panels)
    assert os.listdir(tmp_path) == []  # unlinked at once: a killed run leaves nothing behind
    buf = np.empty(n * w)
    for j, (c0, _) in enumerate(pf.bounds):
        for row0 in (c0, min(c0 + 3, n - 1), n - 1):
            np.testing.assert_array_equal(pf.read(j, row0, buf), panels[j][row0 - c0 :])
    with pytest.raises(ValueError, match="C-ordered"):
        pf.write(0, np.asfortranarray(panels[0]))
    pf.close()
    assert os.listdir(tmp_path) == []


def test_jitter_policy_matches_fit_gp(tmp_path):
    # an indefinite "kernel": the factorisation fails until the jitter exceeds its negative eigenvalue
    K, Y = indefinite_kernel()
    ref = fit_gp(K, Y, 0.0)
    fit = gp_outofcore.fit_outofcore(filler(K), 120, Y, 0.0, np.diag(K).copy(), 60, tmp_path, 2, None, 1.0)
    assert fit.jitter == ref.jitter > 1e-7 * np.mean(np.diag(K))
    P = np.linalg.inv(K + fit.jitter * np.eye(120))
    np.testing.assert_allclose(fit.p_diag, np.diag(P), rtol=1e-7)
    np.testing.assert_allclose(fit.alpha, P @ Y, rtol=1e-6, atol=1e-8)


def test_bad_input_is_named(tmp_path):
    K = spd(20)
    with pytest.raises(LoodInputError, match="Y has 19 rows"):
        gp_outofcore.fit_outofcore(filler(K), 20, np.ones((19, 2)), 0.1, np.diag(K), 8, tmp_path, 1, None, 1.0)
    with pytest.raises(LoodInputError, match="sigma2 must be >= 0"):
        gp_outofcore.fit_outofcore(filler(K), 20, np.ones((20, 2)), -1.0, np.diag(K), 8, tmp_path, 1, None, 1.0)


def test_relu_kernel_path_is_measured_once_and_both_paths_agree(monkeypatch):
    from lood.analytic import kernel
    from lood.settings import Arch

    arch = Arch(depth=3, width=1, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    X = np.random.default_rng(5).random((150, 9))
    closed, _ = kernel.kernel_and_diag(X, None, arch, 64)  # below MEASURE_ENTRIES: the closed form
    monkeypatch.setattr(kernel, "MEASURE_ENTRIES", 100)
    monkeypatch.setattr(kernel, "_PROBE", 64)
    monkeypatch.setattr(kernel, "RELU_PATHS", {})
    path = kernel.relu_path(arch, 9, 2)
    assert path in ("closed_form", "stax") and kernel.RELU_PATHS == {(arch.kernel_key, 9, 2): path}
    for forced in ("stax", "closed_form"):  # whichever the machine picks, the kernel is the same
        kernel.RELU_PATHS[(arch.kernel_key, 9, kernel._n_workers())] = forced
        K, diag = kernel.kernel_and_diag(X, None, arch, 64)
        np.testing.assert_allclose(K, closed, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(diag, np.diag(closed), rtol=1e-12)
