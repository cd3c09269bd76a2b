"""Which jobs of a run a SLURM partition can never start, what to adapt, and how to say so.

Pure logic of the preflight (lood/slurm/preflight.py): a job's request (threads, cpus_per_task,
mem_mb, runtime, gpu, as the SLURM plugin passes them to sbatch) against the nodes and
limits of its partition (lood/slurm/partitions.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lood.errors import LoodInputError
from lood.slurm.partitions import UNUSABLE_STATES, Partition, default_partition

MODES = ("adapt", "strict", "off")
# Runtimes under this many minutes get a notice: almost always a typo, and Snakemake 9.16.3-9.19 read a
# unit-less runtime from the command line or a profile as seconds (snakemake#4039; minutes since 9.20).
SHORT_RUNTIME_MIN = 10


@dataclass(frozen=True)
class JobRequest:
    """What one job asks of SLURM (sbatch --cpus-per-task, --mem, -t, --gpus)."""

    rule: str
    partition: str | None
    threads: int
    cpus_per_task: int | None = None  # an explicit resource wins over threads, as in the plugin
    mem_mb: int | None = None
    runtime_min: int | None = None
    gpus: int = 0
    from_defaults: frozenset[str] = frozenset()  # resources taken from default-resources

    @property
    def cpus(self) -> int:
        return self.cpus_per_task if self.cpus_per_task else self.threads


@dataclass(frozen=True)
class Problem:
    """One request that no node of the partition can meet, and the option that changes it."""

    partition: str
    asked: str  # "mem_mb=32000"
    why: str  # "more memory than any node has"
    option: str  # "--set-resources", "--default-resources", "--max-threads" or "" (no flag fixes it)
    setting: str  # "{rule}:mem_mb=24105", "mem_mb=24105", "2"; {rule} is filled per rule


@dataclass
class Plan:
    """The preflight's verdict: problems stop the run; otherwise apply the changes."""

    problems: dict[Problem, dict[str, int]] = field(default_factory=dict)  # problem -> {rule: jobs}
    notices: list[str] = field(default_factory=list)
    max_threads: int | None = None  # cap every job's threads here (as --max-threads would)
    drop_gpu_rules: list[str] = field(default_factory=list)  # run these rules' jobs without GPUs

    def add(self, problem: Problem, rule: str) -> None:
        rules = self.problems.setdefault(problem, {})
        rules[rule] = rules.get(rule, 0) + 1


def _fits(part: Partition, cpus: int, mem_mb: int, gpus: int) -> bool:
    """Some node of part holds cpus, mem_mb and gpus at once."""
    return any(part.node_cpus(n) >= cpus and part.node_mem_mb(n) >= mem_mb and n.gpus >= gpus for n in part.nodes)


def _sized(job: JobRequest, part: Partition, name: str, asked: int, offered: int, why: str) -> Problem:
    """A too-large mem_mb or runtime: fixed in default-resources if it came from there, else per rule."""
    if name in job.from_defaults:
        return Problem(part.name, f"{name}={asked}", why, "--default-resources", f"{name}={offered}")
    return Problem(part.name, f"{name}={asked}", why, "--set-resources", f"{{rule}}:{name}={offered}")


def _check_job(job: JobRequest, part: Partition, mode: str, plan: Plan) -> list[Problem]:
    """The problems of one job on its partition; records the adaptations (thread cap, GPU drop) in plan."""
    out = []
    cpus, gpus = job.cpus, job.gpus
    if job.cpus_per_task and job.cpus_per_task > part.cpus:
        out.append(
            Problem(
                part.name,
                f"cpus_per_task={job.cpus_per_task}",
                "more CPUs than any node has",
                "--set-resources",
                f"{{rule}}:cpus_per_task={part.cpus}",
            )
        )
    elif not job.cpus_per_task and job.threads > part.cpus:
        if mode == "adapt":
            plan.max_threads = min(plan.max_threads or part.cpus, part.cpus)
            cpus = part.cpus
        else:
            out.append(
                Problem(
                    part.name, f"threads={job.threads}", "more CPUs than any node has", "--max-threads", str(part.cpus)
                )
            )
    if job.mem_mb and job.mem_mb > part.mem_mb:
        out.append(_sized(job, part, "mem_mb", job.mem_mb, part.mem_mb, "more memory than any node has"))
    if job.runtime_min and part.max_time_min is not None and job.runtime_min > part.max_time_min:
        out.append(_sized(job, part, "runtime", job.runtime_min, part.max_time_min, "longer than the time limit"))
    if gpus and part.gpus == 0:
        if mode == "adapt":
            if job.rule not in plan.drop_gpu_rules:
                plan.drop_gpu_rules.append(job.rule)
            gpus = 0
        else:
            out.append(
                Problem(part.name, f"gpu={gpus}", "the partition has no GPUs", "--set-resources", "{rule}:gpu=0")
            )
    elif gpus > part.gpus:
        out.append(
            Problem(
                part.name, f"gpu={gpus}", "more GPUs than any node has", "--set-resources", f"{{rule}}:gpu={part.gpus}"
            )
        )
    if not out and not _fits(part, cpus, job.mem_mb or 0, gpus):
        out.append(
            Problem(
                part.name,
                f"{cpus} CPUs + {job.mem_mb or 0} MB + {gpus} GPUs",
                "no single node has all of them",
                "",
                "lower one of them",
            )
        )
    return out


