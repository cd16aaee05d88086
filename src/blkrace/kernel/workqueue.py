"""Workqueues (kernel/workqueue.c): bound per-CPU pools, workers, delayed work.

What is kept: per-CPU worker pools (normal and WQ_HIGHPRI, shared by every
bound workqueue as in cmwq), the PENDING bit (queueing a pending work is a
no-op returning false), non-reentrancy (a work queued while it runs goes to
the pool running it, and runs again after), concurrency management (when a
running worker sleeps and work is waiting, another worker starts), delayed
work on a timer, and mod_delayed_work's "re-arm a pending work to the new
delay".  Also flush_work() and cancel_work_sync().  Left out: unbound pools' NUMA
affinity, rescuers, flush_workqueue(), WQ_ORDERED.

Granularity (what is one step): the kernel's atomic points.  The PENDING bit is
an atomic of the work (test_and_set_bit(), set_work_pool_and_clear_pending(),
clear_work_data()): a step declared on the work.  Everything done under a pool's
lock (the worklist, nr_running, the busy hash, waking an idle worker) is a step
declared on that pool; the pools of different CPUs are independent, as they are
in the kernel.  Interrupts are off where the kernel has them off (from the
PENDING test to the end of the queueing, and from taking a worker's pool lock to
clearing PENDING): nothing else of that CPU runs in those windows, so only
another CPU can meet a work whose PENDING is owned but which is on no list
yet.  Under ``--memory-model lkmm`` the PENDING operations are fully ordered
(test_and_set_bit() returns a value; set_work_pool_and_clear_pending() and
clear_work_data() have their smp_wmb()/smp_mb()) and a pool's lock is an
acquire and a release, which is what gives a work function every store made
before the queue_work() that queued it.  try_to_grab_pending()'s -EAGAIN busy loop
(PENDING owned by someone who has not yet put the work on a list or a timer) is
a wait that the owner's next step ends, rather than a spin.

Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import READ, SYNC, TOUCHES_NOTHING, WaitQueue, access
from blkrace.kernel.machine import cpumask, select_fallback_rq
from blkrace.kernel.memory import smp_mb, smp_wmb, spin_acquire_order, spin_release_order
from blkrace.kernel.sched import (
    PF_KTHREAD,
    PF_WQ_WORKER,
    cond_resched,
    kthread_run_on_cpu,
    local_irq_disable,
    local_irq_enable,
    local_irq_restore,
    local_irq_save,
)

WQ_UNBOUND = 1 << 1
WQ_MEM_RECLAIM = 1 << 3
WQ_HIGHPRI = 1 << 4
WORK_CPU_UNBOUND = -1
EAGAIN = 11
ENOENT = 2


class work_struct:
    """include/linux/workqueue.h: struct work_struct.  ``func(k, work)`` is async."""

    __slots__ = (
        "name",
        "func",
        "pending",
        "queued_pool",
        "current_pool",
        "last_pool",
        "canceling",
        "data",
        "done",
        "busy",
    )

    def __init__(self, func, name, data=None):
        self.name = name
        self.func = func
        self.pending = False  # WORK_STRUCT_PENDING_BIT
        self.queued_pool = None  # the pool whose worklist holds it
        self.current_pool = None  # the pool whose worker runs it now (the busy hash)
        self.last_pool = None  # get_work_pool(): where work->data says it was last queued or run
        self.canceling = False  # mark_work_canceling()
        self.data = data
        self.done = WaitQueue(f"{name} done")  # flush/cancel_work_sync waiters
        # try_to_grab_pending()'s -EAGAIN spinners: woken when PENDING's owner
        # has put the work on a list or a timer, or cleared PENDING.
        self.busy = WaitQueue(f"{name} PENDING busy")


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
        """wq_worker_sleeping(): the last running worker sleeps; start another if work waits.

        It runs in __schedule(), under the pool's lock, in the step that parks
        the worker: that step touches the pool too."""
        pool = self.pool
        if pool.unbound:
            return  # not concurrency managed
        pool.k.execution.touch(pool, SYNC)
        pool.nr_running -= 1
        if pool.nr_running == 0 and pool.worklist:
            wake_up_worker(pool)

    def running(self):
        """wq_worker_running(): in the step that resumes the worker (an atomic_inc)."""
        pool = self.pool
        if not pool.unbound:
            pool.k.execution.touch(pool, SYNC)
            pool.nr_running += 1


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
    while True:
        # woke_up: raw_spin_lock_irq(&pool->lock).  Interrupts go off in the
        # step that takes the lock, not before its scheduling point: code
        # before a task's first trap runs as part of the step that spawns it.
        await access(pool, SYNC)
        local_irq_disable(k)
        spin_acquire_order(k, pool)
        while pool.worklist:
            # process_one_work() returns with pool->lock held again.
            await process_one_work(k, w, pool.worklist.pop(0))
        # sleep: worker_enter_idle(), raw_spin_unlock_irq(), schedule().  Idle
        # until woken; the waker counts us running again (wake_up_worker).
        spin_release_order(k, pool)
        local_irq_enable(k)
        if not pool.unbound:
            pool.nr_running -= 1
        await pool.idle.park(hung_check=False, resume=(pool, SYNC))  # reads pool->flags, may rebind
        if not pool.unbound and not pool.disassociated and w.ts.cpu != pool.cpu:
            k.execution.move(w.ts.task, pool.cpu)  # WORKER_REBOUND: back home
            w.ts.cpu = pool.cpu


# process_one_work(), kernel/workqueue.c
async def process_one_work(k, w, work):
    """process_one_work(): entered and left with pool->lock held; the function runs unlocked."""
    pool = w.pool
    work.queued_pool = None  # list_del_init(&work->entry)
    work.current_pool = pool  # hash_add(pool->busy_hash, ...): find_worker_executing_work() sees it
    w.current_work = work
    # set_work_pool_and_clear_pending(): an atomic on work->data, which a
    # test_and_set_bit(PENDING) of another CPU does not wait for pool->lock to touch.
    await access(work, SYNC)
    smp_wmb(k)
    work.pending = False
    work.last_pool = pool
    smp_mb(k)  # "the following mb guarantees that previous clear of a PENDING bit will not be reordered ..."
    work.busy.wake_all()
    spin_release_order(k, pool)
    local_irq_enable(k)  # raw_spin_unlock_irq(&pool->lock)
    k.execution.event(f"{w.ts.comm} runs {work.name}")
    await work.func(k, work)
    # "prevents a kworker from hogging CPU on !PREEMPTION kernels"
    await cond_resched(k)
    await access(pool, SYNC)  # raw_spin_lock_irq(&pool->lock)
    local_irq_disable(k)
    spin_acquire_order(k, pool)
    w.current_work = None  # hash_del(&worker->hentry)
    if work.current_pool is pool:
        work.current_pool = None
    work.done.wake_all()  # the flush barrier's completion


# model: the pool of __queue_work()'s pwq (per_cpu_ptr(wq->cpu_pwqs, cpu)->pool, or the unbound one)
def pwq_pool(k, cpu, wq):
    unbound = wq.flags & WQ_UNBOUND
    if cpu == WORK_CPU_UNBOUND or unbound:
        cur = k.execution.current
        cpu = cur.data.cpu if cur is not None and cur.data is not None else 0
    highpri = bool(wq.flags & WQ_HIGHPRI)
    return unbound_pool_of(k, highpri) if unbound else worker_pool_of(k, cpu, highpri)


# model: __queue_work()'s non-reentrancy test (kernel/workqueue.c)
def reentrant_pool(pool, work):
    """The pool to queue on: the one running the work if that is not ``pool``
    ("it might still be running there, in which case the work needs to be
    queued on that pool to guarantee non-reentrancy")."""
    last = work.current_pool
    return last if last is not None and last is not pool else pool


# __queue_work(), kernel/workqueue.c
async def __queue_work(k, cpu, wq, work):
    """__queue_work(): called with PENDING ours; put the work on a pool's list."""
    pool = pwq_pool(k, cpu, wq)
    last = work.last_pool
    if last is not None and last is not pool:
        await access(last, SYNC)  # spin_lock(&last_pool->lock): find_worker_executing_work()
        spin_acquire_order(k, last)
        if work.current_pool is not last:
            spin_release_order(k, last)
            await access(pool, SYNC)  # "meh... not running there, queue here"
            spin_acquire_order(k, pool)
    else:
        await access(pool, SYNC)  # spin_lock(&pwq->pool->lock)
        spin_acquire_order(k, pool)
    target = reentrant_pool(pool, work)
    insert_work(k, target, work)
    spin_release_order(k, target)


# insert_work(), kernel/workqueue.c (with the rest of __queue_work() under pool->lock)
def insert_work(k, pool, work):
    """insert_work(): link the work into the pool's list and wake a worker if none runs."""
    work.last_pool = pool  # set_work_pwq()
    work.queued_pool = pool
    pool.worklist.append(work)
    work.busy.wake_all()
    if pool.unbound:
        cur = k.execution.current
        cpu = cur.data.cpu if cur is not None and cur.data is not None else 0
        wake_up_worker(pool, cpu)  # not concurrency managed: a worker for every work
        return
    if not pool.workers:
        create_worker(pool)
    if pool.nr_running == 0:
        wake_up_worker(pool)


# queue_work_on(), kernel/workqueue.c
async def queue_work_on(k, cpu, wq, work):
    """queue_work_on(): false if the work was already pending."""
    await access(work, SYNC)  # test_and_set_bit(WORK_STRUCT_PENDING_BIT, work_data_bits(work))
    flags = local_irq_save(k)  # (before the test in the kernel: the same step here)
    smp_mb(k)  # a value-returning atomic is fully ordered
    if work.pending:
        local_irq_restore(k, flags)
        k.execution.event(f"{work.name} already pending: not queued again")
        return False
    work.pending = True
    await __queue_work(k, cpu, wq, work)
    local_irq_restore(k, flags)
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
    one goes to the CPU the timer fired on: the one that armed it.  A timer
    fires in a clock event no step runs in: __queue_work()'s locks need no
    step of their own here."""
    dwork.timer = None
    cpu = dwork.cpu
    if cpu == WORK_CPU_UNBOUND:
        cpu = timer_cpu if k.cpu_online_mask.bits >> timer_cpu & 1 else next(iter(k.cpu_online_mask))
    pool = pwq_pool(k, cpu, dwork.wq)
    insert_work(k, reentrant_pool(pool, dwork.work), dwork.work)


# __queue_delayed_work(), kernel/workqueue.c
async def __queue_delayed_work(k, cpu, wq, dwork, delay_ns):
    dwork.wq = wq
    dwork.cpu = cpu
    if delay_ns == 0:
        await __queue_work(k, cpu, wq, dwork.work)
        return
    cur = k.execution.current
    timer_cpu = cur.data.cpu if cur is not None and cur.data is not None else 0
    await access(dwork, SYNC)  # add_timer(): the timer base's lock
    dwork.timer = k.execution.add_timer(delay_ns, delayed_work_timer_fn, k, dwork, timer_cpu, name=dwork.name)
    dwork.work.busy.wake_all()


# try_to_grab_pending(), kernel/workqueue.c
async def try_to_grab_pending(k, work, dwork=None):
    """try_to_grab_pending(): ``(ret, flags)``.  ``ret`` is 1 if the work was
    pending and is now ours (stolen from its timer or its list), 0 if it was
    idle and PENDING is now ours, -EAGAIN if PENDING is owned by someone
    queueing or starting it, -ENOENT if it is being cancelled.  On success
    interrupts stay off (``flags`` restores them) until the caller has queued."""
    if dwork is not None:
        await access(dwork, SYNC)  # del_timer(&dwork->timer): the timer base's lock
        flags = local_irq_save(k)
        if dwork.timer is not None and k.execution.cancel_timer(dwork.timer):
            dwork.timer = None
            return 1, flags
        await access(work, SYNC)  # test_and_set_bit(WORK_STRUCT_PENDING_BIT)
    else:
        await access(work, SYNC)  # test_and_set_bit(WORK_STRUCT_PENDING_BIT)
        flags = local_irq_save(k)
    smp_mb(k)  # a value-returning atomic is fully ordered
    if not work.pending:
        work.pending = True
        return 0, flags
    pool = work.last_pool  # get_work_pool()
    if pool is not None:
        await access(pool, SYNC)  # spin_lock(&pool->lock)
        spin_acquire_order(k, pool)
        spin_release_order(k, pool)
        if work.queued_pool is pool:  # "work->data points to pwq iff queued"
            pool.worklist.remove(work)
            work.queued_pool = None
            return 1, flags
    local_irq_restore(k, flags)  # fail:
    return (-ENOENT if work.canceling else -EAGAIN), flags


# model: the callers' "do { ret = try_to_grab_pending(...); } while (ret == -EAGAIN)"
async def grab_pending(k, work, dwork=None):
    """try_to_grab_pending() until it stops saying -EAGAIN.  The kernel spins
    (cpu_relax()) until PENDING's owner has put the work on a list or a timer
    or cleared PENDING; here the loop waits for that owner's step instead, so
    that the explorer is not asked to let it spin."""
    while True:
        ret, flags = await try_to_grab_pending(k, work, dwork)
        if ret != -EAGAIN:
            return ret, flags
        # Wait only while a retry would fail again: PENDING still owned and
        # the work neither on a list nor on a timer (its owner may have moved
        # on since our test_and_set_bit(), in which case the retry succeeds).
        k.execution.touch(work, READ)
        if dwork is not None:
            k.execution.touch(dwork, READ)
        if work.pending and work.queued_pool is None and (dwork is None or dwork.timer is None):
            await work.busy.park(hung_check=False, resume=TOUCHES_NOTHING)  # the retry's first step is its access


# mod_delayed_work_on(), kernel/workqueue.c
async def mod_delayed_work_on(k, cpu, wq, dwork, delay_ns):
    """mod_delayed_work_on(): queue, or re-arm a pending work to the new delay.

    A work already waiting to run is pulled back and delayed again: a
    ``mod`` with a longer delay postpones it.
    """
    ret, flags = await grab_pending(k, dwork.work, dwork)
    if ret < 0:
        return True  # -ENOENT (being cancelled) "becomes %true"
    await __queue_delayed_work(k, cpu, wq, dwork, delay_ns)
    local_irq_restore(k, flags)
    k.execution.event(
        f"{dwork.name} {'re-armed' if ret else 'queued'} on cpu{cpu if cpu >= 0 else '?'} in {delay_ns // 1_000_000} ms"
    )
    return bool(ret)


# queue_delayed_work_on(), kernel/workqueue.c
async def queue_delayed_work_on(k, cpu, wq, dwork, delay_ns):
    """queue_delayed_work_on(): false (and no change) if already pending."""
    await access(dwork.work, SYNC)  # test_and_set_bit(WORK_STRUCT_PENDING_BIT)
    flags = local_irq_save(k)  # "read the comment in __queue_work()"
    smp_mb(k)  # a value-returning atomic is fully ordered
    if dwork.work.pending:
        local_irq_restore(k, flags)
        k.execution.event(f"{dwork.name} already pending: not queued again")
        return False
    dwork.work.pending = True
    await __queue_delayed_work(k, cpu, wq, dwork, delay_ns)
    local_irq_restore(k, flags)
    return True


# for_each_cpu_worker_pool(), kernel/workqueue.c
def for_each_cpu_worker_pool(k, cpu):
    """for_each_cpu_worker_pool(): the CPU's normal and highpri pools that exist."""
    return [pool for highpri in (False, True) if (pool := k.worker_pools.get((cpu, highpri))) is not None]


# workqueue_offline_cpu(), kernel/workqueue.c
async def workqueue_offline_cpu(k, cpu):
    """workqueue_offline_cpu() -> unbind_workers() (CPUHP_AP_WORKQUEUE_ONLINE teardown):
    the CPU's pools become disassociated and their workers may run anywhere."""
    for pool in for_each_cpu_worker_pool(k, cpu):
        await access(pool, SYNC)  # raw_spin_lock_irq(&pool->lock)
        pool.disassociated = True
        for w in pool.workers:
            w.ts.allowed = None
            if w.ts.task.state == "R" and w.ts.task is not k.execution.current:
                select_fallback_rq(k, w.ts)
    return 0


# workqueue_online_cpu(), kernel/workqueue.c
async def workqueue_online_cpu(k, cpu):
    """workqueue_online_cpu() -> rebind_workers(): bound to their CPU again."""
    for pool in for_each_cpu_worker_pool(k, cpu):
        await access(pool, SYNC)  # raw_spin_lock_irq(&pool->lock)
        pool.disassociated = False
        for w in pool.workers:
            w.ts.allowed = cpumask(f"{w.ts.comm}->cpus_mask", [cpu])
            if w.ts.task.state == "D" and w.current_work is None and w.ts.cpu != cpu:
                k.execution.move(w.ts.task, cpu)  # an idle worker goes home at once
                w.ts.cpu = cpu
    return 0


# start_flush_work() and the wait of __flush_work(), kernel/workqueue.c
async def _flush_started(k, work, what):
    """Wait for the queued or running instance of ``work``, as the flush
    barrier start_flush_work() inserts behind it does; false if there is none."""
    from blkrace.kernel.sched import schedule_on

    await access(work, READ)  # get_work_pool(): work->data
    pool = work.last_pool
    if pool is None:
        return False
    await access(pool, SYNC)  # raw_spin_lock_irq(&pool->lock)
    spin_acquire_order(k, pool)
    spin_release_order(k, pool)
    if work.queued_pool is not pool and work.current_pool is not pool:
        return False  # already_gone
    while work.queued_pool is not None or work.current_pool is not None:
        await schedule_on(k, work.done, what=what, resume=(pool, SYNC))  # re-reads what pool->lock guards
    return True


# flush_work(), kernel/workqueue.c
async def flush_work(k, work):
    """flush_work(): wait until the work, if queued or running, has finished
    (a work queued again while we wait is not waited for twice)."""
    return await _flush_started(k, work, "flush_work")


# cancel_work_sync(), kernel/workqueue.c -> __cancel_work_timer()
async def cancel_work_sync(k, work):
    """cancel_work_sync(): take it off its list if queued, and wait until it is not running.

    PENDING stays ours while we wait, so nobody queues it meanwhile; a second
    canceller of the same work (-ENOENT, cancel_waitq) is not modelled."""
    ret, flags = await grab_pending(k, work)
    work.canceling = ret >= 0  # mark_work_canceling()
    if ret >= 0:
        local_irq_restore(k, flags)
    await _flush_started(k, work, "cancel_work_sync")
    await access(work, SYNC)  # clear_work_data(): PENDING and the canceling mark cleared
    smp_wmb(k)
    work.pending = False
    work.canceling = False
    smp_mb(k)
    work.busy.wake_all()
    return ret == 1


def init_workqueues(k):
    """workqueue_init() and the block layer's kblockd (blk_dev_init(), block/blk-core.c)."""
    k.system_wq = alloc_workqueue(k, "events", 0)
    k.kblockd_workqueue = alloc_workqueue(k, "kblockd", WQ_MEM_RECLAIM | WQ_HIGHPRI)
