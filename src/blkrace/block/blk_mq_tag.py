"""block/blk-mq-tag.c (v5.8): tag allocation over sbitmap, sleeping when none is free.

The INACTIVE check at ``found_tag`` is the hunk of bf0beec0607d: a tag
taken on a hctx whose last CPU is going away is given back, and the caller
retries on another hctx.
"""

from __future__ import annotations

from blkrace.block import sbitmap
from blkrace.block.types import BLK_MQ_NO_TAG, BLK_MQ_REQ_INTERNAL, BLK_MQ_REQ_NOWAIT, blk_mq_tags
from blkrace.engine import READ, TOUCHES_NOTHING, access
from blkrace.kernel.atomic import test_bit
from blkrace.kernel.locking.wait import schedule_entry
from blkrace.kernel.memory import ONCE, mm_load, smp_mb
from blkrace.kernel.patch import Patch

DRAIN_INACTIVE_HCTX = Patch(
    "blk-mq-drain-inactive-hctx",
    "bf0beec0607d",
    "blk-mq: drain I/O when all CPUs in a hctx are offline",
)
# The same commit's hunks in drivers/block/loop.c and drivers/md/dm-rq.c: the
# stacking drivers set BLK_MQ_F_STACKING, so that their hctxs never register
# for CPUHP_AP_BLK_MQ_ONLINE and are not drained.  A toggle of its own so that
# the blk-mq side can be run without it (hctx-drain's fixed-without-stacking).
DRAIN_STACKING_FLAG = Patch(
    "blk-mq-stacking-flag",
    "bf0beec0607d",
    "blk-mq: drain I/O when all CPUs in a hctx are offline (the loop.c and dm-rq.c hunks: BLK_MQ_F_STACKING)",
)
BLK_MQ_S_INACTIVE = 3
# Not upstream: bf0beec0607d's comment pairs the smp_mb__after_atomic() after
# set_bit(BLK_MQ_S_INACTIVE) with "the implied barrier in test_and_set_bit_lock
# in sbitmap_get()", which is only an ACQUIRE (Documentation/atomic_bitops.txt;
# arm64's LSE form is LDSETA): the store-buffering shape, which LKMM and
# herd7's AArch64 model allow (tests/litmus/hctx-inactive+acquire.litmus).  It
# needs an allocator on a CPU outside the hctx (blk_mq_alloc_request_hctx():
# scenario hctx-connect); one on the hctx's own CPUs published its tag when
# that CPU went through stop_machine (kernel/stop_machine.py).  A full barrier
# between taking the tag and testing INACTIVE closes it.
TAG_INACTIVE_FULL_BARRIER = Patch(
    "blk-mq-tag-inactive-smp-mb",
    "",
    "blk-mq: smp_mb() between taking a tag and testing BLK_MQ_S_INACTIVE (a proposal, not upstream)",
)


def blk_mq_init_tags(name, nr_tags, k=None):
    """blk_mq_init_tags(), block/blk-mq-tag.c: the tags' bitmap, with its wait queues."""
    tags = blk_mq_tags(name, nr_tags)
    tags.bitmap_tags = sbitmap.sbitmap_queue(f"{name}.bitmap_tags", nr_tags, k)
    return tags


def blk_mq_tags_from_data(data):
    """blk_mq_tags_from_data(), block/blk-mq.h: sched tags with an elevator."""
    if data.flags & BLK_MQ_REQ_INTERNAL:
        return data.hctx.sched_tags
    return data.hctx.tags


async def bt_wait_ptr(bt, hctx):
    """bt_wait_ptr(), block/blk-mq-tag.h: waiters of one hctx spread round robin over the 8 queues."""
    if hctx is None:
        return bt.ws[0]
    return await sbitmap.sbq_wait_ptr(bt, hctx.wait_index)


async def __blk_mq_get_tag(data, bt):
    """__blk_mq_get_tag(), block/blk-mq-tag.c: one try (hctx_may_queue() only limits shared tag sets)."""
    return await sbitmap.__sbitmap_queue_get(bt)


