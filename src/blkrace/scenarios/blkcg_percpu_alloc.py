"""blkcg-percpu-alloc: seed 004, per-CPU stats allocated on the I/O path (v3.1-v3.2).

Topology: 2 CPUs, a disk "sda" that also holds the swap area, blk-throttle and
CFQ (its cgroup groups) on it, blkio cgroups A, B and C, memory pressure (each allocation that may
reclaim: succeed, reclaim or fail is the explorer's choice), lockdep on with
one dependency graph for the whole campaign.
Workload: "dd" in A reads twice from sda; "app" in C allocates memory
(GFP_KERNEL), which may reclaim and swap out through sda; "modprobe" in B
allocates per-CPU memory (pcpu_alloc_mutex held across GFP_KERNEL pages),
which may reclaim too; "rmdir" removes cgroup C after a chosen delay.

Without the patch, a cgroup's first bio allocates its group's stats with
alloc_percpu(): from dd that marks pcpu_alloc_mutex RECLAIM_FS-ON; from
reclaim's swap-out (app, modprobe) it takes the mutex IN-RECLAIM_FS: lockdep
reports the inconsistency on runs that never deadlock, and modprobe, whose
reclaim re-enters the mutex it holds, deadlocks on itself.
"""

from __future__ import annotations

from blkrace.block.blk_cgroup import ALLOC_PCPU_FROM_WORKER, CMPXCHG_RESULT_FIX, blkio_cgroup
from blkrace.block.blk_core import submit_bio
from blkrace.block.blk_throttle import blk_throtl_init, throtl_unlink_blkio_group
from blkrace.block.cfq_iosched import cfq_init_queue, cfq_unlink_blkio_group
from blkrace.block.types import REQ_OP_WRITE, bio
from blkrace.drivers.null_blk import null_add_dev
from blkrace.engine import NSEC_PER_USEC, choose, sleep
from blkrace.kernel.boot import boot
from blkrace.kernel.locking.lockdep import FS_RECLAIM_REWORK, lockdep_graph
from blkrace.kernel.mm import GFP_KERNEL, alloc_percpu, kmalloc, mm_init
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.scenarios.base import Scenario, Variant
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import sync_reader


async def end_swap_bio_write(k, b):
    """end_swap_bio_write(): the page is written; nothing waits for it here."""


def make_swap_writepage(q):
    async def swap_writepage(k):
        """swap_writepage() -> submit_bio(WRITE) on the swap area, from reclaim."""
        ts = k.current
        n = ts.extra.get("swapouts", 0)
        ts.extra["swapouts"] = n + 1
        b = bio(f"swap:{ts.comm}#{n}", REQ_OP_WRITE, end_swap_bio_write, None)
        b.bi_disk = q
        await submit_bio(k, b)

    return swap_writepage


async def app(k, cg):
    """A process that allocates memory: under pressure, direct reclaim swaps out."""
    k.current.extra["blkcg"] = cg
    await kmalloc(k, 4096, GFP_KERNEL, what="app's kmalloc")


async def modprobe(k, cg):
    """A module's init allocating per-CPU data (the seed's acpi_early_init)."""
    k.current.extra["blkcg"] = cg
    await alloc_percpu(k, "module percpu")


async def rmdir(k, q, cg):
    """rmdir /sys/fs/cgroup/blkio/C, some time in."""
    await sleep(await choose(3, "when the cgroup is removed (x 50 us)") * 50 * NSEC_PER_USEC)
    # blkiocg_destroy(): each policy unlinks the cgroup's group on each queue.
    if q.td is not None:
        await throtl_unlink_blkio_group(k, q.td, cg)
    if q.cfqd is not None:
        await cfq_unlink_blkio_group(k, q.cfqd, cg)


async def setup_and_run(k, q, cgs, policies):
    """Boot-time queue setup (each policy allocates its root group), then the workload."""
    mm = k.mm
    mm.pressure = False
    if "throttle" in policies:
        await blk_throtl_init(k, q)
    if "cfq" in policies:
        await cfq_init_queue(k, q)
    mm.pressure = True
    task_run_on_cpu(k, sync_reader, "dd", 0, q, 2, cgs["A"])
    task_run_on_cpu(k, app, "app", 1, cgs["C"])
    task_run_on_cpu(k, modprobe, "modprobe", 1, cgs["B"])
    task_run_on_cpu(k, rmdir, "rmdir", 0, q, cgs["C"])


def build_blkcg_machine(execution, variant, policies=("throttle", "cfq")):
    """The scenario's machine; ``policies`` picks the per-CPU stats users on sda
    (both, as on a v3.1 box with CFQ and blk-throttle; tests take one at a time)."""
    k = boot(execution, nr_cpus=2, patches=variant.patches, hotplug=False)
    k.lockdep = execution.shared.setdefault("lockdep", lockdep_graph())
    mm_init(k)
    k.blkcg_root = blkio_cgroup("root", 0)
    cgs = {name: blkio_cgroup(name, i + 1) for i, name in enumerate("ABC")}
    nb = null_add_dev(k, "sda", nr_hw_queues=1, hw_queue_depth=8, completion_us=100, rq_affinity=1)
    k.mm.swap_writepage = make_swap_writepage(nb.q)
    task_run_on_cpu(k, setup_and_run, "init", 0, nb.q, cgs, policies)
    execution.checkers.append(lambda ex: check_bios(nb.q, ex))


class BlkcgPercpuAlloc(Scenario):
    def build(self, execution, variant):
        build_blkcg_machine(execution, variant)


RFT = frozenset({ALLOC_PCPU_FROM_WORKER.name})

SCENARIO = BlkcgPercpuAlloc(
    name="blkcg-percpu-alloc",
    summary="per-CPU stats allocated with GFP_KERNEL on the I/O path: lockdep RECLAIM_FS inconsistency, "
    "and reclaim deadlocking on pcpu_alloc_mutex (seed 004)",
    seed="004_bd8217375a047077.txt",
    variants={
        "buggy": Variant(
            "buggy",
            frozenset(),
            frozenset({"lockdep", "deadlock"}),
            "v3.1: lockdep's inconsistent {RECLAIM_FS-ON-W} -> {IN-RECLAIM_FS-W} on pcpu_alloc_mutex, and the "
            "real self-deadlock where reclaim recurses",
            allowed=frozenset({"stall"}),
        ),
        "buggy-fs-reclaim": Variant(
            "buggy-fs-reclaim",
            frozenset({FS_RECLAIM_REWORK.name}),
            frozenset({"lockdep", "deadlock"}),
            "the same code under v4.14's lockdep (d92a8cfcb37e): the report becomes a circular dependency "
            "fs_reclaim --> pcpu_alloc_mutex, as modern splats show it",
            allowed=frozenset({"stall"}),
        ),
        "rft": Variant(
            "rft",
            RFT,
            frozenset({"bug"}),
            "the RFT patch as posted: no report, no deadlock, but tg_stat_alloc_fn() misreads cmpxchg()'s "
            "result and frees the stats it just installed: use after free",
        ),
        "fixed": Variant(
            "fixed",
            RFT | {CMPXCHG_RESULT_FIX.name},
            frozenset(),
            "the RFT patch with cmpxchg()'s result tested against the old value: stats from a worker, "
            "installed by cmpxchg, skipped until then; no report, no deadlock, no use after free",
        ),
    },
)
