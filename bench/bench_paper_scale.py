"""Paper-scale cost: measure short runs at CIFAR-10 shape and extrapolate the full experiment.

    .venv/bin/python bench/bench_paper_scale.py [--models 2] [--steps 4] [--nngp-n 2500] [--audit-n 0]

Paper scale (config/cifar10.yaml): n = 10,000 records of d = 3,072, 9 hidden layers x 1024,
bias-free, batch 64, 50 epochs, 100 in-models and 100 out-models for each of R = 50 records.
Training: `--models` models trained together by lood.empirical.sgd for `--steps` minibatch steps
(after a warm-up), timed apart from the set-up (weights initialised on the CPU from each
model's seed and copied to the device), extrapolated linearly to models x steps (the step is
compute-bound at this width, so cost is linear in both). Beside it, the floor: 6 x parameters x batch flops
per model-step at the matmul rate measured in the same run.
NNGP: kernel, factorisation and every record's LOOD at `--nngp-n` records, extrapolated as n^2
(kernel) and n^3 (factorisation) to n = 10,000 when smaller. Path "tiles" (the CPU default): the
workflow's own, lood.analytic.kernel's tiles and lood.analytic.gp's algebra; path "torch" (the GPU default): the
whole kernel by lood.analytic.kernel_relu.relu_nngp and torch's algebra, in float64 on the device (the
workflow's stax kernels need JAX 0.5 through neural-tangents 0.6.5, which has no CUDA 13 build).
`--audit-n N` also times the training-free audit's algebra at N records of d = 784, C = 10 (the
Fashion-MNIST audit's shape, config/fashion_audit.yaml) on the same path.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from lood.analytic.divergence import lood_at_records
from lood.analytic.gp_inplace import InplaceFit
from lood.empirical import train
from lood.empirical.sgd import sgd_run
from lood.runtime.progress import matmul_rate, synchronize
from lood.settings import Arch, Training

N, D, C, R = 10_000, 3_072, 2, 50
ARCH = Arch(depth=9, width=1024, activation="relu", bias=False, w_std=math.sqrt(2.0), b_std=0.0)
EPOCHS, BATCH, N_IN, N_OUT = 50, 64, 100, 100
BLOCK = 8192  # rows of the GPU kernel per block (its temporaries: a few 8,192 x n float64 arrays)
SIGMA2 = 0.05  # any value in the calibrated range: the cost does not depend on it


def n_params() -> int:
    """Parameters of the paper's network."""
    return sum(a * b for a, b in train.layer_sizes(ARCH, D, C))


def training_settings() -> Training:
    """One epoch of config/cifar10.yaml's training (cross-entropy, batch 64, no momentum)."""
    return Training.from_schema(
        n_in=N_IN, n_out=N_OUT, epochs=1, batch_size=BATCH, lr=1e-3, lr_milestones=[], loss="cross_entropy"
    )


def time_training(models: int, steps: int, device: torch.device, shared: bool) -> tuple[float, float]:
    """(seconds per model per minibatch step, seconds of set-up per model) on `models` models.

    The set-up (initialising the weights on the CPU from each model's seed, copying them to the
    device) and the SGD steps (lood.empirical.sgd.sgd_run, what train_models runs) are timed apart, after
    a warm-up. shared: one data order for all models (training.data_order shared/aligned), else one each.
    """
    rng = np.random.default_rng(0)
    n = BATCH * steps  # one epoch = `steps` minibatches
    X, y = rng.random((n, D)), rng.integers(0, C, n)
    training = training_settings()
    Xt = torch.as_tensor(X, dtype=torch.float32, device=device)
    T = torch.nn.functional.one_hot(torch.as_tensor(y, device=device), C).to(torch.float32)  # cross-entropy's
    lrs = train.epoch_lrs(training)

    def run(n_rows: int) -> tuple[float, float]:
        synchronize(device)
        t0 = time.perf_counter()
        seeds = list(range(models))
        params, order = train.init_and_orders(ARCH, D, C, n_rows, 1, seeds, 0 if shared else None)
        params, order = [p.to(device) for p in params], order.to(device)
        synchronize(device)
        t1 = time.perf_counter()
        with torch.no_grad():
            sgd_run(params, Xt[:n_rows], T[:n_rows], order, ARCH, training, lrs, None)
        synchronize(device)
        return t1 - t0, time.perf_counter() - t1

    run(BATCH)  # warm-up
    setup, loop = run(n)
    return loop / (models * steps), setup / models


