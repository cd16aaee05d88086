"""Tasks, contexts, preemption and interrupt state, and sleeping.

Each model task is an engine task whose ``data`` is a task_struct.  The CPU a
task runs on is its engine lane; preempt_disable() and local_irq_disable()
are lane exclusions, so that while a task has preemption off no other task of
its CPU runs (interrupts still do), and while it has interrupts off nothing
else of its CPU runs at all.

A machine booted with ``preempt=False`` is a CONFIG_PREEMPT_NONE kernel: a
task keeps its CPU from the moment it runs until it sleeps or calls
cond_resched(); only interrupts come in between (the engine's
non-preemptible lanes).

Kernel baseline: v5.8 (kernel/sched/core.c, include/linux/preempt.h, irqflags.h).
"""

from __future__ import annotations

from blkrace.engine import NSEC_PER_MSEC, SYNC, StopRun, Violation, access, sleep
from blkrace.kernel.machine import CONTEXT_NAMES, HARDIRQ, SOFTIRQ, TASK, cpumask, select_fallback_rq

PF_WQ_WORKER = 0x00000020
PF_MEMALLOC = 0x00000800
PF_KTHREAD = 0x00200000


class task_struct:
    """include/linux/sched.h: struct task_struct, the fields the model uses."""

    __slots__ = (
        "k",
        "comm",
        "pid",
        "cpu",
        "context",
        "preempt_count",
        "irqs_off",
        "flags",
        "plug",
        "bio_list",
        "worker",
        "task",
        "extra",
        "allowed",
    )

    def __init__(self, k, comm, cpu, context=TASK, flags=0):
        self.k = k
        self.comm = comm
        self.pid = k.next_pid
        k.next_pid += 1
        self.cpu = cpu
        self.context = context
        self.preempt_count = 0
        self.irqs_off = False
        self.flags = flags
        self.plug = None  # struct blk_plug *
        self.bio_list = None  # current->bio_list
        self.worker = None  # struct worker * for kworkers
        self.task = None  # the engine task
        self.extra = {}  # per-scenario task state
        self.allowed = None  # cpus_mask when bound to CPUs (a per-CPU kthread); None: any CPU

    def __repr__(self):
        return f"<{self.comm} pid={self.pid} cpu={self.cpu} {CONTEXT_NAMES[self.context]}>"


def kthread_run_on_cpu(k, threadfn, comm, cpu, *args, flags=PF_KTHREAD):
    """kthread_create_on_cpu() + wake_up_process(), kernel/kthread.c.

    ``threadfn(k, *args)`` is an async function; the new task is bound to
    ``cpu`` (a per-CPU kthread) and starts at once, up to its first
    scheduling point.
    """
    ts = task_struct(k, comm, cpu, TASK, flags)
    ts.allowed = cpumask(f"{comm}->cpus_mask", [cpu])
    ts.task = k.execution.spawn(threadfn(k, *args), comm, lane=cpu, level=TASK, data=ts)
    return ts


# model: fork + exec of a user process on a CPU
def task_run_on_cpu(k, fn, comm, cpu, *args):
    """A user process (or an unbound kthread) that starts on ``cpu`` and may migrate."""
    ts = task_struct(k, comm, cpu, TASK, 0)
    ts.task = k.execution.spawn(fn(k, *args), comm, lane=cpu, level=TASK, data=ts)
    return ts


# model: raise a softirq or hardirq on a CPU
def run_in_context(k, cpu, context, comm, coro_fn, *args, on_start=None):
    """Run ``coro_fn(k, *args)`` as a softirq or hardirq on ``cpu``.

    The handler takes its CPU at its first step (irq_enter: from then on no
    other task of that CPU runs until it returns) and only where the CPU's
    interrupts are enabled, since an interrupts-off task excludes it.
    Nothing runs on a dead CPU: the interrupt is lost there.
    """
    ts = task_struct(k, comm, cpu, context)
    if k.cpu_dead[cpu]:
        k.execution.event(f"{comm}: cpu{cpu} is dead, lost")
        return None

    async def irq_enter():
        await access(ts, SYNC)  # the interrupt (or softirq) is taken here
        if on_start is not None:
            on_start(ts)
        k.execution.lane_push(ts.cpu, k.execution.current, HARDIRQ if context == HARDIRQ else SOFTIRQ)
        await coro_fn(k, *args)

    ts.task = k.execution.spawn(irq_enter(), comm, lane=cpu, level=context, data=ts)
    return ts


def migrate_tasks(k, dead_cpu):
    """migrate_tasks(), kernel/sched/core.c: push every runnable task that may
    run elsewhere off ``dead_cpu`` (per-CPU kthreads stay)."""
    for task in list(k.execution.runnable):
        ts = task.data
        if task.lane != dead_cpu or ts is None or ts.context != TASK:
            continue
        if ts.allowed is not None and ts.allowed.bits == 1 << dead_cpu:
            continue
        if task is k.execution.current:
            continue
        select_fallback_rq(k, ts)


