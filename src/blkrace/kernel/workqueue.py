"""Workqueues (kernel/workqueue.c): bound per-CPU pools, workers, delayed work.

What is kept: per-CPU worker pools (normal and WQ_HIGHPRI, shared by every
bound workqueue as in cmwq), the PENDING bit (queueing a pending work is a
no-op returning false), non-reentrancy (a work queued while it runs goes to
the pool running it, and runs again after), concurrency management (when a
running worker sleeps and work is waiting, another worker starts), delayed
work on a timer, and mod_delayed_work's "re-arm a pending work to the new
delay".  Also flush_work() and cancel_work_sync().  Left out: unbound pools' NUMA
affinity, rescuers, flush_workqueue(), WQ_ORDERED.

Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import SYNC, WaitQueue, access
from blkrace.kernel.machine import cpumask, select_fallback_rq
from blkrace.kernel.sched import PF_KTHREAD, PF_WQ_WORKER, cond_resched, kthread_run_on_cpu

WQ_UNBOUND = 1 << 1
WQ_MEM_RECLAIM = 1 << 3
WQ_HIGHPRI = 1 << 4
WORK_CPU_UNBOUND = -1


class work_struct:
    """include/linux/workqueue.h: struct work_struct.  ``func(k, work)`` is async."""

    __slots__ = ("name", "func", "pending", "queued_pool", "current_pool", "data", "done")

    def __init__(self, func, name, data=None):
        self.name = name
        self.func = func
        self.pending = False  # WORK_STRUCT_PENDING_BIT
        self.queued_pool = None  # the pool whose worklist holds it
        self.current_pool = None  # the pool whose worker runs it now
        self.data = data
        self.done = WaitQueue(f"{name} done")  # flush/cancel_work_sync waiters


# INIT_WORK(), include/linux/workqueue.h
def INIT_WORK(func, name, data=None):
    return work_struct(func, name, data)


class delayed_work:
    """struct delayed_work: a work plus the timer that queues it."""

    __slots__ = ("work", "timer", "cpu", "wq", "name")

    def __init__(self, func, name, data=None):
        self.work = work_struct(func, name, data)
        self.timer = None  # the engine timer while the delay runs
        self.cpu = WORK_CPU_UNBOUND
        self.wq = None
        self.name = name


# INIT_DELAYED_WORK(), include/linux/workqueue.h
def INIT_DELAYED_WORK(func, name, data=None):
    return delayed_work(func, name, data)


# delayed_work_pending(), include/linux/workqueue.h
def delayed_work_pending(dwork):
    return dwork.work.pending


class workqueue_struct:
    __slots__ = ("name", "flags")

    def __init__(self, name, flags):
        self.name = name
        self.flags = flags


# alloc_workqueue(), kernel/workqueue.c
def alloc_workqueue(k, name, flags):
    return workqueue_struct(name, flags)


class worker_pool:
    """struct worker_pool: a CPU's bound pool, or an unbound one (``cpu`` -1).

    An unbound pool's workers may run on any CPU and are not concurrency
    managed (WORKER_UNBOUND is a NOT_RUNNING flag): every work queued there
    gets a worker of its own, an idle one or a new one.  The kernel keeps
    unbound pools per NUMA node and attribute set; the model has one."""

    __slots__ = ("k", "cpu", "highpri", "worklist", "idle", "workers", "nr_running", "name", "disassociated", "unbound")

    def __init__(self, k, cpu, highpri, unbound=False):
        self.k = k
        self.cpu = cpu
        self.highpri = highpri
        self.unbound = unbound
        # POOL_DISASSOCIATED: a bound pool whose CPU is down
        self.disassociated = not unbound and not k.cpu_online_mask.bits >> cpu & 1
        self.name = f"pool{'U' if unbound else cpu}{'H' if highpri else ''}"
        self.worklist = []
        self.idle = WaitQueue(f"{self.name}.idle", idle=True)
        self.workers = []
        self.nr_running = 0


class worker:
    __slots__ = ("pool", "ts", "current_work", "id")

    def __init__(self, pool, wid):
        self.pool = pool
        self.id = wid
        self.ts = None
        self.current_work = None

    def sleeping(self):
        """wq_worker_sleeping(): the last running worker sleeps; start another if work waits."""
        pool = self.pool
        if pool.unbound:
            return  # not concurrency managed
        pool.nr_running -= 1
        if pool.nr_running == 0 and pool.worklist:
            wake_up_worker(pool)

    def running(self):
        if not self.pool.unbound:
            self.pool.nr_running += 1


# model: get_work_pool()-like lookup: the pool a work runs in (kernel/workqueue.c)
def worker_pool_of(k, cpu, highpri):
    pool = k.worker_pools.get((cpu, highpri))
    if pool is None:
        pool = k.worker_pools[(cpu, highpri)] = worker_pool(k, cpu, highpri)
    return pool


# model: the one unbound pool the model has (kernel/workqueue.c keeps one per attribute set)
def unbound_pool_of(k, highpri):
    """The unbound pool (of a WQ_UNBOUND workqueue)."""
    pool = k.worker_pools.get((-1, highpri))
    if pool is None:
        pool = k.worker_pools[(-1, highpri)] = worker_pool(k, -1, highpri, unbound=True)
    return pool


# create_worker(), kernel/workqueue.c
def create_worker(pool, cpu=None):
    """create_worker(): a new kworker/N:MH bound to the pool's CPU, counted
    running; an unbound pool's kworker/uN:M starts on ``cpu`` and may move."""
    k = pool.k
    w = worker(pool, len(pool.workers))
    pool.workers.append(w)
    if pool.unbound:
        comm = f"kworker/u{k.nr_cpu_ids * 2}:{w.id}{'H' if pool.highpri else ''}"
        w.ts = kthread_run_on_cpu(k, worker_thread, comm, cpu, w, flags=PF_KTHREAD | PF_WQ_WORKER)
        w.ts.worker = w
        w.ts.allowed = None
        return w
    pool.nr_running += 1
    comm = f"kworker/{pool.cpu}:{w.id}{'H' if pool.highpri else ''}"
    w.ts = kthread_run_on_cpu(k, worker_thread, comm, pool.cpu, w, flags=PF_KTHREAD | PF_WQ_WORKER)
    w.ts.worker = w
    if pool.disassociated:
        # A pool whose CPU is down runs its workers anywhere (unbind_workers()).
        w.ts.allowed = None
        select_fallback_rq(pool.k, w.ts)
    return w


