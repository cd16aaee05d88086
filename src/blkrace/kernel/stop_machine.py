"""kernel/stop_machine.c: stop_machine() and the per-CPU stopper threads.

Each CPU's stopper ("migration/N") runs multi_cpu_stop(): a state machine
that every CPU walks through in lockstep, MULTI_STOP_PREPARE ->
DISABLE_IRQ -> RUN -> EXIT, acknowledging each state; the last CPU to ack a
state moves everybody to the next ("Last one to ack a state moves to the
next state").  Within a stage nothing orders the CPUs: one may have disabled
its interrupts while another, still acting on the previous state, takes a
device interrupt.  That freedom is seed 003's race.

The stopper preempts whatever runs on its CPU once preemption allows it
(a task with preemption off finishes its section first), and spinning on
the state is modelled as sleeping on a wait queue woken by set_state(),
keeping the CPU: nothing else of task level runs there meanwhile.

Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import READ, SYNC, TOUCHES_NOTHING, WaitQueue, access
from blkrace.kernel.machine import TASK, smp_processor_id
from blkrace.kernel.memory import MB, mm_rmw, mm_store_locked
from blkrace.kernel.sched import kthread_run_on_cpu, local_irq_disable, local_irq_restore, schedule_on

MULTI_STOP_NONE, MULTI_STOP_PREPARE, MULTI_STOP_DISABLE_IRQ, MULTI_STOP_RUN, MULTI_STOP_EXIT = range(5)
STATE_NAMES = ("MULTI_STOP_NONE", "MULTI_STOP_PREPARE", "MULTI_STOP_DISABLE_IRQ", "MULTI_STOP_RUN", "MULTI_STOP_EXIT")


class multi_stop_data:
    __slots__ = ("name", "fn", "data", "num_threads", "active_cpus", "state", "thread_ack", "wq", "err")

    def __init__(self, fn, data, num_threads, active_cpus):
        self.name = "msdata"
        self.fn = fn  # async fn(k, data) run on the active CPUs in MULTI_STOP_RUN
        self.data = data
        self.num_threads = num_threads
        self.active_cpus = active_cpus
        self.state = MULTI_STOP_NONE
        self.thread_ack = 0
        self.wq = WaitQueue("multi_stop_state")
        self.err = 0


# set_state(), kernel/stop_machine.c
def set_state(k, msdata, newstate):
    """set_state(): reset the ack count (atomic_set()), then publish the new state."""
    # Under lkmm the count is a location: every CPU's ack is a fully ordered
    # RMW on it, and the reset is the last acker's store after its own, so a
    # CPU that leaves a stage has seen every store the others made before
    # acking it (a CPU that went offline through stop_machine has published
    # what it stored before).
    mm_store_locked(k, msdata, "thread_ack", msdata.num_threads)
    msdata.state = newstate
    if newstate <= MULTI_STOP_EXIT:  # the last ack of EXIT moves past it: nobody looks
        k.execution.event(f"stop_machine: {STATE_NAMES[newstate]}")
    msdata.wq.wake_all()


# ack_state(), kernel/stop_machine.c
async def ack_state(k, msdata):
    """ack_state(): "Last one to ack a state moves to the next state"."""
    # atomic_dec_and_test(&msdata->thread_ack): fully ordered.
    if await mm_rmw(k, msdata, "thread_ack", lambda ack: ack - 1, MB) == 1:
        set_state(k, msdata, msdata.state + 1)


# multi_cpu_stop(), kernel/stop_machine.c
async def multi_cpu_stop(k, msdata):
    """multi_cpu_stop(): one CPU's walk through the stop_machine states."""
    cpu = smp_processor_id(k)
    curstate = MULTI_STOP_NONE
    flags = k.current.irqs_off  # local_save_flags()
    is_active = cpu in msdata.active_cpus
    while True:
        await access(msdata, READ)  # cpu_relax(); re-read multi_stop_state
        if msdata.state != curstate:
            curstate = msdata.state
            if curstate == MULTI_STOP_DISABLE_IRQ:
                local_irq_disable(k)  # local_irq_disable(); hard_irq_disable();
                k.execution.event(f"cpu{cpu}: interrupts off ({STATE_NAMES[curstate]})")
            elif curstate == MULTI_STOP_RUN:
                if is_active:
                    msdata.err = await msdata.fn(k, msdata.data)
            await ack_state(k, msdata)
            if curstate == MULTI_STOP_EXIT:
                break
        else:
            # Spin until the state moves: a wait that keeps the CPU.  The
            # loop's first step on waking re-reads the state.
            await msdata.wq.park(hung_check=False, resume=TOUCHES_NOTHING)
    local_irq_restore(k, flags)
    k.execution.event(f"cpu{cpu}: interrupts restored (MULTI_STOP_EXIT)")
    return msdata.err


class cpu_stopper:
    __slots__ = ("cpu", "works", "wq", "ts", "enabled")

    def __init__(self, cpu):
        self.cpu = cpu
        self.works = []
        self.wq = WaitQueue(f"migration/{cpu}.idle", idle=True)
        self.ts = None
        self.enabled = True


# cpu_stop_init(), kernel/stop_machine.c
def cpu_stop_init(k):
    """cpu_stop_init(): a stopper thread per CPU, sleeping until given work."""
    k.stoppers = []
    for cpu in range(k.nr_cpu_ids):
        stopper = cpu_stopper(cpu)
        k.stoppers.append(stopper)
        stopper.ts = kthread_run_on_cpu(k, cpu_stopper_thread, f"migration/{cpu}", cpu, stopper)


# cpu_stopper_thread(), kernel/stop_machine.c
async def cpu_stopper_thread(k, stopper):
    """cpu_stopper_thread(): the stop class preempts everything else on its CPU."""
    me = k.current
    while True:
        if not stopper.works:
            await stopper.wq.park(hung_check=False, resume=(stopper, SYNC))
            continue
        fn, arg, on_done = stopper.works.pop(0)
        # The stopper runs above every other task of its CPU until it is done.
        k.execution.lane_push(stopper.cpu, me.task, TASK)
        me.preempt_count += 1
        await access(stopper, SYNC)
        ret = await fn(k, arg)
        me.preempt_count -= 1
        k.execution.lane_pop(stopper.cpu, me.task)
        on_done(ret)  # cpu_stop_signal_done()


# cpu_stop_queue_work(), kernel/stop_machine.c
def cpu_stop_queue_work(k, cpu, fn, arg, on_done):
    stopper = k.stoppers[cpu]
    k.execution.touch(stopper, SYNC)  # under stopper->lock
    stopper.works.append((fn, arg, on_done))
    stopper.wq.wake_one()


# stop_machine_cpuslocked(), kernel/stop_machine.c
async def stop_machine_cpuslocked(k, fn, data, cpus):
    """stop_machine_cpuslocked(): run ``fn`` on ``cpus`` while every online CPU spins."""
    online = list(k.cpu_online_mask)
    msdata = multi_stop_data(fn, data, len(online), set(cpus))
    set_state(k, msdata, MULTI_STOP_PREPARE)
    finished = []
    done_wq = WaitQueue("cpu_stop_done")

    def on_done(ret):
        finished.append(ret)
        done_wq.wake_all()

    await access(msdata, SYNC)
    for cpu in online:  # stop_cpus() -> queue_stop_cpus_work()
        cpu_stop_queue_work(k, cpu, multi_cpu_stop, msdata, on_done)
    # wait_for_completion(&done.completion): every stopper has returned.
    while len(finished) < len(online):
        await schedule_on(k, done_wq, what="stop_machine")
    return msdata.err
