"""kernel/smp.c: single-CPU function calls by IPI, and their flush at CPU offline.

``smp_call_function_single_async()`` queues a csd on the target's
``call_single_queue`` (an llist: the IPI is sent only when the list was
empty) and the target's IPI handler runs everything queued.  Seed 003's
patch (8d056c48e486, v3.16) adds the flush at CPU_DYING and narrows the
offline warning; 9e949a388635 (v5.18) fixed that warning's test, which
looked at the list it had just emptied.  Both are toggles here.

Baseline v3.16: every callback is called, then its csd unlocked, in the
handler and in the flush alike; v4.0's order (an async csd unlocked before
its call, 8053871d0f7f) is a toggle of its own.

Under the ``lkmm`` memory model each call_single_queue's ``head->first`` is a
location of blkrace.kernel.memory: llist_add() is a cmpxchg() loop (the
successful, fully ordered cmpxchg() stands for it) and llist_del_all() an
xchg(), both fully ordered, so what the sender stored before queueing the
csd is seen by the callback; llist_empty() is an ACCESS_ONCE() of
``head->first``.  v3.16's csd_unlock() is smp_mb() then a plain store of
``csd->flags`` ("ensure we're all done before releasing data"), and the
model's look at ``csd->flags`` before queueing is a load of it.  v3.16's
csd_lock_wait() (a loop on ``csd->flags`` with no barrier after it; the
acquire came with 38460a2178d2, v4.6) is not modelled: nothing here waits
for a csd.

Era note: before 8d056c48e486 the handler was
generic_smp_call_function_single_interrupt() itself and it warned on any
IPI reaching an offline CPU; the model keeps that body behind the toggle.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, access
from blkrace.kernel.bug import WARN
from blkrace.kernel.machine import HARDIRQ, cpu_online, cpu_online_nocheck, smp_processor_id
from blkrace.kernel.memory import MB, ONCE, WRITE_ONCE, mm_load, mm_rmw, smp_mb
from blkrace.kernel.patch import Patch
from blkrace.kernel.sched import local_irq_restore, local_irq_save, preempt_disable, preempt_enable, run_in_context

FLUSH_BEFORE_OFFLINE = Patch(
    "smp-flush-ipi-callbacks-before-offline",
    "8d056c48e486",
    "CPU hotplug, smp: flush any pending IPI callbacks before CPU offline",
)
FIX_OFFLINE_CHECK = Patch(
    "smp-fix-offline-cpu-check",
    "9e949a388635",
    "smp: Fix offline cpu check in flush_smp_call_function_queue()",
)

ASYNC_UNLOCK_FIRST = Patch(
    "smp-async-csd-unlock-before-call",
    "8053871d0f7f",
    "smp: Fix smp_call_function_single_async prematurely unlocking the csd (v4.0)",
)

CSD_FLAG_LOCK = 0x01
CSD_FLAG_SYNCHRONOUS = 0x02
ENXIO = 6


class call_single_data:
    """struct call_single_data (csd).  ``func(k, info)`` is async."""

    __slots__ = ("name", "func", "info", "flags")

    def __init__(self, name, func=None, info=None):
        self.name = name
        self.func = func
        self.info = info
        self.flags = 0


class llist_head:
    """A per-CPU lockless list (include/linux/llist.h): one declared access per operation.

    Under ``lkmm`` (created with ``k``), ``first`` is ``head->first``: a location
    holding the entries, newest first; ``items`` mirrors its latest store."""

    __slots__ = ("name", "items", "k", "first")

    def __init__(self, name, k=None):
        self.name = name
        self.items = []
        self.k = k if k is not None and k.memory is not None else None
        self.first = ()


# model: call_function_init() (kernel/smp.c): one call_single_queue per CPU
def init_smp(k):
    """call_function_init(): one call_single_queue per CPU; the offline warning's ``warned``."""
    k.call_single_queue = [llist_head(f"call_single_queue[{cpu}]", k) for cpu in range(k.nr_cpu_ids)]
    k.smp_warned = False


# csd_unlock(), kernel/smp.c
async def csd_unlock(k, csd):
    """csd_unlock() (v3.16): smp_mb() -- "ensure we're all done before releasing
    data" -- then ``csd->flags &= ~CSD_FLAG_LOCK`` (a store of its own under lkmm)."""
    if k.memory is None:
        csd.flags &= ~CSD_FLAG_LOCK
        return
    smp_mb(k)
    await WRITE_ONCE(k, csd, csd.flags & ~CSD_FLAG_LOCK, field="flags")


# The orderings of llist_add()'s successful cmpxchg() and llist_del_all()'s
# xchg(): both fully ordered (names, so that a test can weaken one and see what
# the pairing holds).
LLIST_ADD_ORDER = MB
LLIST_DEL_ALL_ORDER = MB


# llist_add(), include/linux/llist.h (llist_add_batch(), lib/llist.c)
async def llist_add(node, head):
    """llist_add(): true if the list was empty before."""
    if head.k is not None:
        old = await mm_rmw(head.k, head, "first", lambda first: (node,) + first, LLIST_ADD_ORDER)
        head.items = list(head.first)
        return not old
    await access(head, WRITE)
    was_empty = not head.items
    head.items.insert(0, node)  # llists push at the head...
    return was_empty


# llist_del_all(), include/linux/llist.h
async def llist_del_all(head):
    """llist_del_all(): xchg(&head->first, NULL), fully ordered."""
    if head.k is not None:
        old = await mm_rmw(head.k, head, "first", lambda first: (), LLIST_DEL_ALL_ORDER)
        head.items = list(head.first)
        entries = list(old)
        entries.reverse()
        return entries
    await access(head, WRITE)
    entries, head.items = head.items, []
    entries.reverse()  # ...and the flush reverses them back to queueing order
    return entries


