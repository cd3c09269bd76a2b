"""The NNGP AUC of every record, exactly: the likelihood-ratio test's AUC by deterministic quadrature.

The audit (lood.studies.audit) calls `nngp_auc_exact` on all n records, where Monte Carlo would cost
seconds per thousand records (docs/math.md §6, "Exact AUC").
"""

from __future__ import annotations

import numpy as np
from scipy import special
from scipy.special import roots_genlaguerre, roots_legendre

from lood.errors import LoodInputError

# NNGP AUC quadrature: Gauss-Legendre nodes in sqrt(y) over the out-distribution's range, which
# Laurent-Massart's tail bound with t = AUC_TAIL sets (mass outside < 2 e^-t); 64 nodes were
# within 5e-12 of 400 on 2,000 random records (tests/studies/test_audit.py checks closed forms and MC).
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
    Same quantity as lood.analytic.divergence.nngp_auc (its Monte Carlo estimate), without sampling error.
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
