"""RCU read side (include/linux/rcupdate.h), non-preemptible flavour.

rcu_read_lock() disables preemption (CONFIG_PREEMPT_RCU=n), which is what the
blk-mq dispatch path relies on in hctx_lock() for non-BLOCKING queues.
synchronize_rcu() waits for the read-side sections open when it started
(the same generation scheme as SRCU).
"""

from __future__ import annotations

from blkrace.engine import SYNC, WaitQueue, access
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


def rcu_read_lock(k):
    preempt_disable(k)
    st = _state(k)
    st.readers.append((k.execution.current, st.gen))


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


async def synchronize_rcu(k):
    """synchronize_rcu(): wait until every read-side section open now has ended."""
    st = _state(k)
    await access(st, SYNC)
    gen = st.gen
    st.gen += 1

    def readers_before():
        return [task for task, g in st.readers if g <= gen]

    gp = WaitQueue("rcu grace period", holders=readers_before)
    st.grace_periods.append(gp)
    while readers_before():
        await schedule_on(k, gp, what="synchronize_rcu")
    st.grace_periods.remove(gp)
