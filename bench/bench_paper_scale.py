"""Paper-scale cost: measure short runs at CIFAR-10 shape and extrapolate the full experiment.

    .venv/bin/python bench/bench_paper_scale.py [--models 2] [--steps 4] [--nngp-n 2500]

Paper scale (config/cifar10.yaml): n = 10,000 records of d = 3,072, 9 hidden layers x 1024,
bias-free, batch 64, 50 epochs, 100 in-models and 100 out-models for each of R = 50 records.
Training: `--models` models trained together by lood.train for `--steps` minibatch steps
(after one warm-up step), extrapolated linearly to models x steps (the step is compute-bound
at this width, so cost is linear in both). NNGP: kernel and factorisation timed at
`--nngp-n` records and extrapolated as n^2 (kernel) and n^3 (factorisation); bench_lood.py (b)
measures n = 10,000 directly. Runs on a GPU when torch / JAX see one, else on the CPU.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from lood import nngp, train

N, D, C, R = 10_000, 3_072, 2, 50
ARCH = {"depth": 9, "width": 1024, "activation": "relu", "bias": False, "w_std": math.sqrt(2.0), "b_std": 0.0}
EPOCHS, BATCH, N_IN, N_OUT = 50, 64, 100, 100


def n_params() -> int:
    """Parameters of the paper's network."""
    return sum(a * b for a, b in train.layer_sizes(ARCH, D, C))


def time_training(models: int, steps: int) -> float:
    """Seconds per model per minibatch step, measured on `models` models for `steps` steps."""
    rng = np.random.default_rng(0)
    n = BATCH * (steps + 1)  # one epoch = steps + 1 minibatches (the first is warm-up)
    X, y = rng.random((n, D)), rng.integers(0, C, n)
    cfg = {
        "epochs": 1,
        "batch_size": BATCH,
        "lr": 1e-3,
        "lr_milestones": [],
        "lr_gamma": 0.1,
        "momentum": 0.0,
        "loss": "mse",
    }
    warm = {**cfg}
    train.train_models(X[:BATCH], y[:BATCH], ARCH, warm, train.Models(list(range(models))))
    t0 = time.perf_counter()
    train.train_models(X, y, ARCH, cfg, train.Models(list(range(models))))
    elapsed = time.perf_counter() - t0
    return elapsed / (models * (steps + 1))


def time_nngp(n: int) -> tuple[float, float]:
    """Seconds for the NNGP kernel and for the factorisation plus every record's LOOD, at n records."""
    rng = np.random.default_rng(1)
    X, y = rng.random((n, D)), rng.integers(0, C, n)
    nngp.nngp_kernel(X[:64], None, ARCH)  # compile outside the timing
    t0 = time.perf_counter()
    K = nngp.nngp_kernel(X, None, ARCH, block_size=1024)
    t1 = time.perf_counter()
    fit = nngp.fit_gp(K, nngp.targets(y, C), 0.2)
    nngp.lood_at_records(fit, np.diag(K).copy(), np.arange(n))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--nngp-n", type=int, default=2500)
    args = ap.parse_args()
    device = train.default_device()
    print(f"device: {device} (torch {torch.__version__}, {torch.get_num_threads()} threads)")
    P = n_params()
    print(f"network: 9 x 1024 bias-free ReLU on d={D}: {P:,} parameters, {4 * P / 2**20:.1f} MiB per model (float32)")

    per_model_step = time_training(args.models, args.steps)
    steps_per_epoch = math.ceil(N / BATCH)
    per_model = per_model_step * steps_per_epoch * EPOCHS
    models_total = N_IN + R * N_OUT
    print(
        f"training: {per_model_step * 1e3:.1f} ms per model per minibatch step "
        f"(measured: {args.models} models x {args.steps + 1} steps)"
    )
    print(f"  one model, {EPOCHS} epochs x {steps_per_epoch} steps: {per_model / 3600:.2f} h")
    print(
        f"  one record's 100 out-models: {100 * per_model / 3600:.1f} h; "
        f"all {models_total:,} models (100 in + {R} x 100 out): "
        f"{models_total * per_model / 3600:,.0f} h on this device, per experiment"
    )

    k_small, f_small = time_nngp(args.nngp_n)
    scale = N / args.nngp_n
    k_full, f_full = k_small * scale**2, f_small * scale**3
    print(f"NNGP at n={args.nngp_n:,}: kernel {k_small:.1f} s, factorisation + all-record LOOD {f_small:.1f} s")
    print(
        f"  extrapolated to n={N:,}: kernel {k_full:.0f} s (x n^2), factorisation + LOOD {f_full:.0f} s (x n^3), "
        f"total {(k_full + f_full) / 60:.1f} min"
    )
    per_record_nn = (N_OUT + N_IN) * per_model  # what one record's 100 + 100 retrainings cost alone
    print(
        f"one record: retraining 100 in + 100 out models {per_record_nn / 3600:.1f} h "
        f"vs NNGP LOOD {(k_full + f_full) / 60:.1f} min "
        f"(which also gives every other record): ratio {per_record_nn / (k_full + f_full):,.0f}x"
    )
    print("paper (Ye et al. 2024): 3.5 GPU-hours vs 2 GPU-minutes per record, ratio ~105x")
    gb = models_total * 4 * P / 1e9
    print(
        f"disk: weights of all {models_total:,} models would take {gb:,.0f} GB per experiment (not kept by default: "
        f"training.save_weights false); logits on the probe set take < 100 MB"
    )
    print(
        f"memory: kernel {8 * N * N / 1e9:.1f} GB float64 "
        "(+ its Cholesky factor and blocks: ~2.5 GB peak, bench_lood.py b)"
    )


if __name__ == "__main__":
    main()
