"""Engine rules for spinning CPUs: non-preemptible lanes, time passing while
tasks run, and daemon timers (what the soft-lockup detector builds on)."""

from blkrace.engine import NSEC_PER_MSEC, NSEC_PER_SEC, WRITE, access, sleep
from blkrace.engine.campaign import explore, run_once
from blkrace.engine.strategy import make_strategy
from enginekit import Cell
from test_engine_semantics import Always


class RoundRobin(Always):
    """Each pick takes the next option in turn (never the clock while a task can run)."""

    def __init__(self):
        super().__init__(0)
        self.turn = 0

    def pick(self, options, can_advance):
        self.turn += 1
        return self.turn % len(options)


def _two_on_one_lane(preemptive, release_every=None):
    order = []

    def build(ex):
        ex.set_preemptive(preemptive)
        cell = Cell("x")

        async def worker(name, n):
            me = ex.current
            for i in range(n):
                await access(cell, WRITE)
                order.append(name)
                if release_every and (i + 1) % release_every == 0:
                    ex.lane_release(me)  # cond_resched()

        async def irq():
            await access(cell, WRITE)
            order.append("irq")

        ex.spawn(worker("a", 4), "a", lane=0)
        ex.spawn(worker("b", 4), "b", lane=0)
        ex.spawn(irq(), "irq", lane=0, level=2)

    return build, order


def test_a_non_preemptible_lane_runs_one_task_until_it_parks():
    # Taking turns: with preemption the two tasks of CPU 0 interleave.
    build, order = _two_on_one_lane(preemptive=True)
    run_once(build, RoundRobin())
    tasks = [w for w in order if w != "irq"]
    assert tasks not in (["a"] * 4 + ["b"] * 4, ["b"] * 4 + ["a"] * 4)
    build, order = _two_on_one_lane(preemptive=False)
    result, _ = run_once(build, RoundRobin())
    assert result.end_reason == "quiescent"
    tasks = [w for w in order if w != "irq"]
    # Whoever ran first keeps the CPU until it is done; interrupts still come in.
    assert tasks in (["a"] * 4 + ["b"] * 4, ["b"] * 4 + ["a"] * 4)
    assert "irq" in order


def test_giving_the_lane_up_lets_the_other_task_in():
    build, order = _two_on_one_lane(preemptive=False, release_every=1)
    run_once(build, RoundRobin())
    tasks = [w for w in order if w != "irq"]
    assert tasks not in (["a"] * 4 + ["b"] * 4, ["b"] * 4 + ["a"] * 4)


def test_lane_holder_says_since_when():
    seen = []

    def build(ex):
        ex.set_preemptive(False)

        async def spinner():
            for _ in range(60):
                await access(None)
            seen.append(ex.lane_holder(0))

        ex.add_timer(NSEC_PER_SEC, lambda: None)
        ex.spawn(spinner(), "spinner", lane=0)

    result, _ = run_once(build, Always(0))
    task, since = seen[0]
    assert task.name == "spinner" and since == 0
    assert result.time_ns >= NSEC_PER_SEC


def _spinner_with_far_timer(spin_steps, max_steps=2000):
    fired = []

    def build(ex):
        ex.spin_steps = spin_steps
        cell = Cell("flag")

        async def spinner():
            while not cell.value:
                await access(cell)

        def timeout():
            fired.append(ex.now)
            cell.value = 1

        ex.add_timer(NSEC_PER_SEC, timeout)
        ex.spawn(spinner(), "spinner", lane=0)

    # Index 0: always the spinner, never "advance the clock" of its own accord.
    result, _ = run_once(build, Always(0), max_steps=max_steps)
    return result, fired


def test_time_passes_while_a_task_spins_so_a_far_timer_comes_within_reach():
    result, fired = _spinner_with_far_timer(spin_steps=None)
    assert [v.kind for v in result.violations] == ["livelock"]  # time stood still
    assert fired == [] and result.time_ns == 0
    # With time passing, the timer's deadline comes within reach; a strategy
    # that always prefers the spinner passes the clock over, but no longer
    # than a task may be (max_starve_steps), so the timer fires and the spin ends.
    result, fired = _spinner_with_far_timer(spin_steps=20, max_steps=1500)
    assert fired == []
    assert NSEC_PER_SEC - 20 * NSEC_PER_MSEC <= result.time_ns < NSEC_PER_SEC
    result, fired = _spinner_with_far_timer(spin_steps=20, max_steps=5000)
    assert fired == [NSEC_PER_SEC]
    assert result.end_reason == "quiescent" and result.violations == []


