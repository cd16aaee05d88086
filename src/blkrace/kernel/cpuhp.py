"""kernel/cpu.c: the CPU hotplug state machine (v5.8 shape), cpu_down() and cpu_up().

States are ordered; bringing a CPU up runs the startup callbacks upwards to
CPUHP_ONLINE, taking it down runs the teardowns in reverse.  Where a
callback runs depends on its section:

* PREPARE/DEAD (below CPUHP_BRINGUP_CPU) and CPUHP_TEARDOWN_CPU: on the
  control CPU, the one that called cpu_down()/cpu_up();
* STARTING/DYING (between CPUHP_BRINGUP_CPU and CPUHP_AP_ONLINE): on the
  hotplugged CPU with interrupts off, inside stop_machine on the way down
  (take_cpu_down()) and in notify_cpu_starting() on the way up;
* ONLINE (above CPUHP_TEARDOWN_CPU): on the hotplugged CPU's own hotplug
  thread, cpuhp/N, with interrupts and preemption on.

Multi-instance states call their callback once per registered instance
(hlist order: the newest instance first).  CPUHP_AP_SCHED_WAIT_EMPTY (v5.11)
is in the table only with its commit's toggle.  Left out: rollback on a failing
callback, SMT control, the cpus_write_lock (one hotplug at a time is the
scenarios' own discipline).
"""

from __future__ import annotations

from blkrace.engine import SYNC, WRITE, WaitQueue, access
from blkrace.kernel.bug import BUG_ON, WARN_ON
from blkrace.kernel.irq import cpu_die_discard_pending, irq_affinity_online_cpu, irq_migrate_all_off_this_cpu
from blkrace.kernel.locking.wait import complete, completion, wait_for_completion
from blkrace.kernel.machine import cpumask_clear_cpu, cpumask_set_cpu, smp_processor_id
from blkrace.kernel.patch import Patch
from blkrace.kernel.sched import (
    PF_KTHREAD,
    kthread_run_on_cpu,
    local_irq_disable,
    local_irq_enable,
    migrate_tasks,
)
from blkrace.kernel.smp import smpcfd_dying_cpu
from blkrace.kernel.stop_machine import stop_machine_cpuslocked
from blkrace.kernel.workqueue import workqueue_offline_cpu, workqueue_online_cpu

SCHED_WAIT_EMPTY = Patch(
    "sched-hotplug-wait-empty",
    "1cf12e08bc4d",
    "sched/hotplug: Consolidate task migration on CPU unplug (v5.11: CPUHP_AP_SCHED_WAIT_EMPTY)",
)

# enum cpuhp_state, include/linux/cpuhotplug.h (the states the model has, in order)
(
    CPUHP_OFFLINE,
    CPUHP_BLK_MQ_DEAD,
    CPUHP_SMPCFD_PREPARE,
    CPUHP_TIMERS_PREPARE,
    CPUHP_BRINGUP_CPU,
    CPUHP_AP_IDLE_DEAD,
    CPUHP_AP_OFFLINE,
    CPUHP_AP_SCHED_STARTING,
    CPUHP_AP_SMPCFD_DYING,
    CPUHP_AP_ONLINE,
    CPUHP_TEARDOWN_CPU,
    CPUHP_AP_ONLINE_IDLE,
    CPUHP_AP_SCHED_WAIT_EMPTY,
    CPUHP_AP_SMPBOOT_THREADS,
    CPUHP_AP_IRQ_AFFINITY_ONLINE,
    CPUHP_AP_BLK_MQ_ONLINE,
    CPUHP_AP_WORKQUEUE_ONLINE,
    CPUHP_AP_ACTIVE,
    CPUHP_ONLINE,
) = range(19)

STATE_NAMES = {
    v: k
    for k, v in dict(globals()).items()
    if k.startswith("CPUHP_") and isinstance(v, int) and not k.startswith("CPUHP_STEP")
}


class cpuhp_step:
    """struct cpuhp_step: a state's callbacks.  Single: fn(k, cpu); multi: fn(k, cpu, node)."""

    __slots__ = ("name", "startup", "teardown", "multi_instance", "instances")

    def __init__(self, name, startup=None, teardown=None, multi_instance=False):
        self.name = name
        self.startup = startup
        self.teardown = teardown
        self.multi_instance = multi_instance
        self.instances = []


class cpuhp_cpu_state:
    """struct cpuhp_cpu_state: one CPU's progress and its hotplug thread."""

    __slots__ = ("cpu", "state", "target", "bringup", "thread", "should_run", "wq", "done_up", "done_down")

    def __init__(self, cpu, state):
        self.cpu = cpu
        self.state = state
        self.target = state
        self.bringup = True
        self.thread = None
        self.should_run = False
        self.wq = WaitQueue(f"cpuhp/{cpu}.idle", idle=True)
        self.done_up = completion(f"cpuhp/{cpu}.done_up")
        self.done_down = completion(f"cpuhp/{cpu}.done_down")


