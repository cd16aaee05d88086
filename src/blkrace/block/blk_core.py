"""block/blk-core.c: entering a queue, submit_bio() and the bio_list recursion (v5.9 form).

submit_bio_noacct() is the v5.9 generic_make_request(): while a
->submit_bio method runs, bios it submits are only put on current->bio_list
and are sent after it returns, lowest level first.  direct_make_request()
(removed by 5a6c35f9af41 in v5.9) skipped that list: the lower queue was
entered, and could block, inside the caller's ->submit_bio.
Plugging is here too.
"""

from __future__ import annotations

from blkrace.block import blk_mq
from blkrace.block.types import BLK_MQ_REQ_NOWAIT, BLK_STS_AGAIN, BLK_STS_IOERR, REQ_NOWAIT
from blkrace.engine import READ, WRITE, access
from blkrace.kernel.locking.percpu_ref import percpu_ref_put, percpu_ref_tryget_live
from blkrace.kernel.locking.wait import wait_event, wake_up

EAGAIN = 11
EBUSY = 16
ENODEV = 19


class blk_plug:
    """struct blk_plug: requests a task batches before running the queue."""

    __slots__ = ("mq_list", "rq_count", "multiple_queues")

    def __init__(self):
        self.mq_list = []
        self.rq_count = 0
        self.multiple_queues = False


# blk_start_plug(), block/blk-core.c
def blk_start_plug(k, plug):
    """blk_start_plug(): the task's plug, if it has none yet."""
    ts = k.current
    if ts.plug is not None:
        return
    plug.mq_list = []
    plug.rq_count = 0
    ts.plug = plug


# blk_flush_plug_list(), block/blk-core.c
async def blk_flush_plug_list(k, plug, from_schedule):
    await blk_mq.blk_mq_flush_plug_list(k, plug, from_schedule)


# blk_finish_plug(), block/blk-core.c
async def blk_finish_plug(k, plug):
    """blk_finish_plug(): flush the plug (not from schedule: runs the queue inline)."""
    ts = k.current
    if plug is not ts.plug:
        return
    await blk_flush_plug_list(k, plug, False)
    ts.plug = None


# --------------------------------------------------------- entering a queue


# blk_queue_dying(), include/linux/blkdev.h
def blk_queue_dying(q):
    return q.dying


# blk_queue_enter(), block/blk-core.c
async def blk_queue_enter(q, flags, lockdep_map=None):
    """blk_queue_enter(): a reference on q_usage_counter, waiting while the queue is frozen.

    ``lockdep_map``: the bio path (bio_queue_enter(), direct_make_request())
    annotates q->io_lockdep_map, every other entry q->q_lockdep_map; the
    kernel has the loop twice (__bio_queue_enter()) for that, here it is one."""
    k = q.k
    while True:
        if await percpu_ref_tryget_live(q.q_usage_counter):  # blk_try_enter_queue()
            blk_mq.blk_queue_enter_annotate(k, lockdep_map or q.q_lockdep_map)
            return 0
        if flags & BLK_MQ_REQ_NOWAIT:
            return -EBUSY
        # Uninterruptible: a frozen queue holds us until it is unfrozen (or dies).
        await wait_event(k, q.mq_freeze_wq, lambda: not q.mq_freeze_depth or blk_queue_dying(q), what="blk_queue_enter")
        await access(q, READ)
        if blk_queue_dying(q):
            return -ENODEV


# blk_set_queue_dying(), block/blk-core.c
async def blk_set_queue_dying(q):
    """blk_set_queue_dying() (v5.12): DYING, a freeze that is never ended, and
    every blk_queue_enter() waiter woken to see it (blk_mq_wake_waiters()'s
    tag waiters are not woken here: a named gap)."""
    await access(q, WRITE)
    q.dying = True
    q.k.execution.event(f"{q.name}: dying")
    await blk_mq.blk_freeze_queue_start_non_owner(q)
    await wake_up(q.k, q.mq_freeze_wq)  # "Make blk_queue_enter() reexamine the DYING flag."


# blk_cleanup_queue(), block/blk-core.c
async def blk_cleanup_queue(q):
    """blk_cleanup_queue() (v5.12): mark it dying, then drain what was queued
    before (blk_freeze_queue()).  What follows (QUEUE_FLAG_DEAD, sync, exit
    of the hctxs) frees nothing the model still looks at, and is left out."""
    await blk_set_queue_dying(q)
    await blk_mq.blk_mq_freeze_queue_wait(q)


# blk_queue_exit(), block/blk-core.c
async def blk_queue_exit(q):
    await percpu_ref_put(q.q_usage_counter)


# bio_wouldblock_error(), include/linux/bio.h
async def bio_wouldblock_error(k, bio):
    bio.bi_status = BLK_STS_AGAIN
    await blk_mq.bio_endio(k, bio)


# bio_io_error(), include/linux/bio.h
async def bio_io_error(k, bio):
    bio.bi_status = BLK_STS_IOERR
    await blk_mq.bio_endio(k, bio)


# bio_queue_enter(), block/blk-core.c (v5.9)
async def bio_queue_enter(k, bio):
    """bio_queue_enter(): enter the bio's queue; a NOWAIT bio fails instead of waiting."""
    q = bio.bi_disk
    nowait = bio.bi_opf & REQ_NOWAIT
    ret = await blk_queue_enter(q, BLK_MQ_REQ_NOWAIT if nowait else 0, q.io_lockdep_map)
    if ret:
        if nowait and not blk_queue_dying(q):
            await bio_wouldblock_error(k, bio)
        else:
            await bio_io_error(k, bio)
    return ret


