"""Choosing the GP noise σ² by a rule that never reads out-models or attack results (docs/math.md §12).

One eigendecomposition K_FF = V diag(λ) Vᵀ serves every σ² of a grid: α(σ²) = V (Λ + σ²)⁻¹ Vᵀ Y,
μ_F(X) = Y − σ²α = V Λ(Λ + σ²)⁻¹ Vᵀ Y and P_ii = Σ_j V_ij² / (λ_j + σ²), each O(n²) or less per σ²
(lood.analytic.spectral).

Rules (`nngp.sigma2`):

* ``calibrate``: least squares between μ_F(x_i; σ²) and the in-models' mean logits on the
  training records (all n records, all C outputs). For ``training.loss: mse`` the logits are
  compared as they are (the networks regress the same centred one-hot targets as the GP). For
  ``cross_entropy`` the logits live on another scale (softmax is invariant to a shift per record,
  and their size grows with training): both sides are centred per record and a scale a ≥ 0 is
  fitted, min_a ‖a μ_F − f̄‖², so the rule matches the *shape* of the fit, not its size.
* ``marginal_likelihood``: maximise the evidence of Y under the GP prior with a fitted output
  scale a (covariance a (K_FF + σ²I); profile likelihood, â = tr(Yᵀ P Y) / (nC)). The fixed-scale
  evidence is computed too (`log_evidence`, `fit_scale=False`) and reported, not used.
* a number: used as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from lood.analytic.divergence import lood_at_records, nngp_aucs
from lood.analytic.gp import targets
from lood.analytic.kernel import as_rows, kernel_and_diag
from lood.analytic.spectral import KernelEigen, check_sigma2, eigen, spectral_fit
from lood.config import check_choice
from lood.errors import LoodInputError
from lood.records import check_records
from lood.settings import Arch, NNGPSettings

RULES = ("calibrate", "marginal_likelihood")


def sigma2_grid(low: float, high: float, points: int) -> np.ndarray:
    """A log-spaced grid of σ² from low to high (both > 0)."""
    if not (0 < low < high) or int(points) < 2:
        raise LoodInputError(
            f"nngp.grid_min and grid_max must satisfy 0 < grid_min < grid_max and grid_points >= 2; "
            f"got {low}, {high}, {points}"
        )
    return np.geomspace(float(low), float(high), int(points))


def mean_train_logits(in_train_logits: np.ndarray, n: int, C: int) -> np.ndarray:
    """The in-models' mean logits on the n training records, from (models, n, C) logits."""
    logits = np.asarray(in_train_logits, dtype=np.float64)
    if logits.ndim != 3 or logits.shape[1:] != (n, C):
        raise LoodInputError(
            f"in-model training logits must be (models, {n} records, {C} outputs), got {logits.shape}: "
            "rerun train_in_models (it saves logits_train)"
        )
    if not np.all(np.isfinite(logits)):
        raise LoodInputError("in-model training logits contain NaN or inf: training diverged; lower training.lr")
    return logits.mean(axis=0)


def calibration_curve(eig: KernelEigen, target: np.ndarray, grid: np.ndarray, loss: str) -> pd.DataFrame:
    """The calibrate objective per σ²: mean over records and outputs of (a μ_F − f̄)², and the scale a.

    mse: a = 1 and f̄ as given. cross_entropy: f̄ centred per record (μ_F's rows already sum to 0
    when Y's do; they are centred too) and a = max(0, ⟨μ, f̄⟩ / ‖μ‖²) fitted per σ². Evaluated in
    the eigenbasis, where the residual is Λ(Λ + σ²)⁻¹ VᵀY − Vᵀf̄ (V is orthogonal): O(nC) per σ².
    """
    grid = check_sigma2(grid)
    target = np.asarray(target, dtype=np.float64)
    if target.shape != eig.Y.shape:
        raise LoodInputError(f"calibration target must be n x C = {eig.Y.shape}, got {target.shape}")
    if loss not in ("mse", "cross_entropy"):
        raise LoodInputError(f"training.loss {loss!r} unknown; allowed: mse, cross_entropy")
    centre = loss == "cross_entropy"
    Y = eig.Y - eig.Y.mean(axis=1, keepdims=True) if centre else eig.Y
    f = target - target.mean(axis=1, keepdims=True) if centre else target
    VtY, Vtf = eig.V.T @ Y, eig.V.T @ f
    rows = []
    for s2 in grid:
        mu = (eig.lam / (eig.lam + s2))[:, None] * VtY
        scale = 1.0
        if centre:
            mm = float(np.sum(mu * mu))
            scale = max(float(np.sum(mu * Vtf)) / mm, 0.0) if mm > 0 else 0.0
        rows.append({"sigma2": float(s2), "objective": float(np.mean((scale * mu - Vtf) ** 2)), "scale": scale})
    return pd.DataFrame(rows)