# wake_up_worker(), kernel/workqueue.c
def wake_up_worker(pool, cpu=None):
    """wake_up_worker(): wake an idle worker, creating one if none is idle."""
    if pool.idle.wake_one() is None:
        create_worker(pool, cpu)
    elif not pool.unbound:
        pool.nr_running += 1


async def worker_thread(k, w):
    """worker_thread(), kernel/workqueue.c: take work off the pool's list, run it."""
    pool = w.pool
    await access(k.wq_lock, SYNC)  # raw_spin_lock_irq(&pool->lock)
    while True:
        if not pool.worklist:
            # Idle until woken; the waker counts us running again (wake_up_worker).
            if not pool.unbound:
                pool.nr_running -= 1
            await pool.idle.park(hung_check=False)
            if not pool.unbound and not pool.disassociated and w.ts.cpu != pool.cpu:
                k.execution.move(w.ts.task, pool.cpu)  # WORKER_REBOUND: back home
                w.ts.cpu = pool.cpu
            continue
        work = pool.worklist.pop(0)
        await process_one_work(k, w, work)
        await access(k.wq_lock, SYNC)


# process_one_work(), kernel/workqueue.c
async def process_one_work(k, w, work):
    """process_one_work(): clear PENDING, then run the function."""
    work.queued_pool = None
    work.pending = False  # set_work_pool_and_clear_pending()
    work.current_pool = w.pool
    w.current_work = work
    k.execution.event(f"{w.ts.comm} runs {work.name}")
    await work.func(k, work)
    w.current_work = None
    if work.current_pool is w.pool:
        work.current_pool = None
    work.done.wake_all()
    # "prevents a kworker from hogging CPU on !PREEMPTION kernels"
    await cond_resched(k)


