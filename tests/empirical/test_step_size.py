"""lr: auto from the NTK and lissa_scale: auto, against independent computations and against training itself."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from lood.analytic.kernel import ntk_kernel
from lood.config import fill_defaults
from lood.data.prepare import prepare_dataset
from lood.empirical.step_size import (
    LISSA_MARGIN,
    LR_SAFETY,
    lissa_scale,
    loss_curvature,
    lr_table,
    ntk_eigenvalues,
    read_lr,
    resolved,
    stable_lr,
)
from lood.empirical.train import Models, Outputs, forward, init_params, train_models
from lood.errors import LoodInputError
from lood.settings import Arch, Training

from conftest import FASHION_DIR, ROOT


def training(**kw) -> Training:
    """The default config's training section (schema defaults filled) with `kw` changed."""
    import yaml

    cfg = fill_defaults(yaml.safe_load((ROOT / "config.yaml").read_text()), ROOT / "schemas" / "config.schema.yaml")
    return Training.from_config({**cfg["training"], **kw})


def arch(**kw) -> Arch:
    return Arch(**{"depth": 2, "width": 128, "activation": "relu", "bias": False, "w_std": 2**0.5, "b_std": 0.0, **kw})


# ----------------------------------------------------------------------------- the NTK


@pytest.mark.parametrize("act, bias", [("relu", False), ("gelu", True)])
def test_ntk_matches_the_empirical_tangent_kernel_of_the_trained_network(act, bias):
    """Θ = E[J Jᵀ] at initialisation, J the Jacobian of lood.empirical.train's network (autograd), over seeds."""
    X = np.random.default_rng(0).normal(size=(6, 5))
    a = arch(depth=2, width=256, activation=act, bias=bias, b_std=0.3)
    Ks = []
    for seed in range(40):
        p = [q.double().requires_grad_() for q in init_params(a, 5, 1, seed)]
        f = forward(p, torch.as_tensor(X), a)[:, 0]
        J = torch.stack(
            [torch.cat([g.reshape(-1) for g in torch.autograd.grad(f[i], p, retain_graph=True)]) for i in range(6)]
        )
        Ks.append((J @ J.T).numpy())
    theta = ntk_kernel(X, a)
    # Monte Carlo over 40 networks of width 256: a few percent; the width enters the kernel (~linearly).
    np.testing.assert_allclose(np.mean(Ks, axis=0), theta, rtol=0.06, atol=0.02 * np.abs(theta).max())
    assert ntk_kernel(X, replace(a, width=512)).max() > 1.8 * theta.max()


def test_linear_model_ntk_is_the_gram_matrix():
    X = np.random.default_rng(1).normal(size=(9, 4))
    np.testing.assert_allclose(ntk_kernel(X, arch(depth=0, w_std=0.7)), X @ X.T, rtol=1e-12)


# ----------------------------------------------------------------------------- the bound


