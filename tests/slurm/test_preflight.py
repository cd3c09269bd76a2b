"""The SLURM preflight's logic (lood.slurm.partitions, lood.slurm.job_plan) on hand-written sinfo/scontrol output."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from lood.errors import LoodInputError
from lood.slurm.job_plan import JobRequest, plan_fit, problem_message
from lood.slurm.partitions import gres_gpus, parse_partitions, slurm_minutes
from lood.slurm.preflight import job_request

# tests/slurm/setup_slurm.sh's one-node cluster, as SLURM 22.05 printed it.
TEST_SINFO = "debug|vm|2|24105|(null)|idle\n"
TEST_SCONTROL = (
    "PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A "
    "DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED "
    "MaxTime=UNLIMITED MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 "
    "RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 "
    "TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED "
    "TRES=cpu=2,mem=24105M,node=1,billing=2\n"
)

# A made-up site: a default CPU partition (one node down, one draining), a GPU partition with
# two node sizes, a short partition with per-node caps, and one that is DOWN with drained nodes.
SITE_SINFO = """\
cpu|c01|48|192000|(null)|idle
cpu|c02|48|192000|(null)|down*
cpu|c03|64|512000|(null)|drng
gpu|g01|32|256000|gpu:a100:4(S:0-1)|mix
gpu|g02|16|128000|gpu:v100:2(S:0),shard:8|idle
short|c01|48|192000|(null)|idle
maint|m01|8|32000|(null)|drain
"""
SITE_SCONTROL = """\
PartitionName=cpu Default=YES MaxTime=2-00:00:00 MaxMemPerNode=UNLIMITED MaxCPUsPerNode=UNLIMITED State=UP
PartitionName=gpu Default=NO MaxTime=1-12:00:00 MaxMemPerNode=UNLIMITED MaxCPUsPerNode=UNLIMITED State=UP
PartitionName=short Default=NO MaxTime=1:00:00 MaxMemPerNode=64000 MaxCPUsPerNode=16 State=UP
PartitionName=maint Default=NO MaxTime=UNLIMITED MaxMemPerNode=UNLIMITED MaxCPUsPerNode=UNLIMITED State=DOWN
PartitionName=empty Default=NO MaxTime=UNLIMITED State=UP
"""


@pytest.fixture
def site():
    return parse_partitions(SITE_SINFO, SITE_SCONTROL)


@pytest.mark.parametrize(
    "text, days, hours, minutes, seconds",
    [
        ("30", 0, 0, 30, 0),  # minutes
        ("30:15", 0, 0, 30, 15),  # minutes:seconds
        ("1:30:00", 0, 1, 30, 0),  # hours:minutes:seconds
        ("2-12", 2, 12, 0, 0),  # days-hours
        ("2-12:30", 2, 12, 30, 0),  # days-hours:minutes
        ("1-00:00:59", 1, 0, 0, 59),  # days-hours:minutes:seconds
    ],
)
def test_slurm_minutes_reads_every_slurm_time_format(text, days, hours, minutes, seconds):
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds) // timedelta(minutes=1)
    assert slurm_minutes(text) == expected


def test_slurm_minutes_unlimited_and_garbage():
    assert slurm_minutes("UNLIMITED") is None and slurm_minutes("infinite") is None
    with pytest.raises(LoodInputError, match="time limit"):
        slurm_minutes("two hours")


@pytest.mark.parametrize(
    "gres, gpus",
    [
        ("(null)", 0),
        ("gpu:4", 4),
        ("gpu:a100:4(S:0-1)", 4),
        ("gpu:v100:2(S:0),shard:8", 2),
        ("gpu:a100:2,gpu:v100:1", 3),
        ("mps:100", 0),
        ("gpu:1g.10gb:7(S:0)", 7),
    ],
)
def test_gres_gpus_counts_only_gpus(gres, gpus):
    assert gres_gpus(gres) == gpus


def test_parse_the_test_cluster():
    parts = parse_partitions(TEST_SINFO, TEST_SCONTROL)
    assert list(parts) == ["debug"]
    debug = parts["debug"]
    assert (debug.cpus, debug.mem_mb, debug.gpus, debug.max_time_min, debug.default) == (2, 24105, 0, None, True)


def test_parse_a_site(site):
    assert (site["cpu"].cpus, site["cpu"].mem_mb, site["cpu"].max_time_min) == (64, 512000, 2 * 1440)
    assert (site["gpu"].gpus, site["gpu"].max_time_min) == (4, 36 * 60)
    # Per-node caps of the partition bound what one job may use on its nodes.
    assert (site["short"].cpus, site["short"].mem_mb, site["short"].max_time_min) == (16, 64000, 60)
    assert [n.state for n in site["cpu"].nodes] == ["idle", "down", "drng"]
    assert site["empty"].nodes == ()


def test_the_issue_run_adapts_threads_and_gpus():
    """8-thread NNGP jobs and GPU training on a 2-CPU node without GPUs."""
    parts = parse_partitions(TEST_SINFO, TEST_SCONTROL)
    jobs = [
        JobRequest("nngp_lood", "debug", threads=8, mem_mb=12000),
        JobRequest("train_in_models", "debug", threads=4, mem_mb=16000, gpus=1),
        JobRequest("mia_scores", "debug", threads=1, mem_mb=4000),
    ]
    plan = plan_fit(jobs, parts)
    assert not plan.problems
    assert plan.max_threads == 2 and plan.drop_gpu_rules == ["train_in_models"]
    assert "threads capped at 2" in plan.notices[0] and "nngp_lood, train_in_models" in plan.notices[0]
    assert "has no GPUs: train_in_models" in plan.notices[1]


def test_strict_mode_names_rule_request_offer_and_flag():
    parts = parse_partitions(TEST_SINFO, TEST_SCONTROL)
    jobs = [JobRequest("nngp_lood", "debug", threads=8), JobRequest("influence", "debug", threads=1, gpus=1)]
    plan = plan_fit(jobs, parts, mode="strict")
    assert plan.max_threads is None and plan.drop_gpu_rules == []
    message = problem_message(plan, parts)
    assert "threads=8 (rule nngp_lood; 1 job): more CPUs than any node has" in message
    assert "Fix: --max-threads 2" in message
    assert "gpu=1 (rule influence; 1 job): the partition has no GPUs" in message
    assert "Fix: --set-resources influence:gpu=0" in message
    assert "Partition 'debug': nodes of at most 2 CPUs, 24105 MB memory, 0 GPUs; no time limit." in message


def test_memory_fix_goes_where_the_value_came_from():
    parts = parse_partitions(TEST_SINFO, TEST_SCONTROL)
    jobs = [
        JobRequest("plot_a", "debug", threads=1, mem_mb=30000, from_defaults=frozenset({"mem_mb"})),
        JobRequest("plot_b", "debug", threads=1, mem_mb=30000, from_defaults=frozenset({"mem_mb"})),
        JobRequest("nngp_lood", "debug", threads=1, mem_mb=64000),
        JobRequest("nngp_lood", "debug", threads=1, mem_mb=64000),
    ]
    message = problem_message(plan_fit(jobs, parts), parts)
    assert "mem_mb=30000 (rules plot_a, plot_b; 2 jobs): more memory than any node has." in message
    assert "Fix: --default-resources mem_mb=24105" in message
    assert "mem_mb=64000 (rule nngp_lood; 2 jobs)" in message
    assert "Fix: --set-resources nngp_lood:mem_mb=24105" in message


def test_every_always_fatal_request(site):
    jobs = [
        JobRequest("a", "short", threads=1, runtime_min=90),  # over MaxTime 1:00:00
        JobRequest("b", "short", threads=1, mem_mb=100000),  # over MaxMemPerNode, under the node
        JobRequest("c", "short", threads=1, cpus_per_task=32),  # explicit CPUs: never capped
        JobRequest("d", "gpu", threads=1, gpus=8),  # more GPUs than any node
        JobRequest("e", "cpu", threads=1, gpus=1),  # default partition, no GPUs: adapted, not fatal
    ]
    plan = plan_fit(jobs, site)
    fixes = {p.asked: p for p in plan.problems}
    assert set(fixes) == {"runtime=90", "mem_mb=100000", "cpus_per_task=32", "gpu=8"}
    message = problem_message(plan, site)
    for fix in ("a:runtime=60", "b:mem_mb=64000", "c:cpus_per_task=16", "d:gpu=4"):
        assert f"--set-resources {fix}" in message
    assert plan.drop_gpu_rules == ["e"]


def test_a_job_fits_when_one_node_holds_all_of_it(site):
    # gpu: g01 has 32 CPUs, 256 GB, 4 GPUs; g02 has 16 CPUs, 128 GB, 2 GPUs.
    fits = JobRequest("y", "gpu", threads=1, cpus_per_task=20, gpus=4, mem_mb=200000)
    assert not plan_fit([fits], site).problems
    too_much_memory = JobRequest("z", "gpu", threads=1, cpus_per_task=20, gpus=2, mem_mb=300000)
    assert [p.why for p in plan_fit([too_much_memory], site).problems] == ["more memory than any node has"]


def test_no_single_node_has_everything():
    sinfo = "p|big_cpu|64|64000|(null)|idle\np|big_mem|8|512000|(null)|idle\n"
    parts = parse_partitions(sinfo, "PartitionName=p Default=YES MaxTime=UNLIMITED State=UP\n")
    plan = plan_fit([JobRequest("k", "p", threads=1, cpus_per_task=32, mem_mb=256000)], parts)
    assert [p.why for p in plan.problems] == ["no single node has all of them"]
    assert "Fix: lower one of them" in problem_message(plan, parts)


def test_threads_cap_is_the_smallest_node_among_partitions_that_need_it(site):
    jobs = [
        JobRequest("a", "short", threads=32),
        JobRequest("b", "cpu", threads=100),
        JobRequest("c", "cpu", threads=8),
    ]
    plan = plan_fit(jobs, site)
    assert plan.max_threads == 16 and not plan.problems
    assert "for a, b," in plan.notices[0]


def test_missing_partitions_and_warnings(site):
    plan = plan_fit([JobRequest("a", "nope", threads=1), JobRequest("b", "empty", threads=1)], site)
    whys = sorted(p.why for p in plan.problems)
    assert whys == ["no such partition (there are: cpu*, gpu, short, maint, empty)", "the partition has no nodes"]
    plan = plan_fit([JobRequest("a", "maint", threads=1)], site)
    assert not plan.problems and plan.notices == [
        "WARNING: partition 'maint' is DOWN: its jobs wait until it is UP again"
    ]
    down = parse_partitions(
        "q|n1|4|8000|(null)|down*\nq|n2|4|8000|(null)|drain\n", "PartitionName=q Default=YES State=UP"
    )
    plan = plan_fit([JobRequest("a", None, threads=1)], down)
    assert plan.notices == ["WARNING: every node of partition 'q' is down, drain: its jobs wait for one"]


def test_unknown_mode_is_refused(site):
    with pytest.raises(LoodInputError, match="LOOD_SLURM_PREFLIGHT='loose'.*adapt, strict, off"):
        plan_fit([], site, mode="loose")


def test_job_request_reads_what_the_plugin_submits():
    """threads unless cpus_per_task is set; mem_mb_per_cpu times CPUs; unknown (TBD) values skipped."""
    job = SimpleNamespace(
        rule=SimpleNamespace(name="nngp_lood"),
        threads=8,
        resources={"mem_mb": 12000, "runtime": 120, "gpu": 1, "slurm_partition": "gpu", "tmpdir": "<TBD>"},
    )
    request = job_request(job, frozenset({"runtime"}))
    assert request == JobRequest("nngp_lood", "gpu", 8, None, 12000, 120, 1, frozenset({"runtime"}))
    job.resources = {"cpus_per_task": 4, "mem_mb_per_cpu": 1000, "mem_mb": 2000, "runtime": "<TBD>"}
    request = job_request(job)
    assert (request.cpus, request.mem_mb, request.runtime_min, request.partition) == (4, 4000, None, None)