# __queue_work(), kernel/workqueue.c
def __queue_work(k, cpu, wq, work):
    """__queue_work(): put a PENDING work on a pool (atomic under pool->lock)."""
    unbound = wq.flags & WQ_UNBOUND
    if cpu == WORK_CPU_UNBOUND or unbound:
        cur = k.execution.current
        cpu = cur.data.cpu if cur is not None and cur.data is not None else 0
    highpri = bool(wq.flags & WQ_HIGHPRI)
    # Non-reentrancy: a work still running somewhere is queued behind itself there.
    pool = work.current_pool or (unbound_pool_of(k, highpri) if unbound else worker_pool_of(k, cpu, highpri))
    if pool.unbound:
        pool.worklist.append(work)
        work.queued_pool = pool
        wake_up_worker(pool, cpu)  # not concurrency managed: a worker for every work
        return
    if not pool.workers:
        create_worker(pool)
    pool.worklist.append(work)
    work.queued_pool = pool
    if pool.nr_running == 0:
        wake_up_worker(pool)


# queue_work_on(), kernel/workqueue.c
async def queue_work_on(k, cpu, wq, work):
    """queue_work_on(): false if the work was already pending."""
    await access(k.wq_lock, SYNC)
    if work.pending:
        k.execution.event(f"{work.name} already pending: not queued again")
        return False
    work.pending = True
    __queue_work(k, cpu, wq, work)
    return True


# queue_work(), include/linux/workqueue.h
async def queue_work(k, wq, work):
    return await queue_work_on(k, WORK_CPU_UNBOUND, wq, work)


# schedule_work(), include/linux/workqueue.h
async def schedule_work(k, work):
    """schedule_work(): queue on system_wq; false if already pending."""
    return await queue_work_on(k, WORK_CPU_UNBOUND, k.system_wq, work)


# delayed_work_timer_fn(), kernel/workqueue.c
def delayed_work_timer_fn(k, dwork, timer_cpu):
    """delayed_work_timer_fn(): the delay is over, queue the work.  An unbound
    one goes to the CPU the timer fired on: the one that armed it."""
    dwork.timer = None
    cpu = dwork.cpu
    if cpu == WORK_CPU_UNBOUND:
        cpu = timer_cpu if k.cpu_online_mask.bits >> timer_cpu & 1 else next(iter(k.cpu_online_mask))
    __queue_work(k, cpu, dwork.wq, dwork.work)


# __queue_delayed_work(), kernel/workqueue.c
def __queue_delayed_work(k, cpu, wq, dwork, delay_ns):
    dwork.wq = wq
    dwork.cpu = cpu
    if delay_ns == 0:
        __queue_work(k, cpu, wq, dwork.work)
        return
    cur = k.execution.current
    timer_cpu = cur.data.cpu if cur is not None and cur.data is not None else 0
    dwork.timer = k.execution.add_timer(delay_ns, delayed_work_timer_fn, k, dwork, timer_cpu, name=dwork.name)


# try_to_grab_pending(), kernel/workqueue.c
def try_to_grab_pending(k, dwork):
    """try_to_grab_pending(): steal PENDING from a timer or a worklist.

    Returns True if the work was pending (we now own it), False if it was
    idle (and we set PENDING ourselves).
    """
    work = dwork.work
    if dwork.timer is not None and k.execution.cancel_timer(dwork.timer):
        dwork.timer = None
        return True
    if work.pending:
        pool = work.queued_pool
        if pool is not None:
            pool.worklist.remove(work)
            work.queued_pool = None
        return True
    work.pending = True
    return False


