"""The analytic models of the studied records' leakage (`nngp.model`, `nngp.spread`): lood.csv and the size study.

posterior: the NNGP's Bayesian posterior at σ² (lood.analytic.gp); ensemble: the gradient-descent
ensemble of infinitely wide networks at the networks' training time (lood.analytic.ensemble). The
spread `calibrate` scales either model's covariance by the one c that matches its predictive
variance to the in-models' across-seed logit variance (training and held-out records). Nothing
here reads an out-model or the attack. docs/size.md; formulas in docs/math.md §17.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lood import seeds
from lood.analytic.divergence import _lam_term, nngp_auc
from lood.analytic.ensemble import ensemble_loo, ensemble_variances, gd_time, logit_variance, spread_scale
from lood.analytic.gp import fit_gp, targets
from lood.analytic.kernel import as_rows, kernel_and_diag, ntk_kernel
from lood.errors import LoodInputError
from lood.records import check_records
from lood.settings import Arch, Training

log = logging.getLogger(__name__)

MODELS = ("posterior", "ensemble")
SPREADS = ("none", "calibrate")
# Held-out records used for the spread fit and its report (their kernel rows cost O(n) each).
MAX_HELD_OUT = 300


def gaussian_kl(mean_D: np.ndarray, var_D: np.ndarray, mean_F: np.ndarray, var_F: np.ndarray) -> np.ndarray:
    """KL(N(μ_D, v_D I_C) ‖ N(μ_F, v_F I_C)) per row: C/2 (λ − 1 − log λ) + ‖μ_D − μ_F‖² / (2 v_F), λ = v_D / v_F."""
    C = mean_F.shape[1]
    return C / 2 * _lam_term(var_D / var_F) + np.sum((mean_D - mean_F) ** 2, axis=1) / (2 * var_F)


def training_time(training: Training, lr: float, n: int, n_classes: int) -> float:
    """τ of the workflow's SGD (lood.analytic.ensemble.gd_time) with the resolved lr and its milestones."""
    epochs = np.arange(int(training.epochs))
    passed = (np.asarray(training.lr_milestones, dtype=np.int64)[None, :] <= epochs[:, None]).sum(axis=1)
    factors = float(training.lr_gamma) ** passed
    return gd_time(lr, int(training.epochs), int(training.batch_size), n, n_classes, float(training.momentum), factors)


