"""Timers (kernel/time/timer.c) on the engine clock.  HZ is 1000: a jiffy is 1 ms.

A timer_list function runs in softirq context on the CPU that armed the
timer, as run_timer_softirq() runs it; here it is an async function run in a
softirq task, so it may take locks and queue work like the real one.

Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import NSEC_PER_MSEC
from blkrace.kernel.machine import CONTEXT_NAMES, SOFTIRQ
from blkrace.kernel.sched import run_in_context

HZ = 1000
NSEC_PER_JIFFY = NSEC_PER_MSEC


# msecs_to_jiffies(), include/linux/jiffies.h
def msecs_to_jiffies(ms):
    return ms * HZ // 1000


class timer_list:
    """include/linux/timer.h: struct timer_list.  ``function(k, timer)`` is async.

    ``context`` is SOFTIRQ for a timer_list; an hrtimer runs its callback in
    HARDIRQ context (kernel/time/hrtimer.c), which is the one difference the
    model keeps between the two.
    """

    __slots__ = ("k", "name", "function", "expires", "cpu", "pending", "data", "context")

    def __init__(self, k, function, name, data=None, context=SOFTIRQ):
        self.k = k
        self.name = name
        self.function = function
        self.expires = 0
        self.cpu = 0
        self.pending = None  # the engine timer while armed
        self.data = data
        self.context = context


# timer_pending(), include/linux/timer.h
def timer_pending(timer):
    return timer.pending is not None and timer.pending.active


# mod_timer(), kernel/time/timer.c
def mod_timer(timer, delay_ns):
    """mod_timer(timer, jiffies + delay): (re)arm; returns whether it was pending."""
    k = timer.k
    was = del_timer(timer)
    timer.expires = k.now + delay_ns
    cur = k.execution.current
    timer.cpu = cur.data.cpu if cur is not None else timer.cpu
    timer.pending = k.execution.add_timer(delay_ns, _timer_fire, timer, name=timer.name)
    return was


# add_timer(), kernel/time/timer.c
def add_timer(timer, delay_ns):
    mod_timer(timer, delay_ns)


# del_timer(), kernel/time/timer.c
def del_timer(timer):
    """del_timer(): deactivate; returns whether it was pending."""
    if timer.pending is None:
        return False
    was = timer.k.execution.cancel_timer(timer.pending)
    timer.pending = None
    return was


# hrtimer_start(), include/linux/hrtimer.h
def hrtimer_start(timer, delay_ns):
    """hrtimer_start(timer, delay, HRTIMER_MODE_REL)."""
    mod_timer(timer, delay_ns)


# hrtimer_try_to_cancel(), kernel/time/hrtimer.c
def hrtimer_try_to_cancel(timer):
    return 1 if del_timer(timer) else 0


def _timer_fire(timer):
    timer.pending = None
    k = timer.k
    if not k.cpu_online_mask.bits >> timer.cpu & 1:
        # timers_dead_cpu()/hrtimers_dead_cpu(): a dead CPU's timers move to a live one.
        timer.cpu = next(iter(k.cpu_online_mask))
    comm = f"{CONTEXT_NAMES[timer.context]}/{timer.cpu}:{timer.name}"
    run_in_context(timer.k, timer.cpu, timer.context, comm, _call_timer_fn, timer)


async def _call_timer_fn(k, timer):
    """call_timer_fn(), kernel/time/timer.c."""
    k.execution.event(f"timer {timer.name}")
    await timer.function(k, timer)
