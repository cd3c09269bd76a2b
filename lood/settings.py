"""Typed, frozen settings built from the validated config.

The schema (schemas/config.schema.yaml, read by lood.config) is the one home of every default and every enum:
these classes have no defaults of their own, and the package's functions take them
instead of loose keyword arguments. `from_config` builds one from a config section after
Snakemake's `validate` (or `lood.config.fill_defaults`) has filled the defaults in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lood.config import Section as _Section
from lood.config import check_auto, check_choice, enum
from lood.errors import LoodInputError


@dataclass(frozen=True)
class Arch(_Section):
    """The network and the NNGP kernel it is compared with (config `model` + experiment overrides)."""

    depth: int
    width: int
    activation: str
    bias: bool
    w_std: float
    b_std: float

    def __post_init__(self) -> None:
        check_choice(self.activation, "activation", "model.activation")
        if self.depth < 0 or self.width < 1 or not self.w_std > 0 or self.b_std < 0:
            raise LoodInputError(
                f"model needs depth >= 0, width >= 1, w_std > 0, b_std >= 0; got depth={self.depth}, "
                f"width={self.width}, w_std={self.w_std}, b_std={self.b_std}"
            )

    @property
    def kernel_key(self) -> tuple[int, str, bool, float, float]:
        """What the infinite-width kernel depends on (the width does not enter it)."""
        b_std = float(self.b_std) if self.bias else 0.0
        return (int(self.depth), self.activation, bool(self.bias), float(self.w_std), b_std)


@dataclass(frozen=True)
class Training(_Section):
    """How the in- and out-models are trained (config `training`)."""

    n_in: int
    n_out: int
    epochs: int
    batch_size: int
    lr: (
        float | str
    )  # a number, or "auto": resolved per experiment by lood.empirical.step_size (results/<experiment>/nn/lr.csv)
    lr_milestones: tuple[int, ...]
    lr_gamma: float
    momentum: float
    loss: str
    in_models_per_job: int
    records_per_job: int
    save_weights: bool
    data_order: str

    def __post_init__(self) -> None:
        check_choice(self.loss, "loss", "training.loss")
        check_choice(self.data_order, "data_order", "training.data_order")
        check_auto(self.lr, "training.lr")
        if self.epochs < 0 or self.batch_size < 1:
            raise LoodInputError(
                f"training.epochs must be >= 0 and training.batch_size >= 1 (got {self.epochs}, {self.batch_size})"
            )


@dataclass(frozen=True)
class NNGPSettings(_Section):
    """The analytic side (config `nngp`)."""

    sigma2: float | str
    all_records: bool
    auc_samples: int
    block_size: int
    grid_min: float
    grid_max: float
    grid_points: int

    def __post_init__(self) -> None:
        if int(self.block_size) < 1:
            raise LoodInputError(f"nngp.block_size must be a positive integer, got {self.block_size}")
        if isinstance(self.sigma2, str):
            check_choice(self.sigma2, "sigma2_rule", "nngp.sigma2")
        elif not self.sigma2 >= 0:
            raise LoodInputError(
                f"nngp.sigma2 must be a number >= 0 or one of {', '.join(enum('sigma2_rule'))}, got {self.sigma2}"
            )

    @property
    def rule(self) -> str:
        """How σ² is chosen: the rule's name, or "fixed" for a number."""
        return self.sigma2 if isinstance(self.sigma2, str) else "fixed"


@dataclass(frozen=True)
class ProbeSettings(_Section):
    """The landscape grid (config `probes`): offsets t, in units of each record's norm or absolute."""

    t: tuple[float, ...]
    scale: str

    def __post_init__(self) -> None:
        check_choice(self.scale, "probe_scale", "probes.scale")


@dataclass(frozen=True)
class QuerySettings(_Section):
    """Query optimisation (config `query`)."""

    init: str
    init_noise: float
    steps: int
    lr: float

    def __post_init__(self) -> None:
        check_choice(self.init, "query_init", "query.init")
        if not self.init_noise >= 0 or int(self.steps) < 0 or not self.lr > 0:
            raise LoodInputError(
                f"query needs init_noise >= 0, steps >= 0, lr > 0; got {self.init_noise}, {self.steps}, {self.lr}"
            )


