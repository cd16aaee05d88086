"""The kernel's barrier pairings, marked for the ``lkmm`` memory model: each
one's failure is found by the explorer when the kernel's barrier is taken
out (monkeypatched away), and not found with it; under ``sc`` neither.

Each shape runs the modelled kernel functions themselves on two CPUs; the
litmus test of each pairing is in tests/litmus (its verdict from herd7).
"""

from blkrace.block import sbitmap
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.kernel import memory
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


# ----------------------------------------------------------------- percpu_ref


def percpu_ref_build(model):
    """A ref in atomic mode whose per-CPU counter on CPU1 still holds an old
    count (it was folded into the atomic count at the last switch): CPU0
    switches back to per-CPU mode (zeroing the counters, then releasing the
    mode), CPU1 takes a reference.  The ref must count two references."""
    from blkrace.engine import Violation
    from blkrace.kernel.locking import percpu_ref as pr

    def build(ex):
        ex.shared["memory_model"] = model
        k = boot(ex, nr_cpus=2, hotplug=False)
        ref = pr.percpu_ref(k, "ref", flags=pr.PERCPU_REF_INIT_ATOMIC)
        ref.percpu_count[1] = ref.cpu_cells[1].value = 5
        done = []

        async def switcher(k):
            await pr.percpu_ref_switch_to_percpu(ref)
            done.append(0)

        async def getter(k):
            await pr.percpu_ref_get(ref)
            done.append(1)

        task_run_on_cpu(k, switcher, "switcher", 0)
        task_run_on_cpu(k, getter, "getter", 1)

        def check(ex):
            if len(done) == 2:
                atomic = ref.count - (0 if ref.flags & pr.REF_ATOMIC else pr.PERCPU_COUNT_BIAS)
                total = atomic + sum(ref.percpu_count)
                if total != 2:
                    yield Violation("bug", f"{ref.name} counts {total} references, not 2", origin="weak")

        ex.checkers.append(check)

    return build


def test_percpu_ref_switch_to_percpu_clean_with_release_and_dependency():
    res = _explore(percpu_ref_build("lkmm"), _dfs(), 200_000)
    assert res.exhausted and res.findings == []
    assert _explore(percpu_ref_build("sc"), _dfs(), 200_000).findings == []


def test_percpu_ref_switch_to_percpu_without_smp_store_release_miscounts(monkeypatch):
    from blkrace.kernel.locking import percpu_ref as pr

    monkeypatch.setattr(pr, "smp_store_release", memory.WRITE_ONCE)
    assert _explore(percpu_ref_build("lkmm"), _dfs(), 200_000).kinds() == ["bug"]


def test_percpu_ref_get_without_the_address_dependency_miscounts(monkeypatch):
    from blkrace.kernel.locking import percpu_ref as pr

    async def no_dep(k, obj, field="value"):
        return (await memory.mm_load_dep(k, obj, field))[0], None

    monkeypatch.setattr(pr, "mm_load_dep", no_dep)
    assert _explore(percpu_ref_build("lkmm"), _dfs(), 200_000).kinds() == ["bug"]


# ------------------------------------------------------------------ smp.c


class _Var:
    def __init__(self, name):
        self.name = name
        self.value = 0


def ipi_build(model):
    """CPU0 stores, then smp_call_function_single_async() to CPU1; the callback,
    in CPU1's IPI handler, must see the store (llist_add()'s cmpxchg and
    llist_del_all()'s xchg are fully ordered)."""
    from blkrace.engine import Violation
    from blkrace.kernel import smp

    def build(ex):
        ex.shared["memory_model"] = model
        # v3.16's smp.c, whose pairing these tests weaken: under v5.8's
        # (8053871d0f7f) csd_unlock()'s smp_mb() comes before the callback.
        k = boot(ex, nr_cpus=2, hotplug=False, smp="v3.16")
        data = _Var("data")
        seen = []

        async def callback(k, info):
            seen.append(await memory.READ_ONCE(k, data))

        async def sender(k):
            await memory.WRITE_ONCE(k, data, 1)
            await smp.smp_call_function_single_async(k, 1, smp.call_single_data("csd", callback))

        task_run_on_cpu(k, sender, "sender", 0)

        def check(ex):
            if seen == [0]:
                yield Violation("bug", "the IPI callback did not see the sender's store", origin="weak")

        ex.checkers.append(check)

    return build


