"""Influence baselines against independent computations: a Hessian from torch.autograd.functional,
finite differences, hand-written backprop, and the closed form of a linear model."""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd
import pytest
import torch

from lood.config import SCHEMA_PATH, enum, fill_defaults
from lood.empirical import losses, train
from lood.empirical.losses import Batch, Objective
from lood.empirical.training_job import TrainingJob
from lood.errors import LoodInputError
from lood.influence import baselines as inf
from lood.influence.comparison import ESTIMATORS, SCORE_COLUMNS, comparison_table
from lood.influence.grads import loss_hessian
from lood.influence.tracin import tracin_self_influence
from lood.settings import Arch, Training

from reference import influence_settings


def self_influence(forward, params, train_batch, query, seed=0, minibatch=None, **overrides):
    """influence_self of the MSE on train_batch at the query Batch, with `overrides` of the influence settings."""
    objective = Objective(forward, "mse")
    return inf.influence_self(objective, params, train_batch, query, influence_settings(**overrides), seed, minibatch)


def _centred_one_hot(y: torch.Tensor, C: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(y, C).double() - 1.0 / C


def _mlp(params, X):
    """A 2-layer net written independently of lood: relu(X W1^T + b1) W2^T + b2."""
    W1, b1, W2, b2 = params
    return torch.relu(X @ W1.T + b1) @ W2.T + b2


def _tiny_problem(seed: int = 0, n: int = 24, d: int = 5, h: int = 4, C: int = 2):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, C, (n,), generator=g)
    params = [
        torch.randn(h, d, generator=g, dtype=torch.float64) / math.sqrt(d),
        0.1 * torch.randn(h, generator=g, dtype=torch.float64),
        torch.randn(C, h, generator=g, dtype=torch.float64) / math.sqrt(h),
        0.1 * torch.randn(C, generator=g, dtype=torch.float64),
    ]
    return X, y, params


def _reference_hessian_and_grads(params, X, y):
    """Hessian of the mean 0.5*||f - t||^2 (torch.autograd.functional) and per-record gradients (a loop)."""
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    C = params[-1].shape[0]
    T = _centred_one_hot(y, C)

    def unflat(theta):
        return [t.reshape(s) for t, s in zip(torch.split(theta, sizes), shapes, strict=True)]

    def mean_loss(theta):
        return 0.5 * ((_mlp(unflat(theta), X) - T) ** 2).sum(dim=1).mean()

    theta = torch.cat([p.reshape(-1) for p in params])
    H = torch.autograd.functional.hessian(mean_loss, theta)
    grads = []
    for i in range(len(X)):
        t = theta.clone().requires_grad_(True)
        li = 0.5 * ((_mlp(unflat(t), X[i : i + 1]) - T[i : i + 1]) ** 2).sum()
        grads.append(torch.autograd.grad(li, t)[0])
    return H, torch.stack(grads)


# ----------------------------------------------------------------------------- exact and LiSSA


def test_exact_and_lissa_match_an_explicit_solve():
    X, y, params = _tiny_problem()
    H, G = _reference_hessian_and_grads(params, X, y)
    eig = torch.linalg.eigvalsh(H)
    # Damping that makes H + damping*I positive definite whatever the init's curvature.
    damping = max(0.0, -eig[0].item()) + 0.5
    ref = (G * torch.linalg.solve(H + damping * torch.eye(len(H), dtype=H.dtype), G.T).T).sum(dim=1).numpy() / len(X)

    batch = Batch(X, y)
    exact = self_influence(_mlp, params, batch, batch, damping=damping, method="exact")
    np.testing.assert_allclose(exact, ref, rtol=1e-9, atol=1e-12)

    # LiSSA contracts at rate 1 - (lambda_min + damping)/scale per step; run to 1e-6.
    scale = 1.1 * (eig[-1].item() + damping)
    rate = 1.0 - (eig[0].item() + damping) / scale
    depth = math.ceil(math.log(1e-6) / math.log(rate))
    lissa = self_influence(
        _mlp, params, batch, batch, damping=damping, method="lissa", lissa_scale=scale, lissa_depth=depth
    )
    assert np.max(np.abs(lissa - ref)) / np.max(np.abs(ref)) < 1e-4
    assert ref.max() > 0  # the comparison is not between zeros


