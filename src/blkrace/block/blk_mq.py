"""block/blk-mq.c: queue setup, request allocation, running queues, dispatch, completion.

Pinned to the tree right after a0823421a4d7 (for-5.8/block, April 2020);
see docs/research/v5.7-dispatch.md for the source of each function.
Left out everywhere: merging, flush/FUA sequencing, polling, I/O accounting,
rq_qos, the request timeout (comes with the hotplug work), and
blk_mq_update_nr_hw_queues (comes with the freeze work).
"""

from __future__ import annotations

from functools import partial

from blkrace.block import blk_core, blk_mq_sched
from blkrace.block.blk_mq_tag import (
    BLK_MQ_S_INACTIVE,
    DRAIN_INACTIVE_HCTX,
    blk_mq_all_tag_iter,
    blk_mq_get_tag,
    blk_mq_init_tags,
    blk_mq_put_tag,
    blk_mq_tag_busy,
    bt_wait_ptr,
)
from blkrace.block.blk_timeout import blk_add_timer, blk_queue_init_timeout
from blkrace.block.list import (
    list_add,
    list_add_tail,
    list_del_init,
    list_empty_careful,
    list_head,
    list_splice_tail_init,
)
from blkrace.block.types import (
    BLK_MQ_CPU_WORK_BATCH,
    BLK_MQ_F_BLOCKING,
    BLK_MQ_F_STACKING,
    BLK_MQ_F_TAG_SHARED,
    BLK_MQ_NO_TAG,
    BLK_MQ_REQ_INTERNAL,
    BLK_MQ_REQ_NOWAIT,
    BLK_MQ_RESOURCE_DELAY,
    BLK_MQ_S_STOPPED,
    BLK_STS_AGAIN,
    BLK_STS_DEV_RESOURCE,
    BLK_STS_IOERR,
    BLK_STS_OK,
    BLK_STS_RESOURCE,
    MQ_RQ_COMPLETE,
    MQ_RQ_IDLE,
    MQ_RQ_IN_FLIGHT,
    QUEUE_FLAG_QUIESCED,
    QUEUE_FLAG_SAME_COMP,
    QUEUE_FLAG_SAME_FORCE,
    REQ_NOWAIT,
    RQF_ELVPRIV,
    blk_mq_ctx,
    blk_mq_hw_ctx,
    request,
    request_queue,
)
from blkrace.engine import READ, WRITE, access
from blkrace.kernel.atomic import atomic_dec, atomic_inc, clear_bit, set_bit, test_bit
from blkrace.kernel.bug import WARN_ON, WARN_ON_ONCE  # noqa: F401
from blkrace.kernel.cpuhp import CPUHP_AP_BLK_MQ_ONLINE, CPUHP_BLK_MQ_DEAD, cpuhp_state_add_instance_nocalls
from blkrace.kernel.locking.lockdep import lock_acquire, lock_release
from blkrace.kernel.locking.mutex import mutex, mutex_lock, mutex_unlock
from blkrace.kernel.locking.percpu_ref import (
    PERCPU_REF_INIT_ATOMIC,
    percpu_ref,
    percpu_ref_is_zero,
    percpu_ref_kill,
    percpu_ref_put,
    percpu_ref_resurrect,
    percpu_ref_switch_to_percpu_at_init,
    percpu_ref_tryget,
    percpu_ref_tryget_live,
)
from blkrace.kernel.locking.rcu import rcu_read_lock, rcu_read_unlock, synchronize_rcu
from blkrace.kernel.locking.spinlock import (
    spin_lock,
    spin_lock_irqsave,
    spin_unlock,
    spin_unlock_irqrestore,
    spinlock_t,
)
from blkrace.kernel.locking.srcu import srcu_read_lock, srcu_read_unlock, synchronize_srcu
from blkrace.kernel.locking.wait import (
    __add_wait_queue,
    list_del_init_entry,
    list_empty_careful_entry,
    wait_event,
    wait_queue_entry,
    wait_queue_head_t,
    wake_up,
    wq_head_lock_irq,
    wq_head_unlock_irq,
)
from blkrace.kernel.machine import (
    cpu_online,
    cpu_online_nocheck,
    cpumask,
    cpumask_first_and,
    cpumask_next_and,
    cpumask_test_cpu,
    smp_processor_id,
)
from blkrace.kernel.memory import ONCE, mm_load, smp_mb, smp_mb__after_atomic
from blkrace.kernel.patch import Patch
from blkrace.kernel.sched import in_interrupt, msleep, preempt_disable, preempt_enable
from blkrace.kernel.smp import call_single_data, smp_call_function_single_async
from blkrace.kernel.timer import NSEC_PER_JIFFY, msecs_to_jiffies
from blkrace.kernel.workqueue import INIT_DELAYED_WORK, WORK_CPU_UNBOUND, mod_delayed_work_on

BLK_MQ_DISPATCH_BUSY_EWMA_WEIGHT = 8
BLK_MQ_DISPATCH_BUSY_EWMA_FACTOR = 4


class blk_mq_alloc_data:
    """struct blk_mq_alloc_data, block/blk-mq.h."""

    __slots__ = ("q", "flags", "cmd_flags", "ctx", "hctx")

    def __init__(self, q, flags=0, cmd_flags=0):
        self.q = q
        self.flags = flags
        self.cmd_flags = cmd_flags
        self.ctx = None
        self.hctx = None


# ------------------------------------------------------------------- setup


# blk_mq_init_queue(), block/blk-mq.c
def blk_mq_init_queue(k, set_, name, cpu_map):
    """blk_mq_init_queue() + blk_mq_realloc_hw_ctxs() + blk_mq_map_swqueue().

    ``cpu_map[cpu]`` is the hctx index serving ``cpu`` (the queue map that
    blk_mq_map_queues() or the driver's managed-IRQ affinity would build).
    """
    q = request_queue(k, name, set_)
    for i in range(set_.nr_hw_queues):
        cpus = [cpu for cpu in range(k.nr_cpu_ids) if cpu_map[cpu] == i]
        hctx = blk_mq_hw_ctx(q, i, cpus, set_.flags)
        hctx.tags = set_.tags[i]
        # blk_mq_alloc_hctx() / blk_mq_init_hctx(): the dispatch wait entry and its lock
        hctx.dispatch_wait = wait_queue_entry(
            f"{name}.{hctx.name}->dispatch_wait", func=partial(blk_mq_dispatch_wake, hctx), k=k
        )
        hctx.dispatch_wait_lock = spinlock_t(f"{name}.{hctx.name}->dispatch_wait_lock", key="&hctx->dispatch_wait_lock")
        hctx.run_work = INIT_DELAYED_WORK(blk_mq_run_work_fn, f"{hctx.name}->run_work", hctx)
        hctx.next_cpu = cpumask_first_and(hctx.cpumask, k.cpu_online_mask, k.nr_cpu_ids)
        q.queue_hw_ctx.append(hctx)
    for cpu in range(k.nr_cpu_ids):
        ctx = blk_mq_ctx(q, cpu)
        hctx = q.queue_hw_ctx[cpu_map[cpu]]
        ctx.hctx = hctx
        ctx.index_hw = hctx.nr_ctx
        hctx.ctxs.append(ctx)
        hctx.nr_ctx += 1
        q.queue_ctx.append(ctx)
    for hctx in q.queue_hw_ctx:
        hctx.dispatch_from = hctx.ctxs[0] if hctx.ctxs else None
        blk_mq_init_hctx(q, set_, hctx)
    q.queue_flags.bits |= 1 << QUEUE_FLAG_SAME_COMP  # QUEUE_FLAG_MQ_DEFAULT
    blk_queue_init_timeout(q)
    init_queue_usage(q)
    blk_mq_add_queue_tag_set(set_, q)
    for tags in set_.tags:
        tags.bitmap_tags.k = q.k  # the tag set's queues share one kernel
        for ws in tags.bitmap_tags.ws:
            # Tags held by requests stuck behind a quiesced queue come back
            # only when whoever quiesced it unquiesces: that is whom a tag
            # waiter waits for.
            ws.wait.holders = lambda set_=set_: [q.quiesce_owner for q in set_.queues if q.quiesce_owner]
    return q


# blk_mq_add_queue_tag_set(), block/blk-mq.c
def blk_mq_add_queue_tag_set(set_, q):
    """blk_mq_add_queue_tag_set(): a second queue on a tag set makes the set, and
    every hctx of its queues, BLK_MQ_F_TAG_SHARED (queue_set_hctx_shared()).
    Setup only, so tag_list_lock and the freeze around the update are left out."""
    if set_.queues and not set_.flags & BLK_MQ_F_TAG_SHARED:
        set_.flags |= BLK_MQ_F_TAG_SHARED
        for other in set_.queues:  # blk_mq_update_tag_set_depth(set, true)
            for hctx in other.queue_hw_ctx:
                hctx.flags |= BLK_MQ_F_TAG_SHARED
    if set_.flags & BLK_MQ_F_TAG_SHARED:
        for hctx in q.queue_hw_ctx:
            hctx.flags |= BLK_MQ_F_TAG_SHARED
    set_.queues.append(q)


