"""Engine rules the kernel layer builds on: lanes, the clock, ends of runs, errors."""

import asyncio

from blkrace.engine import NSEC_PER_MSEC, NSEC_PER_SEC, TIMED_OUT, WRITE, WaitQueue, access, choose, sleep
from blkrace.engine.campaign import explore, run_once
from blkrace.engine.strategy import make_strategy
from blkrace.engine.strategy.replay import Replay
from enginekit import Cell, Lock


class Always:
    """A strategy that always picks the same option index (clamped), and data value 0."""

    name = "always"

    def __init__(self, index):
        self.index = index

    def start_run(self, execution, index):
        return True

    def pick(self, options, can_advance):
        return min(self.index, len(options) - 1 + can_advance)

    def choose(self, n):
        return 0

    def end_run(self, result):
        pass


def test_lane_exclusion_keeps_other_tasks_of_the_lane_off_but_not_higher_levels():
    order = []

    def build(ex):
        cell = Cell("x")

        async def holder():
            me = ex.current
            ex.lane_push(0, me, 0)  # preempt_disable()
            for _ in range(3):
                await access(cell, WRITE)
                order.append("holder")
            ex.lane_pop(0, me)

        async def same_lane():
            await access(cell, WRITE)
            order.append("same")

        async def irq():
            await access(cell, WRITE)
            order.append("irq")

        ex.spawn(holder(), "holder", lane=0)
        ex.spawn(same_lane(), "same", lane=0)
        ex.spawn(irq(), "irq", lane=0, level=2)

    # Always pick the last option: the irq and the same-lane task would run first if eligible.
    result, _ = run_once(build, Always(99))
    assert result.end_reason == "quiescent"
    assert order.index("irq") < order.index("holder") or order[0] == "holder"
    # The same-lane task never runs while the holder has its exclusion.
    assert order.index("same") > max(i for i, w in enumerate(order) if w == "holder")


def test_an_exclusion_taken_before_the_first_step_on_a_held_lane_is_a_model_error():
    """A task's code up to its first trap runs inside its spawner's step.
    Taking an exclusion there while another task holds the lane would hold
    the lane against that task: two such tasks wait for each other, a stall
    no kernel has.  The engine refuses it, naming both."""

    def build(ex, await_first):
        cell = Cell("x")

        async def holder():
            me = ex.current
            if await_first:
                await access(me, WRITE)  # its first step: it now runs only when eligible
            ex.lane_push(0, me, 0)  # preempt_disable()
            await access(cell, WRITE)
            ex.lane_pop(0, me)

        ex.spawn(holder(), "first", lane=0)
        ex.spawn(holder(), "second", lane=0)

    result, _ = run_once(lambda ex: build(ex, False), Always(0))
    assert [v.kind for v in result.violations] == ["model_error"]
    message = result.violations[0].message
    assert "second takes an exclusion on lane 0 before its first step" in message
    assert "while first keeps it off" in message
    for index in (0, 1, 99):
        result, _ = run_once(lambda ex: build(ex, True), Always(index))
        assert result.violations == [] and result.end_reason == "quiescent"


def test_clock_does_not_pass_a_pending_interrupt():
    seen = []

    def build(ex):
        async def irq():
            await access(None)
            seen.append(ex.now)

        ex.add_timer(5 * NSEC_PER_MSEC, lambda: None)
        ex.spawn(irq(), "irq", lane=0, level=2)

    # Index 1 would be "advance the clock" if it were offered.
    result, _ = run_once(build, Always(1))
    assert seen == [0]


def test_clock_may_pass_a_runnable_task_only_within_the_delay_bound():
    def build_with(delay_ms):
        seen = []

        def build(ex):
            async def task():
                await access(None)
                seen.append(ex.now)

            ex.add_timer(delay_ms * NSEC_PER_MSEC, lambda: None)
            ex.spawn(task(), "t", lane=0)

        return build, seen

    build, seen = build_with(5)  # within the default 20 ms bound: the clock may go first
    run_once(build, Always(1))
    assert seen == [5 * NSEC_PER_MSEC]
    build, seen = build_with(50)  # beyond it: the task must run first
    run_once(build, Always(1))
    assert seen == [0]