def test_lissa_truncated_early_differs_from_exact():
    # Guard against a LiSSA that silently returns the exact answer (or g/scale): too few
    # steps must leave a visible error.
    X, y, params = _tiny_problem()
    H, G = _reference_hessian_and_grads(params, X, y)
    eig = torch.linalg.eigvalsh(H)
    damping = max(0.0, -eig[0].item()) + 0.5
    scale = 1.1 * (eig[-1].item() + damping)
    batch = Batch(X, y)
    exact = self_influence(_mlp, params, batch, batch, damping=damping, method="exact")
    short = self_influence(
        _mlp, params, batch, batch, damping=damping, method="lissa", lissa_scale=scale, lissa_depth=3
    )
    assert np.max(np.abs(short - exact)) / np.max(np.abs(exact)) > 0.1


def test_stochastic_lissa_is_seeded_and_close_to_exact():
    X, y, params = _linear_problem(n=60)
    kwargs = dict(damping=0.1, method="lissa", lissa_scale=1.0, lissa_depth=40, lissa_repeats=2, minibatch=20)
    batch = Batch(X, y)
    a = self_influence(_linear, params, batch, batch[:10], seed=7, **kwargs)
    b = self_influence(_linear, params, batch, batch[:10], seed=7, **kwargs)
    c = self_influence(_linear, params, batch, batch[:10], seed=8, **kwargs)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    exact = self_influence(_linear, params, batch, batch[:10], damping=0.1, method="exact")
    # Minibatch HVPs make each run noisy (~5% here across seeds), but unbiased: a wrong
    # minibatch normalisation would be off by the factor n / batch_size = 3.
    assert np.abs(a - exact).max() / np.abs(exact).max() < 0.15


def test_lissa_divergence_is_an_actionable_error():
    X, y, params = _linear_problem(n=30)
    batch = Batch(X, y)
    with pytest.raises(LoodInputError, match="lissa_scale"):
        self_influence(
            _linear, params, batch, batch[:3], damping=0.0, method="lissa", lissa_scale=1e-3, lissa_depth=200
        )


def test_indefinite_hessian_warns_for_exact():
    X, y, params = _tiny_problem()
    H, _ = _reference_hessian_and_grads(params, X, y)
    assert torch.linalg.eigvalsh(H)[0] < 0  # the premise: this init's Hessian is indefinite
    with pytest.warns(RuntimeWarning, match="not positive definite"):
        self_influence(_mlp, params, Batch(X, y), Batch(X, y)[:3], damping=0.0, method="exact")


# ----------------------------------------------------------------------------- Hessian


@pytest.mark.parametrize("loss", ["mse", "mse_mean", "cross_entropy"])
def test_loss_hessian_matches_finite_differences_of_gradients(loss):
    # lood.empirical.train's forward with a smooth activation (erf) and biases: every block of H is non-zero.
    arch = Arch(depth=2, width=3, activation="erf", bias=True, w_std=1.5, b_std=0.3)
    params = train.init_params(arch, d=4, n_classes=3, seed=3, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(15, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (15,), generator=g)
    forward = partial(train.forward, arch=arch)
    H = loss_hessian(Objective(forward, loss), params, Batch(X, y), chunk_size=7)

    ref_loss = {
        "mse": lambda z: 0.5 * ((z - _centred_one_hot(y, 3)) ** 2).sum(dim=1).mean(),
        "mse_mean": lambda z: torch.nn.functional.mse_loss(z, _centred_one_hot(y, 3)),
        "cross_entropy": lambda z: torch.nn.functional.cross_entropy(z, y),
    }[loss]
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]

    def gradient(theta):
        t = theta.clone().requires_grad_(True)
        ps = [a.reshape(s) for a, s in zip(torch.split(t, sizes), shapes, strict=True)]
        return torch.autograd.grad(ref_loss(forward(ps, X)), t)[0]

    theta = torch.cat([p.reshape(-1) for p in params])
    eps = 1e-5
    fd = torch.stack(
        [
            (gradient(theta + eps * e) - gradient(theta - eps * e)) / (2 * eps)
            for e in torch.eye(len(theta), dtype=theta.dtype)
        ]
    )
    assert H.shape == (len(theta), len(theta))
    torch.testing.assert_close(H, fd, rtol=1e-5, atol=1e-7)
    assert H.abs().max() > 1e-2


