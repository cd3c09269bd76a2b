"""Activation x depth: how the NNGP kernel, its LOOD and its accuracy change with depth.

For every (activation, w_std) variant and every depth of `depth_study`, one eigendecomposition
K_FF = V diag(λ) Vᵀ gives everything (docs/math.md §2, "Kernel spectrum and held-out accuracy"):
the kernel's effective rank, and for each σ² setting (a number, or the marginal likelihood)
the LOOD of every training record at Q = {z} (§4, from α = V(Λ + σ²)⁻¹VᵀY and
P_ii = Σ_j V_ij²/(λ_j + σ²)) and the posterior-mean classifier's accuracy on held-out records.
By default (sigma2_scale: kernel) each kernel is first divided by its mean prior variance, so
that the sweep compares kernel shapes at one noise-to-signal ratio. The networks' side of the
comparison (MIA AUC, training loss, test accuracy) is summarised by lood.studies.depth_networks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from lood.analytic.divergence import lood_at_records, nngp_aucs
from lood.analytic.gp import targets
from lood.analytic.kernel import as_rows, kernel_and_diag
from lood.analytic.sigma2 import choose_sigma2, objective_curve, sigma2_grid
from lood.analytic.spectral import KernelEigen, eigen, spectral_fit
from lood.errors import LoodInputError
from lood.records import check_records
from lood.runtime.progress import Progress
from lood.settings import Arch, DepthSettings, NNGPSettings


class DataSplit(NamedTuple):
    """The training records (X, y) the kernel is fitted on and the held-out records (X_test, y_test) it predicts."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


# ----------------------------------------------------------------------------- kernel spectrum


def _spectrum(eigenvalues: np.ndarray) -> np.ndarray:
    lam = np.asarray(eigenvalues, dtype=np.float64).ravel()
    if lam.size == 0 or not np.all(np.isfinite(lam)) or np.any(lam < 0) or not lam.sum() > 0:
        raise LoodInputError("the effective rank needs finite, non-negative eigenvalues with a positive sum")
    return lam


def participation_ratio(eigenvalues: np.ndarray) -> float:
    """(Σλ)² / Σλ²: n for a flat spectrum, 1 for a rank-one kernel (docs/math.md §2)."""
    lam = _spectrum(eigenvalues)
    return float(lam.sum() ** 2 / np.sum(lam**2))


def trace_rank(eigenvalues: np.ndarray, fraction: float) -> int:
    """The fewest top eigenvalues whose sum reaches `fraction` of the trace."""
    lam = np.sort(_spectrum(eigenvalues))[::-1]
    if not 0 < fraction <= 1:
        raise LoodInputError(f"depth_study.rank_fraction must lie in (0, 1], got {fraction}")
    share = np.cumsum(lam) / lam.sum()
    # A relative tolerance: a share that equals the fraction up to round-off counts as reaching it.
    return int(np.searchsorted(share, fraction * (1 - 1e-12)) + 1)


def mean_correlation(K: np.ndarray) -> float:
    """Mean off-diagonal K_ij / √(K_ii K_jj): 1 when the kernel has degenerated to a constant direction."""
    K = np.asarray(K, dtype=np.float64)
    d = np.sqrt(np.diag(K))
    R = K / np.outer(d, d)
    n = len(K)
    return float((R.sum() - np.trace(R)) / (n * (n - 1)))


# ----------------------------------------------------------------------------- accuracy


def posterior_accuracy(mean: np.ndarray, y: np.ndarray) -> float:
    """Fraction of records whose largest posterior-mean output is their label (NaN for no records)."""
    mean, y = np.asarray(mean, dtype=np.float64), np.asarray(y)
    if len(y) == 0:
        return float("nan")
    if mean.shape[0] != len(y):
        raise LoodInputError(f"posterior means for {mean.shape[0]} records but {len(y)} labels")
    return float(np.mean(np.argmax(mean, axis=1) == y))


# ----------------------------------------------------------------------------- the NNGP sweep


def variant_arch(model: Mapping, variant: Mapping, depth: int) -> Arch:
    """A sweep point's architecture: `model` (bias, b_std, width) with the variant's activation and w_std."""
    return Arch.from_config(
        {**model, "activation": variant["activation"], "w_std": float(variant["w_std"]), "depth": int(depth)}
    )


def variant_label(activation: str, w_std: float) -> str:
    """A short name for an (activation, w_std) pair, e.g. 'gelu, w 1.98'."""
    return f"{activation}, w {float(w_std):.3g}"


def choose_depth_sigma2(eig: KernelEigen, setting: float | str, nngp: NNGPSettings, loss: str) -> dict:
    """σ² for one kernel: a number as it is, or the marginal-likelihood rule on the nngp grid (docs/math.md §12)."""
    if isinstance(setting, str):
        grid = sigma2_grid(nngp.grid_min, nngp.grid_max, nngp.grid_points)
        return choose_sigma2(objective_curve(eig, setting, grid, None, loss), setting)
    return {"sigma2": float(setting), "rule": "fixed", "scale": np.nan, "at_edge": False}