def _missing(name: str, partitions: dict[str, Partition]) -> Problem:
    """A partition that does not exist, or has no nodes."""
    if name in partitions:
        return Problem(
            name, f"slurm_partition={name}", "the partition has no nodes", "--default-resources", "slurm_partition=NAME"
        )
    known = ", ".join(p + ("*" if partitions[p].default else "") for p in partitions)
    return Problem(
        name,
        f"slurm_partition={name}",
        f"no such partition (there are: {known})",
        "--default-resources",
        "slurm_partition=NAME",
    )


def plan_fit(jobs: list[JobRequest], partitions: dict[str, Partition], mode: str = "adapt") -> Plan:
    """Compare every job with its partition: problems that stop the run, changes that let it run.

    mode "adapt" caps threads at the node size and drops GPU requests on partitions without GPUs;
    "strict" reports both as problems instead. Memory, runtime, explicit cpus_per_task and more
    GPUs than a node has are always problems: lowering them could break the job.
    """
    if mode not in MODES:
        raise LoodInputError(f"LOOD_SLURM_PREFLIGHT={mode!r}: allowed values are {', '.join(MODES)}")
    plan = Plan()
    fallback = default_partition(partitions)
    for job in jobs:
        name = job.partition or fallback
        if name is None:
            continue  # no partition given and no default: sbatch itself says so
        part = partitions.get(name)
        if part is None or not part.nodes:
            plan.add(_missing(name, partitions), job.rule)
            continue
        for problem in _check_job(job, part, mode, plan):
            plan.add(problem, job.rule)
    _add_notices(jobs, partitions, fallback, plan)
    return plan


def _add_notices(jobs: list[JobRequest], partitions: dict[str, Partition], fallback: str | None, plan: Plan) -> None:
    """One line per adaptation, and a warning per partition that cannot start jobs now."""
    if plan.max_threads is not None:
        capped = sorted({j.rule for j in jobs if not j.cpus_per_task and j.threads > plan.max_threads})
        plan.notices.append(
            f"threads capped at {plan.max_threads} (the CPUs of one node) for {', '.join(capped)}, "
            f"as --max-threads {plan.max_threads} would (LOOD_SLURM_PREFLIGHT=strict stops instead)"
        )
    if plan.drop_gpu_rules:
        names = sorted({j.partition or fallback for j in jobs if j.rule in plan.drop_gpu_rules and j.gpus})
        plan.notices.append(
            f"partition {', '.join(repr(n) for n in names)} has no GPUs: {', '.join(sorted(plan.drop_gpu_rules))} "
            f"run on CPU instead (gpu=0; LOOD_SLURM_PREFLIGHT=strict stops instead)"
        )
    short = sorted({j.rule for j in jobs if j.runtime_min is not None and j.runtime_min < SHORT_RUNTIME_MIN})
    if short:
        least = min(j.runtime_min for j in jobs if j.rule in short and j.runtime_min is not None)
        plan.notices.append(
            f"WARNING: time limit under {SHORT_RUNTIME_MIN} min (shortest {least} min) for {', '.join(short)}. "
            f"Give every runtime a unit (runtime=60m or runtime=1h): Snakemake 9.16.3-9.19 read a bare "
            f"number as seconds (snakemake#4039)"
        )
    for name in sorted({j.partition or fallback for j in jobs} - {None}):
        part = partitions.get(name)
        if part is None or not part.nodes:
            continue
        if part.state != "UP":
            plan.notices.append(f"WARNING: partition '{name}' is {part.state}: its jobs wait until it is UP again")
        elif all(n.state in UNUSABLE_STATES for n in part.nodes):
            states = ", ".join(sorted({n.state for n in part.nodes}))
            plan.notices.append(f"WARNING: every node of partition '{name}' is {states}: its jobs wait for one")


def _fix(problem: Problem, rules: list[str]) -> str:
    """The command-line option that fixes problem for rules."""
    if not problem.option:
        return problem.setting
    if "{rule}" in problem.setting:
        return problem.option + " " + " ".join(problem.setting.format(rule=rule) for rule in rules)
    return f"{problem.option} {problem.setting}"


def problem_message(plan: Plan, partitions: dict[str, Partition]) -> str:
    """The error that stops the run: each problem with the rules it hits and the option that fixes it."""
    lines = ["SLURM preflight: stopped before the first submission; no node can ever run these jobs:"]
    for name in sorted({p.partition for p in plan.problems} & partitions.keys()):
        lines.append(f"Partition '{name}': {partitions[name].describe()}.")
    for problem, rules in plan.problems.items():
        jobs = sum(rules.values())
        lines.append(
            f"  - {problem.asked} ({'rule' if len(rules) == 1 else 'rules'} {', '.join(rules)}; "
            f"{jobs} {'job' if jobs == 1 else 'jobs'}): {problem.why}."
        )
        lines.append(f"    Fix: {_fix(problem, list(rules))}")
    lines.append(
        "A --set-resources or --default-resources on the command line replaces the profile's whole list\n"
        "of that name: repeat the entries you keep, or edit profiles/slurm/config.yaml instead.\n"
        "What the preflight checks: profiles/slurm/README.md."
    )
    return "\n".join(lines)