# ----------------------------------------------------------------------------- TracIn


def _hand_grad_sq_norm(params, x, label, loss):
    """||grad loss||^2 for one record of relu(x W1 + b1) W2 + b2 (lood.empirical.train layout), by hand backprop."""
    W1, b1, W2, b2 = params
    C = W2.shape[1]
    z1 = x @ W1 + b1
    a = torch.clamp(z1, min=0)
    f = a @ W2 + b2
    t = torch.nn.functional.one_hot(label, C).double()
    if loss == "mse":  # d/df 0.5*sum (f - t)^2
        r = f - (t - 1.0 / C)
    elif loss == "mse_mean":  # d/df mean (f - t)^2
        r = 2.0 * (f - (t - 1.0 / C)) / C
    else:  # d/df (logsumexp f - f_y)
        r = torch.exp(f - f.max()) / torch.exp(f - f.max()).sum() - t
    dW2, db2 = torch.outer(a, r), r
    delta = (W2 @ r) * (z1 > 0).double()
    dW1, db1 = torch.outer(x, delta), delta
    return sum(float((g**2).sum()) for g in (dW1, db1, dW2, db2))


@pytest.mark.parametrize("loss", ["mse", "mse_mean", "cross_entropy"])
def test_tracin_matches_hand_backprop(loss):
    arch = Arch(depth=1, width=6, activation="relu", bias=True, w_std=1.4, b_std=0.2)
    forward = partial(train.forward, arch=arch)
    checkpoints = [train.init_params(arch, d=5, n_classes=3, seed=s, dtype=torch.float64) for s in range(3)]
    lrs = [0.3, 0.1, 0.01]
    g = torch.Generator().manual_seed(0)
    X = torch.randn(9, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (9,), generator=g)

    got = tracin_self_influence(Objective(forward, loss), checkpoints, lrs, Batch(X, y), chunk_size=4)
    ref = np.array(
        [
            sum(lr * _hand_grad_sq_norm(p, X[i], y[i], loss) for p, lr in zip(checkpoints, lrs, strict=True))
            for i in range(len(X))
        ]
    )
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    assert ref.min() > 0


def test_tracin_needs_one_lr_per_checkpoint():
    X, y, params = _tiny_problem()
    with pytest.raises(LoodInputError, match="one learning rate per checkpoint"):
        tracin_self_influence(Objective(_mlp, "mse"), [params, params], [0.1], Batch(X, y))


# ----------------------------------------------------------------------------- linear model closed form


def _linear(params, X):
    return X @ params[0]


def _linear_problem(n: int = 40, d: int = 6, C: int = 3, seed: int = 5):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    y = torch.randint(0, C, (n,), generator=g)
    return X, y, [torch.randn(d, C, generator=g, dtype=torch.float64)]


def _linear_closed_form(X, y, W, Xq, yq, damping):
    # f = x W, loss 0.5||f - t||^2: H = (X^T X / n) (x) I_C, g_z = x_z (x) r_z, so
    # g^T (H + damping I)^-1 g / n = ||r_z||^2 x_z^T (X^T X + n damping I)^-1 x_z.
    X, Xq, W = X.numpy(), Xq.numpy(), W.numpy()
    C = W.shape[1]
    R = Xq @ W - (np.eye(C)[yq.numpy()] - 1.0 / C)
    A = X.T @ X + len(X) * damping * np.eye(X.shape[1])
    return (R**2).sum(axis=1) * np.einsum("ij,ij->i", Xq, np.linalg.solve(A, Xq.T).T)


@pytest.mark.parametrize("method", ["exact", "lissa"])
def test_linear_model_self_influence_is_residual_times_leverage(method):
    X, y, params = _linear_problem()
    damping = 0.05
    ref = _linear_closed_form(X, y, params[0], X, y, damping)
    batch = Batch(X, y)
    got = self_influence(_linear, params, batch, batch, damping=damping, method=method, lissa_scale=0.5, lissa_depth=80)
    np.testing.assert_allclose(got, ref, rtol=1e-6 if method == "lissa" else 1e-10)


def _prediction_influence(forward, params, train_batch, query, **overrides):
    objective = Objective(forward, "mse")
    return inf.influence_scores(objective, params, train_batch, query, influence_settings(**overrides), 0)[1]


