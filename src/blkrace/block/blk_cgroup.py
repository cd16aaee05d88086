"""block/blk-cgroup.c (v3.1-v3.2): blkio cgroups, their groups and per-CPU stats.

A blkio_group's per-CPU stats come from alloc_percpu(), a GFP_KERNEL
allocation under pcpu_alloc_mutex.  With the RFT patch of seed 004 they may
be missing (allocated later by a worker) and every stats path skips a group
whose stats_cpu is still NULL.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, StopRun, Violation, access
from blkrace.kernel.mm import alloc_percpu
from blkrace.kernel.patch import Patch

ALLOC_PCPU_FROM_WORKER = Patch(
    "blkio-alloc-percpu-stats-from-worker",
    "",
    "blkio: alloc per cpu data from worker thread context (RFT, Vivek Goyal, 15 Dec 2011)",
)
CMPXCHG_RESULT_FIX = Patch(
    "blkio-stats-cmpxchg-result",
    "",
    "test cmpxchg()'s result against the old value, as the later upstream form does",
)


class blkio_cgroup:
    __slots__ = ("name", "id")

    def __init__(self, name, cid):
        self.name = name
        self.id = cid


class blkio_group:
    __slots__ = ("name", "blkcg", "stats_cpu", "dispatched")

    def __init__(self, name, blkcg):
        self.name = name
        self.blkcg = blkcg
        self.stats_cpu = None
        self.dispatched = 0


# task_blkio_cgroup(), block/blk-cgroup.c
def task_blkio_cgroup(k):
    """task_blkio_cgroup(current)."""
    return k.current.extra.get("blkcg") or k.blkcg_root


# blkio_alloc_blkg_stats(), block/blk-cgroup.c
async def blkio_alloc_blkg_stats(k, blkg):
    """blkio_alloc_blkg_stats() (blkio_alloc_set_blkg_stats() with the patch): 0 or -ENOMEM."""
    blkg.stats_cpu = await alloc_percpu(k, f"{blkg.name}.stats_cpu")
    return 0 if blkg.stats_cpu is not None else -12


# blkio_alloc_blkg_stats_pcpu(), block/blk-cgroup.c (seed 004's RFT patch)
async def blkio_alloc_blkg_stats_pcpu(k, blkg_name):
    """blkio_alloc_blkg_stats_pcpu() (added by the patch)."""
    return await alloc_percpu(k, f"{blkg_name}.stats_cpu")


# blkio_cmpxchg_blkg_stats(), block/blk-cgroup.c (seed 004's RFT patch)
async def blkio_cmpxchg_blkg_stats(blkg, old, new):
    """cmpxchg(&blkg->stats_cpu, old, new): returns what was there."""
    await access(blkg, WRITE)
    cur = blkg.stats_cpu
    if cur is old:
        blkg.stats_cpu = new
    return cur


# blkiocg_update_dispatch_stats(), block/blk-cgroup.c
async def blkiocg_update_dispatch_stats(k, blkg, nbytes, direction, sync):
    """blkiocg_update_dispatch_stats(): per-CPU counters of the group."""
    await access(blkg, READ)
    if k.patched(ALLOC_PCPU_FROM_WORKER) and blkg.stats_cpu is None:
        return
    stats = blkg.stats_cpu
    if stats is not None and stats.freed:
        # Checked invariant: per-CPU stats are not used after free_percpu().
        raise StopRun(
            Violation(
                "bug",
                f"use after free: {blkg.name}'s per-cpu stats ({stats.name}) were freed while installed",
                origin="bug:stats-use-after-free",
            )
        )
    blkg.dispatched += 1
