"""stop_machine orders memory: a CPU that went offline has published what it stored.

Every CPU acknowledges each stop_machine state with a fully ordered RMW
(atomic_dec_and_test(&msdata->thread_ack)).  Under lkmm this is what makes
bf0beec0607d's drain see a tag taken on the hctx's other CPU before that CPU
went offline.  Without it (the acks relaxed), the model let the tag stay
invisible to the drain across the whole offline, and reported a lost
completion no kernel can have: the first lkmm run of hctx-drain did.

v5.8's kernel/smp.c orders it a second time: the dying CPU's
smpcfd_dying_cpu() flushes its call_single_queue with llist_del_all(), a
fully ordered xchg().  Only with both relaxed does the drain miss the tag.
"""

from __future__ import annotations

from dataclasses import replace

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.kernel import smp, stop_machine
from blkrace.kernel.memory import ONCE
from blkrace.scenarios.registry import SCENARIOS

HCTX = SCENARIOS["hctx-drain"]
# bf0beec0607d on a non-preemptible kernel (its preemption window closed),
# under the kernel's memory model.
FIXED_LKMM = replace(HCTX.variants["fixed"], preempt=False, memory_model="lkmm")


def _kinds(seed, schedules):
    return explore(HCTX.builder(FIXED_LKMM), make_strategy("pct", seed), schedules, max_steps=HCTX.max_steps).kinds()


def test_a_tag_taken_before_the_cpu_went_offline_is_seen_by_the_drain():
    for seed in (0, 1):
        assert _kinds(seed, 1000) == []


def test_with_relaxed_acks_the_dying_cpus_flush_still_orders_it(monkeypatch):
    monkeypatch.setattr(stop_machine, "MB", ONCE)
    assert _kinds(0, 1000) == []


def test_with_relaxed_acks_and_flush_the_drain_misses_it(monkeypatch):
    monkeypatch.setattr(stop_machine, "MB", ONCE)
    monkeypatch.setattr(smp, "LLIST_DEL_ALL_ORDER", ONCE)
    assert any("io_error" in _kinds(seed, 2000) for seed in (0, 1, 2))