# model: the q_usage_counter part of blk_alloc_queue() (block/blk-core.c)
def init_queue_usage(q):
    """blk_alloc_queue(): q_usage_counter and what freezing needs."""

    def blk_queue_usage_counter_release(ref):
        q.mq_freeze_wq.wq.wake_all()
        q.mq_freeze_drain_wq.wq.wake_all()

    # percpu_ref_init(.., PERCPU_REF_INIT_ATOMIC) in blk_alloc_queue(); per CPU
    # from blk_register_queue() on (the model's queues are all added disks).
    q.q_usage_counter = percpu_ref(
        q.k, f"{q.name}->q_usage_counter", blk_queue_usage_counter_release, PERCPU_REF_INIT_ATOMIC
    )
    percpu_ref_switch_to_percpu_at_init(q.q_usage_counter)
    q.mq_freeze_lock = mutex(f"{q.name}->mq_freeze_lock")
    q.mq_freeze_wq = wait_queue_head_t(
        f"{q.name}->mq_freeze_wq", holders=lambda: [q.freeze_owner] if q.freeze_owner else []
    )
    # The same mq_freeze_wq in the kernel; a separate queue here so that the
    # wait-for graph can tell "wait for the unfreeze" (the freezer holds it)
    # from "wait for the references to drain" (whoever keeps requests from
    # completing: the quiescer, if any).
    q.mq_freeze_drain_wq = wait_queue_head_t(
        f"{q.name}->mq_freeze_wq (drain)", holders=lambda: [q.quiesce_owner] if q.quiesce_owner else []
    )


# blk_mq_init_hctx(), block/blk-mq.c
def blk_mq_init_hctx(q, set_, hctx):
    """blk_mq_init_hctx(): register the hctx with the CPU hotplug states it needs."""
    k = q.k
    if getattr(k, "cpuhp_hp_states", None) is None:
        return  # a machine without CPU hotplug
    if k.patched(DRAIN_INACTIVE_HCTX) and not hctx.flags & BLK_MQ_F_STACKING:
        hctx.cpuhp_online = hctx
        cpuhp_state_add_instance_nocalls(k, CPUHP_AP_BLK_MQ_ONLINE, hctx)
    hctx.cpuhp_dead = hctx
    cpuhp_state_add_instance_nocalls(k, CPUHP_BLK_MQ_DEAD, hctx)


# blk_mq_alloc_tag_set(), block/blk-mq.c
def blk_mq_alloc_tag_set(set_, name="tags"):
    """blk_mq_alloc_tag_set(): driver tags and their static requests, per hw queue."""
    for i in range(set_.nr_hw_queues):
        tags = blk_mq_init_tags(f"{name}{i}", set_.queue_depth)
        tags.static_rqs = [None] * set_.queue_depth
        set_.tags.append(tags)
    return 0


# blk_mq_sched_alloc_tags(), block/blk-mq-sched.c
def blk_mq_alloc_sched_tags(q, nr_requests):
    """blk_mq_sched_alloc_tags(): per-hctx scheduler tags and static requests."""
    for hctx in q.queue_hw_ctx:
        tags = blk_mq_init_tags(f"{hctx.name}->sched_tags", nr_requests, q.k)
        tags.static_rqs = [request(f"{q.name}.rq{hctx.queue_num}.{i}", q) for i in range(nr_requests)]
        hctx.sched_tags = tags
    q.nr_requests = nr_requests


# -------------------------------------------------------------- small helpers


# blk_mq_get_ctx(), block/blk-mq.h
def blk_mq_get_ctx(q):
    """blk_mq_get_ctx(): this CPU's software queue."""
    return q.queue_ctx[smp_processor_id(q.k)]


# blk_mq_map_queue(), block/blk-mq.h
def blk_mq_map_queue(q, cmd_flags, ctx):
    """blk_mq_map_queue(): the hctx serving ``ctx`` (one map type in the model)."""
    return ctx.hctx


# blk_mq_hctx_stopped(), block/blk-mq.h
def blk_mq_hctx_stopped(hctx):
    """blk_mq_hctx_stopped(): STOPPED is only set by drivers that stop queues; none here."""
    return bool(hctx.state.bits >> BLK_MQ_S_STOPPED & 1)


QUIESCE_INSERT_RERUN = Patch(
    "blk-mq-quiesce-insert-rerun",
    "2003ee8a9aa1",
    "block: fix missing dispatching request when queue is started or unquiesced (Muchun Song, 2024; "
    "Fixes: d964f04a8fde)",
)


QUIESCE_ORDERING = Patch(
    "blk-mq-quiesce-ordering",
    "6bda857bcbb8",
    "block: fix ordering between checking QUEUE_FLAG_QUIESCED request adding (Muchun Song, 2024; Fixes: f4560ffe8cec)",
)

CONCURRENT_QUIESCE = Patch(
    "blk-mq-concurrent-quiesce",
    "e70feb8b3e68",
    "blk-mq: support concurrent queue quiesce/unquiesce (Ming Lei, 2021): quiesce_depth under q->queue_lock",
)


FREEZE_LOCKDEP = Patch(
    "block-freeze-lockdep",
    "f1be1788a32e",
    "block: model freeze & enter queue as lock for supporting lockdep (v6.13)",
)


# blk_queue_enter_annotate(), block/blk.h (v6.13)
def blk_queue_enter_annotate(k, lockdep_map):
    """rwsem_acquire_read() + rwsem_release() on the queue's lockdep map (v6.13,
    f1be1788a32e): entering is "taking the freeze for read" for an instant, so
    lockdep sees every lock held around an entry as ordered before the freeze.
    Nothing before f1be1788a32e (toggle ``block-freeze-lockdep``)."""
    if not k.patched(FREEZE_LOCKDEP):
        return
    lock_acquire(k, lockdep_map, read=1)
    lock_release(k, lockdep_map)


# blk_queue_quiesced(), include/linux/blkdev.h
def blk_queue_quiesced(q):
    return bool(q.queue_flags.bits >> QUEUE_FLAG_QUIESCED & 1)


# blk_queue_quiesced(), include/linux/blkdev.h
async def blk_queue_quiesced_lockless(q):
    """blk_queue_quiesced(q): test_bit(QUEUE_FLAG_QUIESCED, &q->queue_flags), a
    plain load that another CPU's blk_queue_flag_clear() races with (under
    ``lkmm`` it may read a value that CPU has already overwritten)."""
    return await test_bit(QUEUE_FLAG_QUIESCED, q.queue_flags)


# hctx_lock(), block/blk-mq.c
async def hctx_lock(hctx):
    """hctx_lock(): RCU, or SRCU for a BLK_MQ_F_BLOCKING hctx (whose ->queue_rq may sleep)."""
    if hctx.flags & BLK_MQ_F_BLOCKING:
        return await srcu_read_lock(hctx.queue.k, hctx.srcu)
    rcu_read_lock(hctx.queue.k)
    return None


# hctx_unlock(), block/blk-mq.c
async def hctx_unlock(hctx, srcu_idx):
    if hctx.flags & BLK_MQ_F_BLOCKING:
        await srcu_read_unlock(hctx.queue.k, hctx.srcu, srcu_idx)
    else:
        rcu_read_unlock(hctx.queue.k)


# blk_mq_update_dispatch_busy(), block/blk-mq.c
def blk_mq_update_dispatch_busy(hctx, busy):
    """blk_mq_update_dispatch_busy(): the EWMA that picks the none-scheduler dispatch path."""
    if hctx.queue.elevator is not None:
        return
    ewma = hctx.dispatch_busy
    if not ewma and not busy:
        return
    ewma *= BLK_MQ_DISPATCH_BUSY_EWMA_WEIGHT - 1
    if busy:
        ewma += 1 << BLK_MQ_DISPATCH_BUSY_EWMA_FACTOR
    ewma //= BLK_MQ_DISPATCH_BUSY_EWMA_WEIGHT
    hctx.dispatch_busy = ewma


# --------------------------------------------------------- request allocation


# blk_mq_rq_ctx_init(), block/blk-mq.c
async def blk_mq_rq_ctx_init(data, tag):
    """blk_mq_rq_ctx_init(): a sched tag with an elevator, else a driver tag."""
    tags = data.hctx.sched_tags if data.flags & BLK_MQ_REQ_INTERNAL else data.hctx.tags
    rq = tags.static_rqs[tag]
    if rq is None:
        rq = tags.static_rqs[tag] = request(f"{data.q.name}.rq{data.hctx.queue_num}.{tag}", data.q)
    # Plain stores into the request, which tag iterators read (blk_mq_has_request()
    # reads rq->mq_hctx): a step of their own after the tag allocation.
    await access(rq, WRITE)
    if data.flags & BLK_MQ_REQ_INTERNAL:
        rq.tag = BLK_MQ_NO_TAG
        rq.internal_tag = tag
    else:
        rq.tag = tag
        rq.internal_tag = BLK_MQ_NO_TAG
        data.hctx.tags.rqs[tag] = rq
    rq.mq_ctx = data.ctx
    rq.mq_hctx = data.hctx
    rq.rq_flags = 0
    rq.cmd_flags = data.cmd_flags
    rq.state = MQ_RQ_IDLE
    rq.bio = None
    rq.end_io = None
    rq.elv = None
    rq.status = BLK_STS_OK
    return rq


# Not upstream: the window bf0beec0607d leaves.  blk_mq_hctx_has_requests() counts
# a request only once rq->mq_hctx is set (blk_mq_has_request()), but
# blk_mq_get_tag() checks BLK_MQ_S_INACTIVE right after taking the tag, before
# blk_mq_rq_ctx_init() sets it.  A submitter preempted in between on the dying
# CPU is missed by the drain, and issues to the hctx after its interrupt is gone.
RECHECK_INACTIVE_AFTER_INIT = Patch(
    "blk-mq-recheck-inactive-after-init",
    "",
    "blk-mq: check BLK_MQ_S_INACTIVE again once the request is initialised (a proposal, not upstream)",
)