# llist_empty(), include/linux/llist.h
async def llist_empty(head):
    """llist_empty(): ``ACCESS_ONCE(head->first) == NULL``."""
    if head.k is not None:
        return not await mm_load(head.k, head, "first", ONCE)
    await access(head, READ)
    return not head.items


# arch_send_call_function_single_ipi(), arch/x86/include/asm/smp.h
def arch_send_call_function_single_ipi(k, cpu):
    """Raise the call-function IPI on ``cpu``; a CPU that is dead never sees it."""
    if k.cpu_dead[cpu]:
        k.execution.event(f"IPI to dead cpu{cpu} is lost")
        return
    run_in_context(k, cpu, HARDIRQ, f"IPI/{cpu}", generic_smp_call_function_single_interrupt)


# generic_exec_single(), kernel/smp.c
async def generic_exec_single(k, cpu, csd):
    """generic_exec_single(): run here, or queue on ``cpu`` and send the IPI if needed."""
    if cpu == smp_processor_id(k):
        flags = local_irq_save(k)
        await csd.func(k, csd.info)
        await csd_unlock(k, csd)
        local_irq_restore(k, flags)
        return 0
    if not await cpu_online(k, cpu):
        await csd_unlock(k, csd)
        return -ENXIO
    # The list was empty: the target may be idle and must be told.  A
    # non-empty list means an IPI is already on its way.
    if await llist_add(csd, k.call_single_queue[cpu]):
        arch_send_call_function_single_ipi(k, cpu)
    return 0


# smp_call_function_single_async(), kernel/smp.c
async def smp_call_function_single_async(k, cpu, csd):
    """smp_call_function_single_async(): fire and forget; callable with irqs off."""
    preempt_disable(k)
    if k.memory is None:
        WARN(k, csd.flags & CSD_FLAG_LOCK, "csd %s is already queued", csd.name)
        csd.flags = CSD_FLAG_LOCK
    else:
        # csd_lock(): the look at csd->flags, the store of CSD_FLAG_LOCK, smp_mb()
        # ("prevent CPU from reordering the above assignment to ->flags with any
        # subsequent assignments to other fields").
        WARN(k, await mm_load(k, csd, "flags", ONCE) & CSD_FLAG_LOCK, "csd %s is already queued", csd.name)
        await WRITE_ONCE(k, csd, CSD_FLAG_LOCK, field="flags")
        smp_mb(k)
    err = await generic_exec_single(k, cpu, csd)
    preempt_enable(k)
    return err


# generic_smp_call_function_single_interrupt(), kernel/smp.c
async def generic_smp_call_function_single_interrupt(k):
    """The IPI handler."""
    if k.patched(FLUSH_BEFORE_OFFLINE):
        await flush_smp_call_function_queue(k, True)
        return
    # v3.15: the handler itself, warning on any IPI that reaches an offline CPU.
    cpu = smp_processor_id(k)
    entry = await llist_del_all(k.call_single_queue[cpu])
    if not cpu_online_nocheck(k, cpu) and not k.smp_warned:
        k.smp_warned = True
        WARN(k, True, "IPI on offline CPU %d", cpu)
        for csd in entry:
            k.execution.event(f"IPI callback {csd.func.__name__} sent to offline CPU")
    for csd in entry:
        await csd.func(k, csd.info)
        await csd_unlock(k, csd)


# flush_smp_call_function_queue(), kernel/smp.c
async def flush_smp_call_function_queue(k, warn_cpu_offline):
    """flush_smp_call_function_queue(), 8d056c48e486: run every queued callback.

    ``warn_cpu_offline`` is false when called at CPU_DYING, where the CPU is
    already marked offline but the flush is exactly what must happen.
    """
    cpu = smp_processor_id(k)
    head = k.call_single_queue[cpu]
    entry = await llist_del_all(head)
    if k.patched(FIX_OFFLINE_CHECK):
        pending = bool(entry)  # 9e949a388635: the callbacks we took
    else:
        pending = not await llist_empty(head)  # 8d056c48e486: the list we just emptied
    if warn_cpu_offline and not cpu_online_nocheck(k, cpu) and not k.smp_warned and pending:
        k.smp_warned = True
        WARN(k, True, "IPI on offline CPU %d", cpu)
        for csd in entry:
            k.execution.event(f"IPI callback {csd.func.__name__} sent to offline CPU")
    for csd in entry:
        if k.patched(ASYNC_UNLOCK_FIRST) and not csd.flags & CSD_FLAG_SYNCHRONOUS:
            # 8053871d0f7f (v4.0): an async csd is unlocked before its call,
            # so that the callback may queue it again.
            await csd_unlock(k, csd)
            await csd.func(k, csd.info)
        else:
            # v3.16: call, then unlock.
            await csd.func(k, csd.info)
            await csd_unlock(k, csd)


# smpcfd_dying_cpu(), kernel/smp.c
async def smpcfd_dying_cpu(k, cpu):
    """smpcfd_dying_cpu() (CPUHP_AP_SMPCFD_DYING, hotplug_cfd's CPU_DYING in v3.16).

    "The IPIs for the smp-call-function callbacks queued by other CPUs might
    arrive late ... So flush out any pending callbacks explicitly (without
    waiting for the IPIs to arrive), to ensure that the outgoing CPU doesn't
    go offline with work still pending."
    """
    if k.patched(FLUSH_BEFORE_OFFLINE):
        await flush_smp_call_function_queue(k, False)
    return 0