def test_loss_curvature_is_the_top_eigenvalue_of_the_loss_hessian_in_the_logits():
    rng = np.random.default_rng(2)
    for C in (2, 3, 5):
        for _ in range(5):
            z = torch.tensor(rng.normal(size=C) * 2, requires_grad=True)
            t = torch.nn.functional.one_hot(torch.tensor(int(rng.integers(C))), C).double()
            mse = torch.autograd.functional.hessian(lambda v: torch.nn.functional.mse_loss(v, t - 1 / C), z)
            ce = torch.autograd.functional.hessian(lambda v: torch.nn.functional.cross_entropy(v[None], t[None]), z)
            assert np.linalg.eigvalsh(mse.numpy())[-1] == pytest.approx(loss_curvature("mse", C), rel=1e-12)
            assert np.linalg.eigvalsh(ce.numpy())[-1] <= loss_curvature("cross_entropy", C) + 1e-12
    z = torch.zeros(2, requires_grad=True)  # two classes at p = 1/2 reach the cross-entropy bound
    h = torch.autograd.functional.hessian(lambda v: torch.nn.functional.cross_entropy(v[None], torch.tensor([0])), z)
    assert np.linalg.eigvalsh(h.numpy())[-1] == pytest.approx(0.5)
    with pytest.raises(LoodInputError, match="training.loss 'hinge' unknown"):
        loss_curvature("hinge", 2)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_bound_is_sharp_for_full_batch_gradient_descent_on_a_linear_model(momentum):
    """Depth 0: the network is linear and its linearisation exact: GD converges just below the bound, diverges above."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(40, 6)) * 3, rng.integers(0, 3, 40)
    a, tr = arch(depth=0, w_std=1.0), training(batch_size=40, epochs=300, momentum=momentum, loss="mse")
    table = lr_table(X, y, a, tr, base_seed=0)
    bound = float(table["bound"].iloc[0])
    assert table["lambda_full"].iloc[0] == pytest.approx(np.linalg.eigvalsh(X @ X.T)[-1] / 40, rel=1e-10)
    assert bound == pytest.approx(2 * (1 + momentum) / ((2 / 3) * table["lambda_full"].iloc[0]))
    for factor, stable in [(0.98, True), (1.02, False)]:
        W = train_models(X, y, a, replace(tr, lr=factor * bound), Models([1, 2]), Outputs(params=True)).params[0]
        assert (W.abs().max().item() < 10) == stable, (factor, W.abs().max().item())


def test_batch_eigenvalue_is_a_mean_over_seeded_minibatches():
    X = np.random.default_rng(4).normal(size=(50, 3))
    theta = X @ X.T + 0.5
    full, batch = ntk_eigenvalues(theta, 10, seed=1)
    assert full == pytest.approx(np.linalg.eigvalsh(theta)[-1] / 50)
    assert batch == ntk_eigenvalues(theta, 10, seed=1)[1] and batch != ntk_eigenvalues(theta, 10, seed=2)[1]
    assert batch > full  # a small batch's diagonal weighs more
    assert ntk_eigenvalues(theta, 64, seed=1) == (full, full)  # a batch as large as the set is the full batch


def test_lr_table_auto_numbers_and_subsample(monkeypatch):
    X, y = np.random.default_rng(5).random((60, 8)), np.arange(60) % 2
    auto = lr_table(X, y, arch(), training(lr="auto", batch_size=16), 0).iloc[0]
    assert auto["lr"] == pytest.approx(LR_SAFETY["mse"] * auto["bound"]) and auto["lr_setting"] == "auto"
    assert auto["bound"] == pytest.approx(stable_lr(max(auto["lambda_full"], auto["lambda_batch"]), "mse", 2, 0.0))
    given = lr_table(X, y, arch(), training(lr=0.3, batch_size=16), 0).iloc[0]
    assert given["lr"] == 0.3 and given["fraction_of_bound"] == pytest.approx(0.3 / auto["bound"])
    ce = lr_table(X, y, arch(), training(lr="auto", batch_size=16, loss="cross_entropy"), 0).iloc[0]
    assert ce["lr"] == pytest.approx(LR_SAFETY["cross_entropy"] * 4 / max(ce["lambda_full"], ce["lambda_batch"]))
    monkeypatch.setattr("lood.empirical.step_size.NTK_MAX_ROWS", 25)
    sub = lr_table(X, y, arch(), training(lr="auto", batch_size=16), 0).iloc[0]
    assert sub["ntk_rows"] == 25 and sub["lambda_full"] == pytest.approx(auto["lambda_full"], rel=0.3)


def test_read_lr_and_resolved(tmp_path):
    path = tmp_path / "lr.csv"
    lr_table(np.eye(6), np.arange(6) % 2, arch(), training(lr="auto"), 0).to_csv(path, index=False)
    tr = resolved(training(lr="auto"), path)
    assert tr.lr == read_lr(path) > 0
    path.write_text("lr\n-1\n")
    with pytest.raises(LoodInputError, match="not an lr table"):
        read_lr(path)
    with pytest.raises(LoodInputError, match="training.lr must be a positive number or auto, got 'fast'"):
        training(lr="fast")


# ----------------------------------------------------------------------------- auto on real data


def diverged(X, y, a, tr, lr, n_models=100) -> int:
    """How many of n_models networks end with non-finite or exploded logits at step `lr`."""
    params = train_models(X, y, a, replace(tr, lr=lr), Models(list(range(n_models))), Outputs(params=True)).params
    with torch.no_grad():
        logits = forward(params, torch.as_tensor(X, dtype=torch.float32), a).numpy()
    return int(
        (~np.isfinite(logits).reshape(n_models, -1).all(1) | (np.abs(logits).reshape(n_models, -1).max(1) > 1e6)).sum()
    )


def digits(n=150):
    return prepare_dataset({"source": "digits", "classes": [3, 5], "n_records": n, "normalise": "none"}, 2024)


def large_norm_blobs():
    """Two Gaussian blobs in 30 dimensions with record norms ~300 (digits: ~4)."""
    rng = np.random.default_rng(6)
    y = np.arange(200) % 2
    X = rng.normal(size=(200, 30)) * 20 + np.where(y[:, None] == 1, 50.0, -50.0) + 20
    return {"X": X, "y": y}


def fashion():
    if not FASHION_DIR.is_dir():
        pytest.skip("the real Fashion-MNIST files are absent: apt-get install dataset-fashion-mnist (.ci/run does)")
    cfg = {"source": "fashion_mnist", "classes": [0, 6], "n_records": 200, "normalise": "none"}
    return prepare_dataset(cfg, 2024, source_path=FASHION_DIR)


# dataset, architecture, training, and the step (in units of auto's) from which some of 100 models diverge.
# A sweep lr x {1, 2, 4, 8, 16} measured with these settings (diverged models of 100):
#   digits, digits x 10: 0, 0, 0, 6, -; blobs: 0, -, 0, 1, 79; Fashion-MNIST 4 layers,
#   cross-entropy: 0, -, 0, 7, 99; MSE: 0, -, 0, 49, 100. Divergence shows within 5 epochs.
CASES = {
    "digits": (digits, arch(), dict(epochs=5), 8),
    "digits_x10": (lambda: {k: v * 10 if k == "X" else v for k, v in digits().items()}, arch(), dict(epochs=5), 8),
    "large_norm_blobs": (large_norm_blobs, arch(), dict(epochs=5), 16),
    "fashion_deep_ce": (fashion, arch(depth=4), dict(epochs=5, loss="cross_entropy"), 8),
    "fashion_deep_mse": (fashion, arch(depth=4), dict(epochs=5), 8),
}


@pytest.mark.parametrize("case", list(CASES))
def test_auto_trains_100_models_stably_within_a_factor_of_the_largest_stable_step(case):
    make, a, kw, diverging_from = CASES[case]
    data = make()
    tr = training(lr="auto", **kw)
    lr = float(lr_table(data["X"], data["y"], a, tr, 2024)["lr"].iloc[0])
    assert diverged(data["X"], data["y"], a, tr, lr) == 0
    # So the largest step of the sweep at which none of 100 diverge is below diverging_from x lr.
    assert diverged(data["X"], data["y"], a, tr, diverging_from * lr) > 0


# ----------------------------------------------------------------------------- LiSSA scale


def test_lissa_scale_keeps_the_recursion_contracting():
    rng = np.random.default_rng(7)
    for magnitude in (1.0, 100.0):  # e.g. the digits' Hessian and one of data 10x the scale
        Q = np.linalg.qr(rng.normal(size=(20, 20)))[0]
        H = Q @ np.diag(rng.uniform(0.1, 14.0, 20) * magnitude) @ Q.T
        radius, damping = np.abs(np.linalg.eigvalsh(H)).max(), 0.5
        scale = lissa_scale(radius, damping)
        assert scale == pytest.approx(LISSA_MARGIN * (radius + damping))
        M = np.eye(20) - (H + damping * np.eye(20)) / scale  # LiSSA's iteration matrix
        assert np.abs(np.linalg.eigvalsh(M)).max() < 1
        # the recursion h <- g + M h, h/scale converges to (H + damping I)^-1 g
        g, h = rng.normal(size=20), np.zeros(20)
        for _ in range(3000):
            h = g + M @ h
        np.testing.assert_allclose(h / scale, np.linalg.solve(H + damping * np.eye(20), g), rtol=1e-6)
    with pytest.raises(LoodInputError, match="set influence.lissa_scale to a number"):
        lissa_scale(float("nan"), 0.5)


def test_lissa_auto_on_data_ten_times_the_digits_scale():
    """Digits x 10: the Hessian is ~100x larger, so the digits' fixed scale 20 fails; auto matches the exact solve."""
    from functools import partial

    from lood.empirical.losses import Batch, Objective
    from lood.influence import baselines as inf

    from reference import influence_settings as settings

    d = digits(80)
    for factor, damping in [(1, 0.5), (10, 50.0)]:  # damping is absolute: it is scaled with the Hessian by hand here
        X, y, a = d["X"] * factor, d["y"], arch(width=16)
        tr = training(lr="auto", epochs=30)
        tr = replace(tr, lr=float(lr_table(X, y, a, tr, 2024)["lr"].iloc[0]))
        params = [p[0] for p in train_models(X, y, a, tr, Models([5]), Outputs(params=True)).params]
        objective = Objective(partial(forward, arch=a), "mse")
        Xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
        train, query = Batch(Xt, yt), Batch(Xt[:4], yt[:4])
        exact = inf.influence_self(objective, params, train, query, settings(method="exact", damping=damping), 0)
        auto = settings(method="lissa", damping=damping, lissa_scale="auto", lissa_depth=300)
        lissa = inf.influence_self(objective, params, train, query, auto, 0)
        np.testing.assert_allclose(lissa, exact, rtol=1e-2)  # measured: 3e-3
    with pytest.raises(LoodInputError, match="lissa_scale=20.0 is too small"):
        inf.influence_self(objective, params, train, query, replace(auto, lissa_scale=20.0), 0)