@pytest.mark.parametrize("method", ["exact", "lissa"])
def test_linear_model_prediction_influence_is_leverage_times_residual(method):
    """f = x W: Δf(z) = x_zᵀ (XᵀX + nλI)⁻¹ x_z · r_z, so √(mean_c Δf_c²) = h_z · √(mean_c r_c²)."""
    X, y, params = _linear_problem()
    damping = 0.05
    Xn, W = X.numpy(), params[0].numpy()
    C = W.shape[1]
    r = Xn @ W - (np.eye(C)[y.numpy()] - 1.0 / C)
    h = np.einsum("ij,ij->i", Xn, np.linalg.solve(Xn.T @ Xn + len(Xn) * damping * np.eye(Xn.shape[1]), Xn.T).T)
    batch = Batch(X, y)
    kw = dict(damping=damping, method=method, lissa_scale=0.5, lissa_depth=80)
    got = _prediction_influence(_linear, params, batch, batch, **kw)
    np.testing.assert_allclose(got, h * np.sqrt((r**2).mean(axis=1)), rtol=1e-6 if method == "lissa" else 1e-10)


def test_linear_ridge_prediction_influence_against_brute_force_refits():
    """At the ridge optimum of (1/n) Σ 0.5||x W − t||² + (λ/2)||W||², refitting without z (same nλ) changes z's
    prediction by h r / (1 − h) (Sherman-Morrison): the first-order influence is that change times (1 − h)."""
    X, y, _ = _linear_problem(n=30)
    Xn, C, lam = X.numpy(), 3, 0.05
    T = np.eye(C)[y.numpy()] - 1.0 / C
    n = len(Xn)
    W = np.linalg.solve(Xn.T @ Xn + n * lam * np.eye(Xn.shape[1]), Xn.T @ T)
    got = _prediction_influence(_linear, [torch.as_tensor(W)], Batch(X, y), Batch(X, y), damping=lam, method="exact")
    A = Xn.T @ Xn + n * lam * np.eye(Xn.shape[1])
    h = np.einsum("ij,ij->i", Xn, np.linalg.solve(A, Xn.T).T)
    for z in range(n):
        keep = np.arange(n) != z
        W_d = np.linalg.solve(Xn[keep].T @ Xn[keep] + n * lam * np.eye(Xn.shape[1]), Xn[keep].T @ T[keep])
        change = Xn[z] @ W_d - Xn[z] @ W
        assert got[z] == pytest.approx(np.sqrt((change**2).mean()) * (1 - h[z]), rel=1e-9)


def test_duplicated_record_has_smaller_influence():
    # Exact for a linear model (H is PSD, so adding z's curvature can only shrink the
    # quadratic form); for a non-convex net it is not guaranteed, so not tested there.
    X, y, params = _linear_problem()
    z = 7
    query = Batch(X, y)[z : z + 1]
    unique = self_influence(_linear, params, Batch(X, y), query, damping=0.05, method="exact")
    X_dup, y_dup = torch.cat([X, X[z : z + 1]]), torch.cat([y, y[z : z + 1]])
    dup = self_influence(_linear, params, Batch(X_dup, y_dup), query, damping=0.05, method="exact")
    assert dup[0] < 0.9 * unique[0]
    np.testing.assert_allclose(
        dup, _linear_closed_form(X_dup, y_dup, params[0], X[z : z + 1], y[z : z + 1], 0.05), rtol=1e-10
    )


# ----------------------------------------------------------------------------- method choice and the table


def test_choose_method():
    assert inf.choose_method(100, influence_settings(method="auto", exact_max_params=100)) == "exact"
    assert inf.choose_method(101, influence_settings(method="auto", exact_max_params=100)) == "lissa"
    assert inf.choose_method(10**9, influence_settings(method="exact", exact_max_params=100)) == "exact"
    assert inf.choose_method(1, influence_settings(method="lissa", exact_max_params=100)) == "lissa"
    with pytest.raises(LoodInputError, match="influence.method 'newton' unknown"):
        influence_settings(method="newton")


def test_unknown_loss_is_an_actionable_error():
    with pytest.raises(LoodInputError, match="unknown loss 'hinge'"):
        Objective(_mlp, "hinge")
    with pytest.raises(LoodInputError, match="training.loss 'hinge' unknown"):
        losses.training_loss("hinge")