def model_predictions(
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    records: Sequence[int],
    arch: Arch,
    sigma2: float,
    tau: float,
    in_train_logits: np.ndarray | None,
    in_test_logits: np.ndarray | None,
    block_size: int,
    models: Sequence[str] = MODELS,
) -> tuple[dict[str, dict[str, np.ndarray]], pd.DataFrame]:
    """Per model: means and variances at the records with and without each, and the spread fits (a table).

    Reads the in-models' logits on the training and held-out records (their across-seed variance) and
    nothing of the out-models. Cost: one n x n eigendecomposition per studied record for the ensemble.
    """
    X = as_rows(X)
    X_test = as_rows(X_test)[:MAX_HELD_OUT] if len(X_test) else np.empty((0, X.shape[1]))
    records = check_records(np.asarray(records), len(X))
    n, T = len(X), len(X_test)
    Y = targets(np.asarray(y), None)
    both = np.concatenate([X, X_test])
    K, _ = kernel_and_diag(both, None, arch, block_size)
    theta = ntk_kernel(both, arch) if "ensemble" in models else None
    K_FF, K_TF, K_TT = K[:n, :n], K[n:, :n], np.diag(K)[n:]
    nn_var = None
    if in_train_logits is not None:
        nn_var = np.concatenate([logit_variance(in_train_logits), logit_variance(np.asarray(in_test_logits)[:, :T])])

    fit = fit_gp(K_FF, Y, sigma2)
    s2 = fit.noise
    p = fit.p_diag
    train_var = np.clip(s2 * (1.0 - s2 * p), 0.0, None)
    V = np.linalg.solve(fit.chol, K_TF.T) if T else np.empty((n, 0))
    test_var = np.clip(K_TT - np.einsum("it,it->t", V, V), 0.0, None)
    p_r = p[records]
    u = np.clip(1.0 - s2 * p_r, 0.0, 1.0)
    mean_F = fit.Y[records] - s2 * fit.alpha[records]
    out: dict[str, dict[str, np.ndarray]] = {}
    out["posterior"] = {
        "mean_F": mean_F,
        "var_F": np.maximum(s2 * u, np.finfo(float).tiny),
        "mean_D": mean_F - u[:, None] * fit.alpha[records] / p_r[:, None],
        "var_D": s2 * u + u**2 / p_r,
        "model_var": np.concatenate([train_var, test_var]),
    }
    if "ensemble" in models:
        ens = ensemble_loo(theta[:n, :n], K_FF, Y, records, tau)
        ens_var = ensemble_variances(theta[:, :n], theta[:n, :n], K[:, :n], K_FF, np.diag(K), tau)
        out["ensemble"] = ens | {"model_var": ens_var}
    out = {k: v for k, v in out.items() if k in models}
    fits = []
    for name, res in out.items():
        res["scale"] = 1.0
        if nn_var is None:  # spread none: nothing to fit
            continue
        fit_row = spread_scale(res["model_var"], nn_var)
        res["scale"] = fit_row["scale"]
        train_fit = spread_scale(res["model_var"][:n], nn_var[:n])["scale"]
        test_fit = spread_scale(res["model_var"][n:], nn_var[n:])["scale"] if T else np.nan
        fits.append(
            {
                "model": name,
                **fit_row,
                "scale_train_only": train_fit,
                "scale_test_only": test_fit,
                "held_out": T,
                "tau": tau if name == "ensemble" else np.nan,
                "sigma2": sigma2 if name == "posterior" else np.nan,
            }
        )
    return out, pd.DataFrame(fits) if fits else pd.DataFrame(columns=["model", "scale"])


def size_rows(
    predictions: Mapping[str, Mapping[str, np.ndarray]],
    records: Sequence[int],
    auc_samples: int,
    base_seed: int,
    spreads: Sequence[str] = SPREADS,
) -> pd.DataFrame:
    """Per record, model and spread: the KL and the predicted AUC (Monte Carlo seeds as in lood.csv)."""
    rows = []
    for name, res in predictions.items():
        for spread in spreads:
            c = res["scale"] if spread == "calibrate" else 1.0
            vD, vF = c * res["var_D"], c * res["var_F"]
            kl = gaussian_kl(res["mean_D"], vD, res["mean_F"], vF)
            for j, r in enumerate(records):
                auc, se = nngp_auc(
                    res["mean_D"][j],
                    vD[j],
                    res["mean_F"][j],
                    vF[j],
                    auc_samples,
                    seeds.int_seed(base_seed, "nngp_auc", int(r)),
                )
                rows.append(
                    {
                        "record": int(r),
                        "model": name,
                        "spread": spread,
                        "scale": c,
                        "kl": kl[j],
                        "auc_pred": auc,
                        "auc_pred_se": se,
                        "var_F": vF[j],
                        "var_D": vD[j],
                    }
                )
    return pd.DataFrame(rows)


