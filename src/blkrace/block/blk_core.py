"""block/blk-core.c: submit_bio() and plugging (v5.7).

Left out until the freeze work: blk_queue_enter() on q_usage_counter and the
current->bio_list recursion of generic_make_request().
"""

from __future__ import annotations

from blkrace.block import blk_mq


class blk_plug:
    """struct blk_plug: requests a task batches before running the queue."""

    __slots__ = ("mq_list", "rq_count", "multiple_queues")

    def __init__(self):
        self.mq_list = []
        self.rq_count = 0
        self.multiple_queues = False


def blk_start_plug(k, plug):
    """blk_start_plug(): the task's plug, if it has none yet."""
    ts = k.current
    if ts.plug is not None:
        return
    plug.mq_list = []
    plug.rq_count = 0
    ts.plug = plug


async def blk_flush_plug_list(k, plug, from_schedule):
    await blk_mq.blk_mq_flush_plug_list(k, plug, from_schedule)


async def blk_finish_plug(k, plug):
    """blk_finish_plug(): flush the plug (not from schedule: runs the queue inline)."""
    ts = k.current
    if plug is not ts.plug:
        return
    await blk_flush_plug_list(k, plug, False)
    ts.plug = None


async def generic_make_request(k, bio):
    """generic_make_request(): hand the bio to the queue's make_request_fn."""
    q = bio.bi_disk
    q.bios.append(bio)
    bio.submitter = k.current.comm
    await blk_mq.blk_mq_make_request(q, bio)


async def submit_bio(k, bio):
    """submit_bio(), block/blk-core.c."""
    await generic_make_request(k, bio)