def sweep_point(
    data: DataSplit,
    records: np.ndarray,
    arch: Arch,
    study: DepthSettings,
    nngp: NNGPSettings,
    loss: str,
    base_seed: int,
) -> tuple[list[dict], pd.DataFrame]:
    """One (variant, depth): a summary row per σ² setting and scaling, and the studied records' LOOD and NNGP AUC.

    One eigendecomposition of K_FF serves every σ², the LOOD of all n records, the spectrum and
    the test predictions μ_F(X_test) = K_TF α, for K divided by its mean prior variance
    (sigma2_scale kernel) and for K as it is (absolute) (docs/math.md §2, depth study).
    """
    X = as_rows(data.X)
    n = len(X)
    records = check_records(records, n)
    K, K_diag = kernel_and_diag(X, None, arch, nngp.block_size)
    kernel_scale = float(np.mean(K_diag))
    Y = targets(np.asarray(data.y), None)
    eig_abs = eigen(K, Y)
    K_TF_abs = kernel_and_diag(as_rows(data.X_test), X, arch, nngp.block_size)[0] if len(data.X_test) else None
    spectrum = {  # PR, r_f and the correlations do not change when K is scaled
        "kernel_scale": kernel_scale,
        "mean_correlation": mean_correlation(K),
        "participation_ratio": participation_ratio(eig_abs.lam),
        "trace_rank": trace_rank(eig_abs.lam, study.rank_fraction),
        "rank_fraction": float(study.rank_fraction),
    }
    rows, recs = [], []
    # Both units for every σ² setting: kernel (K / mean K_ii, shapes only) and absolute (K as it is).
    for scale, unit in (("kernel", kernel_scale), ("absolute", 1.0)):
        eig = KernelEigen(lam=eig_abs.lam / unit, V=eig_abs.V, Y=eig_abs.Y, VtY=eig_abs.VtY)
        K_TF = K_TF_abs / unit if K_TF_abs is not None else None
        for setting in study.sigma2_settings:
            chosen = choose_depth_sigma2(eig, setting, nngp, loss)
            point = {
                "activation": arch.activation,
                "w_std": float(arch.w_std),
                "depth": int(arch.depth),
                "variant": variant_label(arch.activation, arch.w_std),
                "sigma2_setting": str(setting),
                "sigma2_scale": scale,
                # the setting fig_depth draws (depth_study.sigma2 in the units of sigma2_scale)
                "drawn": setting == study.sigma2 and scale == study.sigma2_scale,
            }
            summary, per_record = _lood_point(
                eig, K_diag / unit, K_TF, float(chosen["sigma2"]), data, records, nngp.auc_samples, base_seed
            )
            sigma2 = {
                "sigma2_rule": chosen["rule"],
                "sigma2_at_edge": bool(chosen["at_edge"]),
                "ml_scale": float(chosen["scale"]),
            }
            rows.append(point | sigma2 | spectrum | summary)
            recs.append(pd.DataFrame(point | per_record))
    return rows, pd.concat(recs, ignore_index=True)


def _lood_point(
    eig: KernelEigen,
    K_diag: np.ndarray,
    K_TF: np.ndarray | None,
    s2: float,
    data: DataSplit,
    records: np.ndarray,
    auc_samples: int,
    base_seed: int,
) -> tuple[dict, dict]:
    """At one σ²: LOOD quartiles of all n records, accuracies, and the studied records' LOOD and NNGP AUC."""
    n = eig.n
    fit = spectral_fit(eig, s2)
    res = lood_at_records(fit, K_diag, np.arange(n))
    kl, mse = res["kl"], res["mse"]
    aucs = nngp_aucs(res, records, auc_samples, base_seed, rows=records)
    summary = {
        "sigma2": s2,
        "kl_median": float(np.median(kl)),
        "kl_q25": float(np.percentile(kl, 25)),
        "kl_q75": float(np.percentile(kl, 75)),
        "kl_max": float(kl.max()),
        "mse_median": float(np.median(mse)),
        "mse_q25": float(np.percentile(mse, 25)),
        "mse_q75": float(np.percentile(mse, 75)),
        "auc_nngp_median": float(np.median(aucs[:, 0])),
        "train_acc": posterior_accuracy(eig.Y - s2 * fit.alpha, data.y),
        "test_acc": posterior_accuracy(K_TF @ fit.alpha, data.y_test) if K_TF is not None else float("nan"),
        "n_train": n,
        "n_test": len(data.y_test),
        "n_records": len(records),
    }
    per_record = {
        "record": records,
        "kl": kl[records],
        "mse": mse[records],
        "auc_nngp": aucs[:, 0],
        "auc_nngp_se": aucs[:, 1],
    }
    return summary, per_record


def depth_sweep(
    data: DataSplit,
    records: np.ndarray,
    model: Mapping,
    study: DepthSettings,
    nngp: NNGPSettings,
    loss: str,
    base_seed: int,
    log: logging.Logger | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nngp.csv, nngp_records.csv): one row per (variant, depth, σ² setting), and per studied record at each.

    Logs its progress (points done, ETA) to `log` every 30 s and at the end.
    """
    rows, recs = [], []
    progress = Progress(log, "depth sweep (variant x depth points)", len(study.variants) * len(study.depths), 30.0)
    for variant in study.variants:
        for depth in study.depths:
            point_rows, rec = sweep_point(
                data, records, variant_arch(model, variant, depth), study, nngp, loss, base_seed
            )
            rows += point_rows
            recs.append(rec)
            progress(len(recs))
    return pd.DataFrame(rows), pd.concat(recs, ignore_index=True)


def sweep_summary(row: Mapping) -> str:
    """One log line for a row of the sweep's table."""
    edge = " (grid edge)" if row["sigma2_at_edge"] else ""
    return (
        f"{row['variant']:<14} depth {int(row['depth']):2d}: sigma2 {row['sigma2']:.3g}{edge}, "
        f"KL-LOOD median {row['kl_median']:.4g} [{row['kl_q25']:.4g}, {row['kl_q75']:.4g}], "
        f"participation ratio {row['participation_ratio']:.3g}, "
        f"{int(row['trace_rank'])} eigenvalues hold {100 * row['rank_fraction']:.0f}% of the trace, "
        f"test accuracy {row['test_acc']:.3f}, median NNGP AUC {row['auc_nngp_median']:.4f}"
    )
