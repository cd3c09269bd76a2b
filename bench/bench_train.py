"""Batched training of M models, per-model and shared data order, vs a loop of single models, in one run.

    .venv/bin/python bench/bench_train.py [--quick] [--threads N [N ...]] [--only digits|image]

Two networks, 100 models each, batch 64, MSE, plain SGD (lr 0.05 unless said):
- digits: the default experiment's data (classes 3 and 5, 150 records, 64 features), 2 hidden
  layers x 128, 60 epochs (10 with --quick);
- image: the Fashion-MNIST study's shape, 800 records of 784 features (uniform [0, 1] values: the
  speed does not depend on them), 4 hidden layers x 256, 10 epochs (3 with --quick), lr 0.005.
Each is trained by lood.empirical.train with per-model data orders and with one shared order (one gathered
minibatch for the whole stack; lood/empirical/sgd.py), and by the original algorithm: per
model a torch.nn.Sequential trained by torch.optim.SGD, from the same initial weights and data
orders (the image network's loop trains 20 of the 100 models and is scaled by 5). The logits of
each batched run are compared with the loop's.

Every timing is printed with the GFLOP/s it reached beside the rate of one large float32 matmul
measured right after it (its ceiling on this CPU at that moment), both per wall second and per
CPU second of this process: on a shared machine the CPU figures are the steadier ones.
With --alternatives it also times two other ways to batch (autograd, torch.func.vmap).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from lood import settings
from lood.data import prepare, sources
from lood.empirical import train

BASE_SEED = 2024
ORDER_SEED = 7


@dataclass(frozen=True)
class Case:
    """One benchmark network and its data."""

    name: str
    X: np.ndarray
    y: np.ndarray
    arch: settings.Arch
    epochs: int
    lr: float
    loop_models: int  # how many of the 100 models the loop of singles trains (scaled to 100)


def training(case: Case, epochs: int | None = None) -> settings.Training:
    """The default experiment's training (batch 64) with the case's lr and epochs."""
    return settings.Training.from_schema(
        n_in=100,
        n_out=100,
        epochs=case.epochs if epochs is None else epochs,
        batch_size=64,
        lr=case.lr,
        lr_milestones=[],
        momentum=0.0,
        loss="mse",
    )


def arch(depth: int, width: int) -> settings.Arch:
    """A bias-free He-initialised ReLU network."""
    return settings.Arch(depth=depth, width=width, activation="relu", bias=False, w_std=math.sqrt(2.0), b_std=0.0)


def cases(quick: bool) -> dict[str, Case]:
    """The digits default and the image-shaped network."""
    X, y, _ = sources.load_digits_source()
    X, y = prepare.select_classes(X, y, [3, 5], 150, BASE_SEED)
    rng = np.random.default_rng(0)
    Xi, yi = rng.random((800, 784)).astype(np.float32), rng.integers(0, 2, 800)
    return {
        "digits": Case("digits", X, y, arch(2, 128), 10 if quick else 60, 0.05, 100),
        "image": Case("image", Xi, yi, arch(4, 256), 3 if quick else 10, 0.005, 20),
    }


def loop_of_singles(case: Case, tr: settings.Training, model_seeds: list[int], order_seed: int | None) -> np.ndarray:
    """The original algorithm: one nn.Module + optim.SGD per model, trained one after the other; logits on X."""
    Xt, yt = torch.tensor(case.X, dtype=torch.float32), torch.tensor(case.y)
    C = int(case.y.max()) + 1
    T = torch.nn.functional.one_hot(yt, C).float() - 1.0 / C
    out = []
    for s in model_seeds:
        g = torch.Generator().manual_seed(s)
        layers: list[torch.nn.Module] = []
        for fan_in, fan_out in train.layer_sizes(case.arch, Xt.shape[1], C):
            lin = torch.nn.Linear(fan_in, fan_out, bias=False)
            with torch.no_grad():  # the documented init draws: W as (fan_in, fan_out), layer by layer
                lin.weight.copy_((torch.randn(fan_in, fan_out, generator=g) * (case.arch.w_std / math.sqrt(fan_in))).T)
            layers += [lin, torch.nn.ReLU()]
        net = torch.nn.Sequential(*layers[:-1])
        opt = torch.optim.SGD(net.parameters(), lr=tr.lr)
        lossf = torch.nn.MSELoss()
        order_g = g if order_seed is None else torch.Generator().manual_seed(order_seed)
        for _ in range(tr.epochs):
            perm = torch.randperm(len(Xt), generator=order_g)
            for start in range(0, len(Xt), tr.batch_size):
                idx = perm[start : start + tr.batch_size]
                opt.zero_grad()
                lossf(net(Xt[idx]), T[idx]).backward()
                opt.step()
        with torch.no_grad():
            out.append(net(Xt).numpy())
    return np.stack(out)


def batched(case: Case, tr: settings.Training, model_seeds: list[int], order_seed: int | None) -> np.ndarray:
    """lood.empirical.train's batched trainer; logits on X."""
    return train.train_models(
        case.X, case.y, case.arch, tr, train.Models(model_seeds, order_seed=order_seed), train.Outputs(eval_X=case.X)
    ).logits