def _stacked_logits(chunks: Sequence[Mapping[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    train = np.concatenate([np.asarray(c["logits_train"]) for c in chunks])
    if all("logits_test" in c for c in chunks):
        return train, np.concatenate([np.asarray(c["logits_test"]) for c in chunks])
    return train, np.empty((len(train), 0, train.shape[2]))


def model_lood_table(
    dataset: Mapping[str, np.ndarray],
    records: Sequence[int],
    arch: Arch,
    training: Training,
    lr: float,
    sigma2: float,
    chunks: Sequence[Mapping[str, np.ndarray]],
    model: str,
    spread: str,
    auc_samples: int,
    base_seed: int,
    block_size: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(lood.csv, spread.csv) for nngp.model and nngp.spread: kl, mse, auc_nngp at the studied records, and the fit.

    Only the in-models' logits on training and held-out records enter (for spread calibrate); with
    spread none no logits are read. The mean-distance LOOD `mse` is ½ mean over outputs of (μ_D − μ_F)².
    """
    if model not in MODELS or spread not in SPREADS:
        raise LoodInputError(f"nngp.model {model!r} / nngp.spread {spread!r}: allowed {MODELS} / {SPREADS}")
    X, y = np.asarray(dataset["X"]), np.asarray(dataset["y"])
    C = max(int(y.max()) + 1, 2)
    if spread == "calibrate":
        if not chunks:
            raise LoodInputError("nngp.spread calibrate needs the in-model chunks (their logits_train, logits_test)")
        train, test = _stacked_logits(chunks)
        X_test = np.asarray(dataset.get("X_test", np.empty((0, X.shape[1]))))
    else:  # no logits needed: a model variance against itself gives scale 1, never used
        train = test = None
        X_test = np.empty((0, X.shape[1]))
    tau = training_time(training, lr, len(X), C)
    predictions, fits = model_predictions(X, y, X_test, records, arch, sigma2, tau, train, test, block_size, (model,))
    rows = size_rows(predictions, records, auc_samples, base_seed, (spread,))
    res = predictions[model]
    mse = 0.5 * np.mean((res["mean_D"] - res["mean_F"]) ** 2, axis=1)
    table = pd.DataFrame(
        {
            "record": rows["record"],
            "kl": rows["kl"],
            "mse": mse,
            "auc_nngp": rows["auc_pred"],
            "auc_nngp_se": rows["auc_pred_se"],
            "model": model,
            "spread": spread,
            "spread_scale": rows["scale"],
            "sigma2": sigma2 if model == "posterior" else np.nan,
            "tau": tau if model == "ensemble" else np.nan,
        }
    )
    return table, fits


def experiment_lood(
    dataset: Mapping[str, np.ndarray],
    records: Sequence[int],
    arch: Mapping,
    training: Mapping,
    nngp: Mapping,
    sigma2_csv: str,
    lr_csv: str,
    chunks: Sequence[Mapping[str, np.ndarray]],
    base_seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """lood.csv and spread.csv of the workflow (rule nngp_lood), logged.

    posterior with spread none is lood.analytic.tables.lood_table, as before; every other choice is
    ``model_lood_table``. σ² comes from sigma2.csv (rule choose_sigma2), the step from lr.csv.
    """
    from lood.analytic.sigma2 import read_sigma2
    from lood.analytic.tables import lood_table, prepare
    from lood.io import read_lr
    from lood.settings import NNGPSettings

    settings = NNGPSettings.from_config(nngp)
    arch_s, training_s = Arch.from_config(arch), Training.from_config(training)
    sigma2 = read_sigma2(pd.read_csv(sigma2_csv))
    model, spread = nngp["model"], nngp["spread"]
    if model == "posterior" and spread == "none":
        gp = prepare(dataset["X"], dataset["y"], arch_s, sigma2, settings.block_size)
        table = lood_table(gp, records, settings.auc_samples, base_seed)
        table = table.assign(model=model, spread=spread, spread_scale=1.0, sigma2=sigma2, tau=np.nan)
        fits = pd.DataFrame(columns=["model", "scale"])
    else:
        lr = read_lr(lr_csv)  # the step the networks were trained with: the number, or auto's choice
        table, fits = model_lood_table(
            dataset,
            records,
            arch_s,
            training_s,
            lr,
            sigma2,
            chunks,
            model,
            spread,
            settings.auc_samples,
            base_seed,
            settings.block_size,
        )
    log.info(
        "LOOD (%s, spread %s) over %d records: KL median %.4g, max %.4g; AUC median %.4g",
        model,
        spread,
        len(table),
        table["kl"].median(),
        table["kl"].max(),
        table["auc_nngp"].median(),
    )
    for _, row in fits.iterrows():
        log.info(
            "spread fit (%s): scale %.4g over %d records (model variance %.4g, in-models' %.4g, correlation %.3f)",
            row["model"],
            row["scale"],
            row["records"],
            row["model_var_mean"],
            row["network_var_mean"],
            row["correlation"],
        )
    return table, fits
