"""ipi-flush: seed 003, "CPU hotplug, smp: flush any pending IPI callbacks before CPU offline".

Topology: 3 CPUs.  A null_blk-like disk with one hw queue whose (non-managed)
interrupt is delivered to CPU 1, completing on the submitting CPU by IPI
(rq_affinity=2).  Workload: "dd" on CPU 2 reads twice, waiting for each
read; the control task on CPU 0 takes CPU 2 offline and brings it back.
Where the device's completions fall relative to the stop_machine stages is
the explorer's choice.

Variants:
* buggy: v3.15: no flush at CPU_DYING, warning on any IPI reaching an offline CPU;
* fixed: 8d056c48e486 (flush at CPU_DYING, warn only if callbacks were pending)
  with 9e949a388635 (the warning tests the callbacks it took, not the list it emptied);
* unchecked-sender: the fixed kernel, plus a driver that queues callbacks to
  CPU 2 without checking that it is online: the warning must fire;
* unchecked-sender-2014-check: the same driver against 8d056c48e486 alone,
  whose warning looked at the list it had just emptied.

Checks: every bio completed well; the warnings are the kernel's own WARN.
"""

from __future__ import annotations

from blkrace.drivers.null_blk import null_add_dev
from blkrace.engine import choose
from blkrace.kernel.boot import boot
from blkrace.kernel.cpuhp import cpu_down, cpu_up
from blkrace.kernel.sched import msleep, preempt_disable, preempt_enable, task_run_on_cpu
from blkrace.kernel.smp import (
    FIX_OFFLINE_CHECK,
    FLUSH_BEFORE_OFFLINE,
    arch_send_call_function_single_ipi,
    call_single_data,
    llist_add,
)
from blkrace.scenarios.base import Scenario, Variant
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import sync_reader


async def hotplug(k, cpu):
    """echo 0 > /sys/devices/system/cpu/cpuN/online; echo 1 > ..."""
    await cpu_down(k, cpu)
    await cpu_up(k, cpu)


async def remote_stat_fn(k, info):
    """The unchecked driver's callback: harmless work on the target CPU."""
    info.append(k.current.cpu)


async def unchecked_sender(k, target, rounds):
    """A driver that queues work to ``target`` with no cpu_online() test at all
    (it bypasses generic_exec_single()): the sender bug 8d056c48e486's
    warning is meant to catch."""
    ran = []
    for i in range(rounds):
        await msleep(k, await choose(3, "unchecked sender's delay (ms)"))
        csd = call_single_data(f"remote_stat#{i}", remote_stat_fn, ran)
        preempt_disable(k)
        if await llist_add(csd, k.call_single_queue[target]):
            arch_send_call_function_single_ipi(k, target)
        preempt_enable(k)


class IpiFlush(Scenario):
    def build(self, execution, variant):
        k = boot(execution, nr_cpus=3, patches=variant.patches, smp="v3.16")  # seed 003's kernel/smp.c
        nb = null_add_dev(k, nr_hw_queues=1, hw_queue_depth=4, completion_us=100, managed_irqs=False, irq_cpus=[[1]])
        q = nb.q
        task_run_on_cpu(k, sync_reader, "dd", 2, q, 2)
        task_run_on_cpu(k, hotplug, "hotplug", 0, 2)
        if "unchecked-sender" in variant.name:
            task_run_on_cpu(k, unchecked_sender, "bad-driver", 1, 2, 3)
        execution.checkers.append(lambda ex: check_bios(q, ex))


FIXED = frozenset({FLUSH_BEFORE_OFFLINE.name, FIX_OFFLINE_CHECK.name})

SCENARIO = IpiFlush(
    name="ipi-flush",
    summary="an IPI queued to a CPU during its stop_machine offline: callback lost, WARN on an offline CPU (seed 003)",
    seed="003_38303b22bc28851b.txt",
    variants={
        "buggy": Variant(
            "buggy",
            frozenset(),
            frozenset({"warning", "stall"}),
            "v3.15: the outgoing CPU may die with a completion callback queued (the request never "
            "completes); a late IPI warns",
        ),
        "fixed": Variant(
            "fixed",
            FIXED,
            frozenset(),
            "8d056c48e486 + 9e949a388635: callbacks flushed at CPU_DYING, no warning",
        ),
        "unchecked-sender": Variant(
            "unchecked-sender",
            FIXED,
            frozenset({"warning", "stall"}),
            "fixed kernel, a driver queueing to an offline CPU: the new warning fires; an IPI it sends "
            "to the dead CPU is lost and its stale callback blocks later IPIs to that CPU",
        ),
        "unchecked-sender-2014-check": Variant(
            "unchecked-sender-2014-check",
            frozenset({FLUSH_BEFORE_OFFLINE.name}),
            frozenset({"stall"}),
            "8d056c48e486 alone: its warning tests the list it just emptied, so the bad sender goes "
            "unreported (9e949a388635 fixed that in 2022) unless a callback lands in that tiny "
            "window; the lost IPI still stalls I/O",
            allowed=frozenset({"warning"}),
        ),
    },
)
