"""The machine: CPUs and their masks, the patches applied, and ``current``.

The kernel keeps this state in globals and per-CPU variables; the model keeps
it in one explicit object (``k``) that every struct can reach, so that two
runs never share state and nothing depends on import order.

Kernel baseline: v5.8 (include/linux/cpumask.h, kernel/sched/core.c).
"""

from __future__ import annotations

from blkrace.engine import READ, access
from blkrace.kernel.memory import make_memory_model

# Execution contexts, ordered: a higher one interrupts a lower one on its CPU.
TASK, SOFTIRQ, HARDIRQ = 0, 1, 2
CONTEXT_NAMES = {TASK: "task", SOFTIRQ: "softirq", HARDIRQ: "hardirq"}


class cpumask:
    """include/linux/cpumask.h: struct cpumask, as an int of bits."""

    __slots__ = ("name", "bits")

    def __init__(self, name, cpus=()):
        self.name = name
        self.bits = 0
        for cpu in cpus:
            self.bits |= 1 << cpu

    def __iter__(self):  # for_each_cpu(): ascending, deterministic
        bits, cpu = self.bits, 0
        while bits:
            if bits & 1:
                yield cpu
            bits >>= 1
            cpu += 1

    def __repr__(self):
        return f"{self.name}={{{','.join(map(str, self))}}}"


# cpumask_test_cpu(), include/linux/cpumask.h
def cpumask_test_cpu(cpu, mask):
    return bool(mask.bits >> cpu & 1)


# cpumask_set_cpu(), include/linux/cpumask.h
def cpumask_set_cpu(cpu, mask):
    mask.bits |= 1 << cpu


# cpumask_clear_cpu(), include/linux/cpumask.h
def cpumask_clear_cpu(cpu, mask):
    mask.bits &= ~(1 << cpu)


# cpumask_first_and(), include/linux/cpumask.h
def cpumask_first_and(a, b, nr_cpu_ids):
    """cpumask_first_and(): the lowest cpu in both, or nr_cpu_ids."""
    both = a.bits & b.bits
    return (both & -both).bit_length() - 1 if both else nr_cpu_ids


# cpumask_next_and(), lib/cpumask.c
def cpumask_next_and(n, a, b, nr_cpu_ids):
    """cpumask_next_and(n, a, b): the next cpu after n in both, or nr_cpu_ids."""
    both = (a.bits & b.bits) >> (n + 1)
    return n + 1 + (both & -both).bit_length() - 1 if both else nr_cpu_ids


class Kernel:
    """One booted machine inside one execution."""

    def __init__(self, execution, nr_cpus, patches=()):
        self.execution = execution
        self.nr_cpu_ids = nr_cpus
        self.cpu_possible_mask = cpumask("cpu_possible_mask", range(nr_cpus))
        self.cpu_present_mask = cpumask("cpu_present_mask", range(nr_cpus))
        self.cpu_online_mask = cpumask("cpu_online_mask", range(nr_cpus))
        self.cpu_active_mask = cpumask("cpu_active_mask", range(nr_cpus))
        self.cpu_dead = [False] * nr_cpus  # between play_dead() and the next bring-up
        self.patches = frozenset(patches)
        self.warned = set()  # WARN_ON_ONCE sites already reported
        self.next_pid = 1
        self.worker_pools = {}  # (cpu, highpri) -> worker_pool
        self.kblockd_workqueue = None
        self.system_wq = None
        self.irq_descs = []
        self.memory = make_memory_model(execution)  # the memory model; None: sequentially consistent
        execution.wake_hook = self._select_task_rq

    def _select_task_rq(self, task):
        """select_task_rq() at wake-up: a task whose CPU went inactive wakes
        elsewhere; on a non-preemptible kernel, a task free to move does not
        wake behind a CPU whose running task will not give it up, if another
        CPU has none (select_idle_sibling(), in its simplest form)."""
        ts = task.data
        if ts is None or ts.context != TASK:
            return
        ex = self.execution
        if not ex.preemptive and (ts.allowed is None or ts.allowed.bits & (ts.allowed.bits - 1)):
            held = ex.lane_holder(ts.cpu)
            if held is not None and held[0] is not task:
                for cpu in self.cpu_active_mask:
                    if (ts.allowed is None or ts.allowed.bits >> cpu & 1) and ex.lane_holder(cpu) is None:
                        ex.move(task, cpu)
                        ts.cpu = cpu
                        return
        if self.cpu_active_mask.bits >> ts.cpu & 1:
            return
        if ts.allowed is not None and ts.allowed.bits == 1 << ts.cpu:
            return  # a per-CPU thread stays with its CPU (parked while it is down)
        select_fallback_rq(self, ts)

    def patched(self, patch):
        return patch.name in self.patches

    @property
    def current(self):
        """``current``: the task_struct of the task on the CPU now."""
        return self.execution.current.data

    @property
    def now(self):
        return self.execution.now


# select_fallback_rq(), kernel/sched/core.c
def select_fallback_rq(k, ts):
    """select_fallback_rq(): the lowest active CPU the task may run on."""
    for cpu in k.cpu_active_mask:
        if ts.allowed is None or ts.allowed.bits >> cpu & 1:
            if cpu != ts.cpu:
                k.execution.move(ts.task, cpu)
                ts.cpu = cpu
            return cpu
    return ts.cpu


# smp_processor_id(), include/linux/smp.h
def smp_processor_id(k):
    """smp_processor_id(): the CPU the current task runs on."""
    return k.execution.current.data.cpu


# model: cpu_online() (include/linux/cpumask.h) read without a scheduling point
def cpu_online_nocheck(k, cpu):
    return cpumask_test_cpu(cpu, k.cpu_online_mask)


async def cpu_online(k, cpu):
    """cpu_online(cpu), include/linux/cpumask.h: a read another CPU may race with."""
    await access(k.cpu_online_mask, READ)
    return cpumask_test_cpu(cpu, k.cpu_online_mask)
