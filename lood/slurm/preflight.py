"""The SLURM preflight: before the first sbatch, check every job against its partition.

Called from the Snakefile's `onstart:` hook, which Snakemake runs once the DAG is built
and the executor created, before the first job is submitted (not in dry runs, not
inside cluster jobs). With any executor but slurm it does nothing. The decisions live
in lood/slurm/job_plan.py; this module reads the jobs, and applies the changes.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from lood.errors import LoodInputError
from lood.slurm.job_plan import JobRequest, plan_fit, problem_message
from lood.slurm.partitions import read_partitions

ENV_MODE = "LOOD_SLURM_PREFLIGHT"


def _int(value: Any) -> int | None:
    """A resolved resource as int; None when unset or not yet known (Snakemake's TBD)."""
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def job_request(job: Any, from_defaults: frozenset[str] = frozenset()) -> JobRequest:
    """What the SLURM plugin will ask sbatch for this Snakemake job."""
    res = job.resources
    threads = int(job.threads)
    cpus_per_task = _int(res.get("cpus_per_task"))
    cpus_per_task = cpus_per_task if cpus_per_task and cpus_per_task > 0 else None
    mem_mb = _int(res.get("mem_mb"))
    per_cpu = _int(res.get("mem_mb_per_cpu"))
    if per_cpu:
        mem_mb = per_cpu * (cpus_per_task or threads)
    partition = res.get("slurm_partition")
    return JobRequest(
        rule=job.rule.name,
        partition=str(partition) if partition else None,
        threads=threads,
        cpus_per_task=cpus_per_task,
        mem_mb=mem_mb,
        runtime_min=_int(res.get("runtime")),
        gpus=_int(res.get("gpu")) or 0,
        from_defaults=from_defaults,
    )


def defaulted(workflow: Any, rule: str) -> frozenset[str]:
    """The resources a rule takes from default-resources (not set per rule in set-resources).

    The rules of this workflow declare no resources themselves, so everything else is per rule.
    """
    settings = workflow.resource_settings
    defaults = set(settings._parsed_default_resources.keys())
    return frozenset(defaults - set(settings._parsed_overwrite_resources.get(rule, {}).keys()))


def _reset(jobs: list[Any]) -> None:
    """Make Snakemake evaluate these jobs' threads and resources again."""
    for job in jobs:
        job._resources = None
        job._scheduler_resources = None


def apply_plan(workflow: Any, jobs: list[Any], max_threads: int | None, drop_gpu_rules: list[str]) -> None:
    """Cap threads and drop GPU requests, here and in every job Snakemake spawns on a node."""
    from snakemake.resources import Resources

    settings = workflow.resource_settings
    if max_threads is not None:
        # Read by Rule.expand_resources and passed on to each job as --max-threads.
        settings.max_threads = min(settings.max_threads or max_threads, max_threads)
    overwrite = settings._parsed_overwrite_resources  # passed on to each job as --set-resources
    for name in drop_gpu_rules:
        workflow.get_rule(name).resources["gpu"] = 0
        overwrite.setdefault(name, Resources())["gpu"] = 0
    _reset(jobs)


def slurm_preflight(workflow: Any) -> None:
    """Stop the run before any submission if a job can never start; cap threads, drop GPUs where none exist."""
    from snakemake.exceptions import WorkflowError
    from snakemake.logging import logger

    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    mode = os.environ.get(ENV_MODE, "adapt")
    if mode == "off":
        logger.info(f"SLURM preflight: skipped ({ENV_MODE}=off)")
        return
    settings = workflow.executor_settings
    if getattr(settings, "partition_config", None) or os.environ.get("SNAKEMAKE_SLURM_PARTITIONS"):
        logger.info("SLURM preflight: skipped (the plugin picks partitions from a partition file)")
        return
    try:
        partitions = read_partitions()
    except (OSError, subprocess.SubprocessError, LoodInputError) as err:
        logger.warning(f"SLURM preflight: skipped, cannot read the partitions ({err})")
        return
    jobs = [job for job in workflow.dag.needrun_jobs() if not job.is_local]
    try:
        plan = plan_fit([job_request(job, defaulted(workflow, job.rule.name)) for job in jobs], partitions, mode)
    except LoodInputError as err:  # a bad mode
        raise WorkflowError(str(err)) from None
    if plan.problems:
        raise WorkflowError(problem_message(plan, partitions))
    if plan.max_threads is not None or plan.drop_gpu_rules:
        apply_plan(workflow, jobs, plan.max_threads, plan.drop_gpu_rules)
    for line in plan.notices:
        logger.info(f"SLURM preflight: {line}")
    logger.info(f"SLURM preflight: {len(jobs)} jobs fit their partitions")
