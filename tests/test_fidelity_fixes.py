"""The fidelity defects fixed against the kernel sources, each pinned by behaviour.

- blk_mq_hctx_notify_dead() has no guard of its own before bf0beec0607d: the
  first hctx to run takes the dead CPU's requests, whichever hctx they are for;
- v3.16's flush calls a callback before unlocking its csd; v4.0's order is
  8053871d0f7f's toggle;
- v5.8's null_timeout_rq() completes with the command's own status; the
  BLK_STS_TIMEOUT of de3510e52b0a (v5.12) is a toggle, and a real timeout is
  then never completed by the driver;
- 99dc264014d5 starts the freeze after nvme_tcp_start_io_queues().
"""

import pytest

from blkrace.block import blk_mq
from blkrace.block.blk_mq import blk_mq_init_cpuhp
from blkrace.block.blk_mq_tag import DRAIN_INACTIVE_HCTX
from blkrace.block.list import list_add_tail
from blkrace.block.types import request
from blkrace.drivers.null_blk import NULL_TIMEOUT_STATUS, null_add_dev
from blkrace.engine.campaign import explore, replay, run_once
from blkrace.engine.strategy import make_strategy
from blkrace.kernel.boot import boot
from blkrace.kernel.cpuhp import CPUHP_BLK_MQ_DEAD, cpuhp_invoke_callback
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.kernel.smp import (
    ASYNC_UNLOCK_FIRST,
    CSD_FLAG_LOCK,
    FLUSH_BEFORE_OFFLINE,
    call_single_data,
    smp_call_function_single_async,
)
from blkrace.scenarios.base import Variant
from blkrace.scenarios.registry import get


def _notify_dead_splice(patches, monkeypatch):
    """Put a request on CPU 0's software queue, run the CPUHP_BLK_MQ_DEAD
    teardown for CPU 0 as cpuhp does (every hctx instance, newest first) and
    say which hctx->dispatch got it and what was left of hctx1's ctx_map."""
    seen = {}

    async def no_run(hctx, async_):
        seen.setdefault("runs", []).append(hctx.name)

    monkeypatch.setattr(blk_mq, "blk_mq_run_hw_queue", no_run)

    def build(ex):
        k = boot(ex, nr_cpus=4, patches=patches)
        blk_mq_init_cpuhp(k)
        nb = null_add_dev(k, nr_hw_queues=2, hw_queue_depth=2, managed_irqs=False)
        q = nb.q
        hctx0, hctx1 = q.queue_hw_ctx
        ctx0 = q.queue_ctx[0]
        ctx2 = q.queue_ctx[2]  # index_hw 0 in hctx1, like ctx0 in hctx0

        async def control(k):
            rq = request("rqX", q)
            rq.mq_ctx, rq.mq_hctx = ctx0, hctx0
            await list_add_tail(rq, ctx0.rq_list)
            hctx0.ctx_map.bits |= 1 << ctx0.index_hw
            hctx1.ctx_map.bits |= 1 << ctx2.index_hw  # CPU 2 has work pending on hctx1
            await cpuhp_invoke_callback(k, 0, CPUHP_BLK_MQ_DEAD, False)
            seen["on"] = [h.name for h in (hctx0, hctx1) if rq in h.dispatch.items]
            seen["hctx1_map"] = hctx1.ctx_map.bits

        task_run_on_cpu(k, control, "control", 1)

    res, _ = run_once(build, make_strategy("pct", 0), 0, max_steps=5000)
    assert res.violations == []
    return seen


def test_notify_dead_without_bf0beec0607d_splices_onto_the_first_hctx_to_run(monkeypatch):
    # Instances run newest first: hctx1's callback sees CPU 0's requests first.
    seen = _notify_dead_splice((), monkeypatch)
    assert seen["on"] == ["hctx1"]
    # ... and clears CPU 0's ctx bit in hctx1's map: CPU 2's pending bit.
    assert seen["hctx1_map"] == 0


def test_notify_dead_with_bf0beec0607d_splices_onto_the_cpus_own_hctx(monkeypatch):
    seen = _notify_dead_splice({DRAIN_INACTIVE_HCTX.name}, monkeypatch)
    assert seen["on"] == ["hctx0"]
    assert seen["hctx1_map"] == 1