# --------------------------------------------------------------- submission


# __submit_bio(), block/blk-core.c (v5.9)
async def __submit_bio(k, bio):
    """__submit_bio(): a bio-based driver's ->submit_bio, or blk-mq."""
    q = bio.bi_disk
    if q.submit_bio is not None:
        await q.submit_bio(k, bio)
        await blk_queue_exit(q)
    else:
        await blk_mq.blk_mq_submit_bio(bio)


# __submit_bio_noacct(), block/blk-core.c (v5.9)
async def __submit_bio_noacct(k, bio):
    """__submit_bio_noacct(): run ->submit_bio with current->bio_list collecting
    what it submits, then send those bios, lower levels first."""
    ts = k.current
    ts.bio_list = [[], []]  # bio_list_on_stack[2]
    while bio is not None:
        q = bio.bi_disk
        if await bio_queue_enter(k, bio) == 0:
            # A fresh list for the subordinate requests.
            ts.bio_list[1] = ts.bio_list[0]
            ts.bio_list[0] = []
            await __submit_bio(k, bio)
            lower = [b for b in ts.bio_list[0] if b.bi_disk is not q]
            same = [b for b in ts.bio_list[0] if b.bi_disk is q]
            ts.bio_list[0] = lower + same + ts.bio_list[1]
        bio = ts.bio_list[0].pop(0) if ts.bio_list[0] else None
    ts.bio_list = None


# __submit_bio_noacct_mq(), block/blk-core.c (v5.9)
async def __submit_bio_noacct_mq(k, bio):
    """__submit_bio_noacct_mq(): blk-mq queues need no level sorting.

    blk-throttle runs here for each bio, as generic_make_request_checks() ran
    it from the v3.x generic_make_request() loop: a bio submitted while the
    loop is active waits on current->bio_list and is throttled later.
    """
    ts = k.current
    ts.bio_list = [[], []]
    while bio is not None:
        if bio.bi_disk.td is not None:
            from blkrace.block.blk_throttle import blk_throtl_bio

            await blk_throtl_bio(k, bio.bi_disk, bio)
        if await bio_queue_enter(k, bio) == 0:
            if bio.bi_disk.cfqd is not None:
                # CFQ's group lookup, where v3.x's get_request() -> elv_set_request() ran it.
                from blkrace.block.cfq_iosched import cfq_set_request

                await cfq_set_request(k, bio.bi_disk, bio)
            await blk_mq.blk_mq_submit_bio(bio)
        bio = ts.bio_list[0].pop(0) if ts.bio_list[0] else None
    ts.bio_list = None


# submit_bio_noacct(), block/blk-core.c (v5.9)
async def submit_bio_noacct(k, bio):
    """submit_bio_noacct() (generic_make_request() before v5.9)."""
    q = bio.bi_disk
    if not bio.submitter:
        q.bios.append(bio)
        bio.submitter = k.current.comm
    ts = k.current
    if ts.bio_list is not None:
        # Only one ->submit_bio active at a time: collect, send after it returns.
        ts.bio_list[0].append(bio)
        return
    if q.submit_bio is None:
        await __submit_bio_noacct_mq(k, bio)
    else:
        await __submit_bio_noacct(k, bio)


# generic_make_request(), block/blk-core.c
async def generic_make_request(k, bio):
    """generic_make_request(): the pre-v5.9 name of submit_bio_noacct()."""
    await submit_bio_noacct(k, bio)


# direct_make_request(), block/blk-core.c
async def direct_make_request(k, bio):
    """direct_make_request() (v4.13-v5.8): submit to a blk-mq queue right now,
    bypassing current->bio_list: the queue is entered here, in the caller."""
    q = bio.bi_disk
    if not bio.submitter:
        q.bios.append(bio)
        bio.submitter = k.current.comm
    nowait = bio.bi_opf & REQ_NOWAIT
    # The io_lockdep_map annotation is v6.13's (f1be1788a32e, toggle block-freeze-lockdep),
    # applied with it as if this v5.8 path had it; nothing without it.
    if await blk_queue_enter(q, BLK_MQ_REQ_NOWAIT if nowait else 0, q.io_lockdep_map):
        if nowait and not blk_queue_dying(q):
            await bio_wouldblock_error(k, bio)
        else:
            await bio_io_error(k, bio)
        return
    await blk_mq.blk_mq_submit_bio(bio)


async def submit_bio(k, bio):
    """submit_bio(), block/blk-core.c."""
    await submit_bio_noacct(k, bio)


# blk_alloc_queue(), block/blk-core.c
def blk_alloc_queue(k, name, submit_bio_fn):
    """blk_alloc_queue(): a bio-based queue whose disk's fops->submit_bio is ``submit_bio_fn``."""
    from blkrace.block.blk_mq import init_queue_usage
    from blkrace.block.types import request_queue

    q = request_queue(k, name, None)
    q.submit_bio = submit_bio_fn
    init_queue_usage(q)
    return q


__all__ = ["EAGAIN", "blk_queue_enter", "blk_queue_exit", "submit_bio", "submit_bio_noacct"]
