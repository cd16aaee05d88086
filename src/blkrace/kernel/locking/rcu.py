"""RCU read side (include/linux/rcupdate.h), non-preemptible flavour.

rcu_read_lock() disables preemption (CONFIG_PREEMPT_RCU=n), which is what the
blk-mq dispatch path relies on in hctx_lock() for non-BLOCKING queues.
synchronize_rcu() waits for the read-side sections open when it started
(the same generation scheme as SRCU).

Kernel baseline: v5.8 (kernel/rcu/tree.c for the grace periods).
"""

from __future__ import annotations

from blkrace.engine import SYNC, WaitQueue, access
from blkrace.kernel.memory import rcu_gp_start_order, rcu_read_lock_order, synchronize_rcu_order
from blkrace.kernel.sched import preempt_disable, preempt_enable, schedule_on


class _rcu_state:
    __slots__ = ("name", "gen", "readers", "grace_periods")

    def __init__(self):
        self.name = "rcu_state"
        self.gen = 0
        self.readers = []
        self.grace_periods = []


def _state(k):
    st = getattr(k, "rcu", None)
    if st is None:
        st = k.rcu = _rcu_state()
    return st


# rcu_read_lock(), include/linux/rcupdate.h
def rcu_read_lock(k):
    preempt_disable(k)
    st = _state(k)
    st.readers.append((k.execution.current, st.gen))
    rcu_read_lock_order(k)


# rcu_read_unlock(), include/linux/rcupdate.h
def rcu_read_unlock(k):
    st = _state(k)
    cur = k.execution.current
    for i in range(len(st.readers) - 1, -1, -1):
        if st.readers[i][0] is cur:
            del st.readers[i]
            break
    for gp in st.grace_periods:
        gp.wake_all()
    preempt_enable(k)


def _grace_period_start(k):
    """A new grace period: it must outlast every reader open now."""
    st = _state(k)
    gen = st.gen
    st.gen += 1
    rcu_gp_start_order(k)

    def readers_before():
        return [task for task, g in st.readers if g <= gen]

    return st, readers_before


async def _wait_grace_period(k, st, readers_before, what):
    gp = WaitQueue("rcu grace period", holders=readers_before)
    st.grace_periods.append(gp)
    while readers_before():
        await schedule_on(k, gp, what=what, resume=(st, SYNC))
    st.grace_periods.remove(gp)


# synchronize_rcu(), kernel/rcu/tree.c
async def synchronize_rcu(k):
    """synchronize_rcu(): wait until every read-side section open now has ended."""
    await access(_state(k), SYNC)
    st, readers_before = _grace_period_start(k)
    await _wait_grace_period(k, st, readers_before, "synchronize_rcu")
    synchronize_rcu_order(k)


# call_rcu(), kernel/rcu/tree.c
def call_rcu(k, func, *args, comm="rcuo"):
    """call_rcu(): ``await func(k, *args)`` once every reader open now has ended.

    Callable from atomic context (it does not sleep).  The callback runs in
    its own kthread, as with offloaded callbacks (CONFIG_RCU_NOCB_CPU's rcuo
    threads), rather than in RCU_SOFTIRQ: the same guarantee, one task per
    callback; callbacks are not batched.
    """
    from blkrace.kernel.sched import task_run_on_cpu

    st, readers_before = _grace_period_start(k)

    async def rcu_do_batch(k):
        await access(st, SYNC)  # the kthread's own step: never inside call_rcu()
        await _wait_grace_period(k, st, readers_before, "rcu_gp_kthread")
        synchronize_rcu_order(k)  # a callback is ordered after the grace period as synchronize_rcu()'s caller is
        await func(k, *args)

    return task_run_on_cpu(k, rcu_do_batch, comm, k.current.cpu)
