"""Every random choice derives from one base seed through numpy's SeedSequence.

A stream is addressed by (role, *keys), e.g. ("train_out", record, model). The
role names are fixed here so that adding a role never shifts another's stream.
"""

from __future__ import annotations

import numpy as np

ROLES = {
    "records": 0,
    "probes": 1,
    "train_in": 2,
    "train_out": 3,
    "mia": 4,
    "nngp_auc": 5,
    "query": 6,
    "influence": 7,
    "bootstrap": 8,
    "data": 9,
    "train_in_order": 10,
    "train_out_order": 11,
    "step_size": 12,
    "test_records": 14,  # the held-out subset (lood.data.prepare.held_out_records)
    "mia_halves": 15,  # the halves of lood.empirical.mia.half_attacks
    "replication": 16,  # the base seed of the full-size replication (lood.studies.replication)
    "privacy": 24,  # the record bootstrap of the pooled ROC (lood.empirical.roc)
    "group": 30,  # random control groups (lood.studies.groups.group_members)
    "train_out_group": 31,  # out-models without a group (lood.studies.group_networks.train_without_groups)
    "nngp_auc_group": 32,  # the NNGP AUC at a record without its group (neighbours.csv)
}


def seed_sequence(base: int, role: str, *keys: int) -> np.random.SeedSequence:
    """The SeedSequence for one role and key path under the base seed."""
    if role not in ROLES:
        raise KeyError(f"unknown seed role {role!r}; known: {sorted(ROLES)}")
    return np.random.SeedSequence(entropy=int(base), spawn_key=(ROLES[role], *map(int, keys)))


def rng(base: int, role: str, *keys: int) -> np.random.Generator:
    """A numpy Generator for one role and key path."""
    return np.random.default_rng(seed_sequence(base, role, *keys))


def int_seed(base: int, role: str, *keys: int) -> int:
    """A 63-bit integer seed (for torch / jax) for one role and key path."""
    return int(seed_sequence(base, role, *keys).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