def test_every_training_loss_maps_to_the_loss_lood_train_minimises():
    # The schema's loss enum is the one list; each name maps to a per-record loss of LOSSES.
    assert set(losses.TRAINING_LOSSES) == set(enum("loss"))
    assert all(losses.training_loss(name) in losses.LOSSES for name in enum("loss"))
    # mse_mean is torch's MSELoss on one record, against the centred one-hot target.
    z, label = torch.tensor([0.3, -1.2, 0.4], dtype=torch.float64), torch.tensor(1)
    ref = torch.nn.functional.mse_loss(z, _centred_one_hot(label, 3))
    torch.testing.assert_close(losses.LOSSES[losses.training_loss("mse")](z, label), ref)


ARCH = Arch(depth=1, width=5, activation="relu", bias=False, w_std=math.sqrt(2.0), b_std=0.0)
TRAINING_KEYS = dict(n_in=4, n_out=4, epochs=4, batch_size=8, lr=0.1, lr_milestones=[2], lr_gamma=0.5, momentum=0.0)
TRAINING = Training.from_config(fill_defaults({"training": {**TRAINING_KEYS, "loss": "mse"}}, SCHEMA_PATH)["training"])


def _table_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    # Three classes: for C = 2 lood.empirical.train's mean-over-outputs MSE equals 0.5*sum, for C = 3 it does not.
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=30), [-0.5, 0.5]).astype(np.int64)
    return X, y


def test_influence_table_columns_determinism_and_methods_agree():
    X, y = _table_data()
    records = [3, 0, 17]
    exact_settings = influence_settings(method="exact", damping=1.0, lissa_scale=20.0, lissa_depth=300, lissa_repeats=1)
    job = TrainingJob(X, y, ARCH, TRAINING, 11)
    a = inf.influence_table(job, records, exact_settings, device="cpu")
    b = inf.influence_table(job, records, exact_settings, device="cpu")
    lissa_settings = replace(exact_settings, method="lissa")
    lissa = inf.influence_table(job, records, lissa_settings, device="cpu")
    assert list(a.columns) == SCORE_COLUMNS
    assert a["record"].tolist() == records
    pd.testing.assert_frame_equal(a, b)
    assert (a["tracin"] >= 0).all() and a["tracin"].max() > 0 and a["influence"].abs().max() > 0
    np.testing.assert_allclose(lissa["influence"], a["influence"], rtol=1e-3)
    np.testing.assert_allclose(lissa["influence_prediction"], a["influence_prediction"], rtol=1e-3)
    np.testing.assert_allclose(lissa["tracin"], a["tracin"])


def test_influence_table_averages_independent_networks():
    """networks = 3: each estimator is the mean of three single-network tables, network k trained with network_seed(k);
    network 0 is the one network used before (seed int_seed(base, 'influence', 0)), kept in the *_one columns."""
    X, y = _table_data()
    records = [3, 0, 17]
    s3 = influence_settings(method="exact", damping=1.0, networks=3)
    job = TrainingJob(X, y, ARCH, TRAINING, 11)
    three = inf.influence_table(job, records, s3, device="cpu")
    singles = [inf._one_network(job, records, s3, "cpu", inf.network_seed(11, k)) for k in range(3)]
    assert inf.network_seed(11, 0) == inf.seeds.int_seed(11, "influence", 0)
    assert len({inf.network_seed(11, k) for k in range(3)}) == 3
    for e in ESTIMATORS:
        np.testing.assert_allclose(three[e], np.mean([sg[e] for sg in singles], axis=0), rtol=1e-12)
        np.testing.assert_allclose(three[f"{e}_one"], singles[0][e], rtol=1e-12)
    assert not np.allclose(singles[0]["influence"], singles[1]["influence"])
    one = inf.influence_table(job, records, replace(s3, networks=1), device="cpu")
    np.testing.assert_allclose(one["influence"], one["influence_one"])
    with pytest.raises(LoodInputError, match="influence.networks must be >= 1"):
        influence_settings(networks=0)