# model: the proposal above, in __blk_mq_alloc_request() (block/blk-mq.c)
async def blk_mq_alloc_raced_offline(data, rq):
    """After blk_mq_rq_ctx_init() and an smp_mb() (pairing with the one after
    set_bit(BLK_MQ_S_INACTIVE) in blk_mq_hctx_notify_offline()): either the
    drain sees rq->mq_hctx, or this sees INACTIVE and gives the request back."""
    smp_mb(data.q.k)
    if not await test_bit(BLK_MQ_S_INACTIVE, data.hctx.state):
        return False
    # rq->mq_hctx = NULL: the store the drain's blk_mq_has_request() reads,
    # declared on the request.
    await access(rq, WRITE)
    rq.mq_hctx = None
    if rq.tag != BLK_MQ_NO_TAG:
        data.hctx.tags.rqs[rq.tag] = None
        await blk_mq_put_tag(data.hctx.tags, data.ctx, rq.tag)
    if rq.internal_tag != BLK_MQ_NO_TAG:
        await blk_mq_put_tag(data.hctx.sched_tags, data.ctx, rq.internal_tag)
    return True


async def __blk_mq_alloc_request(q, bio, data):
    """__blk_mq_alloc_request(), block/blk-mq.c (v5.8; v5.7 called it blk_mq_get_request()).

    With bf0beec0607d, a waiting allocation that fails because its hctx went
    inactive sleeps 3 ms and retries: by then CPU hotplug has moved the task
    to an online CPU, hence another hctx.
    """
    k = q.k
    e = q.elevator
    data.q = q
    if data.cmd_flags & REQ_NOWAIT:
        data.flags |= BLK_MQ_REQ_NOWAIT
    if e is not None:
        data.flags |= BLK_MQ_REQ_INTERNAL
    while True:  # retry:
        data.ctx = blk_mq_get_ctx(q)
        data.hctx = blk_mq_map_queue(q, data.cmd_flags, data.ctx)
        if e is None:
            blk_mq_tag_busy(data.hctx)
        tag = await blk_mq_get_tag(data)
        if tag != BLK_MQ_NO_TAG:
            rq = await blk_mq_rq_ctx_init(data, tag)
            if not k.patched(RECHECK_INACTIVE_AFTER_INIT) or not await blk_mq_alloc_raced_offline(data, rq):
                break
        if not k.patched(DRAIN_INACTIVE_HCTX) or data.flags & BLK_MQ_REQ_NOWAIT:
            return None
        # Give up the CPU and sleep for a random short time to ensure that
        # thread using a realtime scheduling class are migrated off the CPU,
        # and thus off the hctx that is going away.
        await msleep(k, 3)
    if e is not None and e.type.ops.prepare_request is not None:
        await e.type.ops.prepare_request(rq, bio)
        rq.rq_flags |= RQF_ELVPRIV
    data.hctx.queued += 1
    return rq


EIO, EWOULDBLOCK, EXDEV = 5, 11, 18


# blk_mq_alloc_request_hctx(), block/blk-mq.c
async def blk_mq_alloc_request_hctx(q, op, flags, hctx_idx):
    """blk_mq_alloc_request_hctx() (v5.8): a request on a given hw queue, for a
    command tied to it (nvme-fabrics' connect of I/O queue ``hctx_idx + 1``),
    from whatever CPU the caller runs on.  Returns the request, or a negative
    errno (ERR_PTR()).

    The software queue is that of the hw queue's first online CPU: while
    CPUHP_AP_BLK_MQ_ONLINE drains the hw queue, that is the dying CPU itself,
    and the allocating CPU is another one.  Left out: the alloc-time
    accounting, and the WARN for a caller without NOWAIT or RESERVED (the
    model's callers pass NOWAIT)."""
    k = q.k
    if hctx_idx >= q.nr_hw_queues:
        return -EIO
    ret = await blk_core.blk_queue_enter(q, flags)
    if ret:
        return ret
    # Check if the hardware context is actually mapped to anything.  If not
    # tell the caller that it should skip this queue.
    data = blk_mq_alloc_data(q, flags=flags, cmd_flags=op)
    data.hctx = q.queue_hw_ctx[hctx_idx]
    await access(k.cpu_online_mask, READ)
    cpu = cpumask_first_and(data.hctx.cpumask, k.cpu_online_mask, k.nr_cpu_ids)
    if cpu >= k.nr_cpu_ids:  # (v5.8 has no such check: the model cannot index past its CPUs)
        await percpu_ref_put(q.q_usage_counter)  # blk_queue_exit()
        return -EXDEV
    data.ctx = q.queue_ctx[cpu]  # __blk_mq_get_ctx()
    if q.elevator is None:
        blk_mq_tag_busy(data.hctx)
    else:
        data.flags |= BLK_MQ_REQ_INTERNAL
    tag = await blk_mq_get_tag(data)
    if tag == BLK_MQ_NO_TAG:
        await percpu_ref_put(q.q_usage_counter)  # blk_queue_exit()
        return -EWOULDBLOCK
    rq = await blk_mq_rq_ctx_init(data, tag)
    if k.patched(RECHECK_INACTIVE_AFTER_INIT) and await blk_mq_alloc_raced_offline(data, rq):
        await percpu_ref_put(q.q_usage_counter)  # blk_queue_exit()
        return -EWOULDBLOCK
    return rq


# blk_mq_bio_to_request(), block/blk-mq.c
def blk_mq_bio_to_request(rq, bio):
    """blk_mq_bio_to_request(): the request carries the bio."""
    rq.bio = bio
    rq.cmd_flags = bio.bi_opf


# ------------------------------------------------------------- submission


# blk_mq_submit_bio(), block/blk-mq.c (v5.9 name; blk_mq_make_request() in v5.8)
async def blk_mq_submit_bio(bio):
    """blk_mq_submit_bio() (blk_mq_make_request() before v5.9): the bio's queue
    reference (taken by bio_queue_enter()) passes to the request."""
    q = bio.bi_disk
    k = q.k
    data = blk_mq_alloc_data(q, cmd_flags=bio.bi_opf)
    rq = await __blk_mq_alloc_request(q, bio, data)
    if rq is None:
        if bio.bi_opf & REQ_NOWAIT:
            bio.bi_status = BLK_STS_AGAIN  # bio_wouldblock_error()
        else:
            bio.bi_status = BLK_STS_IOERR
        await bio_endio(k, bio)
        await percpu_ref_put(q.q_usage_counter)  # blk_queue_exit()
        return
    blk_mq_bio_to_request(rq, bio)
    plug = k.current.plug  # blk_mq_plug()
    if plug is not None and (q.nr_hw_queues == 1 or q.mq_ops.commit_rqs is not None):
        # Plug even with an elevator: the flush inserts and runs the queue inline.
        plug.mq_list.append(rq)  # blk_add_rq_to_plug(): the plug is the task's own
        plug.rq_count += 1
    elif q.elevator is not None:
        await blk_mq_sched.blk_mq_sched_insert_request(rq, False, True, True)
    else:
        # The none scheduler without a plug: issue directly (sync I/O on multi-queue).
        await blk_mq_try_issue_directly(data.hctx, rq)


# blk_mq_submit_bio_direct(), block/blk-mq.c (hch's posting of March 2021, never merged)
async def blk_mq_submit_bio_direct(bio):
    """blk_mq_submit_bio_direct() (hch, 2021, never merged): enter the queue
    without waiting; false means "frozen, pick another path or requeue".
    Once entered it is blk_mq_submit_bio(), tag sleep included."""
    q = bio.bi_disk
    if not bio.submitter:
        q.bios.append(bio)
        bio.submitter = q.k.current.comm
    if not await percpu_ref_tryget_live(q.q_usage_counter):  # blk_queue_enter(q, BLK_MQ_REQ_NOWAIT)
        return False
    blk_queue_enter_annotate(q.k, q.io_lockdep_map)  # as if v6.13: bio_queue_enter()'s annotation
    await blk_mq_submit_bio(bio)
    return True


# blk_mq_flush_plug_list(), block/blk-mq.c
async def blk_mq_flush_plug_list(k, plug, from_schedule):
    """blk_mq_flush_plug_list(): insert the plugged requests per (hctx, ctx) and run."""
    if not plug.mq_list:
        return
    lst, plug.mq_list = plug.mq_list, []
    plug.rq_count = 0
    while lst:
        head = lst[0]
        n = 1
        while n < len(lst) and lst[n].mq_hctx is head.mq_hctx and lst[n].mq_ctx is head.mq_ctx:
            n += 1
        batch, lst = lst[:n], lst[n:]
        await blk_mq_sched.blk_mq_sched_insert_requests(head.mq_hctx, head.mq_ctx, batch, from_schedule)


# blk_mq_insert_requests(), block/blk-mq.c
async def blk_mq_insert_requests(hctx, ctx, rqs):
    """blk_mq_insert_requests(): onto the software queue, and mark it pending."""
    k = hctx.queue.k
    await spin_lock(k, ctx.lock)
    for rq in rqs:
        await list_add_tail(rq, ctx.rq_list)
    await blk_mq_hctx_mark_pending(hctx, ctx)
    await spin_unlock(k, ctx.lock)


# blk_mq_hctx_mark_pending(), block/blk-mq.c
async def blk_mq_hctx_mark_pending(hctx, ctx):
    await set_bit(ctx.index_hw, hctx.ctx_map)


# blk_mq_request_bypass_insert(), block/blk-mq.c
async def blk_mq_request_bypass_insert(rq, at_head, run_queue):
    """blk_mq_request_bypass_insert(): straight onto hctx->dispatch."""
    hctx = rq.mq_hctx
    k = hctx.queue.k
    await spin_lock(k, hctx.lock)
    if at_head:
        await list_add(rq, hctx.dispatch)
    else:
        await list_add_tail(rq, hctx.dispatch)
    await spin_unlock(k, hctx.lock)
    if run_queue:
        await blk_mq_run_hw_queue(hctx, False)


