"""Networks trained on modified training sets: with m copies of a record, and with planted canaries.

Seed streams (lood.seeds), chosen so that none coincides with the experiment's own models,
whose in-models use ('train_in', 0, model) and out-models ('train_out', record, model):

* in-models with m >= 2 copies of record r: ('train_in', m, r, model); shared data order
  ('train_in_order', m, r) under training.data_order = shared;
* canary in-models: ('train_in', 1, 0, model), order ('train_in_order', 1, 0) (m = 1 never trains);
* canary out-models without row r of the augmented set: ('train_out', r, model, 1), order ('train_out_order', r, 1);
  under data_order = aligned the canary in-models' order with row r deleted, as the experiment's out-models do
  (the copies' models keep an order of their own: F's order has no place for the extra copies);
* out-models without record r's group G of a kind (index in lood.studies.groups.GROUP_KINDS) and size k:
  ('train_out_group', kind, r, k, model), order ('train_out_order', r, 2, kind, k); under aligned the
  experiment's in-models' order with G deleted. The in-models are the experiment's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lood.empirical.data_order import group_order_seed
from lood.empirical.train import Models, Outputs, train_models, train_stacks
from lood.empirical.training_job import TrainingJob
from lood.errors import LoodInputError
from lood.records import check_records
from lood.runtime.progress import Progress
from lood.seeds import int_seed


def copies_training_set(X: np.ndarray, y: np.ndarray, record: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The training set with record `record` present m times: m − 1 copies appended after the n rows."""
    if int(m) < 1:
        raise LoodInputError(f"groups.multiplicities: m must be >= 1, got {m}")
    record = int(check_records(record, len(X))[0])
    extra = int(m) - 1
    return np.concatenate([X, np.repeat(X[[record]], extra, axis=0)]), np.concatenate(
        [y, np.repeat(y[[record]], extra)]
    )


def train_with_copies(
    job: TrainingJob, records: Sequence[int], m: int, eval_X_per_record: Sequence[np.ndarray]
) -> np.ndarray:
    """Logits (R, n_in, P, C): for each record, n_in models trained on F with that record present m >= 2 times."""
    if int(m) < 2:
        raise LoodInputError(f"train_with_copies needs m >= 2 (m = 1 is the experiment's in-models), got {m}")
    training, base_seed = job.training, job.base_seed
    out = []
    for r, eval_X in zip(records, eval_X_per_record, strict=True):
        X_m, y_m = copies_training_set(job.X, job.y, int(r), int(m))
        model_seeds = [int_seed(base_seed, "train_in", int(m), int(r), k) for k in range(int(training.n_in))]
        order = group_order_seed(training, base_seed, (int(m), int(r)))
        models = Models(model_seeds, order)
        res = train_models(X_m, y_m, job.arch, training, models, Outputs(eval_X), n_classes=job.n_classes)
        out.append(res.logits)
    return np.stack(out)


def train_canary_in(job: TrainingJob, eval_X: np.ndarray) -> np.ndarray:
    """Logits (n_in, P, C) of in-models trained on the canary-augmented set (job.X, job.y)."""
    training, base_seed = job.training, job.base_seed
    model_seeds = [int_seed(base_seed, "train_in", 1, 0, k) for k in range(int(training.n_in))]
    models = Models(model_seeds, group_order_seed(training, base_seed, (1, 0)))
    return train_models(job.X, job.y, job.arch, training, models, Outputs(eval_X), n_classes=job.n_classes).logits


