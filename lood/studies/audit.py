"""Audit every record of a dataset without training: kernel, one in-place factorisation, LOOD of all records.

No network is trained. The kernel goes straight into one preallocated n x n array, which
lood.analytic.gp_inplace factorises in place (docs/audit.md); the KL and mean-distance LOOD at Q = {z} come
from the closed form of docs/math.md §4 (lood.analytic.divergence.lood_at_records), and the NNGP AUC of
every record from a deterministic quadrature (lood.analytic.auc_exact.nngp_auc_exact, docs/math.md §6) instead of
Monte Carlo, which would cost seconds per thousand records.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lood.analytic import gp_device, gp_inplace, gp_outofcore
from lood.analytic.auc_exact import nngp_auc_exact
from lood.analytic.divergence import lood_at_records
from lood.analytic.gp import targets
from lood.analytic.kernel import MEASURE_ENTRIES, _n_workers, as_rows, kernel_and_diag, nngp_diag, relu_path
from lood.errors import LoodInputError
from lood.runtime.progress import Progress
from lood.settings import Arch, AuditSettings, NNGPSettings, Training
from lood.studies import audit_memory, audit_sigma2
from lood.studies.audit_sigma2 import sigma2_subset

# ----------------------------------------------------------------------------- σ²


def sigma2_choice(audit: AuditSettings, nngp: NNGPSettings, can_train: bool = False) -> tuple[float | str, str]:
    """(a number, "calibrate" or "marginal_likelihood") and a sentence saying where it came from.

    audit.sigma2 overrides nngp.sigma2. calibrate trains audit.calibrate_models in-models
    (lood.studies.audit_sigma2); without training settings (can_train False) it falls back to
    marginal_likelihood, the training-free rule, and says so.
    """
    value, key = (audit.sigma2, "audit.sigma2") if audit.sigma2 is not None else (nngp.sigma2, "nngp.sigma2")
    if not isinstance(value, str):
        return float(value), f"{key} = {float(value):g} (a number from the config)"
    if value == "calibrate" and can_train:
        return value, f"{key} = calibrate, from {audit.calibrate_models} in-models trained on all records"
    if value == "calibrate":
        return "marginal_likelihood", (
            f"{key} is calibrate, which needs trained in-models; the audit trains none and uses the "
            "training-free marginal_likelihood rule instead"
        )
    if value == "marginal_likelihood":
        return value, f"{key} = marginal_likelihood"
    raise LoodInputError(f"{key} {value!r} unknown; allowed: a number >= 0, calibrate, marginal_likelihood")


def marginal_likelihood_sigma2(X: np.ndarray, y: np.ndarray, arch: Arch, nngp: NNGPSettings, size: int) -> dict:
    """σ² maximising the evidence (lood.analytic.sigma2, output scale fitted) on `size` evenly spaced records.

    The eigendecomposition it needs costs 9 m³ flops and 3 m² floats, so at large n it runs on a
    subset of m = size records (all of them when n <= size; docs/audit.md says what that changes).
    The audit's own σ² phase (lood.studies.audit_sigma2.audit_sigma2) takes the same two steps.
    """
    idx = sigma2_subset(len(X), size)
    eig, _ = audit_sigma2.subset_eigen(X, y, idx, arch, int(nngp.block_size))
    return audit_sigma2.marginal_likelihood_on(eig, nngp) | {"records": int(len(idx))}


# ----------------------------------------------------------------------------- the audit


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass(frozen=True)
class AuditResult:
    """The per-record table and what the run measured (phase seconds, memory, σ²)."""

    table: pd.DataFrame
    info: dict


def audit(
    X: np.ndarray,
    y: np.ndarray,
    arch: Arch,
    nngp: NNGPSettings,
    settings: AuditSettings,
    threads: int,
    available: int,
    log: logging.Logger | None,
    training: Training | None = None,
    seed: int = 0,
) -> AuditResult:
    """KL, mean-distance LOOD and NNGP AUC at Q = {z} of every record, from one factorisation.

    available: bytes of memory the run may take (lood.studies.audit_memory.available_bytes(), capped by
    audit.memory_gb). Where the n x n matrix fits, it is factorised in place (lood.analytic.gp_inplace);
    else it streams through a scratch file in audit.scratch (lood.analytic.gp_outofcore); a run
    that fits neither stops before any work with a message naming the bytes it needs. training and
    seed: the experiment's training settings (lr resolved) and base seed, for σ² by calibrate.
    """
    from threadpoolctl import threadpool_limits

    t_start, cpu_start = time.perf_counter(), time.process_time()
    X = as_rows(X)
    y = np.asarray(y)
    n, d = X.shape
    if len(y) != n:
        raise LoodInputError(f"X has {n} rows but y has {len(y)} labels")
    block = int(nngp.block_size)
    workers = _n_workers()
    if settings.memory_gb is not None:
        available = min(int(available), int(settings.memory_gb * 1e9))
    scratch = settings.scratch or tempfile.gettempdir()
    route = audit_memory.plan(n, d, block, workers, available, shutil.disk_usage(scratch).free if n else 0)
    need = route["bytes"]
    Y = targets(y, None)
    info: dict = {
        "n": n,
        "d": d,
        "classes": int(Y.shape[1]),
        "depth": arch.depth,
        "activation": arch.activation,
        "block_size": block,
        "threads": int(threads),
        "route": route["route"],
        "panel_width": route["width"],
        "disk_gb": route["disk_bytes"] / 1e9,
        "memory_needed_gb": need / 1e9,
        "memory_available_gb": available / 1e9,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
    }
    if log:
        log.info(
            "audit of n=%d records, d=%d, C=%d: %s, needs %.2f GB beside the data (8 n^2 = %.2f GB), "
            "%.1f GB available%s",
            n,
            d,
            Y.shape[1],
            route["route"].replace("_", " "),
            need / 1e9,
            8 * n * n / 1e9,
            available / 1e9,
            f"; panels of {route['width']:,} columns, {route['disk_bytes'] / 1e9:.1f} GB in {scratch}"
            if route["route"] == "out_of_core"
            else "",
        )

    rule, note = sigma2_choice(settings, nngp, training is not None)
    openblas_threads = gp_inplace.blas_threads(n, int(threads), log)
    t = time.perf_counter()
    if isinstance(rule, str):
        with threadpool_limits(limits=openblas_threads, user_api="blas"):
            sigma2, extra = audit_sigma2.audit_sigma2(X, y, arch, nngp, settings, rule, training, seed, log)
        note += f"; on {extra['sigma2_records']:,} of {n:,} records" + (
            " (all)" if extra["sigma2_records"] == n else ""
        )
        if extra["sigma2_at_edge"]:
            note += "; the optimum lies on the edge of the grid nngp.grid_min..grid_max: widen it"
        info |= extra
    else:
        sigma2 = float(rule)
    info |= {"sigma2": sigma2, "sigma2_rule": rule if isinstance(rule, str) else "fixed", "sigma2_note": note}
    info["seconds_sigma2"] = time.perf_counter() - t
    if log:
        log.info("sigma2 = %.6g: %s (%.1f s)", sigma2, note, info["seconds_sigma2"])

    every = float(settings.progress_seconds)
    if arch.activation == "relu":
        info["relu_kernel"] = relu_path(arch, d, workers) if n * n >= MEASURE_ENTRIES else "closed_form"
    device = gp_device.device_choice(settings.device)
    if device is not None:
        device_need, device_free = gp_device.device_bytes(n, block), gp_device.device_free_bytes(device)
        if device_need > device_free:
            if log:
                log.info(
                    "the device %s has %.1f GB free, the audit needs %.1f GB there: the CPU route instead",
                    device,
                    device_free / 1e9,
                    device_need / 1e9,
                )
            device = None
    info["device"] = str(device) if device is not None else "cpu"
    if device is not None:
        info["route"] = f"device ({device})"
        fit, K_diag, info["seconds_kernel"] = gp_device.fit_on_device(X, Y, arch, sigma2, block, device, log, every)
    elif route["route"] == "in_memory":
        fit, K_diag, info["seconds_kernel"], info["seconds_kernel_cpu"] = _in_memory(
            X, arch, block, Y, sigma2, threads, log, every
        )
    else:
        fit, K_diag, info["seconds_kernel"], info["seconds_kernel_cpu"] = _out_of_core(
            X, arch, block, Y, sigma2, route["width"], scratch, threads, log, every
        )
    info |= {f"seconds_{k}": v for k, v in fit.seconds.items()}
    info["jitter"] = fit.jitter
    info["blas_threads"] = openblas_threads  # OpenBLAS, for the sigma2 phase; the n x n algebra runs on torch

    t = time.perf_counter()
    res = lood_at_records(fit, K_diag, np.arange(n))
    info["seconds_lood"] = time.perf_counter() - t
    t = time.perf_counter()
    auc = nngp_auc_exact(res["mean_D"], res["var_D"], res["mean_F"], res["var_F"])
    info["seconds_auc"] = time.perf_counter() - t
    info["seconds_total"], info["seconds_total_cpu"] = time.perf_counter() - t_start, time.process_time() - cpu_start
    info["peak_rss_gb"] = peak_rss_bytes() / 1e9
    table = pd.DataFrame({"record": np.arange(n), "label": y, "kl": res["kl"], "mse": res["mse"], "auc_nngp": auc})
    table["rank"] = table["kl"].rank(ascending=False, method="first").astype(np.int64)
    table["sigma2"] = sigma2
    if log:
        log.info(
            "done in %.1f s (kernel %.1f, Cholesky %.1f, diag P %.1f, LOOD %.2f, AUC %.1f); peak RSS %.2f GB",
            info["seconds_total"],
            info["seconds_kernel"],
            info["seconds_cholesky"],
            info["seconds_inverse"],
            info["seconds_lood"],
            info["seconds_auc"],
            info["peak_rss_gb"],
        )
    return AuditResult(table=table, info=info)


def _in_memory(X, arch, block, Y, sigma2, threads, log, every):
    """The kernel into one n x n array, factorised in place (lood.analytic.gp_inplace): (fit, diag K, s, CPU s)."""
    from threadpoolctl import threadpool_limits

    n = len(X)
    A = np.empty((n, n), order="F")  # the one n x n array: K, then L below the diagonal and K above
    kprog, cpu = Progress(log, "kernel tiles", 1, every), time.process_time()
    with threadpool_limits(limits=1, user_api="blas"):  # the tiles already run one per core
        _, K_diag = kernel_and_diag(
            X, None, arch, block, out=A, progress=lambda done, total: _tiles(kprog, done, total)
        )
    seconds, cpu = kprog.seconds, time.process_time() - cpu

    def refill(out: np.ndarray) -> None:
        """K again, for a retry with jitter (torch's Cholesky clears the upper triangle)."""
        with threadpool_limits(limits=1, user_api="blas"):
            kernel_and_diag(X, None, arch, block, out=out)

    fit = gp_inplace.fit_inplace(A, Y, sigma2, int(threads), refill, log, every)
    return fit, K_diag, seconds, cpu


def _out_of_core(X, arch, block, Y, sigma2, width, scratch, threads, log, every):
    """The kernel panel by panel into a scratch file (lood.analytic.gp_outofcore): (fit, diag K, kernel s, CPU s).

    The kernel's tiles are computed inside the Cholesky phase, panel by panel; their time is
    counted there and in the kernel's own entry.
    """
    from threadpoolctl import threadpool_limits

    timing = {"wall": 0.0, "cpu": 0.0}

    def fill(c0: int, c1: int, out: np.ndarray) -> None:
        t, cpu = time.perf_counter(), time.process_time()
        with threadpool_limits(limits=1, user_api="blas"):
            kernel_and_diag(X[c0:], X[c0:c1], arch, block, out=out)
        timing["wall"] += time.perf_counter() - t
        timing["cpu"] += time.process_time() - cpu

    K_diag = nngp_diag(X, arch, block)
    fit = gp_outofcore.fit_outofcore(fill, len(X), Y, sigma2, K_diag, width, scratch, int(threads), log, every)
    fit.seconds["cholesky"] -= timing["wall"]  # the Cholesky's own share; the kernel's is reported apart
    fit.seconds["cholesky_cpu"] -= timing["cpu"]
    return fit, K_diag, timing["wall"], timing["cpu"]


def _tiles(progress: Progress, done: int, total: int) -> None:
    progress.total = float(total)
    progress(done)


# ----------------------------------------------------------------------------- report
