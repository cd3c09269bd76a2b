"""Audit every record of a dataset without training: kernel, one in-place factorisation, LOOD of all records.

No network is trained. The kernel goes straight into one preallocated n x n array, which
lood.lean factorises in place (docs/audit.md); the KL and mean-distance LOOD at Q = {z} come
from the closed form of docs/math.md §4 (lood.divergence.lood_at_records), and the NNGP AUC of
every record from a deterministic quadrature (`nngp_auc_exact`, docs/math.md §6) instead of
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
from scipy import special
from scipy.special import roots_genlaguerre, roots_legendre

from lood import lean
from lood.divergence import lood_at_records
from lood.errors import LoodInputError
from lood.gp import targets
from lood.kernel import _n_workers, as_rows, kernel_and_diag
from lood.settings import Arch, AuditSettings, NNGPSettings
from lood.sigma2 import choose_sigma2, objective_curve, sigma2_grid
from lood.spectral import eigen

# NNGP AUC quadrature: Gauss-Legendre nodes in sqrt(y) over the out-distribution's range, which
# Laurent-Massart's tail bound with t = AUC_TAIL sets (mass outside < 2 e^-t); 64 nodes were
# within 5e-12 of 400 on 2,000 random records (tests/test_audit.py checks closed forms and MC).
AUC_NODES = 64
AUC_TAIL = 40.0
# Within this relative variance change r - 1 the LR statistic is normal to 0.7 (r - 1)² (measured
# against the quadrature for C = 2..10), below 1e-10: its normal form is used.
AUC_NORMAL_BELOW = 1e-5
# Above this noncentrality the χ² cdf comes from one normal direction plus a central χ²_{C-1}
# (`_ncx2_cdf_split`): within 2e-14 of scipy's chndtr at λ = 100..1,000, and unlike chndtr it
# stays fast and accurate at λ = 1e6..1e8.
AUC_SPLIT_ABOVE = 100.0
AUC_SPLIT_NODES = 32
AUC_CHUNK = 4096  # records per vectorised quadrature step (memory: chunk x nodes floats)


# ----------------------------------------------------------------------------- NNGP AUC, exact


def _ive(nu: float, z: np.ndarray) -> np.ndarray:
    """e^-z I_nu(z); scipy's ive (AMOS) gives NaN beyond z ~ 1e9, where 4 terms of Hankel's expansion are exact."""
    out = special.ive(nu, z)
    big = z > 1e8
    if np.any(big):
        zb, m = z[big], 4 * nu * nu
        term, series = np.ones_like(zb), np.ones_like(zb)
        for k in range(1, 4):
            term = -term * (m - (2 * k - 1) ** 2) / (k * 8 * zb)
            series = series + term
        out[big] = series / np.sqrt(2 * np.pi * zb)
    return out


def _ncx2_pdf(root_y: np.ndarray, df: float, lam: np.ndarray) -> np.ndarray:
    """Noncentral χ² density at y = root_y², from the exponentially scaled Bessel function.

    The exponent −(y + λ)/2 + √(λy) is formed as −(√y − √λ)²/2: at λ ~ 1e9 the two terms cancel
    to a few units, and their difference would keep only 6 digits.
    """
    y, root_lam = root_y**2, np.sqrt(lam)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        log_f = (
            -((root_y - root_lam) ** 2) / 2
            + (df / 4 - 0.5) * np.log(y / lam)
            + np.log(_ive(df / 2 - 1, root_y * root_lam))
        )
        central = np.exp((df / 2 - 1) * np.log(y) - y / 2 - (df / 2) * np.log(2.0) - special.gammaln(df / 2))
    return np.where(lam > 0, np.nan_to_num(np.exp(log_f - np.log(2.0))), central)


def _ncx2_cdf_split(w: np.ndarray, df: int, lam: np.ndarray) -> np.ndarray:
    """P(Q <= w) for Q ~ χ²_df(λ) written as (Z + √λ)² + A, A ~ χ²_{df-1}: generalised Gauss-Laguerre over A."""
    t, wt = roots_genlaguerre(AUC_SPLIT_NODES, (df - 1) / 2 - 1)
    a = 2 * t
    wt = wt / special.gamma((df - 1) / 2)
    s = np.sqrt(np.maximum(w[..., None] - a, 0.0))
    root = np.sqrt(lam)[..., None]
    return (special.ndtr(s - root) - special.ndtr(-s - root)) @ wt


def _ncx2_cdf(w: np.ndarray, df: int, lam: np.ndarray) -> np.ndarray:
    """Noncentral χ² cdf: scipy's chndtr for small λ, the split form above AUC_SPLIT_ABOVE."""
    lam = np.broadcast_to(lam, w.shape)
    out = np.empty(w.shape)
    big = lam > AUC_SPLIT_ABOVE
    out[~big] = special.chndtr(w[~big], df, lam[~big])
    if np.any(big):
        out[big] = _ncx2_cdf_split(w[big], df, lam[big]) if df > 1 else special.chndtr(w[big], df, lam[big])
    return out


