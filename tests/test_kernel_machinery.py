"""Kernel machinery on its own: CPU hotplug round trips, stop_machine, IPIs, workqueues, contexts."""

from blkrace.engine import NSEC_PER_MSEC, Execution
from blkrace.engine.campaign import explore, run_once
from blkrace.engine.strategy import make_strategy
from blkrace.kernel.boot import boot
from blkrace.kernel.cpuhp import CPUHP_OFFLINE, CPUHP_ONLINE, cpu_down, cpu_up
from blkrace.kernel.irq import generic_handle_irq, request_irq
from blkrace.kernel.locking.spinlock import spin_lock_irq, spin_unlock_irq, spinlock_t
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.kernel.smp import call_single_data, smp_call_function_single_async
from blkrace.kernel.workqueue import INIT_DELAYED_WORK, INIT_WORK, mod_delayed_work_on, queue_work_on

STRATEGIES = [("random", s) for s in range(40)] + [("pct", s) for s in range(40)]


def test_cpu_down_then_up_restores_every_mask_and_state():
    seen = {}

    def build(ex):
        k = boot(ex, nr_cpus=3)
        seen["k"] = k

        async def worker(k):
            from blkrace.engine import access

            for _ in range(3):
                await access(None)

        async def hotplug(k):
            assert await cpu_down(k, 2) == 0
            seen["down"] = (list(k.cpu_online_mask), list(k.cpu_active_mask), k.cpuhp_state[2].state, k.cpu_dead[2])
            assert await cpu_up(k, 2) == 0
            seen["up"] = (list(k.cpu_online_mask), list(k.cpu_active_mask), k.cpuhp_state[2].state, k.cpu_dead[2])

        task_run_on_cpu(k, hotplug, "hotplug", 0)
        task_run_on_cpu(k, worker, "user", 2)

    for name, seed in STRATEGIES[::8]:
        result, _ = run_once(build, make_strategy(name, seed), seed)
        assert result.violations == [], result.violations
        assert seen["down"] == ([0, 1], [0, 1], CPUHP_OFFLINE, True)
        assert seen["up"] == ([0, 1, 2], [0, 1, 2], CPUHP_ONLINE, False)


def test_stop_machine_runs_the_function_with_every_cpu_stopped():
    """In MULTI_STOP_RUN the dying CPU runs take_cpu_down() while every other
    online CPU spins with interrupts off: no other task runs anywhere."""
    observed = []

    def build(ex):
        k = boot(ex, nr_cpus=3)
        from blkrace.kernel import cpuhp

        original = cpuhp.__cpu_disable

        async def spy(k):
            # Other CPUs' stoppers still ack the state; nothing else may run.
            others = [
                t
                for t in ex.runnable
                if t.level == 0 and ex.eligible(t) and t is not ex.current and not t.name.startswith("migration/")
            ]
            observed.append([t.name for t in others])
            return await original(k)

        cpuhp.__cpu_disable = spy
        try:
            task_run_on_cpu(k, lambda k: cpu_down(k, 1), "hotplug", 0)

            async def busy(k):
                from blkrace.engine import access

                for _ in range(20):
                    await access(None)

            task_run_on_cpu(k, busy, "busy", 2)
            result = ex.run()
        finally:
            cpuhp.__cpu_disable = original
        return result

    for name, seed in STRATEGIES[::5]:
        ex = Execution(make_strategy(name, seed), max_steps=20_000)
        ex.strategy.start_run(ex, seed)
        build(ex)
        assert observed and all(o == [] for o in observed), observed


def test_interrupts_stay_out_of_an_irqs_off_section_even_under_preempt_off():
    """spin_lock_irq() from task context: irqs off first, preemption off on top.
    A device interrupt raised on that CPU runs only after the unlock."""
    order = []

    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False)
        lock = spinlock_t("L")

        async def handler(k, desc):
            order.append("irq")

        desc = request_irq(k, 30, "dev", handler, [1])

        async def holder(k):
            await spin_lock_irq(k, lock)
            generic_handle_irq(k, desc)
            for _ in range(3):
                order.append("locked")
                from blkrace.engine import access

                await access(lock)
            await spin_unlock_irq(k, lock)
            order.append("unlocked")

        task_run_on_cpu(k, holder, "holder", 1)

    for name, seed in STRATEGIES:
        order.clear()
        run_once(build, make_strategy(name, seed), seed)
        assert order.index("irq") > order.index("locked") + 2, order


def test_ipi_runs_the_callback_on_the_target_cpu():
    ran = []

    def build(ex):
        k = boot(ex, nr_cpus=3, hotplug=False)

        async def cb(k, info):
            ran.append((k.current.cpu, k.current.context))

        async def sender(k):
            await smp_call_function_single_async(k, 2, call_single_data("csd", cb, None))

        task_run_on_cpu(k, sender, "sender", 0)

    run_once(build, make_strategy("random", 0), 0)
    assert ran == [(2, 2)]