def train_canary_out(
    job: TrainingJob, rows: Sequence[int], eval_X_per_row: Sequence[np.ndarray], log=None
) -> np.ndarray:
    """Logits (R, n_out, P, C): per row r (a canary or a real record), n_out models on the augmented set minus r."""
    training, base_seed = job.training, job.base_seed
    progress = Progress(log, "canary out-models (rows)", len(rows), 30.0)
    logits = []
    for r, eval_X in zip(rows, eval_X_per_row, strict=True):
        model_seeds = [int_seed(base_seed, "train_out", int(r), k, 1) for k in range(int(training.n_out))]
        order = group_order_seed(training, base_seed, (1, 0), (int(r), 1))  # aligned: the canary in-models'
        logits.append(train_stacks(job, [Models(model_seeds, order, exclude=int(r))], [eval_X])[0])
        progress(len(logits))
    return np.stack(logits)


def train_without_groups(
    job: TrainingJob, keys: Sequence[tuple[int, int, int]], groups: Sequence[np.ndarray], log=None
) -> list:
    """Per group G (key (kind index, record, k)): logits (n_out, |G|, C) at its members of models trained on F − G.

    Every record outside G keeps its own label and row (lood.empirical.train.training_set). Logs progress to `log`.
    """
    progress = Progress(log, "group out-models (groups)", len(groups), 30.0)
    training, base_seed = job.training, job.base_seed
    out = []
    for (kind, r, k), G in zip(keys, groups, strict=True):
        G = check_records(np.asarray(G), len(job.X))
        model_seeds = [int_seed(base_seed, "train_out_group", kind, r, k, m) for m in range(int(training.n_out))]
        order = group_order_seed(training, base_seed, (0,), (int(r), 2, int(kind), int(k)))
        models = Models(model_seeds, order, exclude=tuple(int(i) for i in G))
        res = train_models(job.X, job.y, job.arch, training, models, Outputs(job.X[G]), n_classes=job.n_classes)
        out.append(res.logits)
        progress(len(out))
    return out


def group_out_arrays(
    job: TrainingJob, studied: np.ndarray, kind: str, sizes: Sequence[int], count: int, log=None
) -> dict:
    """The stored arrays of one group kind: per size k, members_k{k} (R, k) and logits_k{k} (R, n_out, k, C).

    The records are the first `count` studied ones; their groups are lood.studies.groups.group_members',
    the same as neighbours.csv's (seeded by the base seed).
    """
    from lood.studies.groups import GROUP_KINDS, group_members

    records = np.asarray(studied, dtype=np.int64)[: int(count)]
    keys, groups = [], []
    for k in sizes:
        for r in records:
            keys.append((GROUP_KINDS.index(kind), int(r), int(k)))
            groups.append(group_members(job.X, job.y, int(r), int(k), kind, job.base_seed))
    logits = train_without_groups(job, keys, groups, log)
    arrays: dict[str, np.ndarray] = {"records": records, "sizes": np.asarray(sizes, dtype=np.int64)}
    R = len(records)
    for j, k in enumerate(sizes):
        arrays[f"members_k{int(k)}"] = np.stack(groups[j * R : (j + 1) * R])
        arrays[f"logits_k{int(k)}"] = np.stack(logits[j * R : (j + 1) * R])
    return arrays


def in_logits_by_copies(
    single: np.ndarray, copies: Sequence[Mapping[str, np.ndarray]], records: np.ndarray
) -> dict[int, np.ndarray]:
    """In-model logits (n_in, R, C) at the duplicated records, per number of copies m.

    m = 1 is `single`, the experiment's own in-models at `records`; each file of `copies` (train_with_copies'
    output, with `m`, `records` and `logits_record` (R, n_in, C)) adds its m. Each record keeps its out-models
    (trained without it) and its attack seed, so the attack's half-splits are the same at every m.
    """
    by_m = {1: np.asarray(single)}
    for c in copies:
        if list(c["records"]) != list(records):
            raise LoodInputError(
                f"copies m = {int(c['m'])} cover records {np.asarray(c['records']).tolist()}, expected "
                f"{np.asarray(records).tolist()}: delete results/<experiment>/group/copies and rerun"
            )
        by_m[int(c["m"])] = np.asarray(c["logits_record"]).transpose(1, 0, 2)
    return by_m