# --------------------------------------------------------------- preemption


def preempt_disable(k):
    """preempt_disable(), include/linux/preempt.h."""
    cur = k.execution.current
    ts = cur.data
    ts.preempt_count += 1
    if ts.preempt_count == 1 and ts.context == TASK:
        k.execution.lane_push(ts.cpu, cur, TASK)


def preempt_enable(k):
    """preempt_enable(), include/linux/preempt.h."""
    cur = k.execution.current
    ts = cur.data
    ts.preempt_count -= 1
    if ts.preempt_count < 0:
        raise StopRun(Violation("bug", f"preempt_count underflow in {ts.comm}"))
    if ts.preempt_count == 0 and ts.context == TASK:
        k.execution.lane_pop(ts.cpu, cur)


# local_irq_disable(), include/linux/irqflags.h
def local_irq_disable(k):
    """local_irq_disable(): nothing else runs on this CPU until enabled."""
    cur = k.execution.current
    ts = cur.data
    if not ts.irqs_off:
        ts.irqs_off = True
        k.execution.lane_push(ts.cpu, cur, HARDIRQ)


# local_irq_enable(), include/linux/irqflags.h
def local_irq_enable(k):
    cur = k.execution.current
    ts = cur.data
    if ts.irqs_off:
        ts.irqs_off = False
        k.execution.lane_pop(ts.cpu, cur)


# local_irq_save(), include/linux/irqflags.h
def local_irq_save(k):
    """local_irq_save(flags): returns the previous state as ``flags``."""
    ts = k.execution.current.data
    flags = ts.irqs_off
    local_irq_disable(k)
    return flags


# local_irq_restore(), include/linux/irqflags.h
def local_irq_restore(k, flags):
    if not flags:
        local_irq_enable(k)


# in_interrupt(), include/linux/preempt.h
def in_interrupt(k):
    return k.execution.current.data.context != TASK


# in_atomic(), include/linux/preempt.h
def in_atomic(k):
    ts = k.execution.current.data
    return ts.preempt_count > 0 or ts.irqs_off or ts.context != TASK


# ----------------------------------------------------------------- sleeping


def _might_sleep(k, what):
    """might_sleep(): sleeping in atomic context is a bug (kernel/sched/core.c)."""
    ts = k.execution.current.data
    if in_atomic(k):
        raise StopRun(
            Violation(
                "bug",
                f"BUG: scheduling while atomic: {ts.comm}/{ts.pid}/0x{ts.preempt_count:08x} in {what} "
                f"({CONTEXT_NAMES[ts.context]} context{', irqs off' if ts.irqs_off else ''})",
                origin=f"bug:sleep-in-atomic:{what}",
            )
        )
    return ts


# model: the sleeping half of schedule() (kernel/sched/core.c) on one wait queue
async def schedule_on(k, waitq, timeout_ns=None, what="schedule", resume=None):
    """Sleep on ``waitq`` (the part of schedule() a waiter needs): returns the wake value.

    ``resume=(obj, kind)``: what the caller's code after the wake touches
    before its next await (engine.traps.block); the worker bookkeeping below
    declares its own.

    Tells the workqueue code when a worker sleeps, as wq_worker_sleeping()
    does from __schedule(), so that the pool can start another worker.
    """
    ts = _might_sleep(k, what)
    worker = ts.worker
    if worker is not None:
        worker.sleeping()  # wq_worker_sleeping()
        value = await waitq.park(timeout_ns, resume=resume)
        worker.running()  # wq_worker_running()
        return value
    return await waitq.park(timeout_ns, resume=resume)


async def cond_resched(k):
    """cond_resched(), include/linux/sched.h: a voluntary preemption point.

    On a non-preemptible kernel, the only place (besides sleeping) where
    another task of this CPU gets to run; with full preemption it compiles
    to nothing, and so it is nothing here.  need_resched is not modelled: the
    CPU is offered, and the explorer decides whether someone else takes it."""
    ts = _might_sleep(k, "cond_resched")
    if k.execution.preemptive:
        return
    k.execution.lane_release(ts.task)
    await access(None, SYNC)


async def msleep(k, msecs):
    """msleep(), kernel/time/timer.c: sleep at least ``msecs`` milliseconds."""
    ts = _might_sleep(k, "msleep")
    worker = ts.worker
    if worker is not None:
        worker.sleeping()
        await sleep(msecs * NSEC_PER_MSEC)
        worker.running()
        return
    await sleep(msecs * NSEC_PER_MSEC)