# __blk_mq_issue_directly(), block/blk-mq.c
async def __blk_mq_issue_directly(hctx, rq, last):
    """__blk_mq_issue_directly(): ->queue_rq; a busy driver gets the request back."""
    q = rq.q
    ret = await q.mq_ops.queue_rq(hctx, rq, last)
    if ret == BLK_STS_OK:
        blk_mq_update_dispatch_busy(hctx, False)
    elif ret in (BLK_STS_RESOURCE, BLK_STS_DEV_RESOURCE):
        blk_mq_update_dispatch_busy(hctx, True)
        await __blk_mq_requeue_request(rq)
    else:
        blk_mq_update_dispatch_busy(hctx, False)
    return ret


# __blk_mq_try_issue_directly(), block/blk-mq.c
async def __blk_mq_try_issue_directly(hctx, rq, bypass_insert, last):
    """__blk_mq_try_issue_directly(): budget, driver tag, ->queue_rq; else insert."""
    q = rq.q
    run_queue = True
    # The flag test is a read another CPU races with (the unquiescer's
    # clear): declared, so that the explorer may switch CPUs right here.
    if await blk_queue_quiesced_lockless(q) or blk_mq_hctx_stopped(hctx):
        # Quiesced: insert and leave it to blk_mq_unquiesce_queue()'s run.
        # But the unquiescer may clear the flag and find nothing pending
        # between this check and the insert below: the request then sits on
        # hctx->dispatch with nobody to run it.  2003ee8a9aa1 runs the queue
        # after the insert (blk_mq_run_hw_queue() checks quiesce again).  Its
        # companion 6bda857bcbb8 takes queue_lock in blk_mq_run_hw_queue()
        # for the memory-ordering form of the race (the insert's store and
        # the quiesce load, against the unquiescer's clear and its
        # has_pending load: store buffering), which shows under ``lkmm``.
        run_queue = q.k.patched(QUIESCE_INSERT_RERUN)
        bypass_insert = False
    elif q.elevator is not None and not bypass_insert:
        pass
    elif not await blk_mq_get_dispatch_budget(hctx):
        pass
    elif not await blk_mq_get_driver_tag(rq):
        await blk_mq_put_dispatch_budget(hctx)
    else:
        return await __blk_mq_issue_directly(hctx, rq, last)
    # insert:
    if bypass_insert:
        return BLK_STS_RESOURCE
    await blk_mq_request_bypass_insert(rq, False, run_queue)
    return BLK_STS_OK


# blk_mq_try_issue_directly(), block/blk-mq.c
async def blk_mq_try_issue_directly(hctx, rq):
    """blk_mq_try_issue_directly(): from the submitter, under hctx_lock."""
    srcu_idx = await hctx_lock(hctx)
    ret = await __blk_mq_try_issue_directly(hctx, rq, False, True)
    if ret in (BLK_STS_RESOURCE, BLK_STS_DEV_RESOURCE):
        await blk_mq_request_bypass_insert(rq, False, True)
    elif ret != BLK_STS_OK:
        await blk_mq_end_request(rq, ret)
    await hctx_unlock(hctx, srcu_idx)


# blk_mq_request_issue_directly(), block/blk-mq.c
async def blk_mq_request_issue_directly(rq, last):
    hctx = rq.mq_hctx
    srcu_idx = await hctx_lock(hctx)
    ret = await __blk_mq_try_issue_directly(hctx, rq, True, last)
    await hctx_unlock(hctx, srcu_idx)
    return ret


# blk_mq_try_issue_list_directly(), block/blk-mq.c
async def blk_mq_try_issue_list_directly(hctx, rqs):
    """blk_mq_try_issue_list_directly(): issue a plug's requests one by one."""
    queued = 0
    while rqs:
        rq = rqs.pop(0)
        ret = await blk_mq_request_issue_directly(rq, not rqs)
        if ret != BLK_STS_OK:
            if ret in (BLK_STS_RESOURCE, BLK_STS_DEV_RESOURCE):
                await blk_mq_request_bypass_insert(rq, False, not rqs)
                break
            await blk_mq_end_request(rq, ret)
        else:
            queued += 1
    if rqs and hctx.queue.mq_ops.commit_rqs is not None and queued:
        await hctx.queue.mq_ops.commit_rqs(hctx)


# __blk_mq_requeue_request(), block/blk-mq.c
async def __blk_mq_requeue_request(rq):
    """__blk_mq_requeue_request(): give the driver tag back; the request is idle again."""
    await blk_mq_put_driver_tag(rq)
    # WRITE_ONCE(rq->state, MQ_RQ_IDLE): a store the tag iterators and the
    # timeout work race with, declared on the request.
    await access(rq, WRITE)
    rq.state = MQ_RQ_IDLE


# ------------------------------------------------------------- running queues


# blk_mq_hctx_has_pending(), block/blk-mq.c
async def blk_mq_hctx_has_pending(hctx):
    """blk_mq_hctx_has_pending(): lockless looks at dispatch, ctx_map and the elevator."""
    if not await list_empty_careful(hctx.dispatch):
        return True
    if hctx.ctx_map.k is not None:
        if await mm_load(hctx.ctx_map.k, hctx.ctx_map, "bits", ONCE):  # sbitmap_any_bit_set()
            return True
    else:
        await access(hctx.ctx_map, READ)
        if hctx.ctx_map.bits:
            return True
    return await blk_mq_sched.blk_mq_sched_has_work(hctx)


async def blk_mq_hw_queue_need_run(hctx):
    """blk_mq_hw_queue_need_run(), block/blk-mq.c (split out by 6bda857bcbb8):
    not quiesced, and something pending, under the dispatch RCU/SRCU."""
    srcu_idx = await hctx_lock(hctx)
    need_run = not await blk_queue_quiesced_lockless(hctx.queue) and await blk_mq_hctx_has_pending(hctx)
    await hctx_unlock(hctx, srcu_idx)
    return need_run


async def blk_mq_run_hw_queue(hctx, async_):
    """blk_mq_run_hw_queue(), block/blk-mq.c: run if anything is pending."""
    need_run = await blk_mq_hw_queue_need_run(hctx)
    q = hctx.queue
    if not need_run and q.k.patched(QUIESCE_ORDERING):
        # "Synchronize with blk_mq_unquiesce_queue(), because we check if hw
        # queue is quiesced locklessly above, we need the use ->queue_lock to
        # make sure we see the up-to-date status to not miss rerunning the hw
        # queue." (6bda857bcbb8)
        flags = await spin_lock_irqsave(q.k, q.queue_lock)
        need_run = await blk_mq_hw_queue_need_run(hctx)
        await spin_unlock_irqrestore(q.k, q.queue_lock, flags)
    if need_run:
        await __blk_mq_delay_run_hw_queue(hctx, async_, 0)


# __blk_mq_delay_run_hw_queue(), block/blk-mq.c
async def __blk_mq_delay_run_hw_queue(hctx, async_, msecs):
    """__blk_mq_delay_run_hw_queue(): inline on a mapped CPU, else through kblockd."""
    k = hctx.queue.k
    if blk_mq_hctx_stopped(hctx):
        return
    if not async_ and not hctx.flags & BLK_MQ_F_BLOCKING:
        preempt_disable(k)  # get_cpu()
        cpu = smp_processor_id(k)
        if cpumask_test_cpu(cpu, hctx.cpumask):
            await __blk_mq_run_hw_queue(hctx)
            preempt_enable(k)  # put_cpu()
            return
        preempt_enable(k)
    await kblockd_mod_delayed_work_on(k, await blk_mq_hctx_next_cpu(hctx), hctx.run_work, msecs_to_jiffies(msecs))


# blk_mq_delay_run_hw_queue(), block/blk-mq.c
async def blk_mq_delay_run_hw_queue(hctx, msecs):
    """blk_mq_delay_run_hw_queue(): always (re)arms run_work; no has_pending check."""
    await __blk_mq_delay_run_hw_queue(hctx, True, msecs)


# blk_mq_run_hw_queues(), block/blk-mq.c
async def blk_mq_run_hw_queues(q, async_):
    """blk_mq_run_hw_queues(): every hctx of the queue, has_pending-filtered."""
    for hctx in q.queue_hw_ctx:
        if blk_mq_hctx_stopped(hctx):
            continue
        await blk_mq_run_hw_queue(hctx, async_)


# blk_mq_delay_run_hw_queues(), block/blk-mq.c
async def blk_mq_delay_run_hw_queues(q, msecs):
    """blk_mq_delay_run_hw_queues() (Doug Anderson's 2/4): every hctx after ``msecs``."""
    for hctx in q.queue_hw_ctx:
        if blk_mq_hctx_stopped(hctx):
            continue
        await blk_mq_delay_run_hw_queue(hctx, msecs)


# __blk_mq_run_hw_queue(), block/blk-mq.c
async def __blk_mq_run_hw_queue(hctx):
    """__blk_mq_run_hw_queue(): dispatch under hctx_lock, on a CPU of the hctx."""
    k = hctx.queue.k
    cpu = smp_processor_id(k)
    if not cpumask_test_cpu(cpu, hctx.cpumask) and cpu_online_nocheck(k, hctx.next_cpu):
        # printk(KERN_WARNING "run queue from wrong CPU %d, hctx %s\n"); dump_stack(): not a WARN.
        k.execution.event(f"run queue from wrong CPU {cpu}, hctx {hctx.name}")
    WARN_ON_ONCE(k, in_interrupt(k))
    srcu_idx = await hctx_lock(hctx)
    await blk_mq_sched.blk_mq_sched_dispatch_requests(hctx)
    await hctx_unlock(hctx, srcu_idx)


# blk_mq_run_work_fn(), block/blk-mq.c
async def blk_mq_run_work_fn(k, work):
    """blk_mq_run_work_fn(): kblockd runs the hctx (no has_pending re-check)."""
    hctx = work.data
    if await test_bit(BLK_MQ_S_STOPPED, hctx.state):
        return
    await __blk_mq_run_hw_queue(hctx)


