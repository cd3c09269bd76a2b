"""Independent reference computations shared by test folders (importable as `reference`: tests/ is on sys.path)."""

from __future__ import annotations

import numpy as np

from lood.config import SCHEMA_PATH, fill_defaults
from lood.settings import InfluenceSettings


def rel_err(a, b) -> float:
    """Max absolute difference relative to the largest reference entry."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def arccos_nngp(X1, X2, depth, w_std, b_std):
    """ReLU NNGP by the arc-cosine recursion (Cho & Saul 2009), for depth x [Dense, ReLU] + Dense."""
    w2, b2, d = w_std**2, b_std**2, X1.shape[1]
    k12 = w2 * X1 @ X2.T / d + b2
    k11, k22 = w2 * np.sum(X1**2, 1) / d + b2, w2 * np.sum(X2**2, 1) / d + b2
    for _ in range(depth):
        s = np.sqrt(np.outer(k11, k22))
        theta = np.arccos(np.clip(k12 / s, -1.0, 1.0))
        k12 = w2 * s * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi) + b2
        k11, k22 = w2 * k11 / 2 + b2, w2 * k22 / 2 + b2
    return k12


def influence_settings(**overrides) -> InfluenceSettings:
    """InfluenceSettings from the schema's defaults, with `overrides`."""
    return InfluenceSettings.from_config(fill_defaults({"influence": overrides}, SCHEMA_PATH)["influence"])


def indefinite_kernel(n: int = 120, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(K, Y): a symmetric "kernel" whose smallest eigenvalue is -1e-7 x the mean one, and one-hot targets of 3
    classes: a Cholesky of K fails until the jitter exceeds that eigenvalue (the jitter policy's tests)."""
    from lood.analytic.gp import targets

    rng = np.random.default_rng(seed)
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.linspace(1.0, 2.0, n)
    lam[0] = -1e-7 * lam.mean()
    K = (V * lam) @ V.T
    return (K + K.T) / 2, targets(rng.integers(0, 3, n), None)