def test_ipi_callback_sees_what_the_sender_stored():
    res = _explore(ipi_build("lkmm"), _dfs(), 200_000)
    assert res.exhausted and res.findings == []


def test_ipi_callback_with_a_relaxed_llist_add_still_ordered_by_csd_lock(monkeypatch):
    # v3.16's csd_lock() ends with smp_mb(): it orders the sender's store too.
    from blkrace.kernel import smp

    monkeypatch.setattr(smp, "LLIST_ADD_ORDER", memory.ONCE)
    res = _explore(ipi_build("lkmm"), _dfs(), 200_000)
    assert res.exhausted and res.findings == []


def test_ipi_callback_reads_stale_without_the_senders_barriers(monkeypatch):
    from blkrace.kernel import smp

    monkeypatch.setattr(smp, "LLIST_ADD_ORDER", memory.ONCE)
    monkeypatch.setattr(smp, "smp_mb", _no_fence)
    assert _explore(ipi_build("lkmm"), _dfs(), 200_000).kinds() == ["bug"]
    assert _explore(ipi_build("sc"), _dfs(), 200_000).findings == []


def test_ipi_callback_reads_stale_with_a_relaxed_llist_del_all(monkeypatch):
    from blkrace.kernel import smp

    monkeypatch.setattr(smp, "LLIST_DEL_ALL_ORDER", memory.ONCE)
    assert _explore(ipi_build("lkmm"), _dfs(), 200_000).kinds() == ["bug"]


# ------------------------------------------------------------------- SCSI


def scsi_budget_build(model, state):
    """queue_depth 1, one command in flight (its driver tag held).  CPU0: a
    request goes on hctx->dispatch, then the dispatcher asks for the budget
    (scsi_mq_get_budget(), denied unless the command is gone).  CPU1: the
    command completes: scsi_device_unbusy(), the tag freed (blk_mq_put_tag()),
    then blk_mq_run_hw_queues()'s look for pending work
    (blk_mq_hctx_has_pending()).  Stranded: the budget denied, no rescue
    rerun, and the completion sees nothing pending."""
    from blkrace.block import blk_mq
    from blkrace.block.list import list_add_tail
    from blkrace.drivers import scsi
    from blkrace.engine import Violation
    from blkrace.kernel.locking.spinlock import spin_lock, spin_unlock

    def build(ex):
        ex.shared["memory_model"] = model
        k = boot(ex, nr_cpus=2, hotplug=False)
        sdev = scsi.scsi_add_device(k, nr_hw_queues=1, queue_depth=1)
        q = sdev.request_queue
        hctx = q.queue_hw_ctx[0]
        sdev.device_busy.counter = 1
        sdev.host.host_busy.counter = 1
        hctx.tags.bitmap_tags.map = 1  # the command's driver tag
        out = state["out"] = {}

        async def dispatcher(k):
            await spin_lock(k, hctx.lock)
            await list_add_tail("rq", hctx.dispatch)
            await spin_unlock(k, hctx.lock)
            out["budget"] = await scsi.scsi_mq_get_budget(hctx)

        async def completion(k):
            await scsi.scsi_device_unbusy(sdev, None)
            await blk_mq.blk_mq_put_tag(hctx.tags, q.queue_ctx[1], 0)
            out["pending"] = await blk_mq.blk_mq_hctx_has_pending(hctx)

        task_run_on_cpu(k, dispatcher, "dispatcher", 0)
        task_run_on_cpu(k, completion, "completion", 1)

        def check(ex):
            if "pending" in out and out.get("budget") is False and "rerun" not in out and not out["pending"]:
                yield Violation("stall", "the request is stranded on hctx->dispatch", origin="weak")

        ex.checkers.append(check)

    return build


def _scsi(monkeypatch, model):
    from blkrace.block import blk_mq

    state = {}

    async def delay_run(hctx, msecs):  # the rescue's rerun: recorded, not run
        state["out"]["rerun"] = msecs

    monkeypatch.setattr(blk_mq, "blk_mq_delay_run_hw_queue", delay_run)
    return _explore(scsi_budget_build(model, state), _dfs(), 200_000)


def test_scsi_budget_denial_and_completion_clean_with_sbitmap_queue_clear_barrier(monkeypatch):
    res = _scsi(monkeypatch, "lkmm")
    assert res.exhausted and res.findings == []


