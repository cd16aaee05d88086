"""Interrupt lines and what CPU hotplug does to them (kernel/irq/cpuhotplug.c, v5.8).

A device raises its vector; the handler runs in hardirq context on the
line's effective CPU.  When a CPU goes down, __cpu_disable() moves every
line it serves to another online CPU of the line's affinity; a *managed*
line whose affinity has no online CPU left is shut down instead, and an
interrupt raised on it later is lost ("The driver/subsystem has to quiesce
the interrupt line and the associated queue _before_ it gets shutdown").
irq_affinity_online_cpu() starts it again when a CPU of its mask returns.
"""

from __future__ import annotations

from blkrace.engine import SYNC, access
from blkrace.kernel.machine import HARDIRQ, SOFTIRQ, cpumask, cpumask_first_and, smp_processor_id
from blkrace.kernel.sched import run_in_context


class irq_desc:
    """include/linux/irqdesc.h: one interrupt line."""

    __slots__ = ("irq", "name", "handler", "affinity", "effective_cpu", "managed", "shutdown", "pending")

    def __init__(self, irq, name, handler, cpus, managed=False):
        self.irq = irq
        self.name = name
        self.handler = handler  # async handler(k, desc, *args)
        self.affinity = cpumask(f"irq{irq}->affinity", cpus)
        self.effective_cpu = min(cpus)
        self.managed = managed  # IRQD_AFFINITY_MANAGED
        self.shutdown = False  # irqd_is_managed_and_shutdown()
        self.pending = []  # raised, handler not started yet (task_structs)


# request_irq(), include/linux/interrupt.h
def request_irq(k, irq, name, handler, cpus, managed=False):
    desc = irq_desc(irq, name, handler, cpus, managed)
    k.irq_descs.append(desc)
    return desc


# generic_handle_irq(), kernel/irq/irqdesc.c
def generic_handle_irq(k, desc, *args):
    """The device raised ``desc``: its handler runs in hardirq context on its CPU."""
    if desc.shutdown:
        k.execution.event(f"irq {desc.irq} ({desc.name}) is shut down: the interrupt is lost")
        return False
    ts = run_in_context(
        k,
        desc.effective_cpu,
        HARDIRQ,
        f"irq/{desc.irq}-{desc.name}",
        desc.handler,
        desc,
        *args,
        on_start=desc.pending.remove,
    )
    if ts is not None:
        desc.pending.append(ts)
    return ts is not None


# migrate_one_irq(), kernel/irq/cpuhotplug.c
def migrate_one_irq(k, desc):
    """migrate_one_irq(): move the line off the dying CPU, or shut a managed one down."""
    target = cpumask_first_and(desc.affinity, k.cpu_online_mask, k.nr_cpu_ids)
    if target >= k.nr_cpu_ids:
        if desc.managed:
            # irqd_set_managed_shutdown(); irq_shutdown_and_deactivate()
            desc.shutdown = True
            k.execution.event(f"irq {desc.irq} ({desc.name}): no online CPU in its mask, managed: shut down")
            for ts in desc.pending:  # raised but not yet handled here: gone with the vector
                k.execution.discard(ts.task, f"irq {desc.irq} pending on cpu{ts.cpu}: lost at shutdown")
            desc.pending.clear()
            return False
        # A non-managed line's affinity is broken to the online CPUs.
        desc.affinity.bits = k.cpu_online_mask.bits
        target = cpumask_first_and(desc.affinity, k.cpu_online_mask, k.nr_cpu_ids)
    old = desc.effective_cpu
    desc.effective_cpu = target
    # fixup_irqs(): an interrupt pending on the old CPU is retriggered on the new one.
    for ts in desc.pending:
        if ts.cpu == old:
            k.execution.move(ts.task, target)
            ts.cpu = target
    k.execution.event(f"irq {desc.irq} ({desc.name}) moved from cpu{old} to cpu{target}")
    return True


# irq_migrate_all_off_this_cpu(), kernel/irq/cpuhotplug.c
def irq_migrate_all_off_this_cpu(k):
    """irq_migrate_all_off_this_cpu(): on the dying CPU, interrupts off."""
    cpu = smp_processor_id(k)
    for desc in k.irq_descs:
        if desc.effective_cpu == cpu and not desc.shutdown:
            migrate_one_irq(k, desc)


# irq_affinity_online_cpu(), kernel/irq/cpuhotplug.c
async def irq_affinity_online_cpu(k, cpu):
    """irq_affinity_online_cpu() (CPUHP_AP_IRQ_AFFINITY_ONLINE startup)."""
    await access(k.cpu_online_mask, SYNC)
    for desc in k.irq_descs:
        if desc.managed and desc.affinity.bits >> cpu & 1:
            if desc.shutdown:
                desc.shutdown = False  # irq_startup_managed()
                desc.effective_cpu = cpu
                k.execution.event(f"irq {desc.irq} ({desc.name}) started again on cpu{cpu}")
    return 0


# model: a dead CPU's pending interrupts are never taken (INIT on the next bring-up)
def cpu_die_discard_pending(k, cpu):
    """At play_dead(): interrupts still pending on the dead CPU never run (INIT
    clears them on the next bring-up); pending softirq work (timers) is taken
    over by a live CPU, as timers_dead_cpu() and the softirq takeover do."""
    fallback = cpumask_first_and(k.cpu_online_mask, k.cpu_online_mask, k.nr_cpu_ids)
    for task in list(k.execution.tasks):
        ts = task.data
        if task.lane != cpu or ts is None or task.state == "X" or task.steps:
            continue
        if ts.context == HARDIRQ:
            for desc in k.irq_descs:
                if ts in desc.pending:
                    desc.pending.remove(ts)
            k.execution.discard(task, f"{ts.comm}: pending on dead cpu{cpu}, never handled")
        elif ts.context == SOFTIRQ:
            k.execution.move(task, fallback)
            ts.cpu = fallback
