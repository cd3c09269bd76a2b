"""Audit every record of a dataset without training: kernel, one in-place factorisation, LOOD of all records.

No network is trained. The kernel goes straight into one preallocated n x n array, which
lood.lean factorises in place (docs/audit.md); the KL and mean-distance LOOD at Q = {z} come
from the closed form of docs/math.md §4 (lood.divergence.lood_at_records), and the NNGP AUC of
every record from a deterministic quadrature (lood.auc_exact.nngp_auc_exact, docs/math.md §6) instead of
Monte Carlo, which would cost seconds per thousand records.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lood import lean, memory
from lood.auc_exact import nngp_auc_exact
from lood.divergence import lood_at_records
from lood.errors import LoodInputError
from lood.gp import targets
from lood.kernel import _n_workers, as_rows, kernel_and_diag
from lood.progress import Progress
from lood.settings import Arch, AuditSettings, NNGPSettings
from lood.sigma2 import choose_sigma2, objective_curve, sigma2_grid
from lood.spectral import eigen

# ----------------------------------------------------------------------------- σ²


def sigma2_choice(audit: AuditSettings, nngp: NNGPSettings) -> tuple[float | str, str]:
    """(a number, or "marginal_likelihood") and a sentence saying where it came from.

    audit.sigma2 overrides nngp.sigma2. calibrate needs the in-models' logits, which an audit
    never trains: it falls back to marginal_likelihood, the training-free rule, and says so.
    """
    value, key = (audit.sigma2, "audit.sigma2") if audit.sigma2 is not None else (nngp.sigma2, "nngp.sigma2")
    if not isinstance(value, str):
        return float(value), f"{key} = {float(value):g} (a number from the config)"
    if value == "calibrate":
        return "marginal_likelihood", (
            f"{key} is calibrate, which needs trained in-models; the audit trains none and uses the "
            "training-free marginal_likelihood rule instead"
        )
    if value == "marginal_likelihood":
        return value, f"{key} = marginal_likelihood"
    raise LoodInputError(f"{key} {value!r} unknown; allowed: a number >= 0, calibrate, marginal_likelihood")


def sigma2_subset(n: int, size: int) -> np.ndarray:
    """`size` records evenly spaced over the dataset's canonical order (all when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, int(size)).round().astype(np.int64))