async def blk_mq_get_tag(data):
    """blk_mq_get_tag(), block/blk-mq-tag.c (v5.8)."""
    from blkrace.block.blk_mq import blk_mq_get_ctx, blk_mq_map_queue, blk_mq_run_hw_queue

    q = data.q
    k = q.k
    tags = blk_mq_tags_from_data(data)
    bt = tags.bitmap_tags
    tag = await __blk_mq_get_tag(data, bt)
    if tag == -1:
        if data.flags & BLK_MQ_REQ_NOWAIT:
            return BLK_MQ_NO_TAG
        wait = sbitmap.sbq_wait(f"{k.current.comm}:sbq_wait")  # DEFINE_SBQ_WAIT(wait)
        ws = await bt_wait_ptr(bt, data.hctx)
        while True:
            # We're out of tags on this hardware queue, kick any pending IO
            # submits before going to sleep waiting for some to complete.
            await blk_mq_run_hw_queue(data.hctx, False)
            # Retry tag allocation after running the hardware queue, as
            # running the queue may also have found completions.
            tag = await __blk_mq_get_tag(data, bt)
            if tag != -1:
                break
            await sbitmap.sbitmap_prepare_to_wait(bt, ws, wait)
            tag = await __blk_mq_get_tag(data, bt)
            if tag != -1:
                break
            bt_prev = bt
            # io_schedule(); what runs after the wake up to finish_wait()'s
            # first access is the task's own state (TASK_RUNNING).
            await schedule_entry(k, wait.wait, what="blk_mq_get_tag", resume=TOUCHES_NOTHING)
            await sbitmap.sbitmap_finish_wait(bt, ws, wait)
            data.ctx = blk_mq_get_ctx(q)
            data.hctx = blk_mq_map_queue(q, data.cmd_flags, data.ctx)
            tags = blk_mq_tags_from_data(data)
            bt = tags.bitmap_tags
            # If destination hw queue is changed, fake wake up on previous
            # queue for compensating the wake up miss.
            if bt is not bt_prev:
                await sbitmap.sbitmap_queue_wake_up(bt_prev)
            ws = await bt_wait_ptr(bt, data.hctx)
        await sbitmap.sbitmap_finish_wait(bt, ws, wait)
    # found_tag:
    if k.patched(TAG_INACTIVE_FULL_BARRIER):
        smp_mb(k)  # pairs with the smp_mb__after_atomic() in blk_mq_hctx_notify_offline()
    if k.patched(DRAIN_INACTIVE_HCTX) and await test_bit(BLK_MQ_S_INACTIVE, data.hctx.state):
        # Give up this allocation if the hctx is inactive.  The caller will
        # retry on an active hctx.
        await blk_mq_put_tag(tags, data.ctx, tag)
        return BLK_MQ_NO_TAG
    return tag


# blk_mq_put_tag(), block/blk-mq-tag.c
async def blk_mq_put_tag(tags, ctx, tag):
    """blk_mq_put_tag() -> sbitmap_queue_clear()."""
    await sbitmap.sbitmap_queue_clear(tags.bitmap_tags, tag, ctx.cpu if ctx else 0)


# blk_mq_tag_busy(), block/blk-mq-tag.h
def blk_mq_tag_busy(hctx):
    """blk_mq_tag_busy(): a shared tag set counts its active queues
    (BLK_MQ_S_TAG_ACTIVE, tags->active_queues) for hctx_may_queue()'s fair
    share of the depth.  Left out: the only shared set modelled has one tag,
    where hctx_may_queue() always says yes ("Don't try dividing an ant"); an
    unshared set counts nothing."""
    return False


# blk_mq_all_tag_iter(), block/blk-mq-tag.c
async def blk_mq_all_tag_iter(tags, fn):
    """blk_mq_all_tag_iter() -> bt_tags_for_each() -> sbitmap_for_each_set() ->
    bt_tags_iter() with BT_TAG_ITER_STATIC_RQS (v5.8): every allocated tag's
    static request, until ``fn`` says stop.

    The tag map is read once (one word at the model's depths); each request's
    fields are then read by ``fn`` (blk_mq_has_request() reads rq->mq_hctx)
    at a step of its own, declared on the request: an allocation or free of
    that request can fall between two of them, as in the kernel.  A slot whose
    static request was never built stands for one whose rq->mq_hctx is NULL.
    """
    sbq = tags.bitmap_tags
    k = sbq.mm
    if k is not None:
        # __sbitmap_for_each_set() reads the word with a plain load: under
        # lkmm it may miss a bit another CPU's test_and_set_bit_lock() set.
        bits = await mm_load(k, sbq, "map", ONCE, lambda b: f"{b:#x}")
    else:
        await access(sbq, READ)
        bits = sbq.map
    for tag in range(tags.nr_tags):
        if bits >> tag & 1:
            rq = tags.static_rqs[tag]
            if rq is None:
                continue
            await access(rq, READ)
            if not fn(rq):
                return
