"""Query optimisation: the single query q that maximises a record's KL LOOD (docs/math.md §7).

Adam gradient ascent with jax.grad through the NNGP kernel, from the rank-one closed form.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd

from lood import seeds
from lood.analytic.divergence import lood_at_records, posterior_var_floor, x_minus_log1p
from lood.analytic.jax_setup import jax, jnp
from lood.analytic.kernel import stax_kernel_fn
from lood.analytic.tables import NNGP
from lood.records import check_records
from lood.settings import QuerySettings


@functools.lru_cache(maxsize=8)
def _query_kl(key: tuple, n_classes: int, block_size: int) -> Callable:
    """KL-LOOD of record i at one query q, in JAX: f(q, X, L, P[:, i], α_i, P_ii) (rank-one closed form).

    k(q, X) is computed block_size training rows at a time (nngp.block_size), as the kernel is.
    """
    fn = stax_kernel_fn(key)

    def kl(q, X, L, p, alpha_i, p_ii):
        k = jnp.concatenate([fn(q[None], X[s : s + block_size], "nngp")[0] for s in range(0, len(X), block_size)])
        k_qq = fn(q[None], None, "nngp")[0, 0]
        v = jax.scipy.linalg.solve_triangular(L, k, lower=True)
        var_F = jnp.maximum(k_qq - v @ v, posterior_var_floor(k_qq))
        s = (k @ p) ** 2 / (p_ii * var_F)
        return n_classes / 2 * x_minus_log1p(s, jnp) + (alpha_i @ alpha_i) * s / (2 * p_ii)

    return jax.jit(kl)


def query_objective(gp: NNGP, record: int) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """q -> KL-LOOD of `record` at the single query q: the differentiable objective of `optimise_queries`."""
    fit = gp.fit
    p = fit.p_columns(np.array([record]))[:, 0]
    kl = _query_kl(gp.arch.kernel_key, fit.alpha.shape[1], gp.block_size)
    X, L, a = jnp.asarray(gp.X), jnp.asarray(fit.chol), jnp.asarray(fit.alpha[record])
    return lambda q: kl(q, X, L, jnp.asarray(p), a, p[record])


@functools.lru_cache(maxsize=8)
def _query_ascent(key: tuple, n_classes: int, steps: int, block_size: int) -> Callable:
    """Jitted Adam ascent of KL-LOOD(q) for one record; returns (values (steps+1,), best q, best value)."""
    kl = _query_kl(key, n_classes, block_size)
    value_and_grad = jax.value_and_grad(kl)
    b1, b2, eps = 0.9, 0.999, 1e-8

    def ascend(q0, lr, X, L, p, alpha_i, p_ii):
        def step(carry, t):
            q, m, v, best_val, best_q = carry
            val, g = value_and_grad(q, X, L, p, alpha_i, p_ii)
            g = jnp.where(jnp.isfinite(g), g, 0.0)  # a kernel derivative undefined at a training point
            better = val > best_val
            best_val, best_q = jnp.where(better, val, best_val), jnp.where(better, q, best_q)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            m_hat, v_hat = m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1))
            return (q + lr * m_hat / (jnp.sqrt(v_hat) + eps), m, v, best_val, best_q), val

        zeros = jnp.zeros_like(q0)
        (q, _, _, best_val, best_q), vals = jax.lax.scan(step, (q0, zeros, zeros, -jnp.inf, q0), jnp.arange(steps))
        last = kl(q, X, L, p, alpha_i, p_ii)
        better = last > best_val
        return jnp.append(vals, last), jnp.where(better, q, best_q), jnp.where(better, last, best_val)

    return jax.jit(ascend)


def optimise_queries(
    gp: NNGP, records: np.ndarray, query: QuerySettings, base_seed: int
) -> tuple[pd.DataFrame, dict[int, dict[str, np.ndarray]]]:
    """Maximise KL-LOOD(q) over a single query q per record by Adam gradient ascent (jax.grad through the kernel).

    query.init 'data': q0 = x_i + init_noise N(0, I); 'noise': q0 = mean of X + init_noise N(0, I)
    (centred on the data so the query starts in the region the kernel was fitted on).
    Noise comes from seeds.rng(base_seed, 'query', record). A start exactly at a training
    point is harmless (stax's arc-cosine derivatives are finite there; any non-finite
    gradient component is zeroed). lood_optimised is the best value along the trajectory,
    and `query` the point that attains it.
    """
    fit = gp.fit
    records = check_records(records, fit.n)
    at_record = lood_at_records(fit, gp.K_diag, records)["kl"]
    ascend = _query_ascent(gp.arch.kernel_key, fit.alpha.shape[1], int(query.steps), gp.block_size)
    X_dev, L_dev = jnp.asarray(gp.X), jnp.asarray(fit.chol)
    P = fit.p_columns(records)
    rows, per_record = [], {}
    for j, r in enumerate(records):
        noise = query.init_noise * seeds.rng(base_seed, "query", int(r)).standard_normal(gp.X.shape[1])
        start = (gp.X[r] if query.init == "data" else gp.X.mean(axis=0)) + noise
        vals, best_q, best = ascend(
            jnp.asarray(start),
            float(query.lr),
            X_dev,
            L_dev,
            jnp.asarray(P[:, j]),
            jnp.asarray(fit.alpha[r]),
            float(P[r, j]),
        )
        best_q = np.asarray(best_q)
        per_record[int(r)] = {"query": best_q, "trajectory": np.asarray(vals), "start": start}
        z = gp.X[r]
        cosine = float(best_q @ z / max(np.linalg.norm(best_q) * np.linalg.norm(z), 1e-300))
        rows.append((int(r), float(at_record[j]), float(best), float(np.linalg.norm(best_q - z)), cosine))
    # A bias-free ReLU NNGP is positively homogeneous (K(cq, x) = c K(q, x)), so its LOOD is
    # invariant to rescaling q: the cosine to the record says more than the distance there.
    columns = ["record", "lood_at_record", "lood_optimised", "distance_to_record", "cosine_to_record"]
    table = pd.DataFrame(rows, columns=columns)
    return table, per_record
