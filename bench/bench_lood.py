"""Benchmarks of the NNGP side, printed as plain lines (design.md section 8).

(a) KL-LOOD at Q = {z} for every record from one factorisation, against the original
    algorithm (one refit per record), side by side on the same data and kernel. The refit
    loop is timed on a seeded subset of records and extrapolated linearly to all n.
(b) Every record at CIFAR-10 shape (n = 10,000, d = 3,072, 9 hidden ReLU layers):
    wall time of kernel, factorisation and LOOD, and peak RSS.

Usage: .venv/bin/python bench/bench_lood.py [--quick] [--only a|b]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lood.analytic.divergence import kl_lood, lood_at_records  # noqa: E402
from lood.analytic.gp import fit_gp, targets  # noqa: E402
from lood.analytic.jax_setup import jax  # noqa: E402
from lood.analytic.kernel import nngp_kernel  # noqa: E402
from lood.settings import Arch  # noqa: E402


def relu_arch(depth: int) -> Arch:
    """Bias-free ReLU network with He-scaled weights, as in the paper."""
    return Arch(depth=depth, width=1024, activation="relu", bias=False, w_std=2**0.5, b_std=0.0)


def peak_rss_gb() -> float:
    """Peak resident memory of this process in GB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def refit_lood(K: np.ndarray, Y: np.ndarray, sigma2: float, i: int, mean_F: np.ndarray, var_F: float) -> float:
    """The original algorithm for one record: drop it, refactorise K_DD + σ²I, posterior at z, KL."""
    keep = np.arange(len(K)) != i
    cf = scipy.linalg.cho_factor(K[np.ix_(keep, keep)] + sigma2 * np.eye(len(K) - 1), lower=True)
    k = K[keep, i]
    mean_D = k @ scipy.linalg.cho_solve(cf, Y[keep])
    var_D = K[i, i] - k @ scipy.linalg.cho_solve(cf, k)
    return kl_lood(mean_D[None], [[var_D]], mean_F[None], [[var_F]])


def bench_all_vs_refit(n: int, subset: int, sigma2: float = 0.2, seed: int = 0) -> None:
    """(a) all-records LOOD from one factorisation vs one refit per record."""
    rng = np.random.default_rng(seed)
    X, y = rng.random((n, 64)), rng.integers(0, 2, n)
    arch = relu_arch(2)
    print(f"(a) LOOD at Q={{z}} for all records vs one refit per record: n={n}, d=64, depth 2 ReLU, sigma2={sigma2}")
    t = time.perf_counter()
    K = nngp_kernel(X, None, arch, 2048)
    t_kernel = time.perf_counter() - t
    Y = targets(y, None)

    t = time.perf_counter()
    fit = fit_gp(K, Y, sigma2)
    fast = lood_at_records(fit, np.diag(K), np.arange(n))
    t_fast = time.perf_counter() - t

    # The refit loop needs the posterior of F at each z once (one shared factorisation, counted).
    t = time.perf_counter()
    cf = scipy.linalg.cho_factor(K + sigma2 * np.eye(n), lower=True)
    t_full = time.perf_counter() - t
    records = np.sort(rng.choice(n, size=subset, replace=False))
    t = time.perf_counter()
    slow = []
    for i in records:
        mean_F = K[i] @ scipy.linalg.cho_solve(cf, Y)
        var_F = K[i, i] - K[i] @ scipy.linalg.cho_solve(cf, K[:, i])
        slow.append(refit_lood(K, Y, sigma2, i, mean_F, var_F))
    t_subset = time.perf_counter() - t
    t_slow = t_full + t_subset * n / subset
    agree = float(np.max(np.abs(np.array(slow) - fast["kl"][records]) / np.abs(fast["kl"][records])))

    print(f"kernel K_FF (shared by both): {t_kernel:.2f} s")
    print(f"one factorisation + all {n} records: {t_fast:.3f} s")
    print(f"refit per record: {t_subset:.2f} s measured on {subset} records, {t_slow:.1f} s extrapolated to {n}")
    both = (t_slow + t_kernel) / (t_fast + t_kernel)
    print(f"speed-up (GP algebra): {t_slow / t_fast:.0f}x; including the kernel on both sides: {both:.0f}x")
    print(f"max relative difference of KL on the {subset} records: {agree:.1e}")


class Clock:
    """Wall and CPU time (all threads of this process) since the last lap."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> str:
        """'W s wall, C s CPU' since the previous lap."""
        wall, cpu = time.perf_counter(), time.process_time()
        out = f"{wall - self.wall:.1f} s wall, {cpu - self.cpu:.1f} s CPU"
        self.wall, self.cpu = wall, cpu
        return out


def bench_cifar_shape(
    n: int, d: int = 3072, depth: int = 9, sigma2: float = 0.2, block_size: int = 2048, seed: int = 0
) -> None:
    """(b) every record at CIFAR-10 shape: kernel, factorisation, LOOD wall times and peak RSS."""
    rng = np.random.default_rng(seed)
    X, y = rng.random((n, d)), rng.integers(0, 2, n)
    arch = relu_arch(depth)
    print(f"(b) all records at CIFAR shape: n={n}, d={d}, depth {depth} ReLU, block {block_size}")
    start, clock = time.perf_counter(), Clock()
    K = nngp_kernel(X, None, arch, block_size)
    print(f"kernel: {clock.lap()} (includes one XLA compilation)")
    fit = fit_gp(K, targets(y, None), sigma2)
    K_diag = np.diag(K).copy()
    del K
    print(f"factorisation (Cholesky): {clock.lap()}")
    res = lood_at_records(fit, K_diag, np.arange(n))
    print(f"LOOD of all {n} records (P_ii by triangular inverse + closed form): {clock.lap()}")
    load = os.getloadavg()[0]
    total = time.perf_counter() - start
    print(f"total: {total:.1f} s wall; peak RSS {peak_rss_gb():.2f} GB; load average now {load:.1f}")
    finite = bool(np.all(np.isfinite(res["kl"])))
    print(f"KL-LOOD median {np.median(res['kl']):.4g}, max {np.max(res['kl']):.4g}, finite: {finite}")


def main() -> None:
    """Run the benchmarks."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds), to check the script runs")
    ap.add_argument("--only", choices=["a", "b"], help="run one benchmark")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores: {cores}; JAX backend: {jax.default_backend()}; load average: {os.getloadavg()[0]:.1f}")
    if args.only in (None, "a"):
        bench_all_vs_refit(n=500 if args.quick else 2000, subset=20 if args.quick else 50)
    if args.only in (None, "b"):
        bench_cifar_shape(n=1000 if args.quick else 10_000)


if __name__ == "__main__":
    main()