# queue_delayed_work_on(), kernel/workqueue.c
async def queue_delayed_work_on(k, cpu, wq, dwork, delay_ns):
    """queue_delayed_work_on(): false (and no change) if already pending."""
    await access(k.wq_lock, SYNC)
    if dwork.work.pending:
        k.execution.event(f"{dwork.name} already pending: not queued again")
        return False
    dwork.work.pending = True
    __queue_delayed_work(k, cpu, wq, dwork, delay_ns)
    return True


# mod_delayed_work_on(), kernel/workqueue.c
async def mod_delayed_work_on(k, cpu, wq, dwork, delay_ns):
    """mod_delayed_work_on(): queue, or re-arm a pending work to the new delay.

    A work already waiting to run is pulled back and delayed again: a
    ``mod`` with a longer delay postpones it.
    """
    await access(k.wq_lock, SYNC)
    ret = try_to_grab_pending(k, dwork)
    __queue_delayed_work(k, cpu, wq, dwork, delay_ns)
    k.execution.event(
        f"{dwork.name} {'re-armed' if ret else 'queued'} on cpu{cpu if cpu >= 0 else '?'} in {delay_ns // 1_000_000} ms"
    )
    return ret


# for_each_cpu_worker_pool(), kernel/workqueue.c
def for_each_cpu_worker_pool(k, cpu):
    """for_each_cpu_worker_pool(): the CPU's normal and highpri pools that exist."""
    return [pool for highpri in (False, True) if (pool := k.worker_pools.get((cpu, highpri))) is not None]


# workqueue_offline_cpu(), kernel/workqueue.c
async def workqueue_offline_cpu(k, cpu):
    """workqueue_offline_cpu() -> unbind_workers() (CPUHP_AP_WORKQUEUE_ONLINE teardown):
    the CPU's pools become disassociated and their workers may run anywhere."""
    await access(k.wq_lock, SYNC)
    for pool in for_each_cpu_worker_pool(k, cpu):
        pool.disassociated = True
        for w in pool.workers:
            w.ts.allowed = None
            if w.ts.task.state == "R" and w.ts.task is not k.execution.current:
                select_fallback_rq(k, w.ts)
    return 0


# workqueue_online_cpu(), kernel/workqueue.c
async def workqueue_online_cpu(k, cpu):
    """workqueue_online_cpu() -> rebind_workers(): bound to their CPU again."""
    await access(k.wq_lock, SYNC)
    for pool in for_each_cpu_worker_pool(k, cpu):
        pool.disassociated = False
        for w in pool.workers:
            w.ts.allowed = cpumask(f"{w.ts.comm}->cpus_mask", [cpu])
            if w.ts.task.state == "D" and w.current_work is None and w.ts.cpu != cpu:
                k.execution.move(w.ts.task, cpu)  # an idle worker goes home at once
                w.ts.cpu = cpu
    return 0


# flush_work(), kernel/workqueue.c
async def flush_work(k, work):
    """flush_work(): wait until the work, if queued or running, has finished
    (a work queued again while we wait is not waited for twice)."""
    from blkrace.kernel.sched import schedule_on

    await access(k.wq_lock, SYNC)
    if not work.pending and work.current_pool is None:
        return False
    while work.pending or work.current_pool is not None:
        await schedule_on(k, work.done, what="flush_work")
    return True


# cancel_work_sync(), kernel/workqueue.c
async def cancel_work_sync(k, work):
    """cancel_work_sync(): take it off its list if queued, and wait until it is not running."""
    from blkrace.kernel.sched import schedule_on

    await access(k.wq_lock, SYNC)
    if work.pending and work.queued_pool is not None:
        work.queued_pool.worklist.remove(work)
        work.queued_pool = None
        work.pending = False
    while work.current_pool is not None:
        await schedule_on(k, work.done, what="cancel_work_sync")
    return True


def init_workqueues(k):
    """workqueue_init() and the block layer's kblockd (blk_dev_init(), block/blk-core.c)."""
    k.system_wq = alloc_workqueue(k, "events", 0)
    k.kblockd_workqueue = alloc_workqueue(k, "kblockd", WQ_MEM_RECLAIM | WQ_HIGHPRI)
