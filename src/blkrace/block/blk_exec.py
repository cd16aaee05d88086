"""block/blk-exec.c (v5.8): executing a prepared request and waiting for it.

What nvme's synchronous commands use (__nvme_submit_sync_cmd() ->
blk_execute_rq()): the request goes in through the scheduler's insert with a
queue run, and the caller sleeps until its end_io says it completed.  Left
out: the hang-check timeout of the wait (sysctl_hung_task_timeout_secs / 2),
the at_head variants' differences beyond the insert, the disk argument.
"""

from __future__ import annotations

from blkrace.block import blk_mq_sched
from blkrace.kernel.locking.wait import complete, completion, wait_for_completion


# blk_end_sync_rq(), block/blk-exec.c
async def blk_end_sync_rq(rq, error):
    """blk_end_sync_rq(): complete the waiter; the caller frees the request."""
    rq.end_io_status = error
    await complete(rq.q.k, rq.end_io_data)


# blk_execute_rq_nowait(), block/blk-exec.c
async def blk_execute_rq_nowait(rq, at_head, done):
    """blk_execute_rq_nowait(): set end_io, insert and run the queue."""
    rq.end_io = done
    # "don't check dying flag for MQ because the request won't be reused
    # after dying flag is set"
    await blk_mq_sched.blk_mq_sched_insert_request(rq, at_head, True, False)


# blk_execute_rq(), block/blk-exec.c
async def blk_execute_rq(rq, at_head):
    """blk_execute_rq(): blk_execute_rq_nowait(), then wait for the completion."""
    wait = completion(f"{rq.name}:exec")
    rq.end_io_data = wait
    await blk_execute_rq_nowait(rq, at_head, blk_end_sync_rq)
    await wait_for_completion(rq.q.k, wait)
    return rq.end_io_status
