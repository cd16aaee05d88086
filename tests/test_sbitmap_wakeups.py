"""sbitmap's batched wake-ups at the kernel's granularity: the lost wake-up of v5.8 and its fixes.

Tag holders free their bits while waiters sleep, as blk_mq_get_tag() and
blk_mq_put_tag() drive lib/sbitmap.c.  Each waiter has its own wait index
(as hctxs of two request queues sharing a tag set do), so it queues on the
wait queue its index points at.  Every waiter must end up with a tag: one
left asleep while a tag is free is a lost wake-up (the engine's stall).

- v5.8: two frees pick the same wait queue in sbq_wake_ptr(); the first wakes
  its waiter, the second counts against the emptied queue and wakes nobody
  (the window 040b83fcecfb describes as race 2).
- 040b83fcecfb: the second free sees the emptied queue and retries on the
  other one.  What is left, in that form and with 48c033314f37 on top: a
  free that picks a queue whose only entry belongs to a waiter that already
  got its tag (it is TASK_RUNNING, between its retry and finish_wait())
  spends its wake-up on nobody.
"""

from blkrace.block import sbitmap
from blkrace.block.sbitmap import SBQ_RESET_WAIT_CNT, SBQ_WAKE_BEFORE_RESET
from blkrace.engine.campaign import explore, replay
from blkrace.engine.strategy import make_strategy
from blkrace.kernel.atomic import atomic_t
from blkrace.kernel.boot import boot
from blkrace.kernel.locking.wait import schedule_entry
from blkrace.kernel.sched import task_run_on_cpu

BOTH = {SBQ_WAKE_BEFORE_RESET.name, SBQ_RESET_WAIT_CNT.name}


async def get_tag(k, sbq, wait_index):
    """blk_mq_get_tag()'s loop (block/blk-mq-tag.c, v5.8) without the queue run."""
    tag = await sbitmap.__sbitmap_queue_get(sbq)
    if tag != -1:
        return tag
    wait = sbitmap.sbq_wait(f"{k.current.comm}:sbq_wait")
    ws = await sbitmap.sbq_wait_ptr(sbq, wait_index)
    while True:
        tag = await sbitmap.__sbitmap_queue_get(sbq)
        if tag != -1:
            break
        await sbitmap.sbitmap_prepare_to_wait(sbq, ws, wait)
        tag = await sbitmap.__sbitmap_queue_get(sbq)
        if tag != -1:
            break
        await schedule_entry(k, wait.wait, what="blk_mq_get_tag")
        await sbitmap.sbitmap_finish_wait(sbq, ws, wait)
        ws = await sbitmap.sbq_wait_ptr(sbq, wait_index)
    await sbitmap.sbitmap_finish_wait(sbq, ws, wait)
    return tag


def _build(patches, waiters):
    """``waiters``: the wait index each waiter starts from; as many holders as waiters."""

    def build(ex):
        k = boot(ex, nr_cpus=len(waiters) * 2, patches=patches, hotplug=False)
        sbq = sbitmap.sbitmap_queue("tags", len(waiters), k)
        sbq.map = (1 << len(waiters)) - 1  # every tag in flight
        got = []

        async def waiter(k, index):
            got.append(await get_tag(k, sbq, atomic_t(f"{k.current.comm}.wait_index", index)))

        async def holder(k, tag):
            await sbitmap.sbitmap_queue_clear(sbq, tag, 0)  # blk_mq_put_tag()

        for i, index in enumerate(waiters):
            task_run_on_cpu(k, waiter, f"waiter{i}", i, index)
        for tag in range(len(waiters)):
            task_run_on_cpu(k, holder, f"holder{tag}", len(waiters) + tag, tag)

    return build


def _explore(patches, waiters, schedules, strategy="pct", **kw):
    return explore(
        _build(patches, waiters), make_strategy(strategy, seed=0, **kw), schedules, stop_on_first=True, max_steps=3000
    )


def test_v5_8_two_frees_on_one_wait_queue_lose_a_wake_up():
    found = _explore((), (0, 1), 20_000, strategy="dfs", preemption_bound=2)
    assert found.kinds() == ["stall"], found.kinds()
    finding = found.findings[0]
    # The run goes through the window: waiter1 is left asleep on ws[1] while
    # both frees were counted against ws[0], whose only waiter was woken once.
    assert finding.violation.message.endswith("on tags.ws[1].wait")
    result, _, _ = replay(_build((), (0, 1)), finding.choices, max_steps=3000)
    counted = {s.task for s in result.trace if s.kind == "step" and s.what == "W tags.ws[0].wait_cnt"}
    assert counted == {"holder0", "holder1"}


def _spent_on_a_waiter_with_its_tag(patches):
    """DFS finds a stall; its trace shows the wake-up spent on waiter0, queued
    but already TASK_RUNNING (in finish_wait(), between its lockless look at
    the list and the dequeue), while waiter1 sleeps on the other queue."""
    found = _explore(patches, (0, 1), 20_000, strategy="dfs", preemption_bound=2)
    assert found.kinds() == ["stall"], found.kinds()
    result, _, _ = replay(_build(patches, (0, 1)), found.findings[0].choices, max_steps=3000)
    steps = [(s.task, s.function, s.what) for s in result.trace if s.kind == "step"]
    looked = steps.index(("waiter0", "finish_wait", "R tags.ws[0].wait"))
    woke = next(i for i, s in enumerate(steps) if s[1] == "wake_up_nr" and s[2] == "S tags.ws[0].wait")
    dequeued = steps.index(("waiter0", "finish_wait", "S tags.ws[0].wait"))
    assert looked < woke < dequeued
    assert found.findings[0].violation.message.endswith("on tags.ws[1].wait")


def test_040b83fcecfb_closes_that_window_but_a_wake_up_can_be_spent_on_a_waiter_that_has_its_tag():
    # The v5.8 window is closed: PCT, which finds it at once without the patch, finds nothing.
    assert _explore({SBQ_WAKE_BEFORE_RESET.name}, (0, 1), 5_000).findings == []
    # wake_up_nr() still wakes nobody when its only queued waiter is already running;
    # 26edb30dd1c0 ("sbitmap: Try each queue to wake up at least one waiter", v6.2) is
    # the upstream answer, not modelled here.
    _spent_on_a_waiter_with_its_tag({SBQ_WAKE_BEFORE_RESET.name})


def test_48c033314f37_leaves_the_spent_wake_up_as_it_was():
    _spent_on_a_waiter_with_its_tag(BOTH)