# model: boot-time cpuhp setup: cpuhp_threads_init() and the per-CPU states (kernel/cpu.c)
def cpuhp_init(k, steps):
    """Boot: every CPU online at CPUHP_ONLINE, with its hotplug thread parked.

    CPUHP_AP_SCHED_WAIT_EMPTY exists only with 1cf12e08bc4d (v5.11)."""
    if not k.patched(SCHED_WAIT_EMPTY):
        steps.pop(CPUHP_AP_SCHED_WAIT_EMPTY, None)
    k.cpuhp_hp_states = steps
    k.cpuhp_state = [cpuhp_cpu_state(cpu, CPUHP_ONLINE) for cpu in range(k.nr_cpu_ids)]
    for st in k.cpuhp_state:
        st.thread = kthread_run_on_cpu(k, cpuhp_thread_fun, f"cpuhp/{st.cpu}", st.cpu, st, flags=PF_KTHREAD)


# cpuhp_state_add_instance_nocalls(), include/linux/cpuhotplug.h
def cpuhp_state_add_instance_nocalls(k, state, node):
    """cpuhp_state_add_instance_nocalls(): register an instance (hlist_add_head)."""
    k.cpuhp_hp_states[state].instances.insert(0, node)


# cpuhp_state_remove_instance_nocalls(), include/linux/cpuhotplug.h
def cpuhp_state_remove_instance_nocalls(k, state, node):
    k.cpuhp_hp_states[state].instances.remove(node)


# cpuhp_invoke_callback(), kernel/cpu.c
async def cpuhp_invoke_callback(k, cpu, state, bringup):
    """cpuhp_invoke_callback(): the state's callback, once per instance if multi."""
    step = k.cpuhp_hp_states.get(state)
    if step is None:
        return 0
    cb = step.startup if bringup else step.teardown
    if cb is None:
        return 0
    k.execution.event(f"cpuhp: cpu{cpu} {'startup' if bringup else 'teardown'} {STATE_NAMES[state]}")
    if not step.multi_instance:
        return await cb(k, cpu)
    for node in list(step.instances):
        ret = await cb(k, cpu, node)
        if ret:
            return ret
    return 0


# ------------------------------------------------------------ the AP thread


# cpuhp_thread_fun(), kernel/cpu.c
async def cpuhp_thread_fun(k, st):
    """cpuhp_thread_fun(): run the ONLINE-section callbacks on the CPU itself."""
    while True:
        if not st.should_run:
            await st.wq.park(hung_check=False, resume=(st, SYNC))  # re-reads should_run
            continue
        await access(st, SYNC)
        st.should_run = False
        if st.bringup:
            while st.state < st.target:
                st.state += 1
                await cpuhp_invoke_callback(k, st.cpu, st.state, True)
            await complete(k, st.done_up)
        else:
            while st.state > st.target:
                await cpuhp_invoke_callback(k, st.cpu, st.state, False)
                st.state -= 1
            await complete(k, st.done_down)


# cpuhp_kick_ap_work(), kernel/cpu.c
async def cpuhp_kick_ap_work(k, cpu, st, bringup):
    """cpuhp_kick_ap_work() -> __cpuhp_kick_ap(): let cpuhp/N run, wait for it."""
    await access(st, SYNC)
    st.bringup = bringup
    st.should_run = True
    st.wq.wake_one()
    await wait_for_completion(k, st.done_up if bringup else st.done_down)


# --------------------------------------------------------------- going down


async def __cpu_disable(k):
    """native_cpu_disable() -> cpu_disable_common(), arch/x86/kernel/smpboot.c:
    leave cpu_online_mask first, then move the interrupts away (fixup_irqs())."""
    cpu = smp_processor_id(k)
    await access(k.cpu_online_mask, SYNC)
    cpumask_clear_cpu(cpu, k.cpu_online_mask)  # remove_cpu_from_maps() -> set_cpu_online(cpu, false)
    k.execution.event(f"cpu{cpu}: offline (cleared from cpu_online_mask)")
    irq_migrate_all_off_this_cpu(k)
    return 0


