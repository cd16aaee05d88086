"""bf0beec0607d's INACTIVE flag against the tag allocator under the kernel's memory model.

The drain (blk_mq_hctx_notify_offline(): set_bit(INACTIVE), smp_mb__after_atomic(),
then the tag word) and the allocator (test_and_set_bit_lock(), an ACQUIRE, then
test_bit(INACTIVE)) form the store-buffering shape: under lkmm both can miss the
other (tests/litmus/hctx-inactive+acquire.litmus, herd7: Sometimes), and the
request is issued to a hctx whose interrupt is gone.  A full barrier in the
allocator closes it (hctx-inactive+acquire+mb: Never).
"""

from __future__ import annotations

from dataclasses import replace

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.registry import SCENARIOS

HCTX = SCENARIOS["hctx-drain"]


def _campaign(variant, seed, schedules, **changes):
    v = replace(HCTX.variants[variant], **changes)
    return explore(HCTX.builder(v), make_strategy("pct", seed), schedules, max_steps=HCTX.max_steps)


def test_under_lkmm_the_drain_and_the_allocator_miss_each_other():
    assert any("io_error" in _campaign("fixed-lkmm", seed, 2000).kinds() for seed in (0, 1, 2))


def test_a_full_barrier_in_the_allocator_closes_it():
    for seed in (0, 1):
        assert _campaign("fixed-lkmm-mb", seed, 1000).kinds() == []


def test_the_same_kernel_under_sc_is_clean():
    # The window is the memory model's: sequentially consistent, the same
    # non-preemptible kernel with the same patches shows nothing.
    for seed in (0, 1):
        assert _campaign("fixed-lkmm", seed, 1000, memory_model="sc").kinds() == []