def sgd_flops(case: Case, epochs: int, n_models: int) -> float:
    """FLOPs of SGD on the case: per row, forward and weight gradient of every layer, input gradient above the first."""
    n, d = case.X.shape
    sizes = train.layer_sizes(case.arch, d, int(case.y.max()) + 1)
    per_row = 2 * sum(a * b for a, b in sizes) * 2 + 2 * sum(a * b for a, b in sizes[1:])
    return float(per_row) * n * epochs * n_models


def sgemm_rate(size: int = 1024, repeats: int = 10) -> tuple[float, float]:
    """GFLOP/s of one large float32 matmul at the current thread count, per wall second and per CPU second."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        a @ b
    flops = 2 * size**3 * repeats
    return flops / (time.perf_counter() - w0) / 1e9, flops / (time.process_time() - c0) / 1e9


@dataclass
class Timing:
    """One run: its result, wall and CPU seconds, and the matmul rates (wall, CPU) measured right after it."""

    result: np.ndarray
    wall: float
    cpu: float
    peak_wall: float
    peak_cpu: float


def timed(fn: Callable[[], np.ndarray]) -> Timing:
    """fn's result and times, and the matmul rate of the same moment."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    return Timing(out, wall, cpu, *sgemm_rate())


def best_of(repeats: int, fns: dict[str, Callable[[], np.ndarray]]) -> dict[str, Timing]:
    """Each function's fastest of `repeats` runs, interleaved (a shared machine's speed drifts)."""
    best: dict[str, Timing] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = timed(fn)
            if name not in best or t.wall < best[name].wall:
                best[name] = t
    return best


def rate_line(label: str, t: Timing, flops: float) -> str:
    """GFLOP/s of a timing beside the matmul rate of its moment, per wall and per CPU second."""
    rw, rc = flops / t.wall / 1e9, flops / t.cpu / 1e9
    return (
        f"    {label}: {t.wall:.2f} s (CPU {t.cpu:.2f} s): {rw:.1f} GFLOP/s = "
        f"{100 * rw / t.peak_wall:.0f}% of the matmul's "
        f"{t.peak_wall:.1f}; per CPU second {rc:.1f} = {100 * rc / t.peak_cpu:.0f}% of {t.peak_cpu:.1f}"
    )


def bench_case(case: Case, threads: int) -> None:
    """Both orders batched and the loop of singles for both orders, at `threads` torch threads."""
    torch.set_num_threads(threads)
    model_seeds = list(range(100))
    tr = training(case)
    # warm both paths up (library and thread-pool start-up) before timing them
    warm = training(case, 1)
    for order_seed in (None, ORDER_SEED):
        batched(case, warm, model_seeds[:4], order_seed)
        loop_of_singles(case, warm, model_seeds[:2], order_seed)
    k = case.loop_models
    scale = len(model_seeds) / k
    runs = best_of(
        2,
        {
            "per_model": lambda: batched(case, tr, model_seeds, None),
            "shared": lambda: batched(case, tr, model_seeds, ORDER_SEED),
            "loop per_model": lambda: loop_of_singles(case, tr, model_seeds[:k], None),
            "loop shared": lambda: loop_of_singles(case, tr, model_seeds[:k], ORDER_SEED),
        },
    )
    flops = sgd_flops(case, case.epochs, len(model_seeds))
    n, d = case.X.shape
    print(
        f"{case.name}: 100 models, {n} x {d}, {case.arch.depth} x {case.arch.width} ReLU, {case.epochs} epochs, "
        f"batch 64, "
        f"{threads} torch thread(s), {flops / 1e9:.0f} GFLOP per batched run; load average {os.getloadavg()[0]:.1f}"
    )
    for order in ("per_model", "shared"):
        b, loop = runs[order], runs[f"loop {order}"]
        gap = np.abs(b.result[:k] - loop.result).max(axis=(1, 2))
        loop_wall, loop_cpu = loop.wall * scale, loop.cpu * scale
        print(rate_line(f"{order:9s} batched", b, flops))
        print(
            f"        loop of single models{' (' + str(k) + ' trained, x' + f'{scale:g})' if scale != 1 else ''}: "
            f"{loop_wall:.2f} s (CPU {loop_cpu:.2f} s), ratio {loop_wall / b.wall:.1f}x (CPU {loop_cpu / b.cpu:.1f}x); "
            f"|logit difference| to the batched run per model: median {np.median(gap):.1e}, max {gap.max():.1e}"
        )
    s, p = runs["shared"], runs["per_model"]
    print(f"    shared vs per_model batched: {p.wall / s.wall:.2f}x wall, {p.cpu / s.cpu:.2f}x CPU")


