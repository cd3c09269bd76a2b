"""Leave-group-out: LOOD of removing k records at once, from F's one factorisation (docs/math.md §11).

Three uses share the rank-k identities: any group G of training records (`group_lood`),
m copies of one record (`duplicate_table`, F extended by m − 1 copies through a Cholesky
append), and a record with its k − 1 nearest same-label neighbours (`neighbour_table`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.linalg

from lood import seeds
from lood.analytic.divergence import kl_lood, lood_at_records, nngp_auc, x_minus_log1p
from lood.analytic.gp import GPFit, posterior
from lood.analytic.kernel import kernel_and_diag
from lood.analytic.tables import NNGP
from lood.errors import LoodInputError
from lood.records import check_records

_TINY = np.finfo(np.float64).tiny


def check_group(group: np.ndarray | Sequence[int], n: int, key: str) -> np.ndarray:
    """A group as int64 indices: non-empty, distinct, in 0..n-1; else a LoodInputError naming `key`."""
    group = np.atleast_1d(np.asarray(group))
    if len(group) == 0:
        raise LoodInputError(f"{key}: a group needs at least one record")
    try:
        group = check_records(group, n)
    except LoodInputError as exc:
        raise LoodInputError(f"{key}: {exc}") from None
    if len(np.unique(group)) != len(group):
        raise LoodInputError(f"{key}: group {group.tolist()} lists a record twice")
    return group


def _p_gg_factor(P_G: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, bool]:
    """Cholesky factor of P_GG = P[G, G] (positive definite because P is)."""
    P_GG = P_G[group]
    return scipy.linalg.cho_factor((P_GG + P_GG.T) / 2, lower=True)


def group_posteriors(fit: GPFit, group: np.ndarray, K_QF: np.ndarray, K_QQ: np.ndarray) -> dict[str, np.ndarray]:
    """Posteriors at any queries Q with (F) and without (D = F minus G) the group (docs/math.md §11).

    μ_D = μ_F − U P_GG⁻¹ α_G and Σ_D = Σ_F + U P_GG⁻¹ Uᵀ, with U = K_QF P[:, G].
    Returns mean_F, mean_D (q, C) and cov_F, cov_D (q, q).
    """
    group = check_group(group, fit.n, "group")
    K_QF = np.atleast_2d(np.asarray(K_QF, dtype=np.float64))
    mean_F, cov_F = posterior(fit, K_QF, K_QQ)
    P_G = fit.p_columns(group)
    U = K_QF @ P_G
    factor = _p_gg_factor(P_G, group)
    # U P_GG⁻¹ Uᵀ = V Vᵀ with V = U L_G⁻ᵀ: positive semi-definite by construction.
    V = scipy.linalg.solve_triangular(factor[0], U.T, lower=True).T
    cov_D = cov_F + V @ V.T
    return {
        "mean_F": mean_F,
        "cov_F": cov_F,
        "mean_D": mean_F - U @ scipy.linalg.cho_solve(factor, fit.alpha[group]),
        "cov_D": (cov_D + cov_D.T) / 2,
    }


def group_at_members(fit: GPFit, group: np.ndarray) -> dict[str, np.ndarray]:
    """Posteriors at Q = G with and without G, by k × k algebra after P[:, G] (docs/math.md §11).

    K_GF P[:, G] = B = I − σ² P_GG, μ_F(G) = Y_G − σ² α_G, Σ_F(G) = σ² B; the removal adds
    B P_GG⁻¹ Bᵀ to the covariance and subtracts B P_GG⁻¹ α_G from the mean.
    Returns mean_F, mean_D (k, C), cov_F, cov_D, cov_increment (k, k).
    """
    group = check_group(group, fit.n, "group")
    s2 = fit.noise
    P_G = fit.p_columns(group)
    P_GG = P_G[group]
    P_GG = (P_GG + P_GG.T) / 2
    B = np.eye(len(group)) - s2 * P_GG
    factor = _p_gg_factor(P_G, group)
    V = scipy.linalg.solve_triangular(factor[0], B.T, lower=True).T  # V Vᵀ = B P_GG⁻¹ Bᵀ
    increment = V @ V.T
    mean_F = fit.Y[group] - s2 * fit.alpha[group]
    cov_F = s2 * (B + B.T) / 2
    return {
        "mean_F": mean_F,
        "mean_D": mean_F - B @ scipy.linalg.cho_solve(factor, fit.alpha[group]),
        "cov_F": cov_F,
        "cov_D": cov_F + (increment + increment.T) / 2,
        "cov_increment": (increment + increment.T) / 2,
    }


def member_kl(mean_D: np.ndarray, mean_F: np.ndarray, var_F: np.ndarray, var_increment: np.ndarray) -> np.ndarray:
    """KL at single queries (one per row): C/2 (s − log(1 + s)) + ‖μ_D − μ_F‖² / (2 Σ_F), s = ΔΣ / Σ_F (math.md §5)."""
    var_F = np.maximum(np.asarray(var_F, dtype=np.float64), _TINY)
    s = np.maximum(np.asarray(var_increment, dtype=np.float64), 0.0) / var_F
    C = mean_D.shape[-1]
    return C / 2 * x_minus_log1p(s) + np.sum((mean_D - mean_F) ** 2, axis=-1) / (2 * var_F)


def group_lood(fit: GPFit, group: np.ndarray, joint: bool) -> dict[str, np.ndarray | float]:
    """KL- and mean-distance LOOD of removing G: at each member (k single queries) and, if `joint`, at Q = G.

    Returns kl_members, mse_members (k,), the posteriors of `group_at_members`, and kl, mse at the
    k-point query Q = G (NaN when not `joint`; skip it for groups of identical inputs, where Σ_F(G) is singular).
    """
    post = group_at_members(fit, group)
    diff = post["mean_D"] - post["mean_F"]
    out: dict[str, np.ndarray | float] = dict(post)
    out["kl_members"] = member_kl(
        post["mean_D"], post["mean_F"], np.diag(post["cov_F"]), np.diag(post["cov_increment"])
    )
    out["mse_members"] = 0.5 * np.mean(diff**2, axis=1)
    out["kl"] = kl_lood(post["mean_D"], post["cov_D"], post["mean_F"], post["cov_F"]) if joint else float("nan")
    out["mse"] = 0.5 * float(np.mean(diff**2)) if joint else float("nan")
    return out


# ----------------------------------------------------------------------------- duplicates


def append_records(fit: GPFit, K_NF: np.ndarray, K_NN: np.ndarray, Y_N: np.ndarray) -> GPFit:
    """F's fit extended by new records N (kernel rows K_NF, block K_NN, targets Y_N): a Cholesky append, O(n² |N|).

    With L L ᵀ = K_FF + σ²I: L_NF = (L⁻¹ K_FN)ᵀ and L_NN = chol(K_NN + σ²I − L_NF L_NFᵀ); the same σ²
    (plus the fit's jitter) enters the new diagonal.
    """
    K_NF = np.atleast_2d(np.asarray(K_NF, dtype=np.float64))
    K_NN = np.atleast_2d(np.asarray(K_NN, dtype=np.float64))
    Y_N = np.asarray(Y_N, dtype=np.float64).reshape(len(K_NF), -1)
    n, k = fit.n, len(K_NF)
    if K_NF.shape != (k, n) or K_NN.shape != (k, k) or Y_N.shape[1] != fit.Y.shape[1]:
        raise LoodInputError(f"append_records: K_NF must be ({k}, {n}), K_NN ({k}, {k}), Y_N ({k}, {fit.Y.shape[1]})")
    L_NF = scipy.linalg.solve_triangular(fit.chol, K_NF.T, lower=True).T
    S = K_NN - L_NF @ L_NF.T
    S = (S + S.T) / 2 + fit.noise * np.eye(k)
    try:
        L_NN = scipy.linalg.cholesky(S, lower=True)
    except np.linalg.LinAlgError:
        raise LoodInputError("appending records made K + sigma2 I indefinite; raise nngp.sigma2") from None
    L = np.zeros((n + k, n + k))
    L[:n, :n] = fit.chol
    L[n:, :n] = L_NF
    L[n:, n:] = L_NN
    Y = np.vstack([fit.Y, Y_N])
    alpha = scipy.linalg.cho_solve((L, True), Y)
    return GPFit(chol=L, alpha=alpha, Y=Y, sigma2=fit.sigma2, jitter=fit.jitter)


def with_copies(gp: NNGP, record: int, m: int, K_rF: np.ndarray | None = None) -> tuple[GPFit, np.ndarray]:
    """F with record `record` present m times (m − 1 copies appended), and the group of its m rows."""
    if int(m) < 1:
        raise LoodInputError(f"groups.multiplicities: m must be >= 1, got {m}")
    record = int(check_records(record, gp.fit.n)[0])
    if K_rF is None:
        K_rF = kernel_and_diag(gp.X[[record]], gp.X, gp.arch, gp.block_size)[0][0]
    extra = int(m) - 1
    n = gp.fit.n
    group = np.concatenate([[record], np.arange(n, n + extra)]).astype(np.int64)
    if extra == 0:
        return gp.fit, group
    K_NF = np.broadcast_to(K_rF, (extra, n))
    K_NN = np.full((extra, extra), float(gp.K_diag[record]))
    fit = append_records(gp.fit, K_NF, K_NN, np.broadcast_to(gp.fit.Y[record], (extra, gp.fit.Y.shape[1])))
    return fit, group


def duplicate_table(
    gp: NNGP, records: np.ndarray, multiplicities: Sequence[int], auc_samples: int, base_seed: int
) -> pd.DataFrame:
    """LOOD at the record of removing all m copies of it, for every record and multiplicity m.

    F holds the record m times; removing the group of its m rows leaves D = F minus the record,
    whatever m is. The query is the record's input (all m members are the same point).
    """
    records = check_records(records, gp.fit.n)
    bad = [int(m) for m in multiplicities if int(m) < 1]
    if bad:
        raise LoodInputError(f"groups.multiplicities {bad}: every multiplicity must be >= 1")
    K_rows = kernel_and_diag(gp.X[records], gp.X, gp.arch, gp.block_size)[0]
    rows = []
    for j, r in enumerate(records):
        for m in multiplicities:
            fit, group = with_copies(gp, int(r), int(m), K_rows[j])
            res = group_lood(fit, group, joint=False)
            var_F = float(res["cov_F"][0, 0])
            var_D = var_F + float(res["cov_increment"][0, 0])
            auc, se = nngp_auc(
                res["mean_D"][0],
                var_D,
                res["mean_F"][0],
                max(var_F, _TINY),
                auc_samples,
                # m = 1 reuses lood_table's stream, so its AUC is the one in lood.csv
                seeds.int_seed(base_seed, "nngp_auc", int(r))
                if m == 1
                else seeds.int_seed(base_seed, "nngp_auc", int(r), int(m)),
            )
            rows.append((int(r), int(m), float(res["kl_members"][0]), float(res["mse_members"][0]), auc, se))
    return pd.DataFrame(rows, columns=["record", "m", "kl", "mse", "auc_nngp", "auc_nngp_se"])


# ----------------------------------------------------------------------------- neighbour groups


GROUP_KINDS = ("nearest", "farthest", "random_same", "random_any")
"""How a record's k − 1 companions are chosen: its nearest same-label records, its farthest same-label
records (a control: mutually dissimilar), random same-label records and random records of any label
(controls: no selection by distance)."""


def nearest_same_label(X: np.ndarray, y: np.ndarray, record: int, k: int) -> np.ndarray:
    """The record and its k − 1 nearest training neighbours of the same label (Euclidean; ties by index)."""
    return group_members(X, y, record, k, "nearest", 0)


def group_members(X: np.ndarray, y: np.ndarray, record: int, k: int, kind: str, base_seed: int) -> np.ndarray:
    """The record and k − 1 companions chosen by `kind` (GROUP_KINDS), the record first.

    nearest / farthest: same-label records by Euclidean distance to the record (ties by index);
    random_same / random_any: drawn without replacement from rng(base_seed, 'group', kind, record, k)
    among the other same-label records / all other records, sorted by index.
    """
    if kind not in GROUP_KINDS:
        raise LoodInputError(f"groups: unknown group kind {kind!r}; use one of {list(GROUP_KINDS)}")
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    y = np.asarray(y)
    record, k = int(record), int(k)
    others = np.arange(len(X)) != record
    pool = np.flatnonzero(others if kind == "random_any" else others & (y == y[record]))
    if k < 1 or len(pool) < k - 1:
        raise LoodInputError(
            f"groups.neighbour_sizes: k = {k} needs {k - 1} companions of record {record} ({kind}), "
            f"which has {len(pool)} candidates"
        )
    if kind in ("nearest", "farthest"):
        dist = np.linalg.norm(X[pool] - X[record], axis=1)
        order = np.lexsort((pool, dist if kind == "nearest" else -dist))  # by distance, then index
        chosen = pool[order[: k - 1]]
    else:
        g = seeds.rng(base_seed, "group", GROUP_KINDS.index(kind), record, k)
        chosen = np.sort(g.choice(pool, size=k - 1, replace=False))
    return np.concatenate([[record], chosen]).astype(np.int64)


def neighbour_table(
    gp: NNGP,
    records: np.ndarray,
    sizes: Sequence[int],
    kinds: Sequence[str],
    base_seed: int,
    auc_samples: int,
) -> pd.DataFrame:
    """Group LOOD of each record with k − 1 companions of each kind (`group_members`), against the sum of singles.

    kl_group is the KL at the k-point query Q = G; kl_group_at_record the KL at the record alone when the
    whole group is removed; kl_single_sum the sum over members of each one's own LOOD (at its own input);
    ratio = kl_group / kl_single_sum (> 1: super-additive). Likewise for the mean distance, whose
    group value is a mean over the k queries, so the additive reference is the members' mean.
    The farthest and random kinds are controls: is the effect specific to near neighbours?
    auc_group_at_record: the NNGP's attack AUC at the record when G is removed (auc_samples > 0, else NaN),
    seed int_seed(base, 'nngp_auc_group', kind, record, k): the prediction for the networks' group attack.
    """
    records = check_records(records, gp.fit.n)
    single = lood_at_records(gp.fit, gp.K_diag, np.arange(gp.fit.n))
    rows = []
    for kind in kinds:
        for r in records:
            for k in sizes:
                rows.append(_neighbour_row(gp, single, int(r), int(k), kind, base_seed, auc_samples))
    return pd.DataFrame(rows)


def _neighbour_row(
    gp: NNGP, single: dict[str, np.ndarray], r: int, k: int, kind: str, base_seed: int, auc_samples: int
) -> dict:
    group = group_members(gp.X, gp.y, r, k, kind, base_seed)
    res = group_lood(gp.fit, group, joint=True)
    kl_sum = float(np.sum(single["kl"][group]))
    auc = float("nan")
    if auc_samples > 0:
        var_F = max(float(res["cov_F"][0, 0]), _TINY)
        var_D = var_F + float(res["cov_increment"][0, 0])
        seed = seeds.int_seed(base_seed, "nngp_auc_group", GROUP_KINDS.index(kind), r, k)
        auc = nngp_auc(res["mean_D"][0], var_D, res["mean_F"][0], var_F, int(auc_samples), seed)[0]
    return {
        "kind": kind,
        "record": int(r),
        "k": int(k),
        "members": " ".join(map(str, group.tolist())),
        "kl_group": float(res["kl"]),
        "kl_group_at_record": float(res["kl_members"][0]),
        "kl_record": float(single["kl"][r]),
        "kl_single_sum": kl_sum,
        "ratio": float(res["kl"]) / max(kl_sum, _TINY),
        "mse_group": float(res["mse"]),
        "mse_single_mean": float(np.mean(single["mse"][group])),
        "mean_distance": float(np.mean(np.linalg.norm(gp.X[group[1:]] - gp.X[r], axis=1))) if k > 1 else 0.0,
        "mse_group_at_record": float(res["mse_members"][0]),
        "mse_record": float(single["mse"][r]),
        "auc_group_at_record": float(auc),
    }
