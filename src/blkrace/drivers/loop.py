"""The loop device (drivers/block/loop.c, v5.8), a stacking driver.

loop_queue_rq() hands each request to the device's worker thread; the worker
does the I/O on the backing file, which here is direct I/O on a lower block
device, and completes the loop request from the lower bio's end_io
(lo_rw_aio_complete() -> blk_mq_complete_request()).  Its completions come
from the lower device: loop has no interrupts of its own, which is why
bf0beec0607d marks it BLK_MQ_F_STACKING and does not drain it.
"""

from __future__ import annotations

from blkrace.block import blk_mq
from blkrace.block.blk_core import submit_bio
from blkrace.block.blk_mq_tag import DRAIN_STACKING_FLAG
from blkrace.block.types import BLK_MQ_F_SHOULD_MERGE, BLK_MQ_F_STACKING, BLK_STS_OK, bio, blk_mq_ops, blk_mq_tag_set
from blkrace.engine import SYNC, TOUCHES_NOTHING, WaitQueue, access
from blkrace.kernel.sched import task_run_on_cpu


class loop_cmd:
    __slots__ = ("rq", "ret")

    def __init__(self, rq):
        self.rq = rq
        self.ret = BLK_STS_OK


class loop_device:
    __slots__ = ("k", "name", "q", "lower", "tag_set", "work_list", "wq", "worker")

    def __init__(self, k, name, lower):
        self.k = k
        self.name = name
        self.lower = lower  # the backing device's request_queue
        self.q = None
        self.tag_set = None
        self.work_list = []  # the kthread_worker's queue
        self.wq = WaitQueue(f"{name}.worker.idle", idle=True)
        self.worker = None


# loop_queue_rq(), drivers/block/loop.c
async def loop_queue_rq(hctx, rq, last):
    """loop_queue_rq(): start the request, queue it to the worker."""
    lo = rq.q.queuedata
    cmd = rq.special
    if cmd is None:
        cmd = rq.special = loop_cmd(rq)
    await blk_mq.blk_mq_start_request(rq)
    await access(lo, SYNC)  # loop_queue_work() -> kthread_queue_work()
    lo.work_list.append(cmd)
    lo.wq.wake_one()
    return BLK_STS_OK


# model: loop's kthread_worker (kthread_worker_fn(), kernel/kthread.c) running loop_queue_work()
async def loop_worker(k, lo):
    """The "loopN" kthread_worker (not bound to a CPU)."""
    while True:
        await access(lo, SYNC)
        if not lo.work_list:
            await lo.wq.park(hung_check=False, resume=TOUCHES_NOTHING)  # the loop's first step is its access
            continue
        cmd = lo.work_list.pop(0)
        await loop_handle_cmd(k, lo, cmd)


# lo_rw_aio_complete(), drivers/block/loop.c
async def lo_rw_aio_complete(k, lower_bio):
    """lo_rw_aio_complete(): the backing I/O is done, complete the loop request."""
    cmd = lower_bio.bi_private
    cmd.ret = lower_bio.bi_status
    await blk_mq.blk_mq_complete_request(cmd.rq)


# loop_handle_cmd(), drivers/block/loop.c
async def loop_handle_cmd(k, lo, cmd):
    """loop_handle_cmd() -> do_req_filebacked() -> lo_rw_aio(): direct I/O below."""
    rq = cmd.rq
    b = bio(f"{rq.name}@{lo.lower.name}", rq.cmd_flags, lo_rw_aio_complete, cmd)
    b.bi_disk = lo.lower
    await submit_bio(k, b)


# lo_complete_rq(), drivers/block/loop.c
async def lo_complete_rq(rq):
    """lo_complete_rq() (->complete)."""
    await blk_mq.blk_mq_end_request(rq, rq.special.ret)


loop_mq_ops = blk_mq_ops(queue_rq=loop_queue_rq, complete=lo_complete_rq)


def loop_add(k, lower_q, name="loop0", hw_queue_depth=8, worker_cpu=0, nr_hw_queues=1):
    """loop_add(), drivers/block/loop.c, + LOOP_SET_FD: a worker and a lower device.

    Loop has one hw queue; ``nr_hw_queues`` > 1 stands for a multi-queue
    stacking device (dm-rq with dm_mq_nr_hw_queues > 1), whose hw queues can
    lose their last CPU.  BLK_MQ_F_STACKING is set by bf0beec0607d's loop.c
    hunk (toggle ``blk-mq-stacking-flag``); without it the drain waits for
    loop's requests too.
    """
    lo = loop_device(k, name, lower_q)
    flags = BLK_MQ_F_SHOULD_MERGE
    if k.patched(DRAIN_STACKING_FLAG):
        flags |= BLK_MQ_F_STACKING
    set_ = blk_mq_tag_set(loop_mq_ops, nr_hw_queues, hw_queue_depth, flags)
    blk_mq.blk_mq_alloc_tag_set(set_)
    lo.tag_set = set_
    cpu_map = [cpu * nr_hw_queues // k.nr_cpu_ids for cpu in range(k.nr_cpu_ids)]
    q = blk_mq.blk_mq_init_queue(k, set_, name, cpu_map)
    q.queuedata = lo
    lo.q = q
    lo.worker = task_run_on_cpu(k, loop_worker, name, worker_cpu, lo)
    return lo
