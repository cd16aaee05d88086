"""Interrupt delivery: a device raises its vector, the handler runs on the CPU.

Issue 2 needs only delivery to a CPU in hardirq context; managed affinity and
shutdown at CPU offline come with the hotplug work.
"""

from __future__ import annotations

from blkrace.kernel.machine import HARDIRQ
from blkrace.kernel.sched import run_in_context


class irq_desc:
    """include/linux/irqdesc.h: one interrupt line and where it is delivered."""

    __slots__ = ("irq", "name", "handler", "effective_cpu", "managed", "shutdown")

    def __init__(self, irq, name, handler, cpu, managed=False):
        self.irq = irq
        self.name = name
        self.handler = handler  # async handler(k, desc, *args)
        self.effective_cpu = cpu
        self.managed = managed
        self.shutdown = False


def generic_handle_irq(k, desc, *args):
    """The device raised ``desc``: its handler will run in hardirq context on its CPU."""
    if desc.shutdown:
        k.execution.event(f"irq {desc.irq} ({desc.name}) is shut down: lost")
        return False
    cpu = desc.effective_cpu
    run_in_context(k, cpu, HARDIRQ, f"irq/{desc.irq}-{desc.name}", desc.handler, desc, *args)
    return True
