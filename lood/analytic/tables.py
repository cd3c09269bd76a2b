"""The analytic side's tables: LOOD of chosen records, of every record, and along the landscape.

Thin builders over the kernel (lood.analytic.kernel), the GP fit (lood.analytic.gp) and the divergences
(lood.analytic.divergence); `prepare` computes the kernel and its one factorisation, which every
table of the same training set then shares (pass the returned NNGP around).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg

from lood.analytic.divergence import lood_at_records, nngp_aucs, posterior_var_floor, single_query_lood
from lood.analytic.gp import GPFit, fit_gp, targets
from lood.analytic.kernel import as_rows, kernel_and_diag
from lood.errors import LoodInputError
from lood.records import check_records
from lood.settings import Arch


@dataclass(frozen=True)
class NNGP:
    """A training set with its kernel diagonal and its one GP factorisation (docs/math.md §2)."""

    X: np.ndarray
    y: np.ndarray
    arch: Arch
    fit: GPFit
    K_diag: np.ndarray
    block_size: int


def prepare(X: np.ndarray, y: np.ndarray, arch: Arch, sigma2: float, block_size: int) -> NNGP:
    """Kernel K_FF of (X, arch) and the factorisation of K_FF + σ²I for the centred one-hot targets of y."""
    X = as_rows(X)
    y = np.asarray(y)
    if len(y) != len(X):
        raise LoodInputError(f"X has {len(X)} rows but y has {len(y)} labels")
    K, K_diag = kernel_and_diag(X, None, arch, block_size)
    fit = fit_gp(K, targets(y, None), sigma2)
    return NNGP(X=X, y=y, arch=arch, fit=fit, K_diag=K_diag, block_size=int(block_size))


def lood_table(gp: NNGP, records: np.ndarray, auc_samples: int, base_seed: int) -> pd.DataFrame:
    """KL- and mean-distance LOOD at Q = {z} and the NNGP AUC, one row per requested record (in order)."""
    records = check_records(records, gp.fit.n)
    res = lood_at_records(gp.fit, gp.K_diag, records)
    auc, se = nngp_aucs(res, records, auc_samples, base_seed).T
    return pd.DataFrame({"record": records, "kl": res["kl"], "mse": res["mse"], "auc_nngp": auc, "auc_nngp_se": se})


def lood_all_table(gp: NNGP) -> pd.DataFrame:
    """KL- and mean-distance LOOD at Q = {z} of every training record from one factorisation."""
    records = np.arange(gp.fit.n)
    res = lood_at_records(gp.fit, gp.K_diag, records)
    return pd.DataFrame({"record": records, "label": gp.y, "kl": res["kl"], "mse": res["mse"]})


def landscape_table(gp: NNGP, probes: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """LOOD of record records[j] at each single query queries[j, k] = z + t[k] r (docs/math.md §8)."""
    records = check_records(probes["records"], gp.fit.n)
    t = np.asarray(probes["t"], dtype=np.float64)
    queries = np.asarray(probes["queries"], dtype=np.float64)
    R, T = len(records), len(t)
    if queries.shape[:2] != (R, T):
        raise LoodInputError(f"probes: queries must be (records, t, ...) = ({R}, {T}, ...), got {queries.shape}")
    Q = queries.reshape(R * T, -1)
    K_QF, K_QQ = kernel_and_diag(Q, gp.X, gp.arch, gp.block_size)
    V = scipy.linalg.solve_triangular(gp.fit.chol, K_QF.T, lower=True)
    var_F = np.maximum(K_QQ - np.einsum("ij,ij->j", V, V), posterior_var_floor(K_QQ)).reshape(R, T)
    P = gp.fit.p_columns(records)  # (n, R)
    u = np.einsum("rtn,nr->rt", K_QF.reshape(R, T, -1), P)
    p_ii = np.broadcast_to(P[records, np.arange(R)][:, None], (R, T))
    kl, mse = single_query_lood(gp.fit, np.repeat(records[:, None], T, axis=1), p_ii, u, u**2 / (p_ii * var_F))
    return pd.DataFrame({"record": np.repeat(records, T), "t": np.tile(t, R), "kl": kl.ravel(), "mse": mse.ravel()})