def nngp_auc_exact(mean_D: np.ndarray, var_D: np.ndarray, mean_F: np.ndarray, var_F: np.ndarray) -> np.ndarray:
    """AUC of the likelihood-ratio test between N(μ_F, var_F I) ("in") and N(μ_D, var_D I) ("out"), per record.

    mean_* (R, C), var_* (R,). The LR statistic orders points by their distance to one centre c,
    so AUC = P(v_F Q_F < v_D Q_D) with Q_F, Q_D noncentral χ²_C(λ_F), χ²_C(λ_D),
    λ_F = v_F δ²/(v_D − v_F)², λ_D = v_D δ²/(v_D − v_F)², δ = ‖μ_D − μ_F‖ (docs/math.md §6,
    "Exact AUC"): one integral E[F_{Q_F}(v_D Q_D / v_F)] by Gauss-Legendre quadrature. Where the
    variances differ by less than AUC_NORMAL_BELOW the statistic is normal: Φ(E G / sd G).
    Same quantity as lood.divergence.nngp_auc (its Monte Carlo estimate), without sampling error.
    """
    mean_D, mean_F = np.atleast_2d(mean_D).astype(np.float64), np.atleast_2d(mean_F).astype(np.float64)
    vD, vF = np.atleast_1d(np.asarray(var_D, dtype=np.float64)), np.atleast_1d(np.asarray(var_F, dtype=np.float64))
    if mean_D.shape != mean_F.shape or vD.shape != vF.shape or len(vD) != len(mean_D):
        raise LoodInputError(f"nngp_auc_exact: shapes differ: {mean_D.shape}, {mean_F.shape}, {vD.shape}, {vF.shape}")
    if not (np.all(vD > 0) and np.all(vF > 0)):
        raise LoodInputError("nngp_auc_exact needs positive variances")
    C = mean_D.shape[1]
    d2 = np.sum((mean_D - mean_F) ** 2, axis=1)
    diff = vD - vF
    with np.errstate(divide="ignore", invalid="ignore"):
        lam_D = np.where(diff != 0, vD * d2 / diff**2, np.inf)
    # The normal form: G = v_F (S_in − S_out) of the LR scores, mean and variance in closed form.
    r = vD / vF
    eps = r - 1
    mean_G = d2 * (1 + 1 / r) / 2 + eps * vF / 2 * C * (1 - 1 / r)
    var_G = d2 * (vD + vF / r**2) + (eps * vF / 2) ** 2 * 2 * C * (1 + 1 / r**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(var_G > 0, special.ndtr(mean_G / np.sqrt(var_G)), 0.5)
    quad = np.flatnonzero(np.abs(eps) >= AUC_NORMAL_BELOW)
    x, w = roots_legendre(AUC_NODES)
    for start in range(0, len(quad), AUC_CHUNK):
        k = quad[start : start + AUC_CHUNK]
        lD = lam_D[k]
        lF = vF[k] * d2[k] / diff[k] ** 2
        spread = 2 * np.sqrt((C + 2 * lD) * AUC_TAIL)
        a = np.sqrt(np.maximum(C + lD - spread, 0.0))
        b = np.sqrt(C + lD + spread + 2 * AUC_TAIL)
        s = (a + b)[:, None] / 2 + (b - a)[:, None] / 2 * x[None, :]  # nodes in sqrt(y): smooth at y = 0
        y = s**2
        cdf_F = _ncx2_cdf(r[k, None] * y, C, lF[:, None])
        p = (b - a) / 2 * ((cdf_F * _ncx2_pdf(s, C, lD[:, None]) * 2 * s) @ w)
        out[k] = np.clip(np.where(diff[k] > 0, p, 1 - p), 0.0, 1.0)
    return out


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

    available: bytes of memory the run may take (lood.lean.available_bytes()); a run that would
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
    need = lean.check_memory(n, d, block, workers, available)
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
    kprog, cpu = lean.Progress(log, "kernel tiles", 1, every), time.process_time()
    with threadpool_limits(limits=1, user_api="blas"):  # the tiles already run one per core
        _, K_diag = kernel_and_diag(
            X, None, arch, block, out=A, progress=lambda done, total: _tiles(kprog, done, total)
        )
    info["seconds_kernel"], info["seconds_kernel_cpu"] = kprog.seconds, time.process_time() - cpu

    def refill(
        out: np.ndarray,
    ) -> None:  # K again, for a retry with jitter (torch's Cholesky clears the upper triangle)
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


def _tiles(progress: lean.Progress, done: int, total: int) -> None:
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