def _csd_locked_during_call(patches, smp="v3.16"):
    seen = []

    def build(ex):
        k = boot(ex, nr_cpus=2, patches=patches, hotplug=False, smp=smp)

        async def func(k, csd):
            seen.append(bool(csd.flags & CSD_FLAG_LOCK))

        csd = call_single_data("csd", func)
        csd.info = csd

        async def sender(k):
            await smp_call_function_single_async(k, 1, csd)

        task_run_on_cpu(k, sender, "sender", 0)

    res, _ = run_once(build, make_strategy("pct", 0), 0, max_steps=5000)
    assert res.violations == []
    return seen


def test_v3_16_flush_calls_then_unlocks():
    assert _csd_locked_during_call({FLUSH_BEFORE_OFFLINE.name}) == [True]
    assert _csd_locked_during_call(()) == [True]  # the v3.15 handler, likewise


def test_8053871d0f7f_unlocks_an_async_csd_before_its_call():
    assert _csd_locked_during_call({FLUSH_BEFORE_OFFLINE.name, ASYNC_UNLOCK_FIRST.name}) == [False]


def test_a_v5_8_boot_has_v5_8s_smp_c():
    assert _csd_locked_during_call((), smp="v5.8") == [False]
    with pytest.raises(ValueError, match="unknown kernel/smp.c baseline 'v4.0'"):
        _csd_locked_during_call((), smp="v4.0")


DRAIN = get("hctx-drain")


def test_v5_8_null_blk_timeout_completes_with_the_commands_status():
    build = DRAIN.builder(DRAIN.variants["buggy"])
    found = explore(build, make_strategy("pct", 0), 500, stop_on_first=True, max_steps=DRAIN.max_steps)
    assert found.kinds() == ["io_error"]
    v = found.findings[0].violation
    assert v.origin == "io_error:timeout"
    assert "timed out after 30 s" in v.message


def test_de3510e52b0a_leaves_a_real_timeout_uncompleted():
    variant = Variant("buggy+de3510e52b0a", frozenset({NULL_TIMEOUT_STATUS.name}), frozenset(), "")
    build = DRAIN.builder(variant)
    found = explore(build, make_strategy("pct", 0), 500, stop_on_first=False, max_steps=DRAIN.max_steps)
    # The reader waits forever: hung after 120 s while the machine still
    # moves, a stall where nothing can.
    assert set(found.kinds()) <= {"stall", "hung_task"}
    assert any("in flight at the device" in f.violation.message for f in found.findings)
    assert not any(f.violation.kind == "io_error" for f in found.findings)


NVME = get("nvme-mpath-freeze")


def test_99dc264014d5_freezes_after_starting_the_io_queues():
    build = NVME.builder(NVME.variants["fixed"])
    strategy = make_strategy("pct", 0)
    for i in range(50):
        res, _ = run_once(build, strategy, i, max_steps=NVME.max_steps, traced=True)
        order = []
        for t in res.trace:
            names = [f.function for f in t.stack]
            if "nvme_tcp_configure_io_queues" not in names:
                continue
            if "nvme_tcp_start_io_queues" in names:
                order.append("start_io_queues")
            elif "nvme_start_freeze" in names:
                order.append("start_freeze")
        if order:
            assert order.index("start_io_queues") < order.index("start_freeze")
            return
    raise AssertionError("no reconnect configured the I/O queues in 50 runs")


def test_replay_still_exact_for_the_buggy_drain():
    build = DRAIN.builder(DRAIN.variants["buggy"])
    found = explore(build, make_strategy("pct", 0), 500, stop_on_first=True, max_steps=DRAIN.max_steps)
    a, _, _ = replay(build, found.findings[0].choices, max_steps=DRAIN.max_steps)
    b, _, _ = replay(build, found.findings[0].choices, max_steps=DRAIN.max_steps)
    assert [t.what for t in a.trace] == [t.what for t in b.trace]


def _teardown_events(patches):
    build = DRAIN.builder(Variant("x", frozenset(patches), frozenset(), ""))
    res, _ = run_once(build, make_strategy("pct", 0), 0, max_steps=DRAIN.max_steps, traced=True)
    return [t.what for t in res.trace if "teardown" in t.what]


def test_sched_wait_empty_is_v5_11_and_a_toggle():
    from blkrace.kernel.cpuhp import SCHED_WAIT_EMPTY

    without = _teardown_events({DRAIN_INACTIVE_HCTX.name})
    with_it = _teardown_events({DRAIN_INACTIVE_HCTX.name, SCHED_WAIT_EMPTY.name})
    assert any("CPUHP_AP_SCHED_STARTING" in w for w in without)
    assert not any("CPUHP_AP_SCHED_WAIT_EMPTY" in w for w in without)
    assert any("CPUHP_AP_SCHED_WAIT_EMPTY" in w for w in with_it)