def test_influence_table_tracin_uses_the_per_epoch_checkpoints_and_lrs():
    X, y = _table_data()
    table = inf.influence_table(
        TrainingJob(X, y, ARCH, TRAINING, 2), [3], influence_settings(method="exact", damping=1.0), device="cpu"
    )
    res = train.train_models(
        X,
        y,
        ARCH,
        TRAINING,
        train.Models([inf.seeds.int_seed(2, "influence", 0)]),
        train.Outputs(checkpoints=True),
        device="cpu",
    )
    np.testing.assert_allclose(res.lrs, [0.1, 0.1, 0.05, 0.05])
    forward = partial(train.forward, arch=ARCH)
    x3 = torch.as_tensor(X[3:4], dtype=torch.float32)
    ref = 0.0
    for ck, lr in zip(res.checkpoints, res.lrs, strict=True):
        ps = [p[0].clone().requires_grad_(True) for p in ck]
        loss = torch.nn.functional.mse_loss(
            forward(ps, x3), torch.as_tensor(np.eye(3)[y[3:4]] - 1 / 3, dtype=torch.float32)
        )
        ref += lr * sum(float((g.double() ** 2).sum()) for g in torch.autograd.grad(loss, ps))
    assert ref > 0  # record 3 is not dead under this seed's ReLUs
    np.testing.assert_allclose(table["tracin_one"].iloc[0], ref, rtol=1e-5)


def test_influence_table_rejects_bad_input():
    X, y = _table_data()
    with pytest.raises(LoodInputError, match=r"record indices \[30\] out of range"):
        inf.influence_table(TrainingJob(X, y, ARCH, TRAINING, 0), [1, 30], influence_settings(), device="cpu")
    Xl, yl, params = _linear_problem()
    with pytest.raises(LoodInputError, match="influence.damping must be >= 0"):
        self_influence(_linear, params, Batch(Xl, yl), Batch(Xl, yl), damping=-1.0)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"lissa_scale": 0.0}, "lissa_scale must be a positive number or auto"),
        ({"lissa_depth": 0}, "LiSSA needs influence.lissa_depth >= 1"),
        ({"lissa_repeats": 0}, "LiSSA needs influence.lissa_depth >= 1 and lissa_repeats >= 1"),
    ],
)
def test_influence_settings_reject_lissa_values_out_of_range(bad, message):
    """The ranges live in InfluenceSettings (built for every use), not in the solvers."""
    with pytest.raises(LoodInputError, match=message):
        influence_settings(**bad)


# ----------------------------------------------------------------------------- the comparison table


def _tables():
    scores = pd.DataFrame({"record": [5, 2, 9], "tracin": [1.0, 2.0, 3.0], "influence": [0.1, 0.2, 0.3]})
    for k, e in enumerate(["influence_prediction", "tracin_one", "influence_one", "influence_prediction_one"]):
        scores[e] = [k + 0.5, k + 0.25, k + 0.125]
    scores["networks"] = 2
    lood = pd.DataFrame({"record": [9, 5, 2, 4], "kl": [7.0, 8.0, 9.0, 1.0], "mse": [0.9, 0.5, 0.2, 0.4]})
    mia = pd.DataFrame({"record": [2, 9, 5], "auc": [0.5, 0.6, 0.7], "diff": [0.02, 0.09, 0.05]})
    return scores, lood, mia


def test_comparison_table_puts_each_records_lood_and_diff_beside_its_scores():
    scores, lood, mia = _tables()
    table = comparison_table(scores, lood, mia)
    assert list(table.columns) == [*SCORE_COLUMNS, "lood_mse", "diff_nn"]
    expected = scores.assign(lood_mse=[0.5, 0.2, 0.9], diff_nn=[0.05, 0.02, 0.09])
    pd.testing.assert_frame_equal(table, expected)


def test_comparison_table_names_what_is_missing():
    scores, lood, mia = _tables()
    with pytest.raises(LoodInputError, match=r"MIA table lacks record\(s\) \[5\]"):
        comparison_table(scores, lood, mia[mia["record"] != 5])
    with pytest.raises(LoodInputError, match=r"NNGP LOOD table lacks column\(s\) \['mse'\]"):
        comparison_table(scores, lood.drop(columns="mse"), mia)
    with pytest.raises(LoodInputError, match=r"lists record\(s\) \[9\] more than once"):
        comparison_table(scores, pd.concat([lood, lood.iloc[:1]]), mia)