# blk_mq_first_mapped_cpu(), block/blk-mq.c
def blk_mq_first_mapped_cpu(hctx, online):
    """blk_mq_first_mapped_cpu(): the first online CPU of the hctx, else its first CPU."""
    k = hctx.queue.k
    cpu = cpumask_first_and(hctx.cpumask, online, k.nr_cpu_ids)
    if cpu >= k.nr_cpu_ids:
        cpu = cpumask_first_and(hctx.cpumask, hctx.cpumask, k.nr_cpu_ids)  # cpumask_first()
    return cpu


# blk_mq_hctx_next_cpu(), block/blk-mq.c
async def blk_mq_hctx_next_cpu(hctx):
    """blk_mq_hctx_next_cpu(): round-robin the hctx's online CPUs every 8 runs.

    Two declared steps: the reads of cpu_online_mask (cpumask_next_and(),
    blk_mq_first_mapped_cpu() and cpu_online(next_cpu): plain reads with only
    plain stores between them), then the unlocked read-modify-write of
    hctx->next_cpu and hctx->next_cpu_batch, declared on the hctx (no other
    step declares the hctx itself).  The kernel reads next_cpu and decrements
    the batch before it reads the mask; these are plain accesses to other
    locations, so reading the mask first gives the same values.  What is left
    out: a concurrent caller's plain store landing between this one's read and
    store of next_cpu_batch (a lost decrement of the round-robin counter).
    """
    k = hctx.queue.k
    if hctx.queue.nr_hw_queues == 1:
        return WORK_CPU_UNBOUND
    await access(k.cpu_online_mask, READ)
    online = cpumask("cpu_online_mask@blk_mq_hctx_next_cpu", k.cpu_online_mask)
    await access(hctx, WRITE)
    tried = False
    next_cpu = hctx.next_cpu
    hctx.next_cpu_batch -= 1
    select_cpu = hctx.next_cpu_batch <= 0
    while True:
        if select_cpu:
            next_cpu = cpumask_next_and(next_cpu, hctx.cpumask, online, k.nr_cpu_ids)
            if next_cpu >= k.nr_cpu_ids:
                next_cpu = blk_mq_first_mapped_cpu(hctx, online)
            hctx.next_cpu_batch = BLK_MQ_CPU_WORK_BATCH
        # "Do unbound schedule if we can't find a online CPU for this hctx,
        # and it should only happen in the path of handling CPU DEAD."
        if not cpumask_test_cpu(next_cpu, online):
            if not tried:
                tried = True
                select_cpu = True  # goto select_cpu
                continue
            # "Make sure to re-select CPU next time once after CPUs in
            # hctx->cpumask become online again."
            hctx.next_cpu = next_cpu
            hctx.next_cpu_batch = 1
            return WORK_CPU_UNBOUND
        hctx.next_cpu = next_cpu
        return next_cpu


async def kblockd_mod_delayed_work_on(k, cpu, dwork, delay_jiffies):
    """kblockd_mod_delayed_work_on(), block/blk-core.c. A jiffy is 1 ms here."""
    return await mod_delayed_work_on(k, cpu, k.kblockd_workqueue, dwork, delay_jiffies * NSEC_PER_JIFFY)


# ------------------------------------------------------------------ dispatch


async def blk_mq_get_dispatch_budget(hctx):
    """blk_mq_get_dispatch_budget(), block/blk-mq.h: only SCSI has a budget."""
    q = hctx.queue
    if q.mq_ops.get_budget is not None:
        return await q.mq_ops.get_budget(hctx)
    return True


# blk_mq_put_dispatch_budget(), block/blk-mq.h
async def blk_mq_put_dispatch_budget(hctx):
    q = hctx.queue
    if q.mq_ops.put_budget is not None:
        await q.mq_ops.put_budget(hctx)


# blk_mq_get_driver_tag(), block/blk-mq.c
async def blk_mq_get_driver_tag(rq):
    """blk_mq_get_driver_tag(): a NOWAIT driver tag for a request that has a sched tag."""
    if rq.tag != BLK_MQ_NO_TAG:
        return True
    data = blk_mq_alloc_data(rq.q, BLK_MQ_REQ_NOWAIT, rq.cmd_flags)
    data.hctx = rq.mq_hctx
    data.ctx = rq.mq_ctx
    blk_mq_tag_busy(data.hctx)
    rq.tag = await blk_mq_get_tag(data)
    if rq.tag != BLK_MQ_NO_TAG:
        data.hctx.tags.rqs[rq.tag] = rq
    return rq.tag != BLK_MQ_NO_TAG


# blk_mq_put_driver_tag(), block/blk-mq.h
async def blk_mq_put_driver_tag(rq):
    """blk_mq_put_driver_tag(): only a request with a sched tag gives its driver tag back."""
    if rq.tag == BLK_MQ_NO_TAG or rq.internal_tag == BLK_MQ_NO_TAG:
        return
    await blk_mq_put_tag(rq.mq_hctx.tags, rq.mq_ctx, rq.tag)
    rq.tag = BLK_MQ_NO_TAG


# The unshared-tag branch of blk_mq_mark_tag_wait() marks SCHED_RESTART
# (set_bit(): no ordering) and retries the driver tag, whose failure makes no
# RMW: the retry's read of the tag word may be satisfied before the mark is
# visible, while the completion that frees the tag (sbitmap_queue_clear(),
# smp_mb__after_atomic()) tests SCHED_RESTART in blk_mq_sched_restart() and
# finds it clear.  Store buffering: neither reruns the queue.  Upstream gave
# the shared-tag branch an explicit smp_mb() for the same reason ("blk-mq:
# fix IO hang from sbitmap wakeup race", 2024, its wait-queue add against
# the retry); the unshared branch has none (v5.7 through current upstream).
TAG_WAIT_RESTART_MB = Patch(
    "blk-mq-tag-wait-restart-smp-mb",
    "",
    "blk-mq: order marking SCHED_RESTART and retrying the driver tag (a proposal, not upstream)",
)


TAG_WAIT_SHARED_MB = Patch(
    "blk-mq-tag-wait-shared-smp-mb",
    "5266caaf5660",
    "blk-mq: fix IO hang from sbitmap wakeup race",
)


# blk_mq_mark_tag_wait(), block/blk-mq.c
async def blk_mq_mark_tag_wait(hctx, rq):
    """blk_mq_mark_tag_wait(), block/blk-mq.c: no driver tag for ``rq``; arrange a rerun
    when one is freed, then retry once (a tag may have been freed meanwhile).

    Unshared tags: mark SCHED_RESTART (the freeing request's completion
    reruns its own hctx).  Shared tags: the completion may be another
    queue's, so the hctx queues its ``dispatch_wait`` entry on the tag
    bitmap's wait queue, whose wake function (blk_mq_dispatch_wake()) reruns
    it.  Returns whether the retry got a tag.
    """
    k = hctx.queue.k
    if not hctx.flags & BLK_MQ_F_TAG_SHARED:
        await blk_mq_sched.blk_mq_sched_mark_restart_hctx(hctx)
        if k.patched(TAG_WAIT_RESTART_MB):
            # The proposal: pairs with smp_mb__after_atomic() in
            # sbitmap_queue_clear() before blk_mq_sched_restart() reads RESTART.
            smp_mb(k)
        # It's possible that a tag was freed in the window between the
        # allocation failure and adding the hardware queue to the wait queue.
        # Don't clear RESTART here, someone else could have set it.
        return await blk_mq_get_driver_tag(rq)

    sbq = hctx.tags.bitmap_tags
    wait = hctx.dispatch_wait
    if not await list_empty_careful_entry(wait):
        return False
    wq = (await bt_wait_ptr(sbq, hctx)).wait
    await wq_head_lock_irq(k, wq)
    await spin_lock(k, hctx.dispatch_wait_lock)
    if wait.head is not None:
        await spin_unlock(k, hctx.dispatch_wait_lock)
        await wq_head_unlock_irq(k, wq)
        return False
    await atomic_inc(sbq.ws_active)
    wait.exclusive = False  # wait->flags &= ~WQ_FLAG_EXCLUSIVE
    __add_wait_queue(k, wq, wait)
    if k.patched(TAG_WAIT_SHARED_MB):
        # 5266caaf5660: "Add one explicit barrier since blk_mq_get_driver_tag()
        # may not imply barrier in case of failure."  Pairs with the
        # smp_mb__after_atomic() in sbitmap_queue_clear() before
        # waitqueue_active() in __sbitmap_queue_wake_up().
        smp_mb(k)
    # It's possible that a tag was freed in the window between the allocation
    # failure and adding the hardware queue to the wait queue.
    if not await blk_mq_get_driver_tag(rq):
        await spin_unlock(k, hctx.dispatch_wait_lock)
        await wq_head_unlock_irq(k, wq)
        return False
    # We got a tag, remove ourselves from the wait queue to ensure someone
    # else gets the wakeup.
    list_del_init_entry(k, wait)
    await atomic_dec(sbq.ws_active)
    await spin_unlock(k, hctx.dispatch_wait_lock)
    await wq_head_unlock_irq(k, wq)
    return True


