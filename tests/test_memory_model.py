"""The kernel's memory model (blkrace.kernel.memory) under the engine.

Each shape runs as two kernel tasks on two CPUs; a checker reports the
outcome LKMM allows only without the ordering.  DFS explores every schedule
and every choice the memory model offers, so "not found" is exhaustive.
Under ``sc`` the same programs never show the weak outcome.
"""

import pytest

from blkrace.engine import Violation
from blkrace.engine.campaign import explore, replay
from blkrace.engine.strategy import make_strategy
from blkrace.kernel import atomic, memory
from blkrace.kernel.boot import boot
from blkrace.kernel.locking.spinlock import spin_lock, spin_unlock, spinlock_t
from blkrace.kernel.sched import task_run_on_cpu


class Var:
    def __init__(self, name):
        self.name = name
        self.value = 0


def _campaign(program, model, weak_outcome):
    """Run ``program(k, shared) -> (p0, p1)`` on CPUs 0 and 1; report ``weak_outcome(r)``."""

    def build(ex):
        ex.shared["memory_model"] = model
        k = boot(ex, nr_cpus=2, hotplug=False)
        r = {}
        p0, p1 = program(k, r)
        task_run_on_cpu(k, p0, "p0", 0)
        task_run_on_cpu(k, p1, "p1", 1)

        def check(ex):
            if len(r) >= 2 and weak_outcome(r):
                yield Violation("assertion", f"weak outcome {sorted(r.items())}", origin="weak")

        ex.checkers.append(check)

    return build


def _found(program, model, weak_outcome):
    build = _campaign(program, model, weak_outcome)
    res = explore(build, make_strategy("dfs", preemption_bound=None), 20_000, max_steps=2_000)
    assert res.findings or res.exhausted, "the space was not exhausted"
    return bool(res.findings)


def sb(fence):
    def program(k, r):
        x, y = Var("x"), Var("y")

        async def p0(k):
            await memory.WRITE_ONCE(k, x, 1)
            fence(k)
            r["a"] = await memory.READ_ONCE(k, y)

        async def p1(k):
            await memory.WRITE_ONCE(k, y, 1)
            fence(k)
            r["b"] = await memory.READ_ONCE(k, x)

        return p0, p1

    return program


def _none(k):
    pass


def both_zero(r):
    return r["a"] == 0 and r["b"] == 0


def test_store_buffering_needs_smp_mb():
    assert _found(sb(_none), "lkmm", both_zero)
    assert not _found(sb(memory.smp_mb), "lkmm", both_zero)
    assert not _found(sb(_none), "sc", both_zero)


@pytest.mark.parametrize("fence", [memory.smp_wmb, memory.smp_rmb])
def test_store_buffering_is_not_fixed_by_rmb_or_wmb(fence):
    assert _found(sb(fence), "lkmm", both_zero)


def mp(store, load):
    def program(k, r):
        data, flag = Var("data"), Var("flag")

        async def p0(k):
            await memory.WRITE_ONCE(k, data, 1)
            await store(k, flag)

        async def p1(k):
            r["flag"] = await load(k, flag)
            r["data"] = await memory.READ_ONCE(k, data)

        return p0, p1

    return program


def stale_data(r):
    return r["flag"] == 1 and r["data"] == 0


async def _once_store(k, v):
    await memory.WRITE_ONCE(k, v, 1)


async def _release_store(k, v):
    await memory.smp_store_release(k, v, 1)


async def _wmb_store(k, v):
    memory.smp_wmb(k)
    await memory.WRITE_ONCE(k, v, 1)


async def _once_load(k, v):
    return await memory.READ_ONCE(k, v)


async def _acquire_load(k, v):
    return await memory.smp_load_acquire(k, v)


async def _rmb_load(k, v):
    val = await memory.READ_ONCE(k, v)
    memory.smp_rmb(k)
    return val