@dataclass(frozen=True)
class InfluenceSettings(_Section):
    """Influence-function and TracIn baselines (config `influence`)."""

    method: str
    exact_max_params: int
    damping: float
    lissa_scale: (
        float | str
    )  # a number, or "auto": lood.empirical.step_size.lissa_scale from the Hessian's spectral radius
    lissa_depth: int
    lissa_repeats: int
    networks: int  # reference networks each estimator is averaged over

    def __post_init__(self) -> None:
        check_choice(self.method, "influence_method", "influence.method")
        if self.networks < 1:
            raise LoodInputError(f"influence.networks must be >= 1; got {self.networks}")
        check_auto(self.lissa_scale, "influence.lissa_scale")
        if self.damping < 0:
            raise LoodInputError(f"influence.damping must be >= 0; got {self.damping}")
        if self.lissa_depth < 1 or self.lissa_repeats < 1:
            raise LoodInputError(
                "LiSSA needs influence.lissa_depth >= 1 and lissa_repeats >= 1; "
                f"got {self.lissa_depth}, {self.lissa_repeats}"
            )


@dataclass(frozen=True)
class MIASettings(_Section):
    """The membership-inference attack (config `mia`)."""

    splits: int
    replication_repeats: int


@dataclass(frozen=True)
class FigureSettings(_Section):
    """Figure options (config `figures`)."""

    bootstrap: int
    landscape_records: int
    gallery: int
    activation: tuple[str, ...] | None


@dataclass(frozen=True)
class GroupSettings(_Section):
    """Leave-group-out: duplicated records and neighbour groups (config `groups`, docs/math.md §11)."""

    run_by_default: bool
    duplicate_records: tuple[int, ...] | None
    duplicate_count: int
    multiplicities: tuple[int, ...]
    neighbour_sizes: tuple[int, ...]
    neighbour_kinds: tuple[str, ...]
    network_kinds: tuple[str, ...]
    network_sizes: tuple[int, ...]
    network_count: int

    def __post_init__(self) -> None:
        if any(int(k) < 2 for k in self.network_sizes):
            raise LoodInputError(f"groups.network_sizes must be integers >= 2, got {list(self.network_sizes)}")
        if int(self.network_count) < 1:
            raise LoodInputError(f"groups.network_count must be >= 1, got {self.network_count}")
        if any(int(m) < 1 for m in self.multiplicities) or not self.multiplicities:
            raise LoodInputError(f"groups.multiplicities must be integers >= 1, got {list(self.multiplicities)}")
        if any(int(k) < 1 for k in self.neighbour_sizes):
            raise LoodInputError(f"groups.neighbour_sizes must be integers >= 1, got {list(self.neighbour_sizes)}")
        if int(self.duplicate_count) < 1:
            raise LoodInputError(f"groups.duplicate_count must be >= 1, got {self.duplicate_count}")


@dataclass(frozen=True)
class CanarySettings(_Section):
    """Planted canaries: noise inputs and flipped labels (config `canaries`)."""

    run_by_default: bool
    noise_count: int
    noise_scaled_count: int
    flipped_count: int
    max_fraction: float
    real_count: int

    def __post_init__(self) -> None:
        if int(self.real_count) < 0 or int(self.noise_scaled_count) < 0:
            raise LoodInputError(
                f"canaries.real_count and canaries.noise_scaled_count must be >= 0, got {self.real_count}, "
                f"{self.noise_scaled_count}"
            )
        if (
            int(self.noise_count) < 0
            or int(self.flipped_count) < 0
            or int(self.noise_count) + int(self.flipped_count) + int(self.noise_scaled_count) < 1
        ):
            raise LoodInputError(
                "canaries.noise_count and canaries.flipped_count must be >= 0 with at least one canary; "
                f"got {self.noise_count}, {self.flipped_count}"
            )
        if not 0 < float(self.max_fraction) <= 0.5:
            raise LoodInputError(f"canaries.max_fraction must lie in (0, 0.5], got {self.max_fraction}")