def batched_autograd(case: Case, tr: settings.Training, model_seeds: list[int]) -> np.ndarray:
    """Alternative: the batched forward (bmm over stacked weights) with autograd for the gradients."""
    Xt = torch.tensor(case.X, dtype=torch.float32)
    T = torch.nn.functional.one_hot(torch.tensor(case.y), 2).float() - 0.5
    params, order = train.init_and_orders(case.arch, Xt.shape[1], 2, len(Xt), tr.epochs, model_seeds, None)
    params = [p.requires_grad_() for p in params]
    for epoch in range(tr.epochs):
        Xe, Te = Xt[order[:, epoch]], T[order[:, epoch]]
        for start in range(0, len(Xt), tr.batch_size):
            f = train.forward(params, Xe[:, start : start + tr.batch_size], case.arch)
            # sum over models of each model's mean loss: model m's gradient is its own
            loss = ((f - Te[:, start : start + tr.batch_size]) ** 2).mean(dim=(1, 2)).sum()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, gr in zip(params, grads, strict=True):
                    p.sub_(gr, alpha=tr.lr)
    with torch.no_grad():
        return train.forward(params, Xt, case.arch).numpy()


def batched_vmap(case: Case, tr: settings.Training, model_seeds: list[int]) -> np.ndarray:
    """Alternative: torch.func.vmap of torch.func.grad of one model's loss over the stacked weights."""
    Xt = torch.tensor(case.X, dtype=torch.float32)
    T = torch.nn.functional.one_hot(torch.tensor(case.y), 2).float() - 0.5
    params, order = train.init_and_orders(case.arch, Xt.shape[1], 2, len(Xt), tr.epochs, model_seeds, None)

    def loss(p, xb, tb):
        return ((train.forward(p, xb, case.arch) - tb) ** 2).mean()

    grad_all = torch.func.vmap(torch.func.grad(loss))
    for epoch in range(tr.epochs):
        Xe, Te = Xt[order[:, epoch]], T[order[:, epoch]]
        for start in range(0, len(Xt), tr.batch_size):
            batch = (Xe[:, start : start + tr.batch_size], Te[:, start : start + tr.batch_size])
            for p, gr in zip(params, grad_all(params, *batch), strict=True):
                p.sub_(gr, alpha=tr.lr)
    return train.forward(params, Xt, case.arch).numpy()


def bench_alternatives(case: Case) -> None:
    """The hand-written backward against autograd and vmap (1 thread, 10 epochs, best of 3 CPU seconds)."""
    torch.set_num_threads(1)
    tr, model_seeds = training(case, 10), list(range(100))
    variants = {
        "hand-written backward": lambda: batched(case, tr, model_seeds, None),
        "autograd": lambda: batched_autograd(case, tr, model_seeds),
        "torch.func.vmap": lambda: batched_vmap(case, tr, model_seeds),
    }
    best = dict.fromkeys(variants, math.inf)
    for _ in range(3):
        for name, fn in variants.items():
            c0 = time.process_time()
            fn()
            best[name] = min(best[name], time.process_time() - c0)
    ref = best["hand-written backward"]
    print(
        f"{case.name}, 1 thread, batch 64, 10 epochs, best-of-3 CPU s: "
        + ", ".join(f"{k} {v:.2f} s ({v / ref:.2f}x)" for k, v in best.items())
    )


def main() -> None:
    """Print the timings."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs (digits 10, image 3)")
    ap.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, os.cpu_count() or 1],
        help="torch intra-op thread counts to compare at (default: 1, i.e. per core, and every core)",
    )
    ap.add_argument("--only", choices=["digits", "image"], help="one network only")
    ap.add_argument(
        "--alternatives", action="store_true", help="also time autograd and torch.func.vmap batching (digits)"
    )
    args = ap.parse_args()
    print(f"torch {torch.__version__} on {train.default_device()}, {os.cpu_count()} CPUs")
    all_cases = cases(args.quick)
    for name, case in all_cases.items():
        if args.only in (None, name):
            for threads in dict.fromkeys(args.threads):
                bench_case(case, threads)
    if args.alternatives:
        bench_alternatives(all_cases["digits"])


if __name__ == "__main__":
    main()
