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
        raise LoodInputError(
            f"record indices {bad[:5].tolist()} out of range: the training set has {n} records (0..{n - 1})"
        )
    return records.astype(np.int64)


def check_duplicate_records(
    listed: list[int] | tuple[int, ...] | None, count: int, studied: np.ndarray, n: int
) -> np.ndarray:
    """The records given m copies (groups.duplicate_records, else the first groups.duplicate_count studied ones).

    Each must be a studied record, whose out-models (trained without it) the duplicates reuse.
    """
    studied = np.asarray(studied, dtype=np.int64)
    if listed is None:
        return studied[: int(count)]
    records = np.asarray(listed, dtype=np.int64)
    bad = records[(records < 0) | (records >= n)]
    if len(bad):
        raise LoodInputError(
            f"groups.duplicate_records {bad.tolist()} out of range: the dataset has {n} records (0..{n - 1})"
        )
    unstudied = np.setdiff1d(records, studied)
    if len(unstudied):
        raise LoodInputError(
            f"groups.duplicate_records {unstudied.tolist()} are not studied records (results/data/records.csv); "
            "their out-models are reused, so list them in records.indices too"
        )
    return records
