"""Batched training against single-model runs and a plain torch.nn / torch.optim reference."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from lood import config, seeds, settings
from lood.empirical import data_order, train
from lood.empirical.training_job import TrainingJob
from lood.errors import LoodInputError


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and OpenMP stalls when other processes share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class ErfModule(torch.nn.Module):
    """torch.erf as a layer (torch.nn has none)."""

    def forward(self, x):
        return torch.erf(x)


def make_data(n: int = 40, d: int = 10, C: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform features and random labels."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, d)), rng.integers(0, C, n)


def arch_for(activation: str = "relu", bias: bool = True, depth: int = 2, width: int = 16) -> settings.Arch:
    """A small architecture."""
    return settings.Arch(depth=depth, width=width, activation=activation, bias=bias, w_std=1.3, b_std=0.2)


def make_training(**given) -> settings.Training:
    """A Training from the given keys and the schema's defaults for the rest."""
    props = config.schema()["properties"]["training"]["properties"]
    section = {k: v["default"] for k, v in props.items() if "default" in v}
    return settings.Training.from_config({"n_in": 4, "n_out": 4, **section, **given})


def training_for(loss: str = "mse", momentum: float = 0.9, epochs: int = 4) -> settings.Training:
    """A short training with a milestone, momentum and a partial last batch."""
    # 40 records, batch 16: two full batches and a partial one of 8 every epoch
    return make_training(
        epochs=epochs, batch_size=16, lr=0.05, lr_milestones=[2, 3], lr_gamma=0.5, momentum=momentum, loss=loss
    )


def reference_sgd(X, y, arch, training, seed, C, order_seed=None, perms=None):
    """The original algorithm for one model: nn.Sequential, optim.SGD, MultiStepLR, nn losses.

    The generator protocol is the documented one: init draws (W then b, layer by layer,
    W as (fan_in, fan_out)), then one randperm of the training set per epoch, from the
    model's generator or, given `order_seed`, from a generator of its own; or the given `perms`.
    """
    g = torch.Generator().manual_seed(seed)
    widths = [X.shape[1]] + [arch.width] * arch.depth + [C]
    act = {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "erf": None}[arch.activation]
    layers = []
    for i, (fi, fo) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        lin = torch.nn.Linear(fi, fo, bias=arch.bias)
        with torch.no_grad():
            lin.weight.copy_((torch.randn(fi, fo, generator=g) * (arch.w_std / math.sqrt(fi))).T)
            if arch.bias:
                lin.bias.copy_(torch.randn(fo, generator=g) * arch.b_std)
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(act() if act else ErfModule())
    net = torch.nn.Sequential(*layers)
    init = [
        t.detach().clone()
        for lin in net
        if isinstance(lin, torch.nn.Linear)
        for t in ([lin.weight.T] + ([lin.bias] if arch.bias else []))
    ]
    opt = torch.optim.SGD(net.parameters(), lr=training.lr, momentum=training.momentum)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, training.lr_milestones, training.lr_gamma)
    Xt, yt = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    if training.loss == "mse":
        target, lossf = torch.nn.functional.one_hot(yt, C).float() - 1.0 / C, torch.nn.MSELoss()
    else:
        target, lossf = yt, torch.nn.CrossEntropyLoss()
    lrs = []
    order_g = g if order_seed is None else torch.Generator().manual_seed(order_seed)
    for _ in range(training.epochs):
        lrs.append(opt.param_groups[0]["lr"])
        perm = torch.randperm(len(X), generator=order_g) if perms is None else perms[len(lrs) - 1]
        for s in range(0, len(X), training.batch_size):
            idx = perm[s : s + training.batch_size]
            opt.zero_grad()
            lossf(net(Xt[idx]), target[idx]).backward()
            opt.step()
        sched.step()
    return net, init, np.array(lrs)


CASES = [
    ("relu", True, "mse", 0.9, 2),
    ("relu", False, "mse", 0.0, 2),
    ("gelu", True, "cross_entropy", 0.9, 2),
    ("gelu", False, "mse", 0.0, 3),
    ("erf", True, "mse", 0.5, 1),
    ("relu", True, "cross_entropy", 0.0, 0),
]


