"""Input checks shared by the package: one place for each, so every message reads the same."""

from __future__ import annotations

import numpy as np

from lood.errors import LoodInputError


def check_records(records: np.ndarray | list[int] | int, n: int) -> np.ndarray:
    """Record indices as int64, or a LoodInputError naming those outside 0..n-1."""
    records = np.atleast_1d(np.asarray(records))
    if len(records) and not np.issubdtype(records.dtype, np.integer):
        raise LoodInputError(f"record indices must be integers, got dtype {records.dtype}")
    bad = records[(records < 0) | (records >= n)]
    if len(bad):
        raise LoodInputError(f"record indices {bad[:5].tolist()} out of range: the training set has {n} records (0..{n - 1})")
    return records.astype(np.int64)