# The wake-up's rerun against the dispatcher's own rerun test (found by the
# explorer): blk_mq_dispatch_rq_list() puts a request back on hctx->dispatch
# and reruns the hctx itself only if dispatch_wait is no longer queued
# (list_empty_careful()); blk_mq_dispatch_wake() dequeues dispatch_wait and
# reruns only if blk_mq_hctx_has_pending() sees the request.  The
# dispatcher's side is ordered by d7d8535f377e's smp_mb() after the splice;
# the wake side has a release (spin_unlock()) and a void atomic_dec() between
# its dequeue and its look at hctx->dispatch, which order a store before a
# later load on no architecture but x86 (where the atomic is a locked
# instruction).  A proposal: smp_mb() there.
DISPATCH_WAKE_MB = Patch(
    "blk-mq-dispatch-wake-smp-mb",
    "",
    "blk-mq: order dequeueing dispatch_wait and rerunning the hctx (a proposal, not upstream)",
)


# blk_mq_dispatch_wake(), block/blk-mq.c
async def blk_mq_dispatch_wake(hctx, wait):
    """blk_mq_dispatch_wake(): ``hctx->dispatch_wait``'s wake function, called by
    __wake_up_common() under the wait queue's lock: dequeue the entry, rerun the hctx."""
    k = hctx.queue.k
    await spin_lock(k, hctx.dispatch_wait_lock)
    if wait.head is not None:
        list_del_init_entry(k, wait)
        await atomic_dec(hctx.tags.bitmap_tags.ws_active)
    await spin_unlock(k, hctx.dispatch_wait_lock)
    if k.patched(DISPATCH_WAKE_MB):
        smp_mb(k)  # the proposal: pairs with d7d8535f377e's smp_mb() after the splice
    await blk_mq_run_hw_queue(hctx, True)
    return 1


# blk_mq_handle_dev_resource(), block/blk-mq.c
async def blk_mq_handle_dev_resource(rq, lst):
    """blk_mq_handle_dev_resource(): the driver is busy: put the request back first."""
    nxt = lst[0] if lst else None
    if nxt is not None:
        await blk_mq_put_driver_tag(nxt)
    lst.insert(0, rq)
    await __blk_mq_requeue_request(rq)


async def blk_mq_dispatch_rq_list(q, lst, got_budget):
    """blk_mq_dispatch_rq_list(), block/blk-mq.c: send requests to the driver.

    ``lst`` is the caller's private list (a Python list of requests).
    Returns True if it dispatched something and more may come.
    """
    k = q.k
    if not lst:
        return False
    WARN_ON(k, len(lst) != 1 and got_budget)
    no_tag = False
    no_budget_avail = False  # Doug Anderson's 1/4: "no budget" is a reason to kick
    ret = BLK_STS_OK
    errors = queued = 0
    hctx = None
    while lst:
        rq = lst[0]
        hctx = rq.mq_hctx
        if not got_budget and not await blk_mq_get_dispatch_budget(hctx):
            await blk_mq_put_driver_tag(rq)
            no_budget_avail = True
            break
        if not await blk_mq_get_driver_tag(rq):
            # The initial allocation failed: rerun when a tag is freed.
            if not await blk_mq_mark_tag_wait(hctx, rq):
                await blk_mq_put_dispatch_budget(hctx)
                if hctx.flags & BLK_MQ_F_TAG_SHARED:
                    no_tag = True
                break
        lst.pop(0)
        last = not lst or not await blk_mq_get_driver_tag(lst[0])
        ret = await q.mq_ops.queue_rq(hctx, rq, last)
        if ret in (BLK_STS_RESOURCE, BLK_STS_DEV_RESOURCE):
            await blk_mq_handle_dev_resource(rq, lst)
            break
        if ret != BLK_STS_OK:
            errors += 1
            await blk_mq_end_request(rq, BLK_STS_IOERR)
            continue
        queued += 1
    if lst:
        if q.mq_ops.commit_rqs is not None and queued:
            await q.mq_ops.commit_rqs(hctx)
        await spin_lock(k, hctx.lock)
        leftovers = list_head("leftovers")
        leftovers.items = list(lst)
        lst.clear()
        await list_splice_tail_init(leftovers, hctx.dispatch)
        await spin_unlock(k, hctx.lock)
        if k.patched(blk_mq_sched.ORDER_DISPATCH_RESTART):
            # "Order adding requests to hctx->dispatch and checking
            # SCHED_RESTART flag. The pair of this smp_mb() is the one in
            # blk_mq_sched_restart()." (d7d8535f377e, v5.9)
            smp_mb(k)
        # If SCHED_RESTART was set by the caller and is clear now, another
        # thread cleared it and a rerun is needed.
        needs_restart = await blk_mq_sched.blk_mq_sched_needs_restart(hctx)
        # If RESTART or TAG_WAITING is set, then let completion restart the
        # queue instead of potentially looping here; a shared-tag hctx whose
        # dispatch_wait entry is no longer queued has had its wake-up, and
        # reruns itself.
        if not needs_restart or (no_tag and await list_empty_careful_entry(hctx.dispatch_wait)):
            await blk_mq_run_hw_queue(hctx, True)
        elif needs_restart and (ret == BLK_STS_RESOURCE or no_budget_avail):
            await blk_mq_delay_run_hw_queue(hctx, BLK_MQ_RESOURCE_DELAY)
        blk_mq_update_dispatch_busy(hctx, True)
        return False
    blk_mq_update_dispatch_busy(hctx, False)
    if ret in (BLK_STS_RESOURCE, BLK_STS_DEV_RESOURCE):
        return False
    return (queued + errors) != 0


# blk_mq_flush_busy_ctxs(), block/blk-mq.c
async def blk_mq_flush_busy_ctxs(hctx, lst):
    """blk_mq_flush_busy_ctxs(): take every request off the hctx's software queues."""
    k = hctx.queue.k
    for ctx in hctx.ctxs:
        await access(hctx.ctx_map, READ)
        if not hctx.ctx_map.bits >> ctx.index_hw & 1:
            continue
        await spin_lock(k, ctx.lock)
        tmp = list_head("flush")
        await list_splice_tail_init(ctx.rq_list, tmp)
        lst.extend(tmp.items)
        await clear_bit(ctx.index_hw, hctx.ctx_map)
        await spin_unlock(k, ctx.lock)


# blk_mq_dequeue_from_ctx(), block/blk-mq.c
async def blk_mq_dequeue_from_ctx(hctx, start):
    """blk_mq_dequeue_from_ctx(): the first request of the busy ctxs, round-robin from ``start``."""
    k = hctx.queue.k
    n = hctx.nr_ctx
    first = start.index_hw if start is not None else 0
    for i in range(n):
        ctx = hctx.ctxs[(first + i) % n]
        await access(hctx.ctx_map, READ)
        if not hctx.ctx_map.bits >> ctx.index_hw & 1:
            continue
        await spin_lock(k, ctx.lock)
        rq = None
        if ctx.rq_list.items:
            rq = ctx.rq_list.items[0]
            await list_del_init(rq, ctx.rq_list)
            if not ctx.rq_list.items:
                await clear_bit(ctx.index_hw, hctx.ctx_map)
        await spin_unlock(k, ctx.lock)
        if rq is not None:
            return rq
    return None


# -------------------------------------------------------------- completion


# blk_mq_rq_state(), block/blk-mq.h
async def blk_mq_rq_state(rq):
    """blk_mq_rq_state(): READ_ONCE(rq->state), a step on the request."""
    await access(rq, READ)
    return rq.state


# blk_mq_request_started(), include/linux/blk-mq.h
async def blk_mq_request_started(rq):
    return await blk_mq_rq_state(rq) != MQ_RQ_IDLE


# blk_mq_request_completed(), include/linux/blk-mq.h
async def blk_mq_request_completed(rq):
    return await blk_mq_rq_state(rq) == MQ_RQ_COMPLETE


# blk_mq_start_request(), block/blk-mq.c
async def blk_mq_start_request(rq):
    """blk_mq_start_request(): the driver owns it now; its timeout starts."""
    await access(rq, WRITE)
    blk_add_timer(rq)
    rq.state = MQ_RQ_IN_FLIGHT


# __blk_mq_complete_request_remote(), block/blk-mq.c
async def __blk_mq_complete_request_remote(k, rq):
    """__blk_mq_complete_request_remote(): the IPI's callback, on the submitting CPU."""
    await rq.q.mq_ops.complete(rq)


# cpus_share_cache(), kernel/sched/core.c
def cpus_share_cache(k, this_cpu, that_cpu):
    """cpus_share_cache(): the scenario's cache topology (k.llc_id), one LLC by default."""
    llc = getattr(k, "llc_id", None)
    return llc is None or llc[this_cpu] == llc[that_cpu]


# __blk_mq_complete_request(), block/blk-mq.c
async def __blk_mq_complete_request(rq):
    """__blk_mq_complete_request(): complete here, or on the submitting CPU by IPI.

    "If the CPU that submitted is online and does not share a cache with this
    one, send it an IPI" (rq_affinity).  The cpu_online() test is racy by
    design: seed 003 is what happens when the target goes offline right after.
    """
    q = rq.q
    k = q.k
    ctx = rq.mq_ctx
    await access(rq, WRITE)
    rq.state = MQ_RQ_COMPLETE
    if not q.queue_flags.bits >> QUEUE_FLAG_SAME_COMP & 1:
        await q.mq_ops.complete(rq)
        return
    preempt_disable(k)  # get_cpu()
    cpu = smp_processor_id(k)
    shared = False
    if not q.queue_flags.bits >> QUEUE_FLAG_SAME_FORCE & 1:
        shared = cpus_share_cache(k, cpu, ctx.cpu)
    if cpu != ctx.cpu and not shared and await cpu_online(k, ctx.cpu):
        if rq.csd is None:
            rq.csd = call_single_data(f"{rq.name}->csd")
        rq.csd.func = __blk_mq_complete_request_remote
        rq.csd.info = rq
        rq.csd.flags = 0
        await smp_call_function_single_async(k, ctx.cpu, rq.csd)
    else:
        await q.mq_ops.complete(rq)
    preempt_enable(k)  # put_cpu()