def test_queue_work_on_a_pending_work_returns_false_and_runs_it_once():
    runs, returns = [], []

    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False)

        async def fn(k, work):
            runs.append(k.current.comm)

        work = INIT_WORK(fn, "w")

        async def queuer(k):
            returns.append(await queue_work_on(k, 1, k.system_wq, work))
            returns.append(await queue_work_on(k, 1, k.system_wq, work))

        task_run_on_cpu(k, queuer, "q", 0)

    result = explore(build, make_strategy("pct", 0), 50, stop_on_first=False)
    assert result.findings == []
    run_once(build, make_strategy("random", 0), 0)
    # Second queueing: false if the worker has not picked the first one up yet.
    assert returns[0] is True and len(runs) >= 1


def test_mod_delayed_work_rearms_a_pending_work_to_the_new_delay():
    times = []

    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False)

        async def fn(k, work):
            times.append(k.now)

        dwork = INIT_DELAYED_WORK(fn, "dw")

        async def arm(k):
            await mod_delayed_work_on(k, 1, k.kblockd_workqueue, dwork, 1 * NSEC_PER_MSEC)
            await mod_delayed_work_on(k, 1, k.kblockd_workqueue, dwork, 3 * NSEC_PER_MSEC)

        task_run_on_cpu(k, arm, "arm", 0)

    run_once(build, make_strategy("random", 0), 0)
    assert times == [3 * NSEC_PER_MSEC]


def test_rwsem_readers_share_and_a_writer_excludes():
    from blkrace.engine import access
    from blkrace.kernel.locking.rwsem import down_read, down_write, rw_semaphore, up_read, up_write

    inside = []
    overlaps = []

    def build(ex):
        k = boot(ex, nr_cpus=3, hotplug=False)
        sem = rw_semaphore("sem")

        async def reader(k):
            await down_read(k, sem)
            inside.append("r")
            overlaps.append(list(inside))
            await access(None)
            inside.remove("r")
            await up_read(k, sem)

        async def writer(k):
            await down_write(k, sem)
            inside.append("w")
            overlaps.append(list(inside))
            await access(None)
            inside.remove("w")
            await up_write(k, sem)

        task_run_on_cpu(k, reader, "r1", 0)
        task_run_on_cpu(k, reader, "r2", 1)
        task_run_on_cpu(k, writer, "w", 2)

    saw_shared = False
    for name, seed in STRATEGIES:
        inside.clear()
        overlaps.clear()
        result, _ = run_once(build, make_strategy(name, seed), seed)
        assert result.violations == []
        for snap in overlaps:
            assert not ("w" in snap and len(snap) > 1), snap
            saw_shared |= snap.count("r") == 2
    assert saw_shared


def test_flush_work_waits_for_the_work():
    from blkrace.kernel.workqueue import flush_work

    order = []

    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False)

        async def fn(k, work):
            order.append("work")

        work = INIT_WORK(fn, "w")

        async def flusher(k):
            await queue_work_on(k, 1, k.system_wq, work)
            await flush_work(k, work)
            order.append("flushed")

        task_run_on_cpu(k, flusher, "f", 0)

    for name, seed in STRATEGIES[::10]:
        order.clear()
        run_once(build, make_strategy(name, seed), seed)
        assert order == ["work", "flushed"]


def test_call_rcu_runs_the_callback_only_after_the_readers_open_at_the_call():
    from blkrace.engine import access
    from blkrace.kernel.locking.rcu import call_rcu, rcu_read_lock, rcu_read_unlock

    seen = []

    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False)
        state = {"freed": False}

        async def free_it(k):
            state["freed"] = True
            seen.append("callback")

        async def reader(k):
            rcu_read_lock(k)
            await access(state)  # a scheduling point inside the read side
            seen.append(("reader saw freed", state["freed"]))
            rcu_read_unlock(k)

        async def updater(k):
            await access(state)
            call_rcu(k, free_it)
            seen.append("called")

        task_run_on_cpu(k, reader, "reader", 0)
        task_run_on_cpu(k, updater, "updater", 1)

    outcomes = set()
    for name, seed in STRATEGIES:
        seen.clear()
        run_once(build, make_strategy(name, seed), seed)
        assert seen.count("callback") == 1 and ("reader saw freed", True) not in seen
        outcomes.add(seen.index("callback") > seen.index("called"))
    assert outcomes == {True}