def log_evidence(eig: KernelEigen, grid: np.ndarray, fit_scale: bool) -> pd.DataFrame:
    """log p(Y | σ²) of the C independent GP outputs, per σ² (docs/math.md §12), and the output scale.

    Without a fitted scale: −½ tr(YᵀPY) − C/2 log det(K + σ²I) − nC/2 log 2π. With one, a maximises
    the evidence of covariance a(K + σ²I): â = tr(YᵀPY)/(nC), and the profile value is
    −nC/2 (1 + log â + log 2π) − C/2 log det(K + σ²I). O(nC) per σ² in the eigenbasis.
    """
    grid = check_sigma2(grid)
    n, C = eig.Y.shape
    rows = []
    for s2 in grid:
        d = eig.lam + s2
        quad = float(np.sum(eig.VtY**2 / d[:, None]))
        logdet = float(np.sum(np.log(d)))
        if fit_scale:
            scale = quad / (n * C)
            value = -n * C / 2 * (1 + np.log(scale) + np.log(2 * np.pi)) - C / 2 * logdet
        else:
            scale = 1.0
            value = -quad / 2 - C / 2 * logdet - n * C / 2 * np.log(2 * np.pi)
        rows.append({"sigma2": float(s2), "log_evidence": float(value), "scale": scale})
    return pd.DataFrame(rows)


def objective_curve(
    eig: KernelEigen, rule: str, grid: np.ndarray, target: np.ndarray | None, loss: str
) -> pd.DataFrame:
    """The curve a rule minimises over the grid: columns sigma2, objective, scale.

    calibrate: the calibration mean squared error; marginal_likelihood: −log evidence per
    record and output, −log p(Y | σ², â) / (nC), with the output scale fitted.
    """
    if rule == "calibrate":
        if target is None:
            raise LoodInputError("nngp.sigma2: calibrate needs the in-models' logits on the training records")
        return calibration_curve(eig, target, grid, loss)
    if rule == "marginal_likelihood":
        ev = log_evidence(eig, grid, fit_scale=True)
        return pd.DataFrame(
            {"sigma2": ev["sigma2"], "objective": -ev["log_evidence"] / eig.Y.size, "scale": ev["scale"]}
        )
    raise LoodInputError(f"nngp.sigma2 {rule!r} unknown; allowed: a number >= 0, {', '.join(RULES)}")


def choose_sigma2(curve: pd.DataFrame, rule: str) -> dict[str, float | str | bool]:
    """The grid point with the smallest objective; `at_edge` flags a minimum on the grid's boundary."""
    k = int(np.argmin(curve["objective"].to_numpy()))
    return {
        "sigma2": float(curve["sigma2"].iloc[k]),
        "rule": rule,
        "objective": float(curve["objective"].iloc[k]),
        "scale": float(curve["scale"].iloc[k]),
        "at_edge": bool(k in (0, len(curve) - 1)),
    }


def sigma2_edge_gate(chosen: dict, nngp: NNGPSettings, allow: bool) -> str | None:
    """None unless the rule's σ² is the first or last grid point; then the one message naming cause and fix.

    Raises LoodInputError with it unless `allow` (checks.allow_sigma2_at_edge): a σ² on the edge means the
    rule's optimum lies outside the grid, so the GP matched to the in-models is not the one reported.
    """
    if not chosen.get("at_edge"):
        return None
    side = "largest" if np.isclose(chosen["sigma2"], nngp.grid_max) else "smallest"
    message = (
        f"nngp.sigma2 {chosen['rule']} ended on the {side} sigma^2 of its grid ({chosen['sigma2']:.4g}; "
        f"nngp.grid_min {nngp.grid_min:g}, grid_max {nngp.grid_max:g}): its optimum lies outside the grid, so "
        "the NNGP is not matched to the in-models. Likely cause: in-models that barely learned "
        "(results/<experiment>/nn/learning.csv) or inputs far from [0, 1] (set data.normalise: auto); else "
        "widen nngp.grid_min / grid_max. To continue anyway, set checks.allow_sigma2_at_edge: true "
        "(the report then says so first)."
    )
    if not allow:
        raise LoodInputError(message)
    return message


def read_sigma2(table: pd.DataFrame) -> float:
    """The σ² of a sigma2.csv table (one row, column sigma2)."""
    if len(table) != 1 or "sigma2" not in table:
        raise LoodInputError(
            f"sigma2.csv must have one row with a sigma2 column, got columns {list(table.columns)} x {len(table)} rows"
        )
    value = float(table["sigma2"].iloc[0])
    if not value >= 0:
        raise LoodInputError(f"sigma2.csv holds sigma2 = {value}; it must be >= 0")
    return value


