"""The kernel's barrier pairings, marked for the ``lkmm`` memory model: each
one's failure is found by the explorer when the kernel's barrier is taken
out (monkeypatched away), and not found with it; under ``sc`` neither.

Each shape runs the modelled kernel functions themselves on two CPUs; the
litmus test of each pairing is in tests/litmus (its verdict from herd7).
"""

from blkrace.block import sbitmap
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.kernel.boot import boot
from blkrace.kernel.locking import wait
from blkrace.kernel.locking.wait import schedule_entry
from blkrace.kernel.sched import task_run_on_cpu


def _no_fence(k):
    pass


def _explore(build, strategy, n):
    res = explore(build, strategy, n, stop_on_first=True, max_steps=3000)
    return res


def _dfs():
    return make_strategy("dfs", preemption_bound=None)


# ------------------------------------------------------------------ sbitmap


async def get_tag(k, sbq, ws):
    """blk_mq_get_tag()'s loop (block/blk-mq-tag.c, v5.8) without the queue run."""
    tag = await sbitmap.__sbitmap_queue_get(sbq)
    if tag != -1:
        return tag
    w = sbitmap.sbq_wait(f"{k.current.comm}:sbq_wait")
    while True:
        tag = await sbitmap.__sbitmap_queue_get(sbq)
        if tag != -1:
            break
        await sbitmap.sbitmap_prepare_to_wait(sbq, ws, w)
        tag = await sbitmap.__sbitmap_queue_get(sbq)
        if tag != -1:
            break
        await schedule_entry(k, w.wait, what="blk_mq_get_tag")
        await sbitmap.sbitmap_finish_wait(sbq, ws, w)
    await sbitmap.sbitmap_finish_wait(sbq, ws, w)
    return tag


def sbitmap_build(model):
    """One tag, held; one waiter in blk_mq_get_tag(), one free (sbitmap_queue_clear()).
    Left asleep with the tag free is the lost wake-up (a stall)."""

    def build(ex):
        ex.shared["memory_model"] = model
        k = boot(ex, nr_cpus=2, hotplug=False)
        sbq = sbitmap.sbitmap_queue("tags", 1, k)
        sbq.map = 1

        async def waiter(k):
            await get_tag(k, sbq, sbq.ws[0])

        async def holder(k):
            await sbitmap.sbitmap_queue_clear(sbq, 0, 1)

        task_run_on_cpu(k, waiter, "waiter", 0)
        task_run_on_cpu(k, holder, "holder", 1)

    return build


def test_sbitmap_clear_and_wait_clean_with_both_barriers():
    res = _explore(sbitmap_build("lkmm"), _dfs(), 200_000)
    assert res.exhausted and res.findings == []


def test_sbitmap_clear_without_smp_mb__after_atomic_loses_the_wake_up(monkeypatch):
    monkeypatch.setattr(sbitmap, "smp_mb__after_atomic", _no_fence)
    assert _explore(sbitmap_build("lkmm"), _dfs(), 200_000).kinds() == ["stall"]
    assert _explore(sbitmap_build("sc"), _dfs(), 200_000).findings == []


def test_sbitmap_waiter_without_set_current_state_barrier_loses_the_wake_up(monkeypatch):
    monkeypatch.setattr(wait, "smp_mb", _no_fence)
    assert _explore(sbitmap_build("lkmm"), _dfs(), 200_000).kinds() == ["stall"]
