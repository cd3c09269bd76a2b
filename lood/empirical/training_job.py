"""What every training entry point reads: the training set, the network, its training settings and the seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lood.settings import Arch, Training


@dataclass(frozen=True, eq=False)
class TrainingJob:
    """The experiment's training set (X, y), its network and training settings, and the seed every model's derives from.

    Entry points (lood.empirical.train, lood.studies.group_networks, lood.influence.baselines) derive their models'
    seeds from base_seed on seed paths of their own (lood.seeds). eq=False: it holds arrays, compared by identity.
    """

    X: np.ndarray  # (n, d) training inputs
    y: np.ndarray  # (n,) integer labels
    arch: Arch
    training: Training  # with lr resolved (lood.empirical.step_size.resolved)
    base_seed: int  # the experiment's seed (config `seed`)

    @property
    def n_classes(self) -> int:
        """C: the networks' outputs, one per label 0..max(y)."""
        return int(np.max(self.y)) + 1