def lood_grid_table(
    eig: KernelEigen, K_diag: np.ndarray, records: np.ndarray, grid: np.ndarray, auc_samples: int, base_seed: int
) -> pd.DataFrame:
    """KL, mean-distance LOOD and NNGP AUC of the studied records at every σ² of the grid (long format).

    Each σ² costs O(n²) from the one eigendecomposition; the NNGP AUC uses the seeds of lood.csv
    (int_seed(base, 'nngp_auc', record)), so at the σ² the workflow used it reproduces lood.csv's values.
    """
    grid = check_sigma2(grid)
    records = check_records(records, eig.n)
    frames = []
    for s2 in grid:
        res = lood_at_records(spectral_fit(eig, s2), K_diag, records)
        auc = nngp_aucs(res, records, auc_samples, base_seed)[:, 0]
        frames.append(
            pd.DataFrame({"sigma2": float(s2), "record": records, "kl": res["kl"], "mse": res["mse"], "auc_nngp": auc})
        )
    return pd.concat(frames, ignore_index=True)


def objectives_table(eig: KernelEigen, grid: np.ndarray, target: np.ndarray | None, loss: str) -> pd.DataFrame:
    """Both rules' objectives per σ²: calibration MSE (NaN without a target), −log evidence / (nC) scaled and fixed."""
    grid = check_sigma2(grid)
    scaled, fixed = log_evidence(eig, grid, fit_scale=True), log_evidence(eig, grid, fit_scale=False)
    cal = calibration_curve(eig, target, grid, loss) if target is not None else None
    return pd.DataFrame(
        {
            "sigma2": grid,
            "calibration_objective": cal["objective"] if cal is not None else np.nan,
            "calibration_scale": cal["scale"] if cal is not None else np.nan,
            "neg_log_evidence_scaled": -scaled["log_evidence"] / eig.Y.size,
            "evidence_scale": scaled["scale"],
            "neg_log_evidence_fixed": -fixed["log_evidence"] / eig.Y.size,
        }
    )


# ----------------------------------------------------------------------------- workflow entry points


def stack_train_logits(chunks: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
    """The in-models' logits on every training record, (models, n, C), joined over the in-model chunks."""
    missing = [i for i, c in enumerate(chunks) if "logits_train" not in c]
    if not chunks or missing:
        raise LoodInputError(
            f"in-model chunks {missing} have no logits_train (written by train_in_models since nngp.sigma2 "
            "calibrate): delete results/<experiment>/nn/in and rerun"
        )
    return np.concatenate([np.asarray(c["logits_train"]) for c in chunks])


def _kernel_eigen(X: np.ndarray, y: np.ndarray, arch: Arch, block_size: int) -> tuple[KernelEigen, np.ndarray]:
    X = as_rows(X)
    K, K_diag = kernel_and_diag(X, None, arch, block_size)
    return eigen(K, targets(np.asarray(y), None)), K_diag


def _target(eig: KernelEigen, in_train_logits: np.ndarray | None) -> np.ndarray | None:
    return None if in_train_logits is None else mean_train_logits(in_train_logits, *eig.Y.shape)


def experiment_sigma2(
    X: np.ndarray,
    y: np.ndarray,
    arch: Arch,
    nngp: NNGPSettings,
    in_train_logits: np.ndarray | None,
    loss: str,
    allow_edge: bool,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(sigma2.csv, sigma2_curve.csv): the σ² that nngp.sigma2 names, and the curve its rule minimised.

    A number is used as it is (curve: that one row). calibrate needs in_train_logits (models, n, C).
    A rule's σ² on its grid's edge stops the run (``sigma2_edge_gate``) unless `allow_edge`; the table's
    `gate` column then holds the message.
    """
    check_choice(loss, "loss", "training.loss")
    if nngp.rule == "fixed":
        chosen = {"sigma2": float(nngp.sigma2), "rule": "fixed", "objective": np.nan, "scale": np.nan, "at_edge": False}
        curve = pd.DataFrame({"sigma2": [float(nngp.sigma2)], "objective": [np.nan], "scale": [np.nan]})
    else:
        eig, _ = _kernel_eigen(X, y, arch, nngp.block_size)
        grid = sigma2_grid(nngp.grid_min, nngp.grid_max, nngp.grid_points)
        curve = objective_curve(
            eig, nngp.rule, grid, _target(eig, in_train_logits) if nngp.rule == "calibrate" else None, loss
        )
        chosen = choose_sigma2(curve, nngp.rule)
    gate = sigma2_edge_gate(chosen, nngp, allow_edge)
    return pd.DataFrame([chosen | {"loss": loss, "gate": gate or ""}]), curve


def sensitivity(
    X: np.ndarray,
    y: np.ndarray,
    arch: Arch,
    nngp: NNGPSettings,
    records: np.ndarray,
    in_train_logits: np.ndarray | None,
    loss: str,
    base_seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(lood_grid_table, objectives_table) over the nngp grid, from the experiment's kernel and in-models."""
    check_choice(loss, "loss", "training.loss")
    eig, K_diag = _kernel_eigen(X, y, arch, nngp.block_size)
    grid = sigma2_grid(nngp.grid_min, nngp.grid_max, nngp.grid_points)
    return (
        lood_grid_table(eig, K_diag, records, grid, nngp.auc_samples, base_seed),
        objectives_table(eig, grid, _target(eig, in_train_logits), loss),
    )