def _algebra_torch(K: torch.Tensor, Y: np.ndarray, device: torch.device) -> tuple[InplaceFit, dict[str, float]]:
    """Cholesky of K + σ²I in place, α, diag P from L⁻¹'s column norms: torch float64 on the device."""
    t0 = time.perf_counter()
    K.diagonal().add_(SIGMA2)
    L, info = torch.linalg.cholesky_ex(K, out=(K, torch.empty((), dtype=torch.int32, device=device)))
    synchronize(device)
    if int(info):
        raise RuntimeError(f"Cholesky failed (info {int(info)})")
    t1 = time.perf_counter()
    Yt = torch.as_tensor(Y, device=device)
    alpha = torch.cholesky_solve(Yt, L)
    W = torch.linalg.solve_triangular(L, torch.eye(len(L), dtype=L.dtype, device=device), upper=False)
    p_diag = (W * W).sum(0)
    synchronize(device)
    t2 = time.perf_counter()
    seconds = {"cholesky": t1 - t0, "inverse": t2 - t1}
    fit = InplaceFit(Y=Y, alpha=alpha.cpu().numpy(), p_diag=p_diag.cpu().numpy(), sigma2=SIGMA2, jitter=0.0, seconds={})
    return fit, seconds


def time_nngp(n: int, d: int, n_classes: int, arch: Arch, device: torch.device, path: str) -> dict[str, float]:
    """Seconds of kernel, factorisation (with α and diag P) and every record's LOOD at n records.

    path "torch": lood.analytic.kernel_relu.relu_nngp and torch's algebra on `device`;
    "tiles": lood.analytic.kernel and lood.analytic.gp.
    """
    rng = np.random.default_rng(1)
    X, y = rng.random((n, d)), rng.integers(0, n_classes, n)
    Y = np.eye(n_classes)[y] - 1.0 / n_classes
    if path == "torch":
        from lood.analytic.kernel_relu import relu_nngp

        Xt = torch.as_tensor(X, device=device)
        relu_nngp(Xt[:64], None, arch, BLOCK)  # warm-up
        synchronize(device)
        t0 = time.perf_counter()
        K = relu_nngp(Xt, None, arch, BLOCK)
        synchronize(device)
        seconds = {"kernel": time.perf_counter() - t0}
        K_diag = K.diagonal().cpu().numpy()
        fit, algebra = _algebra_torch(K, Y, device)
        del K
        if device.type == "cuda":
            torch.cuda.empty_cache()
    else:
        from lood.analytic.gp import fit_gp
        from lood.analytic.kernel import nngp_kernel

        nngp_kernel(X[:64], None, arch, 1024)  # compile outside the timing
        t0 = time.perf_counter()
        K = nngp_kernel(X, None, arch, 1024)
        seconds = {"kernel": time.perf_counter() - t0}
        K_diag = np.diag(K).copy()
        t1 = time.perf_counter()
        fit = fit_gp(K, Y, SIGMA2)
        t2 = time.perf_counter()
        fit.p_diag  # noqa: B018 (computes and caches diag P)
        algebra = {"cholesky": t2 - t1, "inverse": time.perf_counter() - t2}
    seconds.update(algebra)
    t3 = time.perf_counter()
    res = lood_at_records(fit, K_diag, np.arange(n))
    seconds["lood"] = time.perf_counter() - t3
    if not np.all(np.isfinite(res["kl"])):
        raise RuntimeError("non-finite LOOD")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--nngp-n", type=int, default=2500)
    ap.add_argument("--audit-n", type=int, default=0, help="also time the audit's algebra at this n (d 784, C 10)")
    ap.add_argument("--tf32", action="store_true", help="let float32 matmuls use TF32 tensor cores (GPU)")
    ap.add_argument("--nngp-path", choices=["auto", "torch", "tiles"], default="auto", help="auto: torch on a GPU")
    args = ap.parse_args()
    device = train.default_device()
    torch.backends.cuda.matmul.allow_tf32 = args.tf32  # the workflow keeps torch's default: full float32
    path = args.nngp_path if args.nngp_path != "auto" else ("torch" if device.type == "cuda" else "tiles")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"device: {device} ({name}; torch {torch.__version__}; TF32 matmuls {'on' if args.tf32 else 'off'})")
    P = n_params()
    print(f"network: 9 x 1024 bias-free ReLU on d={D}: {P:,} parameters, {4 * P / 2**20:.1f} MiB per model (float32)")
    rate32 = matmul_rate(4096 if device.type == "cuda" else 2048, torch.float32, device)
    rate64 = matmul_rate(4096 if device.type == "cuda" else 2048, torch.float64, device)
    print(f"matmul rate on this device now: float32 {rate32:,.0f} GFLOP/s, float64 {rate64:,.0f} GFLOP/s")

    floor = 6 * P * BATCH / (rate32 * 1e9)
    steps_per_epoch = math.ceil(N / BATCH)
    models_total = N_IN + R * N_OUT
    for shared in (False, True):
        per_model_step, setup = time_training(args.models, args.steps, device, shared)
        per_model = per_model_step * steps_per_epoch * EPOCHS + setup
        print(
            f"training ({'one shared data order' if shared else 'a data order per model'}): "
            f"{per_model_step * 1e3:.2f} ms per model per minibatch step (measured: {args.models} models x "
            f"{args.steps} steps), set-up {setup:.2f} s per model; floor 6 x params x batch at "
            f"the float32 matmul rate {floor * 1e3:.2f} ms ({floor / per_model_step:.0%} of it reached)"
        )
        print(f"  one model, {EPOCHS} epochs x {steps_per_epoch} steps: {per_model:,.1f} s")
        print(
            f"  one record's 100 out-models: {100 * per_model / 3600:.3f} h; "
            f"all {models_total:,} models (100 in + {R} x 100 out): "
            f"{models_total * per_model / 3600:,.1f} device-hours per experiment"
        )

    s = time_nngp(args.nngp_n, D, C, ARCH, device, path)
    scale = N / args.nngp_n
    k_full, f_full = s["kernel"] * scale**2, (s["cholesky"] + s["inverse"]) * scale**3 + s["lood"] * scale
    print(
        f"NNGP ({path}) at n={args.nngp_n:,} (d {D}, depth 9): kernel {s['kernel']:.2f} s, "
        f"Cholesky {s['cholesky']:.2f} s, "
        f"diag P and alpha {s['inverse']:.2f} s, all-record LOOD {s['lood']:.3f} s"
    )
    chol_floor = args.nngp_n**3 / 3 / (rate64 * 1e9)
    print(f"  floor of the Cholesky (n^3/3 flops at the float64 matmul rate): {chol_floor:.3f} s")
    if scale != 1:
        print(f"  extrapolated to n={N:,}: kernel {k_full:.0f} s (x n^2), algebra + LOOD {f_full:.0f} s (x n^3)")
    per_record_nn = (N_OUT + N_IN) * per_model  # what one record's 100 + 100 retrainings cost alone
    print(
        f"one record (shared order): retraining 100 in + 100 out models {per_record_nn / 3600:.3f} h "
        f"vs NNGP LOOD {k_full + f_full:.1f} s (which also gives every other record): "
        f"ratio {per_record_nn / (k_full + f_full):,.0f}x"
    )
    print("paper (Ye et al. 2024): 3.5 GPU-hours vs 2 GPU-minutes per record, ratio ~105x")
    if args.audit_n:
        audit_arch = Arch(depth=2, width=128, activation="relu", bias=False, w_std=math.sqrt(2.0), b_std=0.0)
        a = time_nngp(args.audit_n, 784, 10, audit_arch, device, path)
        print(
            f"audit algebra at n={args.audit_n:,} (d 784, C 10, depth 2): kernel {a['kernel']:.2f} s, "
            f"Cholesky {a['cholesky']:.2f} s, diag P and alpha {a['inverse']:.2f} s, LOOD {a['lood']:.3f} s, "
            f"total {sum(a.values()):.1f} s; Cholesky floor {args.audit_n**3 / 3 / (rate64 * 1e9):.2f} s"
        )
    gb = models_total * 4 * P / 1e9
    print(
        f"disk: weights of all {models_total:,} models would take {gb:,.0f} GB per experiment (not kept by default: "
        f"training.save_weights false); logits on the probe set take < 100 MB"
    )


if __name__ == "__main__":
    main()
