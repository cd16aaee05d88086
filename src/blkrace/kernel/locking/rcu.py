"""RCU read side (include/linux/rcupdate.h), non-preemptible flavour.

rcu_read_lock() disables preemption (CONFIG_PREEMPT_RCU=n), which is what the
blk-mq dispatch path relies on in hctx_lock() for non-BLOCKING queues.
synchronize_rcu() comes with quiesce (the freeze issue).
"""

from __future__ import annotations

from blkrace.kernel.sched import preempt_disable, preempt_enable


def rcu_read_lock(k):
    preempt_disable(k)


def rcu_read_unlock(k):
    preempt_enable(k)