# blk_mq_complete_request(), block/blk-mq.c
async def blk_mq_complete_request(rq):
    """blk_mq_complete_request(): the driver says the request is done."""
    await __blk_mq_complete_request(rq)
    return True


# blk_update_request(), block/blk-core.c
async def blk_update_request(rq, error):
    """blk_update_request(): end the request's bio (the whole of it: no partial completions)."""
    bio = rq.bio
    if bio is not None:
        rq.bio = None
        bio.bi_status = error
        await bio_endio(rq.q.k, bio)
    return False


async def bio_endio(k, bio):
    """bio_endio(), block/bio.c."""
    bio.ended = True
    if bio.bi_end_io is not None:
        await bio.bi_end_io(k, bio)


# blk_mq_end_request(), block/blk-mq.c
async def blk_mq_end_request(rq, error):
    """blk_mq_end_request()."""
    await blk_update_request(rq, error)
    await __blk_mq_end_request(rq, error)


# __blk_mq_end_request(), block/blk-mq.c
async def __blk_mq_end_request(rq, error):
    """__blk_mq_end_request(): end_io, or free the request."""
    rq.status = error
    if rq.end_io is not None:
        await rq.end_io(rq, error)
    else:
        await blk_mq_free_request(rq)


# blk_mq_free_request(), block/blk-mq.c
async def blk_mq_free_request(rq):
    """blk_mq_free_request(): the elevator's finish_request, then free."""
    q = rq.q
    e = q.elevator
    if rq.rq_flags & RQF_ELVPRIV and e is not None and e.type.ops.finish_request is not None:
        await e.type.ops.finish_request(rq)
    # WRITE_ONCE(rq->state, MQ_RQ_IDLE), then (refcount_dec_and_test() on
    # rq->ref, not modelled) __blk_mq_free_request()'s rq->mq_hctx = NULL: the
    # stores the tag iterators, the timeout work and the hotplug drain race
    # with, one step declared on the request.
    await access(rq, WRITE)
    rq.state = MQ_RQ_IDLE
    await __blk_mq_free_request(rq)


# __blk_mq_free_request(), block/blk-mq.c
async def __blk_mq_free_request(rq):
    """__blk_mq_free_request(): give back both tags, then the RESTART rerun.

    The request may be reallocated the moment its tag is back, so nothing of
    it is touched after the first put (the next allocation resets its tags).
    """
    q = rq.q
    hctx = rq.mq_hctx
    ctx = rq.mq_ctx
    tag = rq.tag
    sched_tag = rq.internal_tag
    rq.mq_hctx = None
    if tag != BLK_MQ_NO_TAG:
        # v5.8 leaves hctx->tags->rqs[tag] pointing at the request: the tag
        # iterators skip it by its state (MQ_RQ_IDLE), read at a step of its own.
        await blk_mq_put_tag(hctx.tags, ctx, tag)
    if sched_tag != BLK_MQ_NO_TAG:
        await blk_mq_put_tag(hctx.sched_tags, ctx, sched_tag)
    await blk_mq_sched.blk_mq_sched_restart(hctx)
    await percpu_ref_put(q.q_usage_counter)  # blk_queue_exit()


# ------------------------------------------------------------- CPU hotplug


# model: a label for traces
def q_name(hctx):
    return f"{hctx.queue.name}:{hctx.name}"


# blk_mq_last_cpu_in_hctx(), block/blk-mq.c
def blk_mq_last_cpu_in_hctx(k, cpu, hctx):
    """blk_mq_last_cpu_in_hctx(): ``cpu`` is the only online CPU of the hctx."""
    if cpumask_first_and(hctx.cpumask, k.cpu_online_mask, k.nr_cpu_ids) != cpu:
        return False
    if cpumask_next_and(cpu, hctx.cpumask, k.cpu_online_mask, k.nr_cpu_ids) < k.nr_cpu_ids:
        return False
    return True


# Not upstream: with tags of its own (no shared tag set), a hw queue has a request
# as soon as a bit of its tag map is set, initialised or not.  Counting bits
# closes the window rq->mq_hctx leaves (hctx-drain fixed, hctx-connect fixed)
# without a second INACTIVE test; what is left is the pairing of the INACTIVE
# test with the tag's store (TAG_INACTIVE_FULL_BARRIER).
DRAIN_COUNTS_TAGS = Patch(
    "blk-mq-drain-counts-tags",
    "",
    "blk-mq: the hotplug drain counts the hw queue's allocated tags, not its initialised requests "
    "(a proposal, not upstream; unshared tags only)",
)


# blk_mq_hctx_has_requests(), block/blk-mq.c
async def blk_mq_hctx_has_requests(hctx):
    """blk_mq_hctx_has_requests(): any allocated request of this hctx, in flight or not."""
    tags = hctx.sched_tags if hctx.sched_tags is not None else hctx.tags
    if hctx.queue.k.patched(DRAIN_COUNTS_TAGS):
        sbq = tags.bitmap_tags
        if sbq.mm is not None:
            return bool(await mm_load(sbq.mm, sbq, "map", ONCE, lambda b: f"{b:#x}"))
        await access(sbq, READ)
        return bool(sbq.map)
    found = []

    def blk_mq_has_request(rq):
        if rq.mq_hctx is not hctx:
            return True
        found.append(rq)
        return False

    await blk_mq_all_tag_iter(tags, blk_mq_has_request)
    return bool(found)


# blk_mq_hctx_notify_offline(), block/blk-mq.c
async def blk_mq_hctx_notify_offline(k, cpu, hctx):
    """blk_mq_hctx_notify_offline() (CPUHP_AP_BLK_MQ_ONLINE teardown, bf0beec0607d):
    on the hctx's last CPU, before its managed interrupt goes, stop new
    allocations and wait for every request of the hctx to complete."""
    if not cpumask_test_cpu(cpu, hctx.cpumask) or not blk_mq_last_cpu_in_hctx(k, cpu, hctx):
        return 0
    # Prevent new request from being allocated on the current hctx.  The
    # smp_mb__after_atomic() pairs with the implied barrier in
    # test_and_set_bit_lock in sbitmap_get(): either the allocator sees
    # INACTIVE or this loop sees the tag.
    await set_bit(BLK_MQ_S_INACTIVE, hctx.state)
    smp_mb__after_atomic(k)
    k.execution.event(f"{q_name(hctx)}: INACTIVE, draining")
    # If we could not grab a reference the queue has been frozen and there
    # are no requests.
    q = hctx.queue
    if await percpu_ref_tryget(q.q_usage_counter):
        while await blk_mq_hctx_has_requests(hctx):
            await msleep(k, 5)
        await percpu_ref_put(q.q_usage_counter)
    return 0


# blk_mq_hctx_notify_online(), block/blk-mq.c
async def blk_mq_hctx_notify_online(k, cpu, hctx):
    """blk_mq_hctx_notify_online() (CPUHP_AP_BLK_MQ_ONLINE startup)."""
    if cpumask_test_cpu(cpu, hctx.cpumask):
        await clear_bit(BLK_MQ_S_INACTIVE, hctx.state)
    return 0


async def blk_mq_hctx_notify_dead(k, cpu, hctx):
    """blk_mq_hctx_notify_dead(), block/blk-mq.c (CPUHP_BLK_MQ_DEAD teardown, on
    the control CPU): requests still on the dead CPU's software queue go to
    hctx->dispatch.

    Called for every hctx of every queue (multi-instance state).  Before
    bf0beec0607d nothing checks that the dead CPU is one of this hctx's: the
    first hctx to run (the newest registered) takes the ctx's requests onto its
    own dispatch list and clears the ctx's bit in its own ctx_map; the commit
    adds the cpumask test.
    """
    if k.patched(DRAIN_INACTIVE_HCTX) and not cpumask_test_cpu(cpu, hctx.cpumask):
        return 0
    ctx = hctx.queue.queue_ctx[cpu]  # __blk_mq_get_ctx(hctx->queue, cpu)
    tmp = list_head("tmp")
    await spin_lock(k, ctx.lock)
    if ctx.rq_list.items:
        await list_splice_tail_init(ctx.rq_list, tmp)
        await clear_bit(ctx.index_hw, hctx.ctx_map)  # blk_mq_hctx_clear_pending()
    await spin_unlock(k, ctx.lock)
    if not tmp.items:
        return 0
    await spin_lock(k, hctx.lock)
    await list_splice_tail_init(tmp, hctx.dispatch)
    await spin_unlock(k, hctx.lock)
    await blk_mq_run_hw_queue(hctx, True)
    return 0


# blk_mq_init(), block/blk-mq.c
def blk_mq_init_cpuhp(k):
    """blk_mq_init(): the block layer's two hotplug states (the online one from bf0beec0607d)."""
    k.cpuhp_hp_states[CPUHP_BLK_MQ_DEAD].teardown = blk_mq_hctx_notify_dead
    if k.patched(DRAIN_INACTIVE_HCTX):
        step = k.cpuhp_hp_states[CPUHP_AP_BLK_MQ_ONLINE]
        step.startup = blk_mq_hctx_notify_online
        step.teardown = blk_mq_hctx_notify_offline


# ------------------------------------------------------- freeze and quiesce


# blk_freeze_set_owner(), block/blk-mq.c (v6.13)
def blk_freeze_set_owner(q, owner):
    """blk_freeze_set_owner() (v6.13): only the first freeze by its owner is a
    lockdep acquisition; a non-owner freeze (owner None) never is."""
    if owner is None:
        return False
    if not q.mq_freeze_depth:
        q.mq_freeze_owner = owner
        q.mq_freeze_owner_depth = 1
        return True
    if owner is q.mq_freeze_owner:
        q.mq_freeze_owner_depth += 1
    return False


