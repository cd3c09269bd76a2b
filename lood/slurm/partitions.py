"""What a SLURM cluster's partitions offer one job, read from `sinfo` and `scontrol`.

The preflight (lood/slurm/preflight.py) compares every job with these numbers (lood/slurm/job_plan.py).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from lood.errors import LoodInputError

# `sinfo` in node-oriented form: one line per (partition, node).
SINFO_ARGS = ["sinfo", "--noheader", "--Node", "--all", "--format", "%R|%N|%c|%m|%G|%t"]
SCONTROL_ARGS = ["scontrol", "--oneliner", "show", "partition"]
# Node states in which a node cannot take new jobs (sinfo's short names, suffixes stripped).
UNUSABLE_STATES = {"down", "drain", "drng", "fail", "failg", "futr", "inval", "maint", "npc", "unk"}


@dataclass(frozen=True)
class Node:
    """One node as a partition sees it."""

    name: str
    cpus: int
    mem_mb: int
    gpus: int
    state: str


@dataclass(frozen=True)
class Partition:
    """A partition's nodes and per-job limits (None = unlimited)."""

    name: str
    nodes: tuple[Node, ...]
    max_time_min: int | None = None
    max_mem_per_node_mb: int | None = None
    max_cpus_per_node: int | None = None
    state: str = "UP"
    default: bool = False

    def node_cpus(self, node: Node) -> int:
        """CPUs one job may use on node."""
        return min(node.cpus, self.max_cpus_per_node or node.cpus)

    def node_mem_mb(self, node: Node) -> int:
        """Memory (MB) one job may use on node."""
        return min(node.mem_mb, self.max_mem_per_node_mb or node.mem_mb)

    @property
    def cpus(self) -> int:
        return max((self.node_cpus(n) for n in self.nodes), default=0)

    @property
    def mem_mb(self) -> int:
        return max((self.node_mem_mb(n) for n in self.nodes), default=0)

    @property
    def gpus(self) -> int:
        return max((n.gpus for n in self.nodes), default=0)

    def describe(self) -> str:
        """One line: the largest node and the time limit."""
        time = "no time limit" if self.max_time_min is None else f"time limit {self.max_time_min} min"
        return f"nodes of at most {self.cpus} CPUs, {self.mem_mb} MB memory, {self.gpus} GPUs; {time}"


def slurm_minutes(text: str) -> int | None:
    """A SLURM time limit ("UNLIMITED", "30", "30:15", "1:30:00", "2-12:00:00") in whole minutes (floor).

    None means unlimited. SLURM's formats: minutes, minutes:seconds, hours:minutes:seconds,
    days-hours, days-hours:minutes, days-hours:minutes:seconds.
    """
    text = text.strip()
    if text.upper() in {"UNLIMITED", "INFINITE", "NONE", ""}:
        return None
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise LoodInputError(f"cannot read SLURM time limit {text!r}: expected [days-]hours:minutes:seconds")
    days, a, b, c = (int(g) if g else 0 for g in m.groups())
    if m.group(1) is not None or m.group(4) is not None:
        hours, minutes = a, b  # days-hours[:minutes[:seconds]] or hours:minutes:seconds
    else:
        hours, minutes = 0, a  # minutes[:seconds]
    return days * 1440 + hours * 60 + minutes


def gres_gpus(gres: str) -> int:
    """GPUs in a node's gres string ("gpu:a100:4(S:0-1),shard:8" -> 4; "(null)" -> 0)."""
    total = 0
    for entry in re.sub(r"\([^)]*\)", "", gres).split(","):
        parts = entry.strip().split(":")
        if parts[0] == "gpu" and len(parts) >= 2 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def _limit(value: str | None) -> int | None:
    """A numeric scontrol limit, None for UNLIMITED or absent."""
    if value is None or not value.isdigit() or int(value) == 0:
        return None
    return int(value)


def parse_partitions(sinfo: str, scontrol: str) -> dict[str, Partition]:
    """Partitions from `sinfo` (SINFO_ARGS) node lines and `scontrol show partition` (SCONTROL_ARGS)."""
    nodes: dict[str, list[Node]] = {}
    for line in sinfo.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 6:
            raise LoodInputError(f"unexpected sinfo line {line!r}: expected partition|node|cpus|memory|gres|state")
        part, name, cpus, mem, gres, state = (f.strip() for f in fields)
        node = Node(name, int(cpus.rstrip("+")), int(mem.rstrip("+")), gres_gpus(gres), state.rstrip("*~#!%$@^-+"))
        nodes.setdefault(part, []).append(node)
    partitions = {}
    for line in scontrol.splitlines():
        keys = dict(re.findall(r"(?:^|\s)(\w+)=(\S*)", line))
        name = keys.get("PartitionName")
        if not name:
            continue
        partitions[name] = Partition(
            name=name,
            nodes=tuple(nodes.get(name, ())),
            max_time_min=slurm_minutes(keys.get("MaxTime", "UNLIMITED")),
            max_mem_per_node_mb=_limit(keys.get("MaxMemPerNode")),
            max_cpus_per_node=_limit(keys.get("MaxCPUsPerNode")),
            state=keys.get("State", "UP"),
            default=keys.get("Default") == "YES",
        )
    return partitions


def default_partition(partitions: dict[str, Partition]) -> str | None:
    """The partition sbatch uses when none is given."""
    return next((p.name for p in partitions.values() if p.default), None)


def read_partitions(timeout_s: float = 30) -> dict[str, Partition]:
    """The cluster's partitions, from sinfo and scontrol (OSError or SubprocessError when they fail)."""
    outputs = [
        subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=True).stdout
        for args in (SINFO_ARGS, SCONTROL_ARGS)
    ]
    return parse_partitions(*outputs)