def test_scsi_budget_denial_strands_the_request_without_the_completions_barrier(monkeypatch):
    monkeypatch.setattr(sbitmap, "smp_mb__before_atomic", _no_fence)
    monkeypatch.setattr(sbitmap, "smp_mb__after_atomic", _no_fence)
    assert _scsi(monkeypatch, "lkmm").kinds() == ["stall"]
    assert _scsi(monkeypatch, "sc").findings == []


# ------------------------------------------------------------------- RCU


def rcu_mp_build(model):
    """RCU's guarantee (the shape of the kernel's RCU+sync+read litmus test, with
    call_rcu()): a reader that sees the callback's store sees the store before
    call_rcu().  Either the grace period waits for the reader, or the reader
    began after the grace period started and sees what was stored before it
    (percpu_ref's switch to atomic mode relies on it)."""
    from blkrace.engine import Violation
    from blkrace.kernel.locking.rcu import call_rcu, rcu_read_lock, rcu_read_unlock

    def build(ex):
        ex.shared["memory_model"] = model
        k = boot(ex, nr_cpus=2, hotplug=False)
        x, y = _Var("x"), _Var("y")
        r = {}

        async def callback(k):
            await memory.WRITE_ONCE(k, y, 1)

        async def updater(k):
            await memory.WRITE_ONCE(k, x, 1)
            call_rcu(k, callback)

        async def reader(k):
            await memory.READ_ONCE(k, _Var("z"))  # a step first: the section may begin after call_rcu()
            rcu_read_lock(k)
            r["y"] = await memory.READ_ONCE(k, y)
            r["x"] = await memory.READ_ONCE(k, x)
            rcu_read_unlock(k)

        task_run_on_cpu(k, updater, "updater", 0)
        task_run_on_cpu(k, reader, "reader", 1)

        def check(ex):
            if r.get("y") == 1 and r.get("x") == 0:
                yield Violation("bug", "the reader saw y=1 but x=0", origin="weak")

        ex.checkers.append(check)

    return build


def test_rcu_reader_after_a_grace_period_start_sees_the_stores_before_it():
    res = _explore(rcu_mp_build("lkmm"), _dfs(), 200_000)
    assert res.exhausted and res.findings == []


def test_rcu_reader_without_the_grace_period_ordering_reads_stale(monkeypatch):
    monkeypatch.setattr(memory.MemoryState, "read_lock", lambda self, cpu, domain: None)
    assert _explore(rcu_mp_build("lkmm"), _dfs(), 200_000).kinds() == ["bug"]


# --------------------------------------------------------------- workqueue


def workqueue_build(model, seen):
    """CPU0 stores, then queue_work_on() to CPU1's pool; the work function must
    see the store: the PENDING bit's full ordering and pool->lock's release and
    acquire carry it (the workqueue's documented guarantee)."""
    from blkrace.kernel.workqueue import INIT_WORK, queue_work_on

    def build(ex):
        ex.shared["memory_model"] = model
        k = boot(ex, nr_cpus=2, hotplug=False)
        data = _Var("data")

        async def fn(k, work):
            seen.append(await memory.READ_ONCE(k, data))

        work = INIT_WORK(fn, "work")

        async def producer(k):
            await memory.WRITE_ONCE(k, data, 1)
            await queue_work_on(k, 1, k.system_wq, work)

        task_run_on_cpu(k, producer, "producer", 0)

    return build


def _stale_reads(model):
    seen = []
    res = explore(workqueue_build(model, seen), _dfs(), 20_000, stop_on_first=False, max_steps=3000)
    assert res.exhausted
    return set(seen)


def test_a_work_function_sees_the_stores_before_its_queue_work():
    assert _stale_reads("lkmm") == {1}


def test_without_the_pool_lock_ordering_and_pending_fences_a_work_function_reads_stale(monkeypatch):
    from blkrace.kernel import workqueue

    for name in ("spin_acquire_order", "spin_release_order"):
        monkeypatch.setattr(workqueue, name, lambda k, lock: None)
    for name in ("smp_mb", "smp_wmb"):
        monkeypatch.setattr(workqueue, name, _no_fence)
    assert _stale_reads("lkmm") == {0, 1}
    assert _stale_reads("sc") == {1}
