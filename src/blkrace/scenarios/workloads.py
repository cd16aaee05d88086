"""Workloads several scenarios share: what user processes do to a disk."""

from __future__ import annotations

from blkrace.block.blk_core import submit_bio
from blkrace.block.types import REQ_OP_READ, REQ_SYNC, bio
from blkrace.kernel.cpuhp import cpu_down, cpu_up
from blkrace.kernel.locking.wait import complete, completion, wait_for_completion


async def end_io_sync(k, b):
    """submit_bio_wait_endio(): wake the waiting submitter."""
    await complete(k, b.bi_private)


async def sync_reader(k, q, nr_reads, blkcg=None):
    """A process reading synchronously (submit_bio_wait()), ``nr_reads`` times,
    in blkio cgroup ``blkcg`` when given."""
    ts = k.current
    if blkcg is not None:
        ts.extra["blkcg"] = blkcg
    for i in range(nr_reads):
        done = completion(f"{ts.comm}:read#{i}.done")
        b = bio(f"bio:{ts.comm}#{i}", REQ_OP_READ | REQ_SYNC, end_io_sync, done)
        b.bi_disk = q
        await submit_bio(k, b)
        await wait_for_completion(k, done)


async def hotplug(k, cpus):
    """The control task: offline the CPUs one by one, then online them in reverse order."""
    for cpu in cpus:
        await cpu_down(k, cpu)
    for cpu in reversed(cpus):
        await cpu_up(k, cpu)