def test_time_never_passes_a_waiting_task_beyond_its_bound():
    def build(ex):
        cell = Cell("flag")

        async def spinner():
            while True:
                await access(cell)

        async def waiter():
            await access(cell)

        ex.add_timer(NSEC_PER_SEC, lambda: None)
        ex.spawn(spinner(), "spinner", lane=0)
        ex.spawn(waiter(), "waiter", lane=1)

    # Always the first option (the spinner): the waiter is runnable since 0,
    # so time stops at 20 ms until the starvation bound runs it.
    result, _ = run_once(build, Always(0), max_steps=1000)
    assert result.time_ns == 20 * NSEC_PER_MSEC


def test_a_daemon_timer_fires_as_time_passes_but_does_not_keep_a_run_alive():
    ticks = []

    def build(ex):
        def tick():
            ticks.append(ex.now)
            ex.add_timer(100 * NSEC_PER_MSEC, tick, daemon=True)

        async def busy():
            for _ in range(400):
                await access(None)
            await sleep(NSEC_PER_MSEC)

        ex.add_timer(100 * NSEC_PER_MSEC, tick, daemon=True)
        ex.spawn(busy(), "busy", lane=0)

    result, _ = run_once(build, Always(0), max_steps=5000)
    assert result.end_reason == "quiescent" and result.violations == []
    # 400 steps of spinning pass about 400 ms: three or four ticks, taken without a choice.
    assert ticks[:3] == [100 * NSEC_PER_MSEC, 200 * NSEC_PER_MSEC, 300 * NSEC_PER_MSEC]
    assert 0 not in result.choices


def test_spinning_runs_replay_identically():
    def build(ex):
        ex.set_preemptive(False)
        cell = Cell("flag")

        async def spinner(lane):
            while not cell.value:
                await access(cell)

        def timeout():
            cell.value = 1

        ex.add_timer(NSEC_PER_SEC, timeout)
        ex.spawn(spinner(0), "s0", lane=0)
        ex.spawn(spinner(1), "s1", lane=1)

    first = explore(build, make_strategy("pct", 3), 5, stop_on_first=False, max_steps=3000)
    again = explore(build, make_strategy("pct", 3), 5, stop_on_first=False, max_steps=3000)
    assert [f.choices for f in first.findings] == [f.choices for f in again.findings]


def test_once_a_run_spins_it_is_scheduled_fairly():
    """Two CPUs spin until a timer 1 s out sets their flag.  A strategy that
    always prefers the first keeps the second waiting, and a waiting task
    holds time back; after the starvation rescue the engine schedules the
    run fairly (least recently run first, the clock included), so time
    passes at the spinning rate and the timer ends the spin."""
    events = []

    def build(ex):
        cell = Cell("flag")

        async def spinner():
            while not cell.value:
                await access(cell)

        def timeout():
            cell.value = 1

        ex.add_timer(NSEC_PER_SEC, timeout)
        ex.spawn(spinner(), "s0", lane=0)
        ex.spawn(spinner(), "s1", lane=1)

    result, ex = run_once(build, Always(0), max_steps=10_000, traced=True)
    assert result.end_reason == "quiescent" and result.violations == []
    assert result.time_ns == NSEC_PER_SEC
    assert result.steps < 5000
    events = [st.what for st in result.trace if st.kind == "event"]
    assert any("from here on the scheduler is fair" in e for e in events)
    # The fair part is the engine's, not the strategy's: nothing of it is a choice.
    assert len(result.choices) < 2200


def test_a_task_that_keeps_losing_between_short_holds_of_its_cpu_still_starves():
    """CPU 0 is taken for one step at a time by a waiter that a spinner on
    CPU 1 wakes over and over; the strategy never picks the third task of
    CPU 0.  The holds pause its starvation clock but do not restart it, so
    the rescue comes and the task runs (the case that held time still in
    nvme-mpath-freeze start-queues-in-teardown --seed 2)."""
    from blkrace.engine import WaitQueue

    ran = []

    class PreferWaiter(Always):
        def pick(self, options, can_advance):
            names = [t.name for t in options]
            return names.index("waiter") if "waiter" in names else names.index("spinner")

    def build(ex):
        ex.set_preemptive(False)
        wq = WaitQueue("ping")

        async def spinner():
            while True:
                await access(None)
                wq.wake_all()

        async def waiter():
            while True:
                await wq.park()

        async def victim():
            await access(None)
            ran.append(ex.steps)

        ex.spawn(spinner(), "spinner", lane=1)
        ex.spawn(waiter(), "waiter", lane=0)
        ex.spawn(victim(), "victim", lane=0)

    run_once(build, PreferWaiter(0), max_steps=10_000)
    assert ran and ran[0] < 5000