def test_sleep_and_timers_advance_virtual_time():
    times = []

    def build(ex):
        async def sleeper():
            await sleep(3 * NSEC_PER_MSEC)
            times.append(ex.now)
            await sleep(2 * NSEC_PER_MSEC)
            times.append(ex.now)

        ex.spawn(sleeper(), "s", lane=0)

    result, _ = run_once(build, Always(0))
    assert times == [3 * NSEC_PER_MSEC, 5 * NSEC_PER_MSEC]
    assert result.time_ns == 5 * NSEC_PER_MSEC


def test_block_with_timeout_returns_timed_out():
    got = []

    def build(ex):
        wq = WaitQueue("never")

        async def waiter():
            got.append(await wq.park(timeout_ns=NSEC_PER_MSEC))

        ex.spawn(waiter(), "w", lane=0)

    result, _ = run_once(build, Always(0))
    assert got == [TIMED_OUT]
    assert result.violations == []


def test_hung_task_is_reported_when_time_passes_over_a_blocked_task():
    def build(ex):
        wq = WaitQueue("forever")

        async def waiter():
            await wq.park()

        async def ticker():
            for _ in range(200):
                await sleep(NSEC_PER_SEC)

        ex.spawn(waiter(), "waiter", lane=0)
        ex.spawn(ticker(), "ticker", lane=1)

    result, _ = run_once(build, Always(0))
    assert [v.kind for v in result.violations] == ["hung_task"]
    assert "waiter blocked for more than 120 seconds" in result.violations[0].message


def test_idle_waits_are_not_stalls():
    def build(ex):
        wq = WaitQueue("pool.idle", idle=True)

        async def worker():
            await wq.park(hung_check=False)

        ex.spawn(worker(), "kworker", lane=0)

    result, _ = run_once(build, Always(0))
    assert result.violations == []


def test_step_bound_is_a_livelock():
    def build(ex):
        cell = Cell("flag")

        async def spinner():
            while not cell.value:
                await access(cell)

        ex.spawn(spinner(), "spinner", lane=0)

    result, _ = run_once(build, Always(0), max_steps=100)
    assert [v.kind for v in result.violations] == ["livelock"]
    assert "spinner" in result.violations[0].message


def test_exception_in_model_code_is_a_model_error_not_a_crash():
    def build(ex):
        async def broken():
            await access(None)
            return 1 // 0

        ex.spawn(broken(), "broken", lane=0)

    result = explore(build, make_strategy("random", 0), 3)
    assert result.kinds() == ["model_error"]
    v = result.findings[0].violation
    assert v.message.startswith("ZeroDivisionError")
    assert "broken" in v.message
    assert any("broken+" in line for line in v.detail)


def test_awaiting_a_foreign_awaitable_is_a_clear_model_error():
    def build(ex):
        async def foreign():
            await asyncio.sleep(0)

        ex.spawn(foreign(), "foreign", lane=0)

    result = explore(build, make_strategy("random", 0), 1)
    assert result.kinds() == ["model_error"]
    assert "not a blkrace trap" in result.findings[0].violation.message


def test_choose_is_recorded_and_replayed():
    picks = []

    def build(ex):
        async def chooser():
            for _ in range(4):
                picks.append(await choose(5, "value"))
                await access(None)

        ex.spawn(chooser(), "c", lane=0)

    result, _ = run_once(build, make_strategy("random", 7))
    first = list(picks)
    picks.clear()
    run_once(build, Replay(result.choices))
    assert picks == first and len(first) == 4


def test_lock_holder_reported_in_wait_for_graph():
    def build(ex):
        lock = Lock("L")

        async def holder():
            await lock.acquire(ex)
            await WaitQueue("nothing").park()

        async def waiter():
            await lock.acquire(ex)

        ex.spawn(holder(), "holder", lane=0)
        ex.spawn(waiter(), "waiter", lane=1)

    result, ex = run_once(build, Always(0))
    edges = {t.name: [h.name for h in hs] for t, hs in ex.wait_for_edges().items()}
    assert edges["waiter"] == ["holder"]
    assert [v.kind for v in result.violations] == ["stall"]
