"""block/blk-mq-tag.c: tag allocation (v5.7 control flow over a simple pool).

The allocator below is a bitmap with one wait queue and wake-one on free.
The real sbitmap (per-CPU hints, 8 wait queues, wake batches) comes with the
hotplug work, where its wake-up accounting matters; here nothing in the
budget race depends on it.
"""

from __future__ import annotations

from blkrace.block.types import BLK_MQ_NO_TAG, BLK_MQ_REQ_INTERNAL, BLK_MQ_REQ_NOWAIT, blk_mq_tags
from blkrace.engine import SYNC, WRITE, WaitQueue, access
from blkrace.kernel.sched import schedule_on


def blk_mq_init_tags(name, nr_tags):
    """blk_mq_init_tags(), block/blk-mq-tag.c."""
    tags = blk_mq_tags(name, nr_tags)
    tags.wait = WaitQueue(f"{name}.bitmap_tags.ws")
    return tags


def blk_mq_tags_from_data(data):
    """blk_mq_tags_from_data(), block/blk-mq.h: sched tags with an elevator."""
    if data.flags & BLK_MQ_REQ_INTERNAL:
        return data.hctx.sched_tags
    return data.hctx.tags


def _get_free_tag(tags):
    free = ~tags.used & ((1 << tags.nr_tags) - 1)
    if not free:
        return BLK_MQ_NO_TAG
    tag = (free & -free).bit_length() - 1
    tags.used |= 1 << tag
    return tag


async def __blk_mq_get_tag(data, tags):
    """__blk_mq_get_tag(): one try, no sleeping (__sbitmap_queue_get)."""
    await access(tags, WRITE)
    return _get_free_tag(tags)


async def blk_mq_get_tag(data):
    """blk_mq_get_tag(), block/blk-mq-tag.c: allocate a tag, sleeping when none is free."""
    from blkrace.block.blk_mq import blk_mq_get_ctx, blk_mq_map_queue, blk_mq_run_hw_queue

    k = data.q.k
    tags = blk_mq_tags_from_data(data)
    tag = await __blk_mq_get_tag(data, tags)
    if tag != BLK_MQ_NO_TAG:
        return tag
    if data.flags & BLK_MQ_REQ_NOWAIT:
        return BLK_MQ_NO_TAG
    while True:
        # Give others a chance to free tags: kick pending submits before sleeping.
        await blk_mq_run_hw_queue(data.hctx, False)
        tag = await __blk_mq_get_tag(data, tags)
        if tag != BLK_MQ_NO_TAG:
            break
        # sbitmap_prepare_to_wait(); retry; io_schedule(): the retry and the
        # sleep are one atomic step, as prepare_to_wait makes them.
        await access(tags, SYNC)
        tag = _get_free_tag(tags)
        if tag != BLK_MQ_NO_TAG:
            break
        await schedule_on(k, tags.wait, what="blk_mq_get_tag")  # io_schedule()
        # sbitmap_finish_wait(); we may have migrated: re-map ctx and hctx.
        data.ctx = blk_mq_get_ctx(data.q)
        data.hctx = blk_mq_map_queue(data.q, data.cmd_flags, data.ctx)
        tags = blk_mq_tags_from_data(data)
    return tag


async def blk_mq_put_tag(tags, ctx, tag):
    """blk_mq_put_tag() -> sbitmap_queue_clear(): free, then wake a sleeper."""
    await access(tags, WRITE)
    tags.used &= ~(1 << tag)
    tags.wait.wake_one()


def blk_mq_tag_busy(hctx):
    """blk_mq_tag_busy(): only shared tag sets count active queues; none here."""
    return False
