"""Privacy units of the NNGP's leave-one-out posteriors: the likelihood-ratio test's ROC, μ-GDP and ε at δ.

At the query z the with-z ("in", positive) and without-z ("out", negative) posteriors are
N(μ_F, v_F I_C) and N(μ_D, v_D I_C) (docs/math.md §4). The log-likelihood ratio
L = log N(x; μ_F, v_F I) − log N(x; μ_D, v_D I) is the optimal attack's statistic. With equal
variances it is normal and the pair is μ-GDP; otherwise L is a monotone function of ‖x − c‖²,
a scaled noncentral χ²_C under either hypothesis. Every formula: docs/math.md §14.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, special
from scipy.stats import ncx2

from lood.analytic.divergence import lood_at_records
from lood.analytic.tables import NNGP
from lood.errors import LoodInputError
from lood.records import check_records
from lood.settings import PrivacySettings

log = logging.getLogger(__name__)

# Where |v_D / v_F − 1| is below EQUAL_BELOW, or the noncentrality δ² v_D / (v_D − v_F)² exceeds NORMAL_ABOVE
# (SciPy's χ² cdf stops converging near 1e10), L counts as normal and the closed μ-GDP forms are used. Their
# error is linear in v_D/v_F − 1: about 0.3 (v_D/v_F − 1) in TPR at 0.1% FPR and 0.03 (v_D/v_F − 1) in δ(1)
# (measured at μ = 0.5..10, C = 2, 10), so below 3e-5 for μ <= 3 at the switch; tests check both routes meet.
EQUAL_BELOW = 1e-7
NORMAL_ABOVE = 1e9
EPS_MAX = 700.0  # ε search bracket: e^ε must stay finite in float64


class PosteriorPairs(NamedTuple):
    """Per record: in = N(mean_F, var_F I_C), out = N(mean_D, var_D I_C); means (R, C), variances (R,)."""

    mean_F: np.ndarray
    var_F: np.ndarray
    mean_D: np.ndarray
    var_D: np.ndarray

    @classmethod
    def of(cls, mean_F, var_F, mean_D, var_D) -> PosteriorPairs:
        """Checked float64 arrays."""
        mF, mD = np.atleast_2d(np.asarray(mean_F, float)), np.atleast_2d(np.asarray(mean_D, float))
        vF, vD = np.atleast_1d(np.asarray(var_F, float)), np.atleast_1d(np.asarray(var_D, float))
        if mF.shape != mD.shape or vF.shape != vD.shape or vF.shape != (len(mF),):
            raise LoodInputError(f"posterior pairs: shapes differ: {mF.shape}, {vF.shape}, {mD.shape}, {vD.shape}")
        if not (np.all(vF > 0) and np.all(vD > 0)):
            raise LoodInputError("posterior pairs need positive variances var_F, var_D")
        return cls(mF, vF, mD, vD)

    @property
    def outputs(self) -> int:
        return self.mean_F.shape[1]

    @property
    def distance(self) -> np.ndarray:
        """δ = ‖μ_F − μ_D‖."""
        return np.sqrt(np.sum((self.mean_F - self.mean_D) ** 2, axis=1))

    @property
    def mu(self) -> np.ndarray:
        """μ = δ / √v̄, v̄ = (v_F + v_D)/2: the GDP parameter where the variances are equal."""
        return self.distance / np.sqrt((self.var_F + self.var_D) / 2)

    @property
    def var_ratio(self) -> np.ndarray:
        """v_D / v_F: 1 for equal covariances."""
        return self.var_D / self.var_F


def gdp_tpr(fpr: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """μ-GDP trade-off: TPR = Φ(Φ⁻¹(FPR) + μ)."""
    return special.ndtr(special.ndtri(fpr) + mu)


def gdp_delta(eps: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """μ-GDP privacy profile δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2) (0 where μ = 0)."""
    eps, mu = np.broadcast_arrays(np.asarray(eps, float), np.asarray(mu, float))
    m = np.where(mu > 0, mu, 1.0)
    d = special.ndtr(-eps / m + m / 2) - np.exp(eps + special.log_ndtr(-eps / m - m / 2))
    return np.where(mu > 0, np.maximum(d, 0.0), 0.0)


class _Quadratic(NamedTuple):
    """L = k − (a/2) ‖x − c‖²; ‖x − c‖²/v_F ~ χ²_C(λ_F) under in, ‖x − c‖²/v_D ~ χ²_C(λ_D) under out."""

    a: np.ndarray
    k: np.ndarray
    lam_F: np.ndarray
    lam_D: np.ndarray


def _quadratic(p: PosteriorPairs) -> _Quadratic:
    vF, vD, d2 = p.var_F, p.var_D, p.distance**2
    with np.errstate(divide="ignore", invalid="ignore"):
        normal = (np.abs(p.var_ratio - 1) < EQUAL_BELOW) | (vD * d2 / (vD - vF) ** 2 > NORMAL_ABOVE)
    gap = np.where(normal, np.nan, vD - vF)  # NaN marks the records whose L is normal (μ-GDP)
    with np.errstate(invalid="ignore"):
        return _Quadratic(
            a=1 / vF - 1 / vD,
            k=d2 / (2 * gap) + p.outputs / 2 * np.log(vD / vF),
            lam_F=vF * d2 / gap**2,
            lam_D=vD * d2 / gap**2,
        )


def exceedance(p: PosteriorPairs, tau: np.ndarray) -> dict[str, np.ndarray]:
    """P(L > τ), P(L < τ) under in (keys in_above, in_below) and under out (out_above, out_below), per record.

    Each probability is computed directly (cdf or sf), not as 1 minus the other: the hockey-stick
    divergence needs tails far below 1e-16. τ broadcasts against the records (R,) or (T, R).
    """
    q = _quadratic(p)
    C = p.outputs
    tau = np.asarray(tau, float)
    equal = np.isnan(q.k)
    out = {}
    # Unequal: L > τ ⇔ (a > 0) ‖x − c‖² < t or (a < 0) ‖x − c‖² > t, t = 2(k − τ)/a.
    with np.errstate(invalid="ignore", divide="ignore"):
        t = 2 * (q.k - tau) / q.a
        for side, v, lam in (("in", p.var_F, q.lam_F), ("out", p.var_D, q.lam_D)):
            y = np.maximum(t / v, 0.0)
            lo, hi = ncx2.cdf(y, C, lam), ncx2.sf(y, C, lam)
            lo, hi = np.where(t > 0, lo, 0.0), np.where(t > 0, hi, 1.0)
            above, below = np.where(q.a > 0, lo, hi), np.where(q.a > 0, hi, lo)
            # Equal: L ~ N(±μ²/2, μ²) under in / out, μ = δ/√v̄.
            mu = np.where(equal, np.maximum(p.mu, 1e-300), 1.0)  # μ = 0: L ≡ 0, a step at τ = 0
            z = (tau - (mu**2 / 2 if side == "in" else -(mu**2) / 2)) / mu
            out[f"{side}_above"] = np.where(equal, special.ndtr(-z), above)
            out[f"{side}_below"] = np.where(equal, special.ndtr(z), below)
    return out


def tpr_at_fpr(p: PosteriorPairs, fpr: float) -> np.ndarray:
    """TPR of the likelihood-ratio test at false-positive rate `fpr`, per record (exact: χ² quantile, then cdf)."""
    q = _quadratic(p)
    C, equal = p.outputs, np.isnan(q.k)
    with np.errstate(invalid="ignore"):
        lower = q.a > 0  # rejection region ‖x − c‖² < t
        y_D = np.where(lower, ncx2.ppf(fpr, C, q.lam_D), ncx2.isf(fpr, C, q.lam_D))
        y_F = y_D * p.var_D / p.var_F
        tpr = np.where(lower, ncx2.cdf(y_F, C, q.lam_F), ncx2.sf(y_F, C, q.lam_F))
    return np.where(equal, gdp_tpr(fpr, p.mu), tpr)


def hockey_stick(p: PosteriorPairs, eps: np.ndarray) -> np.ndarray:
    """Privacy profile δ(ε) = max(H_ε(in ‖ out), H_ε(out ‖ in)) per record (eps broadcasts against records)."""
    eps = np.asarray(eps, float)
    up, down = exceedance(p, eps), exceedance(p, -eps)
    with np.errstate(over="ignore", invalid="ignore"):
        forward = up["in_above"] - np.exp(eps) * up["out_above"]
        backward = down["out_below"] - np.exp(eps) * down["in_below"]
    return np.maximum(np.maximum(forward, backward), 0.0)


def epsilon_at_delta(p: PosteriorPairs, delta: float) -> np.ndarray:
    """The smallest ε >= 0 with δ(ε) <= delta, per record (brentq on the decreasing profile)."""
    if not 0 < delta < 1:
        raise LoodInputError(f"privacy.delta must lie in (0, 1), got {delta}")
    eps = np.zeros(len(p.var_F))
    for j in range(len(eps)):
        one = PosteriorPairs(*(a[j : j + 1] for a in p))

        def excess(e: float, one=one) -> float:
            return float(hockey_stick(one, np.array([e]))[0]) - delta

        if excess(0.0) <= 0:
            continue
        hi = 1.0
        while excess(hi) > 0 and hi < EPS_MAX:
            hi *= 2
        eps[j] = optimize.brentq(excess, 0.0, min(hi, EPS_MAX), xtol=1e-10) if excess(min(hi, EPS_MAX)) <= 0 else np.inf
    return eps


def pooled_roc(p: PosteriorPairs, fpr: Sequence[float]) -> np.ndarray:
    """TPR at each `fpr` of the test that thresholds L with one τ for all records, each equally often in and out.

    FPR(τ) = mean_r P_out,r(L_r > τ) and TPR(τ) = mean_r P_in,r(L_r > τ): τ solves FPR(τ) = fpr by brentq.
    """
    tprs = []
    for alpha in np.asarray(fpr, float):

        def excess(tau: float, alpha=alpha) -> float:
            return float(np.mean(exceedance(p, np.array(tau))["out_above"])) - alpha

        lo, hi = -1.0, 1.0
        while excess(lo) < 0:
            lo *= 2
        while excess(hi) > 0:
            hi *= 2
        tau = optimize.brentq(excess, lo, hi, xtol=1e-12, rtol=1e-12)
        tprs.append(float(np.mean(exceedance(p, np.array(tau))["in_above"])))
    return np.array(tprs)


def privacy_prediction(p: PosteriorPairs, records: Sequence[int], fprs: Sequence[float], delta: float) -> pd.DataFrame:
    """Per record: δ, μ, v_D/v_F, TPR at each of `fprs` (columns tpr_at_<fpr>), ε at δ."""
    table = pd.DataFrame(
        {"record": np.asarray(records, dtype=np.int64), "distance": p.distance, "mu": p.mu, "var_ratio": p.var_ratio}
    )
    for alpha in fprs:
        table[fpr_column(alpha)] = tpr_at_fpr(p, float(alpha))
    table["eps"] = epsilon_at_delta(p, delta)
    table["delta"] = float(delta)
    return table


def fpr_column(alpha: float) -> str:
    """The column name of TPR at false-positive rate alpha, e.g. tpr_at_0.001."""
    return f"tpr_at_{float(alpha):g}"


def roc_grid(lowest: float, points: int) -> np.ndarray:
    """`points` log-spaced false-positive rates from `lowest` to 1."""
    return np.geomspace(float(lowest), 1.0, int(points))


def nngp_privacy_tables(
    gp: NNGP, records: Sequence[int], privacy: PrivacySettings, n_out: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-record prediction, pooled ROC) of the NNGP's leave-one-out posteriors at Q = {z} (docs/math.md §4).

    TPRs at privacy.fprs and at 1/n_out (the lowest FPR the networks' out-models support); the pooled ROC
    runs from FPR = min(those)/10 to 1 on privacy.roc_points log-spaced rates and those (columns fpr, tpr).
    """
    records = check_records(records, gp.fit.n)
    res = lood_at_records(gp.fit, gp.K_diag, records)
    pairs = PosteriorPairs.of(res["mean_F"], res["var_F"], res["mean_D"], res["var_D"])
    fprs = sorted({float(a) for a in privacy.fprs} | {1.0 / int(n_out)})
    table = privacy_prediction(pairs, records, fprs, privacy.delta)
    grid = np.union1d(roc_grid(min(fprs) / 10, privacy.roc_points), fprs)  # holds the reported rates exactly
    roc = pd.DataFrame({"fpr": grid, "tpr": pooled_roc(pairs, grid)})
    log.info(
        "NNGP prediction over %d records: mu median %.3g, v_D/v_F median %.3g (max %.3g), eps at delta %g median %.3g; "
        "pooled %s",
        len(records),
        np.median(table["mu"]),
        np.median(table["var_ratio"]),
        np.max(table["var_ratio"]),
        privacy.delta,
        np.median(table["eps"]),
        ", ".join(f"TPR at FPR {a:g} {t:.4f}" for a, t in zip(fprs, pooled_roc(pairs, fprs), strict=True)),
    )
    return table, roc