# take_cpu_down(), kernel/cpu.c
async def take_cpu_down(k, _param):
    """take_cpu_down(): on the dying CPU, in MULTI_STOP_RUN, interrupts off."""
    cpu = smp_processor_id(k)
    st = k.cpuhp_state[cpu]
    target = max(st.target, CPUHP_AP_OFFLINE)
    # Ensure this CPU doesn't handle any more interrupts.
    err = await __cpu_disable(k)
    if err < 0:
        return err
    WARN_ON(k, st.state != CPUHP_TEARDOWN_CPU)
    st.state -= 1
    # Invoke the former CPU_DYING callbacks.
    while st.state > target:
        ret = await cpuhp_invoke_callback(k, cpu, st.state, False)
        WARN_ON(k, ret)
        st.state -= 1
    # stop_machine_park(): once the stopper returns, only the idle task is left.
    k.execution.event(f"cpu{cpu}: the stopper is done; the idle task will take the CPU down")
    kthread_run_on_cpu(k, cpu_idle_dead, f"swapper/{cpu}", cpu, st)
    return 0


# model: do_idle() -> cpuhp_report_idle_dead() -> arch_cpu_idle_dead() of a CPU going down (kernel/sched/idle.c)
async def cpu_idle_dead(k, st):
    """do_idle() -> cpuhp_report_idle_dead() -> arch_cpu_idle_dead(): the CPU is gone."""
    await access(st, SYNC)
    local_irq_disable(k)
    st.state = CPUHP_AP_IDLE_DEAD
    cpu = st.cpu
    k.cpu_dead[cpu] = True
    k.execution.event(f"cpu{cpu}: dead (play_dead with interrupts off)")
    # Whatever was still pending on this CPU never runs: INIT on the next
    # bring-up clears it.
    cpu_die_discard_pending(k, cpu)
    await complete(k, st.done_down)  # cpuhp_complete_idle_dead() on an online CPU


# takedown_cpu(), kernel/cpu.c
async def takedown_cpu(k, cpu):
    """takedown_cpu() (CPUHP_TEARDOWN_CPU teardown, on the control CPU)."""
    st = k.cpuhp_state[cpu]
    err = await stop_machine_cpuslocked(k, take_cpu_down, None, [cpu])
    if err:
        return err
    BUG_ON(k, k.cpu_online_mask.bits >> cpu & 1)
    # Wait for the stop thread to go away: the idle task reports the CPU dead.
    await wait_for_completion(k, st.done_down)
    BUG_ON(k, st.state != CPUHP_AP_IDLE_DEAD)
    k.execution.event(f"cpuhp: cpu{cpu} is down (__cpu_die)")
    return 0


async def _cpu_down(k, cpu, target=CPUHP_OFFLINE):
    """_cpu_down(), kernel/cpu.c."""
    st = k.cpuhp_state[cpu]
    if not k.cpu_online_mask.bits >> cpu & 1 or st.state != CPUHP_ONLINE:
        return -22  # -EINVAL
    if len(list(k.cpu_online_mask)) == 1:
        return -16  # -EBUSY: never the last CPU
    k.execution.event(f"cpu_down({cpu})")
    st.target = max(CPUHP_TEARDOWN_CPU, target)
    # The ONLINE-section teardowns run on the outgoing CPU's hotplug thread.
    await cpuhp_kick_ap_work(k, cpu, st, False)
    st.target = target
    # cpuhp_down_callbacks(): the rest on this, the control, CPU.
    while st.state > target:
        if st.state == CPUHP_TEARDOWN_CPU:
            ret = await takedown_cpu(k, cpu)  # leaves st.state at CPUHP_AP_IDLE_DEAD
        else:
            ret = await cpuhp_invoke_callback(k, cpu, st.state, False)
        if ret:
            return ret
        st.state -= 1
    return 0


# cpu_down(), kernel/cpu.c
async def cpu_down(k, cpu):
    """cpu_down(): what writing 0 to /sys/devices/system/cpu/cpuN/online does."""
    return await _cpu_down(k, cpu, CPUHP_OFFLINE)


# ----------------------------------------------------------------- going up


# start_secondary(), arch/x86/kernel/smpboot.c
async def start_secondary(k, st):
    """start_secondary(): the new CPU runs its STARTING callbacks, goes online, idles."""
    cpu = st.cpu
    await access(st, SYNC)
    local_irq_disable(k)
    # notify_cpu_starting(): STARTING callbacks, interrupts off.
    while st.state < CPUHP_AP_ONLINE:
        st.state += 1
        await cpuhp_invoke_callback(k, cpu, st.state, True)
    # set_cpu_online(cpu, true): an atomic set_bit on cpu_online_mask (under
    # vector_lock on x86, not modelled), its own step: cpu_online() readers
    # elsewhere race with it (arch/x86/kernel/smpboot.c, v5.8).
    await access(k.cpu_online_mask, WRITE)
    cpumask_set_cpu(cpu, k.cpu_online_mask)
    k.execution.event(f"cpu{cpu}: online")
    local_irq_enable(k)
    # cpu_startup_entry() -> cpuhp_online_idle() (kernel/cpu.c): a plain store
    # to st->state, then complete_ap_thread() tells the control CPU.
    await access(st, WRITE)
    st.state = CPUHP_AP_ONLINE_IDLE
    await complete(k, st.done_up)