# blk_unfreeze_check_owner(), block/blk-mq.c (v6.13)
def blk_unfreeze_check_owner(q, current):
    """blk_unfreeze_check_owner() (v6.13): the owner's last unfreeze releases."""
    if q.mq_freeze_owner is not current:
        return False
    q.mq_freeze_owner_depth -= 1
    if q.mq_freeze_owner_depth == 0:
        q.mq_freeze_owner = None
        return True
    return False


def blk_freeze_acquire_lock(q):
    """blk_freeze_acquire_lock(), block/blk.h (v6.13): rwsem_acquire(.., trylock=1)
    on both maps.  A trylock adds no dependency to the freeze, but every lock
    taken while frozen gets one from it.  The disk-dead and queue-dying cases
    (which skip a map: a dying queue, or one whose disk is dead or not yet
    added) are left out: every queue the model freezes is live and added (the
    nvme scan here only revalidates namespaces that exist).  Nothing before
    f1be1788a32e."""
    if not q.k.patched(FREEZE_LOCKDEP):
        return
    lock_acquire(q.k, q.io_lockdep_map, trylock=True)
    lock_acquire(q.k, q.q_lockdep_map, trylock=True)


def blk_unfreeze_release_lock(q):
    """blk_unfreeze_release_lock(), block/blk.h (v6.13)."""
    if not q.k.patched(FREEZE_LOCKDEP):
        return
    lock_release(q.k, q.q_lockdep_map)
    lock_release(q.k, q.io_lockdep_map)


# __blk_freeze_queue_start(), block/blk-mq.c (v6.13)
async def __blk_freeze_queue_start(q, owner):
    """__blk_freeze_queue_start() (v6.13 shape; v5.2+ behaviour): the first
    freezer kills q_usage_counter.  Returns whether lockdep should see it."""
    k = q.k
    await mutex_lock(k, q.mq_freeze_lock)
    freeze = blk_freeze_set_owner(q, owner)
    q.mq_freeze_depth += 1
    if q.mq_freeze_depth == 1:
        q.freeze_owner = k.execution.current
        k.execution.event(f"{q.name}: frozen (freeze depth 1)")
        await percpu_ref_kill(q.q_usage_counter)
        await mutex_unlock(k, q.mq_freeze_lock)
        if q.queue_hw_ctx:
            await blk_mq_run_hw_queues(q, False)
    else:
        await mutex_unlock(k, q.mq_freeze_lock)
    return freeze


# blk_freeze_queue_start(), block/blk-mq.c
async def blk_freeze_queue_start(q):
    """blk_freeze_queue_start(): freeze, owned by the caller (lockdep holds it until its unfreeze)."""
    if await __blk_freeze_queue_start(q, q.k.execution.current):
        blk_freeze_acquire_lock(q)


# blk_freeze_queue_start_non_owner(), block/blk-mq.c (v6.13)
async def blk_freeze_queue_start_non_owner(q):
    """blk_freeze_queue_start_non_owner() (v6.13): for a freeze that another
    context ends (nvme's reset and reconnect works): invisible to lockdep."""
    await __blk_freeze_queue_start(q, None)


# blk_mq_freeze_queue_wait(), block/blk-mq.c
async def blk_mq_freeze_queue_wait(q):
    """blk_mq_freeze_queue_wait(): until every reference is dropped."""
    await wait_event(q.k, q.mq_freeze_drain_wq, lambda: q.q_usage_counter.count == 0, what="blk_mq_freeze_queue_wait")


# blk_mq_freeze_queue_wait_timeout(), block/blk-mq.c
async def blk_mq_freeze_queue_wait_timeout(q, timeout_ns):
    """blk_mq_freeze_queue_wait_timeout(): false if the references did not drain in time."""
    from blkrace.engine import TIMED_OUT
    from blkrace.kernel.sched import schedule_on

    await access(q.mq_freeze_drain_wq, READ)
    deadline = q.k.now + timeout_ns
    while not await percpu_ref_is_zero(q.q_usage_counter):
        left = deadline - q.k.now
        if left <= 0:
            return False
        if await schedule_on(q.k, q.mq_freeze_drain_wq.wq, left, what="blk_mq_freeze_queue_wait_timeout") is TIMED_OUT:
            return await percpu_ref_is_zero(q.q_usage_counter)
    return True


# blk_mq_freeze_queue(), block/blk-mq.c
async def blk_mq_freeze_queue(q):
    """blk_mq_freeze_queue(): start the freeze and wait for it."""
    await blk_freeze_queue_start(q)
    await blk_mq_freeze_queue_wait(q)


# __blk_mq_unfreeze_queue(), block/blk-mq.c
async def __blk_mq_unfreeze_queue(q):
    """__blk_mq_unfreeze_queue(): the last unfreezer brings the counter back to life."""
    k = q.k
    await mutex_lock(k, q.mq_freeze_lock)
    unfreeze = blk_unfreeze_check_owner(q, k.execution.current)
    q.mq_freeze_depth -= 1
    WARN_ON_ONCE(k, q.mq_freeze_depth < 0)
    if q.mq_freeze_depth == 0:
        await percpu_ref_resurrect(q.q_usage_counter)
        q.freeze_owner = None
        k.execution.event(f"{q.name}: unfrozen")
        await wake_up(k, q.mq_freeze_wq)
    await mutex_unlock(k, q.mq_freeze_lock)
    return unfreeze


# blk_mq_unfreeze_queue(), block/blk-mq.c
async def blk_mq_unfreeze_queue(q):
    """blk_mq_unfreeze_queue(): unfreeze; the owner's last one releases lockdep's hold."""
    if await __blk_mq_unfreeze_queue(q):
        blk_unfreeze_release_lock(q)


# blk_mq_unfreeze_queue_non_owner(), block/blk-mq.c (v6.13)
async def blk_mq_unfreeze_queue_non_owner(q):
    """blk_mq_unfreeze_queue_non_owner() (v6.13): ends a non-owner freeze."""
    await __blk_mq_unfreeze_queue(q)


# blk_mq_quiesce_queue(), block/blk-mq.c
async def blk_mq_quiesce_queue(q):
    """blk_mq_quiesce_queue(): no ->queue_rq runs or starts once this returns."""
    k = q.k
    # blk_mq_quiesce_queue_nowait(): blk_queue_flag_set(), under queue_lock
    # with a quiesce depth since e70feb8b3e68.
    concurrent = k.patched(CONCURRENT_QUIESCE)
    if concurrent:
        flags = await spin_lock_irqsave(k, q.queue_lock)
        q.quiesce_depth += 1
    await set_bit(QUEUE_FLAG_QUIESCED, q.queue_flags)
    if concurrent:
        await spin_unlock_irqrestore(k, q.queue_lock, flags)
    q.quiesce_owner = k.execution.current
    k.execution.event(f"{q.name}: quiesced")
    # "Note: this function does not prevent that the struct request end_io()
    # callback function is invoked": wait for the dispatchers, under SRCU
    # per BLOCKING hctx, under RCU for the others.
    rcu = False
    for hctx in q.queue_hw_ctx:
        if hctx.flags & BLK_MQ_F_BLOCKING:
            await synchronize_srcu(k, hctx.srcu)
        else:
            rcu = True
    if rcu:
        await synchronize_rcu(k)


# blk_mq_unquiesce_queue(), block/blk-mq.c
async def blk_mq_unquiesce_queue(q):
    """blk_mq_unquiesce_queue(): dispatch again, and run the hw queues."""
    k = q.k
    if k.patched(CONCURRENT_QUIESCE):
        # e70feb8b3e68: the last unquiesce clears the flag, under queue_lock.
        flags = await spin_lock_irqsave(k, q.queue_lock)
        q.quiesce_depth -= 1
        run_queue = q.quiesce_depth == 0
        if run_queue:
            await clear_bit(QUEUE_FLAG_QUIESCED, q.queue_flags)  # blk_queue_flag_clear()
        await spin_unlock_irqrestore(k, q.queue_lock, flags)
        if not run_queue:
            return
    else:
        await clear_bit(QUEUE_FLAG_QUIESCED, q.queue_flags)  # blk_queue_flag_clear()
    q.quiesce_owner = None
    k.execution.event(f"{q.name}: unquiesced")
    # dispatch requests which are inserted during quiescing
    await blk_mq_run_hw_queues(q, True)


# blk_mq_update_nr_hw_queues(), block/blk-mq.c
async def blk_mq_update_nr_hw_queues(set_, nr_hw_queues):
    """blk_mq_update_nr_hw_queues(): freezes every queue of the tag set (the
    remapping itself is left out: the number of hw queues stays the same)."""
    for q in set_.queues:
        await blk_mq_freeze_queue(q)
    for q in set_.queues:
        await blk_mq_unfreeze_queue(q)


# blk_mq_tagset_busy_iter(), block/blk-mq-tag.c
async def blk_mq_tagset_busy_iter(set_, fn):
    """blk_mq_tagset_busy_iter(): every started request holding a driver tag."""
    for tags in set_.tags:
        # bt_tags_for_each() -> bt_tags_iter() with BT_TAG_ITER_STARTED (v5.8):
        # the set bits of the map (one word, read once), tags->rqs[bitnr] for
        # each ("We can hit rq == NULL here, because the tagging functions test
        # and set the bit before assigning ->rqs[]"), then
        # blk_mq_request_started() at a step of its own, so that a completion,
        # free or requeue of that request can fall between two of them.
        await access(tags.bitmap_tags, READ)
        bits = tags.bitmap_tags.map
        for tag in range(tags.nr_tags):
            if not bits >> tag & 1:
                continue
            rq = tags.rqs[tag]
            if rq is not None and await blk_mq_request_started(rq):
                if not await fn(rq):
                    return
