"""The three peer problems, written against the engine at the level of a Promela model.

Each builder takes ``fixed`` and returns a ``build(execution)``:

* ``philosophers(n, fixed)``: N philosophers, fork i then fork i+1 (mod N),
  sleeping locks; deadlocks.  Fixed: the last philosopher takes its forks
  in the other order.
* ``lost_wakeup(fixed)``: a waiter checks a flag, then parks; the waker sets
  the flag and wakes.  Buggy: a scheduling point between the check and the
  park (the wake lands in between; stall).  Fixed: check and park in one
  step, as prepare_to_wait() before the check makes them.
* ``budget(fixed)``: seed 001 (a0823421a4d7, "blk-mq: Rerun dispatching in
  the case of budget contention") as three tasks and a kblockd worker: two
  hw queues share one SCSI budget (device_busy against a queue depth of 1);
  BFQ is idling for fio-a, so has_work() says yes while dispatch_request()
  returns NULL until fio-a's request arrives.  fio-a inserts its request and
  runs hctx0 inline; kblockd's workers run hctx0 and hctx1.  A dispatcher
  that fails to get the budget gives up (the holder will rerun; if the
  device is idle by then, SCSI's own rescue of 7e70aa789d4a reruns every
  hw queue after 3 ms, as SCSI_QUEUE_DELAY); a holder
  that got NULL puts the budget back: in the buggy form nobody reruns and
  the request stays in the scheduler (stall); the fix reruns every hw queue
  after BLK_MQ_BUDGET_DELAY (3 ms) through the kblockd worker (one task: a
  run work already pending is not queued twice).
  __blk_mq_do_dispatch_sched(), block/blk-mq-sched.c (v5.7 + a0823421a4d7);
  scsi_mq_get_budget()/scsi_dev_queue_ready(), drivers/scsi/scsi_lib.c.
"""

from __future__ import annotations

import sys
from pathlib import Path

from blkrace.engine import NSEC_PER_MSEC, READ, SYNC, WRITE, Violation, WaitQueue, access

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from enginekit import Cell, build_philosophers  # noqa: E402

BLK_MQ_BUDGET_DELAY_NS = 3 * NSEC_PER_MSEC


def philosophers(n, fixed):
    return build_philosophers(n, fixed)


def lost_wakeup(fixed):
    def build(execution):
        flag = Cell("flag")
        wq = WaitQueue("flag_wq")

        async def waiter():
            await access(flag, READ)
            if flag.value:
                return
            if not fixed:
                await access(wq, SYNC)  # the window: the waker may run here
            await wq.park()

        async def waker():
            await access(flag, WRITE)
            flag.value = 1
            await access(wq, SYNC)
            wq.wake_all()

        execution.spawn(waiter(), "waiter", lane=0)
        execution.spawn(waker(), "waker", lane=1)

    return build


def budget(fixed):
    def build(execution):
        busy = Cell("sdev->device_busy")
        bfqd = Cell("bfqd")
        bfqd.queued = 0  # requests in the scheduler
        bfqd.idling = True  # waiting for fio-a's next request after a completion
        done = Cell("fio-a:done")

        async def get_budget():
            # scsi_mq_get_budget(): scsi_dev_queue_ready() (atomic_inc_return(),
            # back off if over the depth), then 7e70aa789d4a's rescue: if the
            # device went idle meanwhile, rerun every hw queue after 3 ms.
            await access(busy, WRITE)
            busy.value += 1
            if busy.value <= 1:
                return True
            await access(busy, WRITE)
            busy.value -= 1
            await access(busy, READ)
            if busy.value == 0:
                delayed_run()
            return False

        async def put_budget():
            await access(busy, WRITE)
            busy.value -= 1

        async def run_hw_queue(h):
            # __blk_mq_do_dispatch_sched(): has_work, budget, dispatch.
            while True:
                await access(bfqd, READ)  # bfq_has_work(): lockless
                if not (bfqd.queued or bfqd.idling):
                    return
                if not await get_budget():
                    return  # the budget holder will rerun (it may not)
                await access(bfqd, WRITE)  # bfq_dispatch_request() under bfqd->lock
                if bfqd.queued and not bfqd.idling:
                    bfqd.queued -= 1
                    await access(done, WRITE)  # scsi_queue_rq(): issued and completed
                    done.value = 1
                    await put_budget()
                    continue
                await put_budget()
                if fixed:
                    delayed_run()
                return

        # blk_mq_delay_run_hw_queues(): kblockd_mod_delayed_work_on() of each
        # hw queue's run_work: a pending one is re-armed (its timer) or left
        # where it is (already on kblockd's worklist), never doubled.  One
        # kblockd worker runs the works in the order their timers fired.
        run_work = [None, None]  # the armed timer of each hw queue's run_work
        kblockd_pool = Cell("kblockd pool")  # pool->lock: the worklist and the PENDING bits
        kblockd_pool.worklist = []
        kblockd_pool.pending = [False, False]
        kblockd_idle = WaitQueue("kblockd idle", idle=True)

        def delayed_run():
            execution.touch(kblockd_pool)  # PENDING and the timer, in the same step
            for h in (0, 1):
                if kblockd_pool.pending[h] and run_work[h] is None:
                    continue  # on the worklist already: mod_delayed_work() leaves it there
                if run_work[h] is not None:
                    execution.cancel_timer(run_work[h])
                kblockd_pool.pending[h] = True
                run_work[h] = execution.add_timer(
                    BLK_MQ_BUDGET_DELAY_NS, delayed_work_timer_fn, h, name=f"hctx{h}->run_work"
                )

        def delayed_work_timer_fn(h):
            # delayed_work_timer_fn() -> __queue_work(): onto the worklist, wake the worker
            run_work[h] = None
            kblockd_pool.worklist.append(h)
            kblockd_idle.wake_all()

        async def kblockd_worker():
            # worker_thread() / process_one_work(): PENDING is cleared as the work starts
            while True:
                await access(kblockd_pool, SYNC)
                while not kblockd_pool.worklist:
                    await kblockd_idle.park(resume=(kblockd_pool, SYNC))
                h = kblockd_pool.worklist.pop(0)
                kblockd_pool.pending[h] = False
                await run_hw_queue(h)  # blk_mq_run_work_fn()

        async def fio_a():
            await access(bfqd, WRITE)  # bfq_insert_request(): the request ends the idling
            bfqd.queued += 1
            bfqd.idling = False
            await run_hw_queue(0)  # the plug flush runs hctx0 inline

        execution.spawn(fio_a(), "fio-a", lane=0)
        execution.spawn(run_hw_queue(0), "kworker-hctx0", lane=1)
        execution.spawn(run_hw_queue(1), "kworker-hctx1", lane=2)
        execution.spawn(kblockd_worker(), "kblockd", lane=3)

        def check(ex):
            if not done.value:
                yield Violation(
                    "stall", "I/O stall: fio-a's request queued in the I/O scheduler, never dispatched", origin="stall"
                )

        execution.checkers.append(check)

    return build


PEERS = {
    "philosophers-4": lambda fixed: philosophers(4, fixed),
    "philosophers-5": lambda fixed: philosophers(5, fixed),
    "lost-wakeup": lost_wakeup,
    "budget": budget,
}