def test_message_passing_needs_release_and_acquire():
    assert _found(mp(_once_store, _once_load), "lkmm", stale_data)
    assert _found(mp(_release_store, _once_load), "lkmm", stale_data)
    assert _found(mp(_once_store, _acquire_load), "lkmm", stale_data)
    assert not _found(mp(_release_store, _acquire_load), "lkmm", stale_data)
    assert not _found(mp(_wmb_store, _rmb_load), "lkmm", stale_data)
    assert _found(mp(_wmb_store, _once_load), "lkmm", stale_data)
    assert not _found(mp(_once_store, _once_load), "sc", stale_data)


def test_value_returning_atomics_are_full_barriers_others_are_not():
    def program(rmw):
        def prog(k, r):
            x, y = atomic.atomic_t("x", 0, k=k), atomic.atomic_t("y", 0, k=k)

            async def p0(k):
                await rmw(x)
                r["a"] = await atomic.atomic_read(y)

            async def p1(k):
                await rmw(y)
                r["b"] = await atomic.atomic_read(x)

            return p0, p1

        return prog

    assert _found(program(atomic.atomic_inc), "lkmm", both_zero)
    assert not _found(program(atomic.atomic_inc_return), "lkmm", both_zero)


def test_bitops_ordering():
    def program(op):
        def prog(k, r):
            x, y = atomic.bitmap("x", 0, k=k), atomic.bitmap("y", 0, k=k)

            async def p0(k):
                await op(0, x)
                r["a"] = int(await atomic.test_bit(0, y))

            async def p1(k):
                await op(0, y)
                r["b"] = int(await atomic.test_bit(0, x))

            return p0, p1

        return prog

    assert _found(program(atomic.set_bit), "lkmm", both_zero)
    assert not _found(program(atomic.test_and_set_bit), "lkmm", both_zero)


def test_clear_bit_unlock_is_a_release():
    def program(unlock):
        def prog(k, r):
            data, lock = Var("data"), atomic.bitmap("lock", 1, k=k)

            async def p0(k):
                await memory.WRITE_ONCE(k, data, 1)
                await unlock(0, lock)

            async def p1(k):
                r["flag"] = int(not await memory.smp_load_acquire(k, lock, "bits"))
                r["data"] = await memory.READ_ONCE(k, data)

            return p0, p1

        return prog

    assert _found(program(atomic.clear_bit), "lkmm", stale_data)
    assert not _found(program(atomic.clear_bit_unlock), "lkmm", stale_data)


def test_spinlocks_order_critical_sections():
    def prog(k, r):
        data, flag = Var("data"), Var("flag")
        lock = spinlock_t("l")

        async def p0(k):
            await memory.WRITE_ONCE(k, data, 1)
            await spin_lock(k, lock)
            await memory.WRITE_ONCE(k, flag, 1)
            await spin_unlock(k, lock)

        async def p1(k):
            await spin_lock(k, lock)
            r["flag"] = await memory.READ_ONCE(k, flag)
            await spin_unlock(k, lock)
            r["data"] = await memory.READ_ONCE(k, data)

        return p0, p1

    assert not _found(prog, "lkmm", stale_data)


def test_a_stale_read_replays_and_is_shown_in_the_trace():
    build = _campaign(sb(_none), "lkmm", both_zero)
    res = explore(build, make_strategy("dfs", preemption_bound=None), 20_000, max_steps=2_000)
    choices = res.findings[0].choices
    first, _, _ = replay(build, choices, max_steps=2_000)
    again, _, _ = replay(build, choices, max_steps=2_000)
    lines = [s.what for s in first.trace]
    assert lines == [s.what for s in again.trace]
    assert any("(stale: CPU" in w and "not yet visible" in w for w in lines)


def test_quiesce_order_found_under_lkmm_clean_with_the_barrier_and_under_sc():
    from blkrace.scenarios.quiesce_order import SCENARIO

    def run(variant, n):
        v = SCENARIO.variants[variant]
        return explore(SCENARIO.builder(v), make_strategy("pct", 0), n, max_steps=SCENARIO.max_steps)

    assert run("buggy", 2000).kinds() == ["stall"]
    assert run("fixed", 500).findings == []
    assert run("buggy-sc", 500).findings == []