# bringup_cpu(), kernel/cpu.c
async def bringup_cpu(k, cpu):
    """bringup_cpu() (CPUHP_BRINGUP_CPU startup): __cpu_up(), wait for the AP."""
    st = k.cpuhp_state[cpu]
    k.cpu_dead[cpu] = False
    st.state = CPUHP_AP_OFFLINE
    kthread_run_on_cpu(k, start_secondary, f"swapper/{cpu}", cpu, st)
    await wait_for_completion(k, st.done_up)  # bringup_wait_for_ap()
    return 0


async def _cpu_up(k, cpu, target=CPUHP_ONLINE):
    """_cpu_up(), kernel/cpu.c."""
    st = k.cpuhp_state[cpu]
    if k.cpu_online_mask.bits >> cpu & 1 or st.state != CPUHP_OFFLINE:
        return -22
    k.execution.event(f"cpu_up({cpu})")
    st.target = target
    # cpuhp_up_callbacks() on the control CPU up to the bring-up.
    while st.state < CPUHP_BRINGUP_CPU:
        st.state += 1
        if st.state == CPUHP_BRINGUP_CPU:
            ret = await bringup_cpu(k, cpu)
            break
        ret = await cpuhp_invoke_callback(k, cpu, st.state, True)
        if ret:
            return ret
    # The ONLINE-section startups on the new CPU's hotplug thread.
    await cpuhp_kick_ap_work(k, cpu, st, True)
    return 0


# cpu_up(), kernel/cpu.c
async def cpu_up(k, cpu):
    """cpu_up(): what writing 1 to /sys/devices/system/cpu/cpuN/online does."""
    return await _cpu_up(k, cpu, CPUHP_ONLINE)


# ------------------------------------------------ the scheduler's callbacks


# sched_cpu_deactivate(), kernel/sched/core.c
async def sched_cpu_deactivate(k, cpu):
    """sched_cpu_deactivate() (CPUHP_AP_ACTIVE teardown): no new task lands here."""
    await access(k.cpu_active_mask, SYNC)
    cpumask_clear_cpu(cpu, k.cpu_active_mask)
    return 0


# sched_cpu_activate(), kernel/sched/core.c
async def sched_cpu_activate(k, cpu):
    await access(k.cpu_active_mask, SYNC)
    cpumask_set_cpu(cpu, k.cpu_active_mask)
    return 0


# sched_cpu_wait_empty(), kernel/sched/core.c (v5.11)
async def sched_cpu_wait_empty(k, cpu):
    """sched_cpu_wait_empty() (v5.11+, CPUHP_AP_SCHED_WAIT_EMPTY): push the CPU's
    tasks away (balance_push) before the CPU is stopped."""
    migrate_tasks(k, cpu)
    return 0


# sched_cpu_dying(), kernel/sched/core.c
async def sched_cpu_dying(k, cpu):
    """sched_cpu_dying() (CPUHP_AP_SCHED_STARTING teardown, v5.8): migrate_tasks()
    of whatever is still runnable here, on the dying CPU, interrupts off.
    With 1cf12e08bc4d (v5.11) the tasks are gone by then: balance_push and
    sched_cpu_wait_empty() pushed them away before stop_machine."""
    if not k.patched(SCHED_WAIT_EMPTY):
        migrate_tasks(k, cpu)
    return 0


# model: the cpuhp_hp_states[] table of kernel/cpu.c, with the states the model has
def default_steps():
    """The cpuhp_hp_states table: the callbacks every machine has."""
    return {
        CPUHP_AP_SCHED_STARTING: cpuhp_step("sched:starting", None, sched_cpu_dying),
        CPUHP_AP_SMPCFD_DYING: cpuhp_step("smpcfd:dying", None, smpcfd_dying_cpu),
        CPUHP_AP_SCHED_WAIT_EMPTY: cpuhp_step("sched:waitempty", None, sched_cpu_wait_empty),
        CPUHP_AP_IRQ_AFFINITY_ONLINE: cpuhp_step("irq/affinity:online", irq_affinity_online_cpu, None),
        CPUHP_AP_WORKQUEUE_ONLINE: cpuhp_step("workqueue:online", workqueue_online_cpu, workqueue_offline_cpu),
        CPUHP_AP_ACTIVE: cpuhp_step("sched:active", sched_cpu_activate, sched_cpu_deactivate),
        CPUHP_BLK_MQ_DEAD: cpuhp_step("block/mq:dead", None, None, multi_instance=True),
        CPUHP_AP_BLK_MQ_ONLINE: cpuhp_step("block/mq:online", None, None, multi_instance=True),
    }
