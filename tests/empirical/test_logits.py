"""The logits layout: what the training scripts store is what the attack reads back, block by block."""

from __future__ import annotations

import numpy as np
import pytest

from lood.empirical.logits import in_model_arrays, in_model_inputs, out_model_arrays, out_model_inputs, stack_logits
from lood.errors import LoodInputError


def test_stored_blocks_hold_the_rows_they_name():
    """A planted 'model' whose logit c at a row is (model + 1) x the row's first feature + c: each stored block
    must give back the features of the rows it names (records, queries, training set, held-out)."""
    rng = np.random.default_rng(0)
    n, d, R, T, C, M = 9, 3, 2, 4, 2, 3
    X, X_test = rng.normal(size=(n, d)), rng.normal(size=(5, d))
    records, positions = np.array([6, 1]), [0, 1]
    queries = rng.normal(size=(R, T, d))

    def model(rows, m):
        return (m + 1) * rows[:, :1] + np.arange(C)

    rows = in_model_inputs(X, records, queries, X_test)
    logits = np.stack([model(rows, m) for m in range(M)])
    got = in_model_arrays(logits, list(range(M)), records, queries.shape, n)
    for m in range(M):
        np.testing.assert_array_equal(got["logits_record"][m], model(X[records], m))
        np.testing.assert_array_equal(got["logits_probe"][m], model(queries.reshape(R * T, d), m).reshape(R, T, C))
        np.testing.assert_array_equal(got["logits_train"][m], model(X, m))
        np.testing.assert_array_equal(got["logits_test"][m], model(X_test, m))
    per_record = out_model_inputs(X, records, queries, positions)
    out = np.stack([np.stack([-model(r, m) for m in range(M)]) for r in per_record])
    stored = out_model_arrays(out, records, positions)
    back = stack_logits([got], [stored], records)
    np.testing.assert_array_equal(back.in_probe, got["logits_probe"])
    for j, r in enumerate(records):
        np.testing.assert_array_equal(back.out_record[j], np.stack([-model(X[[r]], m)[0] for m in range(M)]))
        np.testing.assert_array_equal(back.out_probe[j, 0], -model(queries[j], 0))


def _code(m, r, T, C):
    """Logits (len(m), len(r), T, C) whose entry [i, j, t, c] is 1000 m_i + 100 r_j + 10 t + c."""
    m, r = np.asarray(m)[:, None, None, None], np.asarray(r)[None, :, None, None]
    return 1000 * m + 100 * r + 10 * np.arange(T)[None, None, :, None] + np.arange(C)


def _job_files(records, n_in=(3, 2), groups=((0, 1), (2,)), T=4, C=2):
    """In-chunks and out-groups as the training scripts save them, each logit encoding (model, record, t, class)."""
    chunks, first = [], 0
    for M in n_in:
        probe = _code(range(first, first + M), range(len(records)), T, C)
        chunks.append({"records": np.asarray(records), "logits_record": probe[:, :, 0] + 0.5, "logits_probe": probe})
        first += M
    outs = []
    for g in groups:
        probe = -np.swapaxes(_code(range(5), g, T, C), 0, 1)  # (records, models, T, C)
        outs.append({"records": np.asarray(records)[list(g)], "logits_record": probe[:, :, 0], "logits_probe": probe})
    return chunks, outs


def test_stack_logits_joins_models_of_chunks_and_records_of_groups():
    records = [7, 2, 11]
    chunks, groups = _job_files(records)
    got = stack_logits(chunks, groups, records)
    assert got.in_record.shape == (5, 3, 2) and got.in_probe.shape == (5, 3, 4, 2)
    assert got.out_record.shape == (3, 5, 2) and got.out_probe.shape == (3, 5, 4, 2)
    # Entry [m, r, t, c] of the in-models is model m's logit c at record position r, offset t; likewise out.
    for m, r, t, c in [(0, 0, 0, 0), (4, 2, 3, 1), (3, 1, 2, 0)]:
        assert got.in_probe[m, r, t, c] == 1000 * m + 100 * r + 10 * t + c
        assert got.in_record[m, r, c] == 100 * r + 1000 * m + c + 0.5
        assert got.out_probe[r, m, t, c] == -(1000 * m + 100 * r + 10 * t + c)
        assert got.out_record[r, m, c] == -(1000 * m + 100 * r + c)


def test_stack_logits_rejects_groups_or_chunks_that_miss_records():
    records = [7, 2, 11]
    chunks, groups = _job_files(records)
    with pytest.raises(LoodInputError, match=r"out-model groups cover records \[7, 2\], expected \[7, 2, 11\]"):
        stack_logits(chunks, groups[:1], records)
    with pytest.raises(LoodInputError, match=r"out-model groups cover records \[11, 7, 2\]"):
        stack_logits(chunks, groups[::-1], records)
    stale = [*chunks[:1], {**chunks[1], "records": np.array([7, 2, 12])}]
    with pytest.raises(LoodInputError, match=r"in-model chunk 1 was evaluated on records \[7, 2, 12\]"):
        stack_logits(stale, groups, records)
    with pytest.raises(LoodInputError, match="at least one in-model chunk"):
        stack_logits([], groups, records)