def marginal_likelihood_sigma2(X: np.ndarray, y: np.ndarray, arch: Arch, nngp: NNGPSettings, size: int) -> dict:
    """σ² maximising the evidence (lood.sigma2, output scale fitted) on `size` evenly spaced records.

    The eigendecomposition it needs costs 9 m³ flops and 3 m² floats, so at large n it runs on a
    subset of m = size records (all of them when n <= size; docs/audit.md says what that changes).
    """
    idx = sigma2_subset(len(X), size)
    K, _ = kernel_and_diag(X[idx], None, arch, nngp.block_size)
    eig = eigen(K, targets(np.asarray(y)[idx], int(np.max(y)) + 1 if len(y) else None))
    del K
    grid = sigma2_grid(nngp.grid_min, nngp.grid_max, nngp.grid_points)
    chosen = choose_sigma2(objective_curve(eig, "marginal_likelihood", grid, None, "mse"), "marginal_likelihood")
    return chosen | {"records": int(len(idx))}


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
) -> AuditResult:
    """KL, mean-distance LOOD and NNGP AUC at Q = {z} of every record, from one in-place factorisation.

    available: bytes of memory the run may take (lood.memory.available_bytes()); a run that would
    not fit stops before any work with a message naming the n that fits.
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
    need = memory.check_memory(n, d, block, workers, available)
    Y = targets(y, None)
    info: dict = {
        "n": n,
        "d": d,
        "classes": int(Y.shape[1]),
        "depth": arch.depth,
        "activation": arch.activation,
        "block_size": block,
        "threads": int(threads),
        "memory_needed_gb": need / 1e9,
        "memory_available_gb": available / 1e9,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
    }
    if log:
        log.info(
            "audit of n=%d records, d=%d, C=%d: needs %.2f GB beside the data (8 n^2 = %.2f GB), %.1f GB available",
            n,
            d,
            Y.shape[1],
            need / 1e9,
            8 * n * n / 1e9,
            available / 1e9,
        )

    rule, note = sigma2_choice(settings, nngp)
    openblas_threads = lean.blas_threads(n, int(threads), log)
    t = time.perf_counter()
    if rule == "marginal_likelihood":
        with threadpool_limits(limits=openblas_threads, user_api="blas"):
            chosen = marginal_likelihood_sigma2(X, y, arch, nngp, settings.sigma2_records)
        sigma2 = chosen["sigma2"]
        note += f"; maximised on {chosen['records']:,} of {n:,} records" + (" (all)" if chosen["records"] == n else "")
        if chosen["at_edge"]:
            note += "; the optimum lies on the edge of the grid nngp.grid_min..grid_max: widen it"
    else:
        sigma2 = float(rule)
    info |= {
        "sigma2": sigma2,
        "sigma2_rule": "marginal_likelihood" if isinstance(rule, str) else "fixed",
        "sigma2_note": note,
    }
    info["seconds_sigma2"] = time.perf_counter() - t
    if log:
        log.info("sigma2 = %.6g: %s (%.1f s)", sigma2, note, info["seconds_sigma2"])

    A = np.empty((n, n), order="F")  # the one n x n array: K, then L below the diagonal and K above
    every = float(settings.progress_seconds)
    kprog, cpu = Progress(log, "kernel tiles", 1, every), time.process_time()
    with threadpool_limits(limits=1, user_api="blas"):  # the tiles already run one per core
        _, K_diag = kernel_and_diag(
            X, None, arch, block, out=A, progress=lambda done, total: _tiles(kprog, done, total)
        )
    info["seconds_kernel"], info["seconds_kernel_cpu"] = kprog.seconds, time.process_time() - cpu

    def refill(out: np.ndarray) -> None:
        """K again, for a retry with jitter (torch's Cholesky clears the upper triangle)."""
        with threadpool_limits(limits=1, user_api="blas"):
            kernel_and_diag(X, None, arch, block, out=out)

    fit = lean.fit_inplace(A, Y, sigma2, int(threads), refill, log, every)
    del A
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


def _tiles(progress: Progress, done: int, total: int) -> None:
    progress.total = float(total)
    progress(done)


# ----------------------------------------------------------------------------- report


def class_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per label: records, median and max KL, median NNGP AUC, and how many of the top 1% by KL it holds."""
    top = table["rank"] <= max(1, int(np.ceil(0.01 * len(table))))
    g = table.assign(top=top).groupby("label")
    return pd.DataFrame(
        {
            "records": g.size(),
            "median_kl": g["kl"].median(),
            "max_kl": g["kl"].max(),
            "median_auc_nngp": g["auc_nngp"].median(),
            "in_top_1pct": g["top"].sum().astype(np.int64),
        }
    ).reset_index()


def report_markdown(table: pd.DataFrame, info: dict, top: int) -> str:
    """A short Markdown report: the setting, the phase times and memory, the most exposed records, per-class medians."""
    lines = [
        "# LOOD audit: every training record, no network trained",
        "",
        f"n = {info['n']:,} records, d = {info['d']:,} features, C = {info['classes']} classes; NNGP of a "
        f"{info['depth']}-hidden-layer {info['activation']} network. σ² = {info['sigma2']:.6g} ({info['sigma2_note']})"
        + (f"; Cholesky needed jitter {info['jitter']:.3g}" if info.get("jitter") else "")
        + ".",
        "",
        "KL is the KL-LOOD at the record itself (Q = {z}), mse the mean-distance LOOD, auc_nngp the AUC of the "
        "optimal membership test between the two GP posteriors (0.5: the record leaves no trace).",
        "",
        "| phase | seconds |",
        "|---|---|",
    ]
    for key, name in [
        ("sigma2", "σ² choice"),
        ("kernel", "kernel tiles"),
        ("cholesky", "Cholesky (in place)"),
        ("inverse", "diag P (column norms of L⁻¹)"),
        ("lood", "LOOD of all records"),
        ("auc", "NNGP AUC (quadrature)"),
        ("total", "total"),
    ]:
        lines.append(f"| {name} | {info.get('seconds_' + key, float('nan')):.1f} |")
    lines += [
        "",
        f"Memory: {info['memory_needed_gb']:.2f} GB planned beside the data "
        f"(8 n² = {8 * info['n'] ** 2 / 1e9:.2f} GB), "
        f"{info['memory_available_gb']:.1f} GB available at the start; peak RSS {info['peak_rss_gb']:.2f} GB.",
        "",
        f"## The {top} most exposed records (largest KL-LOOD)",
        "",
        "| rank | record | label | KL | mean distance | NNGP AUC |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.nsmallest(top, "rank").itertuples():
        lines.append(f"| {row.rank} | {row.record} | {row.label} | {row.kl:.4g} | {row.mse:.4g} | {row.auc_nngp:.4f} |")
    lines += [
        "",
        "## Per class",
        "",
        "| label | records | median KL | max KL | median NNGP AUC | in the top 1 % |",
        "|---|---|---|---|---|---|",
    ]
    for row in class_summary(table).itertuples():
        lines.append(
            f"| {row.label} | {row.records} | {row.median_kl:.4g} | {row.max_kl:.4g} | {row.median_auc_nngp:.4f} "
            f"| {row.in_top_1pct} |"
        )
    q = table["kl"].quantile([0.5, 0.9, 0.99]).to_numpy()
    lines += [
        "",
        f"KL quantiles over all records: median {q[0]:.4g}, 90 % {q[1]:.4g}, 99 % {q[2]:.4g}, "
        f"max {table['kl'].max():.4g}.",
        "",
    ]
    return "\n".join(lines)
