"""Where the trained models are evaluated, and how their logits are stored and read back.

In-models are evaluated at one stack of rows, in this order: the studied records | every
record's landscape queries | the whole training set | the held-out records. The training-set
block is what `nngp.sigma2: calibrate` matches (docs/math.md §12); the held-out block gives
the networks' test accuracy. Each record's out-models are evaluated at that record and its
own landscape queries. The writers (`in_model_arrays`, `out_model_arrays`) and the reader
(`stack_logits`) are the one home of this layout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from lood.errors import LoodInputError


def in_model_inputs(X: np.ndarray, records: np.ndarray, queries: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    """The rows every in-model is evaluated at: X[records] | queries (R, T, d) flattened | X | X_test."""
    R, T, d = queries.shape
    return np.concatenate([X[records], queries.reshape(R * T, d), X, X_test])


def in_model_arrays(
    logits: np.ndarray, model_ids: Sequence[int], records: np.ndarray, queries_shape: tuple[int, ...], n_train: int
) -> dict[str, np.ndarray]:
    """The stored arrays of in-model logits (M, P, C) taken at `in_model_inputs`' rows."""
    R, T = queries_shape[0], queries_shape[1]
    M = len(model_ids)
    probe_end = R + R * T
    return {
        "model_ids": np.asarray(model_ids),
        "records": np.asarray(records),
        "logits_record": logits[:, :R],
        "logits_probe": logits[:, R:probe_end].reshape(M, R, T, -1),
        "logits_train": logits[:, probe_end : probe_end + n_train],
        "logits_test": logits[:, probe_end + n_train :],
    }


def out_model_inputs(X: np.ndarray, records: np.ndarray, queries: np.ndarray, positions: Sequence[int]) -> list:
    """Per record, the rows its out-models are evaluated at: the record, then its own landscape queries."""
    return [np.concatenate([X[[r]], queries[p]]) for r, p in zip(records, positions, strict=True)]


def out_model_arrays(logits: np.ndarray, records: np.ndarray, positions: Sequence[int]) -> dict[str, np.ndarray]:
    """The stored arrays of out-model logits (G, Mout, 1 + T, C) taken at `out_model_inputs`' rows."""
    return {
        "records": np.asarray(records),
        "positions": np.asarray(positions),
        "logits_record": logits[:, :, 0],
        "logits_probe": logits[:, :, 1:],
    }


class StackedLogits(NamedTuple):
    """Every model's logits for the attack: in-models along axis 0, out-models per record."""

    in_record: np.ndarray  # (Min, R, C)
    in_probe: np.ndarray  # (Min, R, T, C)
    out_record: np.ndarray  # (R, Mout, C)
    out_probe: np.ndarray  # (R, Mout, T, C)


def stack_logits(
    chunks: Sequence[Mapping[str, np.ndarray]], groups: Sequence[Mapping[str, np.ndarray]], records: Sequence[int]
) -> StackedLogits:
    """Join in-model chunks along the model axis and out-model record groups along the record axis.

    Each chunk and group holds `logits_record`, `logits_probe` and the `records` it covers (as
    in_model_arrays and out_model_arrays store them); the chunks must each cover `records`, and
    the groups together must cover them in that order.
    """
    records = np.asarray(records, dtype=np.int64)
    if not chunks or not groups:
        raise LoodInputError(
            f"need at least one in-model chunk and one out-model group; got {len(chunks)} and {len(groups)}"
        )
    for i, chunk in enumerate(chunks):
        if not np.array_equal(np.asarray(chunk["records"]), records):
            raise LoodInputError(
                f"in-model chunk {i} was evaluated on records {np.asarray(chunk['records']).tolist()}, expected "
                f"{records.tolist()}: delete results/<experiment>/nn/in and rerun"
            )
    out_records = np.concatenate([np.asarray(g["records"]) for g in groups])
    if not np.array_equal(out_records, records):
        raise LoodInputError(
            f"out-model groups cover records {out_records.tolist()}, expected {records.tolist()}: "
            "delete results/<experiment>/nn/out and rerun"
        )
    return StackedLogits(
        in_record=np.concatenate([c["logits_record"] for c in chunks]),
        in_probe=np.concatenate([c["logits_probe"] for c in chunks]),
        out_record=np.concatenate([g["logits_record"] for g in groups]),
        out_probe=np.concatenate([g["logits_probe"] for g in groups]),
    )
