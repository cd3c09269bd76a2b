"""Activation x depth (issue 14): how the NNGP kernel, its LOOD and its accuracy change with depth.

For every (activation, w_std) variant and every depth of `depth_study`, one eigendecomposition
K_FF = V diag(λ) Vᵀ gives everything (docs/math.md §2, "Kernel spectrum and held-out accuracy"):
the kernel's effective rank, and for each σ² setting (a number, or the marginal likelihood)
the LOOD of every training record at Q = {z} (§4, from α = V(Λ + σ²)⁻¹VᵀY and
P_ii = Σ_j V_ij²/(λ_j + σ²)) and the posterior-mean classifier's accuracy on held-out records.
By default (sigma2_scale: kernel) each kernel is first divided by its mean prior variance, so
that the sweep compares kernel shapes at one noise-to-signal ratio. The networks' side of the
comparison (MIA AUC, training loss, test accuracy) is summarised from the experiments' outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lood import seeds
from lood.checks import check_records
from lood.divergence import lood_at_records, nngp_auc
from lood.errors import LoodInputError
from lood.gp import targets
from lood.kernel import as_rows, kernel_and_diag
from lood.settings import Arch, DepthSettings, NNGPSettings, check_choice
from lood.sigma2 import KernelEigen, choose_sigma2, eigen, objective_curve, sigma2_grid, spectral_fit

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


def training_loss(logits: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """Each model's loss on (logits (M, n, C), labels y) as lood.train minimises it (MSELoss / CrossEntropyLoss)."""
    check_choice(loss, "loss", "training.loss")
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if logits.ndim != 3 or logits.shape[1] != len(y):
        raise LoodInputError(f"logits must be (models, {len(y)} records, outputs), got {logits.shape}")
    C = logits.shape[2]
    onehot = np.eye(C)[y]
    if loss == "mse":  # mean over records and outputs of (f - (e_y - 1/C))²
        return np.mean((logits - (onehot - 1.0 / C)) ** 2, axis=(1, 2))
    top = logits.max(axis=2, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(axis=2)) + top[..., 0]
    return np.mean(lse - np.sum(logits * onehot, axis=2), axis=1)


def model_accuracy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each model's accuracy on (logits (M, n, C), labels y); NaN for no records."""
    logits = np.asarray(logits)
    if len(y) == 0:
        return np.full(len(logits), np.nan)
    return np.mean(np.argmax(logits, axis=2) == np.asarray(y)[None, :], axis=1)


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
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
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
    X = as_rows(X)
    n = len(X)
    records = check_records(records, n)
    K, K_diag = kernel_and_diag(X, None, arch, nngp.block_size)
    kernel_scale = float(np.mean(K_diag))
    Y = targets(np.asarray(y), None)
    eig_abs = eigen(K, Y)
    K_TF_abs = kernel_and_diag(as_rows(X_test), X, arch, nngp.block_size)[0] if len(X_test) else None
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
                eig, K_diag / unit, K_TF, float(chosen["sigma2"]), y, y_test, records, nngp.auc_samples, base_seed
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
    y: np.ndarray,
    y_test: np.ndarray,
    records: np.ndarray,
    auc_samples: int,
    base_seed: int,
) -> tuple[dict, dict]:
    """At one σ²: LOOD quartiles of all n records, accuracies, and the studied records' LOOD and NNGP AUC."""
    n = eig.n
    fit = spectral_fit(eig, s2)
    res = lood_at_records(fit, K_diag, np.arange(n))
    kl, mse = res["kl"], res["mse"]
    aucs = np.array(
        [
            nngp_auc(
                res["mean_D"][r],
                res["var_D"][r],
                res["mean_F"][r],
                res["var_F"][r],
                auc_samples,
                seeds.int_seed(base_seed, "nngp_auc", int(r)),
            )
            for r in records
        ]
    ).reshape(-1, 2)
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
        "train_acc": posterior_accuracy(eig.Y - s2 * fit.alpha, y),
        "test_acc": posterior_accuracy(K_TF @ fit.alpha, y_test) if K_TF is not None else float("nan"),
        "n_train": n,
        "n_test": len(y_test),
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
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    records: np.ndarray,
    model: Mapping,
    study: DepthSettings,
    nngp: NNGPSettings,
    loss: str,
    base_seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nngp.csv, nngp_records.csv): one row per (variant, depth, σ² setting), and per studied record at each."""
    rows, recs = [], []
    for variant in study.variants:
        for depth in study.depths:
            point_rows, rec = sweep_point(
                X, y, X_test, y_test, records, variant_arch(model, variant, depth), study, nngp, loss, base_seed
            )
            rows += point_rows
            recs.append(rec)
    return pd.DataFrame(rows), pd.concat(recs, ignore_index=True)


# ----------------------------------------------------------------------------- the networks


def network_row(
    experiment: str,
    arch: Arch,
    lr: Mapping,
    mia: pd.DataFrame,
    lood: pd.DataFrame,
    in_chunks: Sequence[Mapping[str, np.ndarray]],
    y: np.ndarray,
    y_test: np.ndarray,
    loss: str,
) -> dict:
    """One network experiment beside the sweep: MIA AUC over the studied records, the in-models' fit and test accuracy.

    The in-model chunks need logits_train (every training record) and logits_test (X_test);
    lood is the experiment's own nngp/lood.csv (its σ² rule), for the NNGP AUC of the same records;
    lr a row of its nn/lr.csv (the step used and its fraction of the linearised stability bound).
    """
    missing = [k for k in ("logits_train", "logits_test") for c in in_chunks if k not in c]
    if missing:
        raise LoodInputError(
            f"experiment {experiment}: in-model chunks lack {sorted(set(missing))}; rerun train_in_models "
            "(it saves them since issue 14): delete results/<experiment>/nn/in"
        )
    train = np.concatenate([np.asarray(c["logits_train"]) for c in in_chunks])
    test = np.concatenate([np.asarray(c["logits_test"]) for c in in_chunks])
    losses = training_loss(train, y, loss)
    train_acc, test_acc = model_accuracy(train, y), model_accuracy(test, y_test)
    auc = mia["auc"].to_numpy(dtype=float)
    joined = mia[["record"]].merge(lood[["record", "auc_nngp"]], on="record", how="left")
    return {
        "experiment": experiment,
        "activation": arch.activation,
        "w_std": float(arch.w_std),
        "depth": int(arch.depth),
        "width": int(arch.width),
        "variant": variant_label(arch.activation, arch.w_std),
        "lr": float(lr["lr"]),
        "lr_fraction_of_bound": float(lr.get("fraction_of_bound", np.nan)),
        "loss": loss,
        "n_models": len(train),
        "n_records": len(auc),
        "mia_auc_median": float(np.median(auc)),
        "mia_auc_q25": float(np.percentile(auc, 25)),
        "mia_auc_q75": float(np.percentile(auc, 75)),
        "auc_nngp_median": float(np.median(joined["auc_nngp"])),
        "sigma2": float(lood["sigma2"].iloc[0]) if "sigma2" in lood else np.nan,
        "train_loss": float(np.mean(losses)),
        "train_loss_sd": float(np.std(losses)),
        "train_acc": float(np.mean(train_acc)),
        "test_acc": float(np.mean(test_acc)),
        "test_acc_sd": float(np.std(test_acc)),
        "n_test": len(y_test),
    }