@dataclass(frozen=True)
class DepthSettings(_Section):
    """Activation x depth: the NNGP sweep and the networks drawn beside it (config `depth_study`)."""

    run_by_default: bool
    depths: tuple[int, ...]
    variants: tuple[Mapping[str, Any], ...]
    sigma2: float | str
    sigma2_scale: str
    sigma2_others: tuple[float | str, ...]
    rank_fraction: float
    networks: tuple[str, ...] | None

    def __post_init__(self) -> None:
        if not self.depths or any(int(d) < 0 for d in self.depths):
            raise LoodInputError(f"depth_study.depths must be integers >= 0, got {list(self.depths)}")
        for v in self.variants:
            if set(v) != {"activation", "w_std"}:
                raise LoodInputError(f"depth_study.variants entries need exactly activation and w_std, got {dict(v)}")
            check_choice(v["activation"], "activation", "depth_study.variants.activation")
            if not float(v["w_std"]) > 0:
                raise LoodInputError(f"depth_study.variants w_std must be > 0, got {v['w_std']}")
        check_choice(self.sigma2_scale, "depth_sigma2_scale", "depth_study.sigma2_scale")
        for value in (self.sigma2, *self.sigma2_others):
            if isinstance(value, str):
                check_choice(value, "depth_sigma2_rule", "depth_study.sigma2")
            elif not value > 0:
                raise LoodInputError(f"depth_study.sigma2 values must be > 0 or marginal_likelihood, got {value}")
        if not 0 < float(self.rank_fraction) <= 1:
            raise LoodInputError(f"depth_study.rank_fraction must lie in (0, 1], got {self.rank_fraction}")

    @property
    def sigma2_settings(self) -> tuple[float | str, ...]:
        """Every σ² setting of the sweep, the figure's (`sigma2`) first, without repeats."""
        return tuple(dict.fromkeys((self.sigma2, *self.sigma2_others)))


@dataclass(frozen=True)
class AuditSettings(_Section):
    """The training-free audit of every record (config `audit`, docs/audit.md)."""

    experiment: str | None
    sigma2: float | str | None
    sigma2_records: int
    calibrate_models: int
    top: int
    progress_seconds: float
    memory_gb: float | None
    scratch: str | None
    device: str

    def __post_init__(self) -> None:
        if self.memory_gb is not None and not self.memory_gb > 0:
            raise LoodInputError(f"audit.memory_gb must be null or a number > 0, got {self.memory_gb}")
        if isinstance(self.sigma2, str):
            check_choice(self.sigma2, "sigma2_rule", "audit.sigma2")
        elif self.sigma2 is not None and not self.sigma2 >= 0:
            raise LoodInputError(
                f"audit.sigma2 must be null, a number >= 0 or one of {', '.join(enum('sigma2_rule'))}, "
                f"got {self.sigma2}"
            )
        if int(self.sigma2_records) < 2 or int(self.top) < 1 or not self.progress_seconds > 0:
            got = f"{self.sigma2_records}, {self.top}, {self.progress_seconds}"
            raise LoodInputError(f"audit needs sigma2_records >= 2, top >= 1, progress_seconds > 0; got {got}")


@dataclass(frozen=True)
class PrivacySettings(_Section):
    """Leakage in privacy-auditing units: TPR at low FPR and ε (config `privacy`, docs/privacy.md)."""

    fprs: tuple[float, ...]
    delta: float
    confidence: float
    bootstrap: int
    roc_points: int

    def __post_init__(self) -> None:
        if not self.fprs or not all(0 < a < 1 for a in self.fprs):
            raise LoodInputError(f"privacy.fprs must be false-positive rates in (0, 1), got {list(self.fprs)}")
        if not 0 < self.delta < 1 or not 0 < self.confidence < 1 or int(self.roc_points) < 2 or self.bootstrap < 1:
            got = f"{self.delta}, {self.confidence}, {self.bootstrap}, {self.roc_points}"
            raise LoodInputError(
                f"privacy needs 0 < delta < 1, 0 < confidence < 1, bootstrap >= 1, roc_points >= 2; got {got}"
            )


@dataclass(frozen=True)
class CheckSettings(_Section):
    """The gates on the in-models' learning and on sigma^2 at its grid's edge (config `checks`, docs/size.md)."""

    min_learned: float
    allow_untrained_networks: bool
    allow_sigma2_at_edge: bool

    def __post_init__(self) -> None:
        if not 0 <= self.min_learned <= 1:
            raise LoodInputError(f"checks.min_learned must lie in [0, 1], got {self.min_learned}")


SECTIONS: dict[str, type[_Section]] = {
    "checks": CheckSettings,
    "training": Training,
    "nngp": NNGPSettings,
    "probes": ProbeSettings,
    "query": QuerySettings,
    "influence": InfluenceSettings,
    "mia": MIASettings,
    "figures": FigureSettings,
    "groups": GroupSettings,
    "canaries": CanarySettings,
    "depth_study": DepthSettings,
    "audit": AuditSettings,
    "privacy": PrivacySettings,
}
for _name, _section in SECTIONS.items():
    _section.SECTION = _name