def assert_model_matches_reference(batched, m: int, net, Q: np.ndarray, bias: bool, lrs) -> None:
    """Model m of a batched run has the reference net's logits on Q, its final parameters and its lr schedule."""
    with torch.no_grad():
        ref = net(torch.tensor(Q, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(batched.logits[m], ref, atol=1e-5, rtol=0)
    ref_final = [
        t.detach()
        for lin in net
        if isinstance(lin, torch.nn.Linear)
        for t in ([lin.weight.T] + ([lin.bias] if bias else []))
    ]
    for p, r in zip(batched.params, ref_final, strict=True):
        torch.testing.assert_close(p[m], r, atol=1e-5, rtol=0)
    np.testing.assert_allclose(batched.lrs, lrs)


@pytest.mark.parametrize("activation,bias,loss,momentum,depth", CASES)
def test_batched_equals_single_and_torch_reference(activation, bias, loss, momentum, depth):
    X, y = make_data()
    arch, training = arch_for(activation, bias, depth), training_for(loss, momentum)
    model_seeds = [11, 22, 33, 44, 55]
    Q = np.random.default_rng(9).uniform(0, 1, (7, X.shape[1]))
    batched = train.train_models(
        X,
        y,
        arch,
        training,
        train.Models(model_seeds),
        train.Outputs(eval_X=Q, params=True, checkpoints=True),
        device="cpu",
    )
    assert batched.logits.shape == (5, 7, 3)
    for m, s in enumerate(model_seeds):
        alone = train.train_models(X, y, arch, training, train.Models([s]), train.Outputs(eval_X=Q), device="cpu")
        np.testing.assert_allclose(batched.logits[m], alone.logits[0], atol=1e-5, rtol=0)

        net, init, lrs = reference_sgd(X, y, arch, training, s, 3)
        for a, b in zip(train.init_params(arch, X.shape[1], 3, s), init, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert_model_matches_reference(batched, m, net, Q, bias, lrs)
    assert len(batched.checkpoints) == training.epochs
    for p, c in zip(batched.params, batched.checkpoints[-1], strict=True):
        torch.testing.assert_close(p, c, rtol=0, atol=0)


@pytest.mark.parametrize("activation,bias,loss,momentum,depth", CASES)
def test_shared_order_batched_equals_one_by_one(activation, bias, loss, momentum, depth):
    """The shared-order path (one minibatch for the whole stack) against plain nn.Sequential runs of each seed."""
    X, y = make_data()
    arch, training = arch_for(activation, bias, depth), training_for(loss, momentum)
    model_seeds, order_seed = [11, 22, 33, 44, 55], 77
    Q = np.random.default_rng(9).uniform(0, 1, (7, X.shape[1]))
    batched = train.train_models(
        X,
        y,
        arch,
        training,
        train.Models(model_seeds, order_seed=order_seed),
        train.Outputs(eval_X=Q, params=True, checkpoints=True),
        device="cpu",
    )
    per_model = train.train_models(
        X, y, arch, training, train.Models(model_seeds), train.Outputs(eval_X=Q), device="cpu"
    ).logits
    for m, s in enumerate(model_seeds):
        net, _, lrs = reference_sgd(X, y, arch, training, s, 3, order_seed=order_seed)
        assert_model_matches_reference(batched, m, net, Q, bias, lrs)
        # the same seed with its own order is another model: the order is the only change
        assert np.abs(per_model[m] - batched.logits[m]).max() > 1e-4
    for p, c in zip(batched.params, batched.checkpoints[-1], strict=True):
        torch.testing.assert_close(p, c, rtol=0, atol=0)


def test_orders_per_model_differ_and_shared_do_not():
    arch, n, epochs, model_seeds = arch_for(), 30, 3, [1, 2, 3, 4]
    own_params, own = train.init_and_orders(arch, 5, 3, n, epochs, model_seeds, None)
    shared_params, shared = train.init_and_orders(arch, 5, 3, n, epochs, model_seeds, 99)
    assert own.shape == (4, epochs, n) and shared.shape == (epochs, n)
    for order in (*own.reshape(-1, n), *shared):  # every epoch is a permutation of the rows
        assert sorted(order.tolist()) == list(range(n))
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.equal(own[a], own[b])
    assert not torch.equal(shared[0], shared[1])  # epochs still reshuffle
    for p, q in zip(own_params, shared_params, strict=True):  # the order never touches the initialisation
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    again = train.init_and_orders(arch, 5, 3, n, epochs, [7], 99)[1]
    other = train.init_and_orders(arch, 5, 3, n, epochs, model_seeds, 98)[1]
    assert torch.equal(again, shared) and not torch.equal(other, shared)


def test_shared_order_without_a_record_is_the_same_sequence_less_that_record():
    n, epochs, r = 30, 4, 11
    full = data_order.shared_order(5, n, epochs)
    less = data_order.shared_order(5, n, epochs, exclude=r)
    rows_left = np.delete(np.arange(n), r)  # training-set row i is row rows_left[i] of X
    assert less.shape == (epochs, n - 1)
    for e in range(epochs):
        assert sorted(less[e].tolist()) == list(range(n - 1))
        assert rows_left[less[e].numpy()].tolist() == [i for i in full[e].tolist() if i != r]
    _, own = train.init_and_orders(arch_for(), 5, 3, n, epochs, [1, 2], None, exclude=r)
    assert own.shape == (2, epochs, n - 1)


def test_shared_order_entry_points_share_per_job_unit():
    """In-models share one order whatever the chunking; each record's out-models share an order seeded by the record."""
    X, y = make_data(n=24)
    arch = arch_for()
    shared = dataclasses.replace(training_for(epochs=2), data_order="shared", n_out=2)
    Q = X[:3]
    job = TrainingJob(X, y, arch, shared, 7)
    chunk = train.train_in_chunk(job, [0, 1, 2], Q)
    alone = train.train_in_chunk(job, [2], Q)
    np.testing.assert_allclose(chunk[2], alone[0], atol=1e-6, rtol=0)
    in_seeds = [seeds.int_seed(7, "train_in", 0, m) for m in range(3)]
    in_order = seeds.int_seed(7, "train_in_order", 0)
    ref = train.train_models(
        X, y, arch, shared, train.Models(in_seeds, order_seed=in_order), train.Outputs(eval_X=Q)
    ).logits
    np.testing.assert_array_equal(chunk, ref)
    per_model = train.train_in_chunk(
        dataclasses.replace(job, training=dataclasses.replace(shared, data_order="per_model")), [0, 1, 2], Q
    )
    assert np.all(np.abs(per_model - chunk).max(axis=(1, 2)) > 1e-4)

    probes = [X[[4, 5]], X[[9, 10]]]
    group = train.train_out_group(job, [4, 9], probes)
    aligned_job = dataclasses.replace(job, training=dataclasses.replace(shared, data_order="aligned"))
    aligned = train.train_out_group(aligned_job, [4, 9], probes)
    for g, r in enumerate((4, 9)):
        s = [seeds.int_seed(7, "train_out", r, m) for m in range(2)]
        for logits, o in ((group, seeds.int_seed(7, "train_out_order", r)), (aligned, in_order)):
            ref = train.train_models(
                X, y, arch, shared, train.Models(s, order_seed=o, exclude=r), train.Outputs(eval_X=probes[g])
            )
            np.testing.assert_array_equal(logits[g], ref.logits)
    assert np.abs(group - aligned).max() > 1e-4
    seed_of = {
        o: data_order.data_order_seed(dataclasses.replace(shared, data_order=o), 7, 4)
        for o in config.enum("data_order")
    }
    assert seed_of == {"per_model": None, "shared": seeds.int_seed(7, "train_out_order", 4), "aligned": in_order}
    assert data_order.data_order_seed(shared, 7, None) == in_order


def test_aligned_out_models_equal_one_by_one_on_the_in_sequence_less_the_record():
    """An aligned out-model is plain SGD on F without z over the in-models' sequence less z (batches after z shift)."""
    X, y = make_data()
    arch, training = arch_for("gelu", True, 2), training_for("mse", 0.9)
    r, order_seed, model_seeds = 17, 77, [11, 22]
    out = train.train_models(
        X, y, arch, training, train.Models(model_seeds, order_seed=order_seed, exclude=r), train.Outputs(eval_X=X[:5])
    )
    full = data_order.shared_order(order_seed, len(X), training.epochs)
    rows_left = np.delete(np.arange(len(X)), r)
    # the in-order's records, less z, as rows of D
    perms = [torch.as_tensor(np.searchsorted(rows_left, [i for i in e.tolist() if i != r])) for e in full]
    Xd, yd = np.delete(X, r, 0), np.delete(y, r)
    for m, s in enumerate(model_seeds):
        net, _, _ = reference_sgd(Xd, yd, arch, training, s, 3, perms=perms)
        with torch.no_grad():
            ref = net(torch.tensor(X[:5], dtype=torch.float32)).numpy()
        np.testing.assert_allclose(out.logits[m], ref, atol=1e-5, rtol=0)


def test_forward_single_matches_stack():
    arch = arch_for("gelu", True)
    X = torch.rand(6, 5)
    singles = [train.init_params(arch, 5, 4, s) for s in (1, 2, 3)]
    stack = [torch.stack(ps) for ps in zip(*singles, strict=True)]
    out = train.forward(stack, X, arch)
    assert out.shape == (3, 6, 4)
    for m, ps in enumerate(singles):
        torch.testing.assert_close(out[m], train.forward(ps, X, arch))


def test_training_set_removes_exactly_that_row():
    X, y = make_data(n=12)
    X[:, 0] = np.arange(12)  # row identity, to pair rows with labels afterwards
    Xs, ys = train.training_set(X, y, 5)
    assert Xs.shape == (11, X.shape[1]) and ys.shape == (11,)
    ids = Xs[:, 0].astype(int)
    assert ids.tolist() == [i for i in range(12) if i != 5]
    np.testing.assert_array_equal(ys, y[ids])  # every record keeps its own label
    np.testing.assert_array_equal(Xs, X[ids])
    Xa, ya = train.training_set(X, y, None)
    assert Xa is X and ya is y
    for bad in (-1, 12):
        with pytest.raises(LoodInputError, match="out of range"):
            train.training_set(X, y, bad)


def test_exclude_trains_on_the_deleted_set_and_differs_from_full():
    X, y = make_data()
    arch, training = arch_for(), training_for()
    r = 17
    out = train.train_models(
        X, y, arch, training, train.Models([5, 6], exclude=r), train.Outputs(eval_X=X[:4]), device="cpu"
    ).logits

    def on_labels(labels):  # models 5 and 6 trained on X without row r, with these labels
        return train.train_models(
            np.delete(X, r, 0), labels, arch, training, train.Models([5, 6]), train.Outputs(eval_X=X[:4]), "cpu", 3
        ).logits

    np.testing.assert_array_equal(out, on_labels(np.delete(y, r)))
    shifted = on_labels(np.delete(np.roll(y, -1), r))  # a label-shifting removal must not agree
    assert np.abs(out - shifted).max() > 1e-3
    full = train.train_models(
        X, y, arch, training, train.Models([5, 6]), train.Outputs(eval_X=X[:4]), device="cpu"
    ).logits
    assert np.abs(out - full).max() > 1e-4


def test_reproducible_and_seed_dependent():
    X, y = make_data()
    arch, training = arch_for(), training_for()
    a = train.train_models(X, y, arch, training, train.Models([1, 2, 3]), train.Outputs(eval_X=X), device="cpu").logits
    b = train.train_models(X, y, arch, training, train.Models([1, 2, 3]), train.Outputs(eval_X=X), device="cpu").logits
    c = train.train_models(X, y, arch, training, train.Models([4, 5, 6]), train.Outputs(eval_X=X), device="cpu").logits
    np.testing.assert_array_equal(a, b)
    assert np.all(np.abs(a - c).max(axis=(1, 2)) > 1e-3)
    assert np.abs(a[0] - a[1]).max() > 1e-3


def test_init_variance_matches_w_std():
    arch = settings.Arch(depth=2, width=512, activation="relu", bias=True, w_std=1.7, b_std=0.3)
    d, C = 256, 10
    W1, b1, W2, b2, W3, b3 = train.init_params(arch, d, C, seed=3, dtype=torch.float64)
    assert [tuple(p.shape) for p in (W1, b1, W2, b2, W3, b3)] == [
        (256, 512),
        (512,),
        (512, 512),
        (512,),
        (512, 10),
        (10,),
    ]
    for W, fan_in in ((W1, d), (W2, 512), (W3, 512)):
        n, var = W.numel(), 1.7**2 / fan_in
        # sample variance of n Gaussians: relative s.e. sqrt(2/n); allow 5 s.e.
        assert abs(W.var().item() / var - 1) < 5 * math.sqrt(2 / n)
        assert abs(W.mean().item()) < 5 * math.sqrt(var / n)
    b = torch.cat([b1, b2, b3])
    assert abs(b.var().item() / 0.3**2 - 1) < 5 * math.sqrt(2 / b.numel())
    assert train.init_params(dataclasses.replace(arch, bias=False), d, C, seed=3)[1].shape == (512, 512)


def test_unknown_activation_and_loss_are_input_errors():
    with pytest.raises(LoodInputError, match=", ".join(config.enum("activation"))):
        arch_for("tanh")
    with pytest.raises(LoodInputError, match=", ".join(config.enum("loss"))):
        training_for(loss="hinge")


def test_epoch_lrs_match_multisteplr():
    training = make_training(epochs=7, batch_size=8, lr=0.3, lr_milestones=[2, 5, 5], lr_gamma=0.1)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [2, 5, 5], 0.1)
    expected = []
    for _ in range(7):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(train.epoch_lrs(training), expected, rtol=1e-12)


def test_workflow_entry_points_use_their_seeds():
    X, y = make_data(n=24)
    arch, training = arch_for(), training_for(epochs=2)
    Q = X[:3]
    job = TrainingJob(X, y, arch, training, 7)
    chunk = train.train_in_chunk(job, [0, 1, 2], Q)
    alone = train.train_in_chunk(job, [1], Q)
    assert chunk.shape == (3, 3, 3)
    np.testing.assert_allclose(chunk[1], alone[0], atol=1e-6, rtol=0)

    chunk_again, params = train.train_in_chunk(job, [0, 1, 2], Q, return_params=True)
    np.testing.assert_array_equal(chunk_again, chunk)
    torch.testing.assert_close(train.forward(params, torch.tensor(Q, dtype=torch.float32), arch).numpy(), chunk)

    probes = [X[[4, 5]], X[[9, 10]]]
    training = dataclasses.replace(training, n_out=2)
    job = dataclasses.replace(job, training=training)
    group = train.train_out_group(job, [4, 9], probes)
    assert group.shape == (2, 2, 2, 3)
    for g, r in enumerate((4, 9)):
        s = [seeds.int_seed(7, "train_out", r, m) for m in range(2)]
        ref = train.train_models(
            np.delete(X, r, 0),
            np.delete(y, r),
            arch,
            training,
            train.Models(s),
            train.Outputs(eval_X=probes[g]),
            n_classes=3,
        ).logits
        np.testing.assert_array_equal(group[g], ref)
    group_again, group_params = train.train_out_group(job, [4, 9], probes, return_params=True)
    np.testing.assert_array_equal(group_again, group)
    assert len(group_params) == 2 and group_params[1][0].shape == (2, X.shape[1], 16)


def test_divergence_is_reported_not_silently_kept():
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 6)), np.arange(40) % 2
    # A linear model (depth 0) with lr far above 2 / curvature overflows; ReLU nets would just die.
    arch = settings.Arch(depth=0, width=8, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)
    training = make_training(
        epochs=20, batch_size=8, lr=100.0, lr_milestones=[], lr_gamma=0.1, momentum=0.0, loss="mse"
    )
    with pytest.raises(LoodInputError, match="diverged.*lower training.lr"):
        train.train_models(X, y, arch, training, train.Models([1, 2]), train.Outputs(eval_X=X))