def _spin_until_flag(preempt, resched):
    """A task spins on CPU 0 until a kworker of CPU 0 sets a flag; a timer 30 s
    out stands for a request timeout, so time has somewhere to go."""
    from blkrace.engine import NSEC_PER_SEC, access
    from blkrace.kernel.sched import cond_resched
    from blkrace.kernel.workqueue import INIT_WORK, queue_work_on

    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False, preempt=preempt, watchdog=True)
        flag = {"set": False}

        async def set_flag(k, work):
            await access(flag)
            flag["set"] = True

        work = INIT_WORK(set_flag, "set_flag")

        async def spinner(k):
            await queue_work_on(k, 0, k.system_wq, work)
            while True:
                await access(flag)
                if flag["set"]:
                    return
                if resched:
                    await cond_resched(k)

        ex.add_timer(30 * NSEC_PER_SEC, lambda: None)
        task_run_on_cpu(k, spinner, "spinner", 0)

    return build


def test_a_task_spinning_on_a_non_preemptible_cpu_is_a_soft_lockup():
    result, _ = run_once(_spin_until_flag(preempt=False, resched=False), make_strategy("pct", 0), 0, max_steps=60_000)
    kinds = [v.kind for v in result.violations]
    assert kinds == ["soft_lockup"]
    v = result.violations[0]
    assert v.message.startswith("BUG: soft lockup - CPU#0 stuck for ") and "[spinner:" in v.message
    assert 20 * 10**9 < result.time_ns <= 30 * 10**9
    assert any("spinner" in line for line in v.detail)


def test_cond_resched_or_preemption_lets_the_kworker_in():
    for preempt, resched in ((False, True), (True, False)):
        for seed in range(5):
            result, _ = run_once(
                _spin_until_flag(preempt=preempt, resched=resched), make_strategy("pct", seed), 0, max_steps=60_000
            )
            assert result.violations == [], (preempt, resched, seed)


def _workqueue_race(actions):
    """Tasks on CPUs 0 and 1 do ``actions`` on one delayed work of kblockd; each
    run records how often the work ran and whether every task finished."""
    from blkrace.engine import access
    from blkrace.kernel.workqueue import cancel_work_sync, init_workqueues, queue_delayed_work_on

    runs = []

    def build(ex):
        k = boot(ex, nr_cpus=2, hotplug=False)
        if k.kblockd_workqueue is None:
            init_workqueues(k)
        state = {"ran": 0, "done": 0}

        async def fn(k, work):
            await access(state)
            state["ran"] += 1

        dwork = INIT_DELAYED_WORK(fn, "run_work")

        async def actor(k, what):
            if what == "mod0":
                await mod_delayed_work_on(k, 0, k.kblockd_workqueue, dwork, 0)
            elif what == "mod3":
                await mod_delayed_work_on(k, 1, k.kblockd_workqueue, dwork, 3 * NSEC_PER_MSEC)
            elif what == "queue":
                await queue_delayed_work_on(k, 0, k.kblockd_workqueue, dwork, 0)
            elif what == "cancel":
                await cancel_work_sync(k, dwork.work)
            state["done"] += 1

        for cpu, what in enumerate(actions):
            task_run_on_cpu(k, actor, f"t{cpu}", cpu, what)

        def check(ex):
            runs.append((state["ran"], state["done"], dwork.work.pending))
            return ()

        ex.checkers.append(check)

    return build, runs


def test_two_queuers_of_one_work_never_lose_it_and_never_spin():
    """mod_delayed_work_on() from two CPUs (blk_mq_run_hw_queue()'s async
    kick): every interleaving of the PENDING bit and the pool locks, DPOR
    without a bound.  The work runs at least once, both callers return (a
    try_to_grab_pending() that finds PENDING owned but the work on no list
    waits for the owner, never forever), and no run is cut."""
    build, runs = _workqueue_race(["mod0", "mod3"])
    result = explore(build, make_strategy("dpor", preemption_bound=None), 20_000, stop_on_first=False)
    assert result.exhausted and not result.findings and result.cut == 0
    assert runs and all(done == 2 and ran >= 1 and not pending for ran, done, pending in runs)
    assert {ran for ran, _d, _p in runs} == {1, 2}  # merged into one run, or run twice


def test_cancel_work_sync_against_a_queuer_leaves_the_work_idle_or_queued_once():
    build, runs = _workqueue_race(["queue", "cancel"])
    result = explore(build, make_strategy("dpor", preemption_bound=None), 20_000, stop_on_first=False)
    assert result.exhausted and not result.findings and result.cut == 0
    assert runs and all(done == 2 for _r, done, _p in runs)
    # Cancelled before it ran (never runs), or ran before the cancel took PENDING.
    assert {ran for ran, _d, _p in runs} == {0, 1}
