"""NVMe over fabrics (TCP) with native multipath: drivers/nvme/host/{core,multipath,tcp}.c.

Kernel baseline: the driver is v5.12's.  The block layer under it is the
model's v5.8 block layer, so the head's submit path is v5.8's
(direct_make_request(), entering the path's queue inside the SRCU section)
unless ``block-remove-direct-make-request`` (5a6c35f9af41, v5.9) is on: every
variant but ``fixed`` runs without it, the era in which the deadlock is
reachable.  Later commits are toggles of their own (below).

One subsystem, controllers (paths) each with a tag set and a namespace
request queue, and the multipath head: a bio-based disk whose ->submit_bio
picks a path under ``head->srcu``.  Controller reset tears the I/O queues
down (freeze, quiesce, stop, cancel) and sets them up again (ANA log read,
start queues, wait for the freeze, update nr_hw_queues, unfreeze, scan).

Seed 002's attempts are toggles that change exactly what the thread changes:

* ``block-remove-direct-make-request`` (5a6c35f9af41, v5.9): the head
  submits with submit_bio_noacct(), deferred on current->bio_list until the
  SRCU read section has ended; without it, direct_make_request() enters the
  path's queue inside the section (the era of the report);
* ``nvme-mpath-submit-bio-direct`` (hch, 22 March 2021, not merged):
  blk_mq_submit_bio_direct(), a NOWAIT queue entry with a retry on another
  path, but still blk_mq_submit_bio() (and its tag sleep) inside the section;
* ``nvme-tcp-start-queues-in-teardown`` (Sagi's experiment): always restart
  the queues at the end of the teardown;
* ``nvme-mpath-req-nowait`` (Hannes's proposal): REQ_NOWAIT on multipath bios;
* ``nvme-remove-namespaces-unquiesce`` (1b95e8179160, v6.5): removing a
  controller whose reset ended in failed reconnects unquiesces its I/O queues
  first (found by the explorer here once ctrl_loss_tmo could expire);
* ``nvme-tcp-fix-unbalanced-freeze`` (99dc264014d5, v6.5): the freeze starts
  in configure_io_queues() instead of the teardown (and is undone when the
  freeze wait times out).

Reconnects: the target may refuse connects (``ctrl.refuse_connects``); a
failed setup retries every reconnect_delay (connect_work on nvme_wq) until
ctrl_loss_tmo is spent, then the controller is deleted: its namespaces are
removed (the path leaves the head after an SRCU grace period, the queue is
marked dying and drained) and the I/O queues torn down for good.

A request that times out on a LIVE controller starts error recovery
(err_work: teardown, unquiesce to fail fast, reconnect after reconnect_delay);
on a controller that is not LIVE it is failed at once as host-aborted.

Left out: admin commands as such (the ANA log read is immediate, a refused
connect fails before it; the admin queue's teardown), keep-alive,
Identify before the scan's freezes, nvme_kill_queues() of a DEAD controller,
DELETING_NOIO, per-node paths; unbound workqueues run on the queuing CPU.
"""

from __future__ import annotations

from blkrace.block import blk_mq
from blkrace.block.blk_core import blk_alloc_queue, blk_cleanup_queue, direct_make_request, submit_bio_noacct
from blkrace.block.types import (
    BLK_EH_DONE,
    BLK_EH_RESET_TIMER,
    BLK_MQ_F_BLOCKING,
    BLK_MQ_F_SHOULD_MERGE,
    BLK_STS_IOERR,
    BLK_STS_OK,
    BLK_STS_RESOURCE,
    MQ_RQ_COMPLETE,
    REQ_NOWAIT,
    REQ_NVME_MPATH,
    blk_mq_ops,
    blk_mq_tag_set,
)
from blkrace.engine import NSEC_PER_SEC, NSEC_PER_USEC, READ, SYNC, WRITE, access
from blkrace.kernel.bug import WARN_ON_ONCE
from blkrace.kernel.locking.mutex import mutex, mutex_lock, mutex_unlock
from blkrace.kernel.locking.rcu import synchronize_rcu
from blkrace.kernel.locking.spinlock import spin_lock_irq, spin_unlock_irq, spinlock_t
from blkrace.kernel.locking.srcu import srcu_read_lock, srcu_read_unlock, srcu_struct, synchronize_srcu
from blkrace.kernel.machine import SOFTIRQ
from blkrace.kernel.patch import Patch
from blkrace.kernel.sched import run_in_context
from blkrace.kernel.workqueue import (
    INIT_DELAYED_WORK,
    INIT_WORK,
    WORK_CPU_UNBOUND,
    WQ_HIGHPRI,
    WQ_MEM_RECLAIM,
    WQ_UNBOUND,
    alloc_workqueue,
    cancel_work_sync,
    flush_work,
    queue_delayed_work_on,
    queue_work,
    queue_work_on,
)

REMOVE_DIRECT_MAKE_REQUEST = Patch(
    "block-remove-direct-make-request", "5a6c35f9af41", "block: remove direct_make_request"
)
SUBMIT_BIO_DIRECT = Patch(
    "nvme-mpath-submit-bio-direct",
    "",
    "blk-mq: add a blk_mq_submit_bio_direct API; nvme-multipath: don't block on blk_queue_enter of the "
    "underlying device (March 2021, not merged)",
)
START_QUEUES_IN_TEARDOWN = Patch(
    "nvme-tcp-start-queues-in-teardown", "", "nvme-tcp: always nvme_start_queues() in the teardown (experiment)"
)
MPATH_REQ_NOWAIT = Patch("nvme-mpath-req-nowait", "", "nvme-multipath: REQ_NVME_MPATH | REQ_NOWAIT (proposal)")
REMOVE_UNQUIESCE = Patch(
    "nvme-remove-namespaces-unquiesce",
    "1b95e8179160",
    "nvme: fix possible hang when removing a controller during error recovery",
)
FREEZE_IN_SETUP = Patch(
    "nvme-tcp-fix-unbalanced-freeze", "99dc264014d5", "nvme-tcp: fix potential unbalanced freeze & unfreeze"
)

# enum nvme_ctrl_state
NVME_CTRL_NEW, NVME_CTRL_LIVE, NVME_CTRL_RESETTING, NVME_CTRL_CONNECTING, NVME_CTRL_DELETING = range(5)
CTRL_STATE_NAMES = ("NEW", "LIVE", "RESETTING", "CONNECTING", "DELETING")
# ANA states
NVME_ANA_OPTIMIZED, NVME_ANA_NONOPTIMIZED, NVME_ANA_INACCESSIBLE = 1, 2, 3
NVME_SC_HOST_PATH_ERROR = 0x370
NVME_SC_HOST_ABORTED_CMD = 0x371
NVME_IO_TIMEOUT = 30 * NSEC_PER_SEC
NVMF_DEF_RECONNECT_DELAY = 10  # seconds
NVMF_DEF_CTRL_LOSS_TMO = 600  # seconds
EBUSY, ENODEV, EINVAL, ECONNREFUSED = 16, 19, 22, 111


class nvmf_ctrl_options:
    """struct nvmf_ctrl_options: the reconnect policy (nvmf_parse_options())."""

    __slots__ = ("reconnect_delay", "ctrl_loss_tmo", "max_reconnects")

    def __init__(self, reconnect_delay=NVMF_DEF_RECONNECT_DELAY, ctrl_loss_tmo=NVMF_DEF_CTRL_LOSS_TMO):
        self.reconnect_delay = reconnect_delay
        self.ctrl_loss_tmo = ctrl_loss_tmo
        # "opts->max_reconnects = DIV_ROUND_UP(ctrl_loss_tmo, opts->reconnect_delay)"; -1: forever
        self.max_reconnects = -1 if ctrl_loss_tmo < 0 else -(-ctrl_loss_tmo // reconnect_delay)


class nvme_request:
    """struct nvme_request, drivers/nvme/host/nvme.h: nvme_req(rq), the request's pdu."""

    __slots__ = ("rq", "status")

    def __init__(self, rq):
        self.rq = rq
        self.status = 0

    @property
    def name(self):
        return f"nvme_req({self.rq.name})"


class nvme_ns_head:
    __slots__ = ("name", "list", "srcu", "current_path", "requeue_list", "requeue_lock", "requeue_work", "lock", "disk")

    def __init__(self, k, name):
        self.name = name
        self.list = []  # the paths: nvme_ns of every controller
        self.srcu = srcu_struct(f"{name}->srcu")
        self.current_path = None
        self.requeue_list = []
        self.requeue_lock = spinlock_t(f"{name}->requeue_lock")
        self.requeue_work = INIT_WORK(nvme_requeue_work, f"{name}->requeue_work", self)
        self.lock = mutex(f"{name}->lock")
        self.disk = None


class nvme_ctrl:
    __slots__ = (
        "k",
        "name",
        "state",
        "tagset",
        "namespaces",
        "reset_work",
        "ana_work",
        "ana_log",
        "ana_lock",
        "queue_live",
        "generation",
        "latency_ns",
        "io_cpu",
        "io_work",
        "responses",
        "opts",
        "nr_reconnects",
        "connect_work",
        "delete_work",
        "scan_work",
        "err_work",
        "refuse_connects",
    )

    def __init__(self, k, name, latency_ns, io_cpu, opts=None):
        self.k = k
        self.name = name
        self.state = NVME_CTRL_LIVE
        self.tagset = None
        self.namespaces = []
        self.reset_work = INIT_WORK(nvme_reset_ctrl_work, f"{name}->reset_work", self)
        self.ana_work = INIT_WORK(nvme_ana_work, f"{name}->ana_work", self)
        self.ana_log = NVME_ANA_OPTIMIZED  # what the controller's ANA log page says for our group
        self.ana_lock = mutex(f"{name}->ana_lock")
        self.queue_live = True  # NVME_TCP_Q_LIVE of the I/O queues
        self.generation = 0  # a torn-down connection's completions are dropped
        self.latency_ns = latency_ns
        self.io_cpu = io_cpu
        self.io_work = INIT_WORK(nvme_tcp_io_work, f"{name}->io_work", self)
        self.responses = []  # received on the socket, not yet processed
        self.opts = opts or nvmf_ctrl_options()
        self.nr_reconnects = 0
        self.connect_work = INIT_DELAYED_WORK(nvme_tcp_reconnect_ctrl_work, f"{name}->connect_work", self)
        self.delete_work = INIT_WORK(nvme_delete_ctrl_work, f"{name}->delete_work", self)
        self.scan_work = INIT_WORK(nvme_scan_work, f"{name}->scan_work", self)
        self.err_work = INIT_WORK(nvme_tcp_error_recovery_work, f"{name}->err_work", self)
        self.refuse_connects = 0  # the target side: how many connects it refuses from now on


class nvme_ns:
    __slots__ = ("name", "ctrl", "head", "queue", "ana_state")

    def __init__(self, name, ctrl, head):
        self.name = name
        self.ctrl = ctrl
        self.head = head
        self.queue = None
        self.ana_state = NVME_ANA_OPTIMIZED


# ------------------------------------------------------------------ paths


# nvme_path_is_disabled(), drivers/nvme/host/multipath.c
async def nvme_path_is_disabled(ns):
    """nvme_path_is_disabled(): only a LIVE controller's path carries I/O
    (ctrl->state, a plain load that nvme_change_ctrl_state() races with: a
    step on the controller; the NVME_NS_ANA_PENDING bit is not modelled)."""
    await access(ns.ctrl, READ)
    return ns.ctrl.state != NVME_CTRL_LIVE


# model: the choice of __nvme_find_path(), once each path's state is known
def nvme_pick_path(paths, ana, disabled):
    """The first optimized path, else a non-optimized one (``ana``: the
    ana_state of each of ``paths``; ``disabled``: whether it is)."""
    found = fallback = None
    for ns, state, off in zip(paths, ana, disabled):
        if off:
            continue
        if state == NVME_ANA_OPTIMIZED and found is None:
            found = ns
        elif state == NVME_ANA_NONOPTIMIZED and fallback is None:
            fallback = ns
    return found if found is not None else fallback


# __nvme_find_path(), drivers/nvme/host/multipath.c
async def __nvme_find_path(head, seen=None):
    """__nvme_find_path(): the first optimized path, else a non-optimized one.

    Steps: the path list and every ns->ana_state (plain loads, read together
    on the head: the kernel reads each ana_state after that path's
    ctrl->state, and plain loads of different locations may be read in
    either order), one ctrl->state read per path, then
    rcu_assign_pointer(head->current_path), a store on the head.
    ``seen``: the list and ana_states nvme_find_path() has already read."""
    if seen is None:
        await access(head, READ)
        seen = (list(head.list), [ns.ana_state for ns in head.list])
    paths, ana = seen
    disabled = [await nvme_path_is_disabled(ns) for ns in paths]
    found = nvme_pick_path(paths, ana, disabled)
    if found is not None:
        await access(head, WRITE)
        head.current_path = found  # rcu_assign_pointer()
    return found


# nvme_find_path(), drivers/nvme/host/multipath.c
async def nvme_find_path(head):
    """nvme_find_path(): the current path if still usable and optimized
    (nvme_path_is_optimized(): its ctrl->state, then its ana_state)."""
    await access(head, READ)
    ns = head.current_path  # srcu_dereference()
    seen = (list(head.list), [p.ana_state for p in head.list])
    optimized = ns is not None and ns.ana_state == NVME_ANA_OPTIMIZED
    if ns is None or await nvme_path_is_disabled(ns) or not optimized:
        return await __nvme_find_path(head, seen)
    return ns


# nvme_available_path(), drivers/nvme/host/multipath.c
async def nvme_available_path(head):
    """nvme_available_path(): a controller that may come back (resetting,
    connecting); each path's ctrl->state is a step on its controller."""
    await access(head, READ)
    for ns in list(head.list):
        await access(ns.ctrl, READ)
        if ns.ctrl.state in (NVME_CTRL_LIVE, NVME_CTRL_RESETTING, NVME_CTRL_CONNECTING):
            return True
    return False


# nvme_mpath_clear_current_path(), drivers/nvme/host/multipath.c
async def nvme_mpath_clear_current_path(ns):
    """nvme_mpath_clear_current_path(): rcu_access_pointer(), then
    rcu_assign_pointer(NULL) if it was this path: a step on the head."""
    head = ns.head
    await access(head, WRITE)
    if head.current_path is ns:
        head.current_path = None


# nvme_ns_head_submit_bio(), drivers/nvme/host/multipath.c
async def nvme_ns_head_submit_bio(k, bio):
    """nvme_ns_head_submit_bio(): the head disk's ->submit_bio (v5.12's name;
    nvme_ns_head_make_request() before v5.9, whose direct_make_request() is
    what runs without 5a6c35f9af41)."""
    head = bio.bi_disk.queuedata
    while True:  # retry: (nvme-mpath-submit-bio-direct)
        srcu_idx = await srcu_read_lock(k, head.srcu)
        ns = await nvme_find_path(head)
        if ns is not None:
            bio.bi_disk = ns.queue
            bio.bi_opf |= REQ_NVME_MPATH
            if k.patched(MPATH_REQ_NOWAIT):
                bio.bi_opf |= REQ_NOWAIT
            if k.patched(SUBMIT_BIO_DIRECT):
                if not await blk_mq.blk_mq_submit_bio_direct(bio):
                    # The path's queue is frozen: forget it, drop the lock, retry.
                    await nvme_mpath_clear_current_path(ns)
                    await srcu_read_unlock(k, head.srcu, srcu_idx)
                    continue
            elif k.patched(REMOVE_DIRECT_MAKE_REQUEST):
                await submit_bio_noacct(k, bio)  # only queued on current->bio_list here
            else:
                await direct_make_request(k, bio)  # enters ns->queue right here
        elif await nvme_available_path(head):
            await spin_lock_irq(k, head.requeue_lock)
            head.requeue_list.append(bio)
            await spin_unlock_irq(k, head.requeue_lock)
        else:
            bio.bi_status = BLK_STS_IOERR  # "no usable path - requeuing I/O" failed: none left
            await blk_mq.bio_endio(k, bio)
        await srcu_read_unlock(k, head.srcu, srcu_idx)
        return


# nvme_requeue_work(), drivers/nvme/host/multipath.c
async def nvme_requeue_work(k, work):
    """nvme_requeue_work(): resubmit the parked bios through the head."""
    head = work.data
    await spin_lock_irq(k, head.requeue_lock)
    bios, head.requeue_list = head.requeue_list, []
    await spin_unlock_irq(k, head.requeue_lock)
    for bio in bios:
        bio.bi_disk = head.disk  # reset disk to the mpath node and resubmit
        await submit_bio_noacct(k, bio)


# nvme_mpath_set_live(), drivers/nvme/host/multipath.c
async def nvme_mpath_set_live(k, ns):
    """nvme_mpath_set_live(): make current_path visible to every future
    (re)submission, then kick the requeued I/O: synchronize_srcu() first."""
    head = ns.head
    await mutex_lock(k, head.lock)
    if ns.ana_state == NVME_ANA_OPTIMIZED:
        srcu_idx = await srcu_read_lock(k, head.srcu)
        await __nvme_find_path(head)
        await srcu_read_unlock(k, head.srcu, srcu_idx)
    await mutex_unlock(k, head.lock)
    await synchronize_srcu(k, head.srcu)
    await queue_work(k, k.kblockd_workqueue, head.requeue_work)  # kblockd_schedule_work()


# -------------------------------------------------------------------- ANA


# nvme_update_ns_ana_state(), drivers/nvme/host/multipath.c
async def nvme_update_ns_ana_state(k, state, ns):
    """nvme_update_ns_ana_state()."""
    await access(ns.head, WRITE)
    ns.ana_state = state
    if state in (NVME_ANA_OPTIMIZED, NVME_ANA_NONOPTIMIZED):  # nvme_state_is_live()
        await nvme_mpath_set_live(k, ns)


# nvme_update_ana_state(), drivers/nvme/host/multipath.c
async def nvme_update_ana_state(k, ctrl, state):
    """nvme_update_ana_state(): every namespace of the group."""
    for ns in ctrl.namespaces:
        await nvme_update_ns_ana_state(k, state, ns)


# nvme_parse_ana_log(), drivers/nvme/host/multipath.c
async def nvme_parse_ana_log(k, ctrl, cb):
    """nvme_parse_ana_log(): one group descriptor here."""
    await access(ctrl, READ)
    await cb(k, ctrl, ctrl.ana_log)


# nvme_read_ana_log(), drivers/nvme/host/multipath.c
async def nvme_read_ana_log(k, ctrl):
    """nvme_read_ana_log(): get the log page (immediate here) and apply it."""
    await mutex_lock(k, ctrl.ana_lock)
    await nvme_parse_ana_log(k, ctrl, nvme_update_ana_state)
    await mutex_unlock(k, ctrl.ana_lock)


# nvme_ana_work(), drivers/nvme/host/multipath.c
async def nvme_ana_work(k, work):
    """nvme_ana_work(): an ANA change notice (AEN) arrived."""
    ctrl = work.data
    await access(ctrl, READ)  # ctrl->state, which nvme_change_ctrl_state() writes under ctrl->lock
    if ctrl.state != NVME_CTRL_LIVE:
        return
    await nvme_read_ana_log(k, ctrl)


# -------------------------------------------------------------------- I/O


# nvme_tcp_queue_rq(), drivers/nvme/host/tcp.c
async def nvme_tcp_queue_rq(hctx, rq, last):
    """nvme_tcp_queue_rq(): send the command, or fail a non-ready one."""
    ns = rq.q.queuedata
    ctrl = ns.ctrl
    k = ctrl.k
    req = rq.special
    if req is None:
        req = rq.special = nvme_request(rq)
    req.status = 0
    await access(ctrl, READ)
    if not ctrl.queue_live:
        # nvmf_fail_nonready_command(): multipath I/O fails over at once.
        if not rq.cmd_flags & REQ_NVME_MPATH:
            return BLK_STS_RESOURCE
        req.status = NVME_SC_HOST_PATH_ERROR
        await blk_mq.blk_mq_start_request(rq)
        await nvme_complete_rq(rq)
        return BLK_STS_OK
    # The connection the command goes out on is the one whose NVME_TCP_Q_LIVE
    # was just tested: read with it, in the same step.  A teardown after the
    # test shuts that socket down, and the command's answer never comes.
    generation = ctrl.generation
    await blk_mq.blk_mq_start_request(rq)
    k.execution.add_timer(
        ctrl.latency_ns, nvme_tcp_response, ctrl, rq, generation, name=f"{ctrl.name} answers {rq.name}"
    )
    return BLK_STS_OK


# model: the target's response arriving on the socket (nvme_tcp_data_ready() follows, drivers/nvme/host/tcp.c)
def nvme_tcp_response(ctrl, rq, generation):
    """The target's response arrives: nvme_tcp_data_ready() queues io_work on io_cpu."""
    if generation != ctrl.generation:
        return  # a torn-down connection's responses are gone
    ctrl.responses.append((rq, generation))
    run_in_context(ctrl.k, ctrl.io_cpu, SOFTIRQ, f"net_rx/{ctrl.name}", nvme_tcp_data_ready, ctrl)


# nvme_tcp_data_ready(), drivers/nvme/host/tcp.c
async def nvme_tcp_data_ready(k, ctrl):
    """nvme_tcp_data_ready(): queue_work_on(queue->io_cpu, nvme_tcp_wq, &queue->io_work)."""
    await queue_work_on(k, ctrl.io_cpu, k.nvme_tcp_wq, ctrl.io_work)


# nvme_tcp_io_work(), drivers/nvme/host/tcp.c
async def nvme_tcp_io_work(k, work):
    """nvme_tcp_io_work() -> nvme_tcp_try_recv() -> nvme_tcp_process_nvme_cqe(): complete
    what came in (a bound WQ_HIGHPRI work: it shares its CPU's pool with kblockd)."""
    ctrl = work.data
    while True:
        await access(ctrl, WRITE)
        if not ctrl.responses:
            return
        rq, generation = ctrl.responses.pop(0)
        if generation != ctrl.generation or rq.state == MQ_RQ_COMPLETE:
            continue
        await blk_mq.blk_mq_complete_request(rq)


# nvme_is_path_error(), drivers/nvme/host/nvme.h
def nvme_is_path_error(status):
    return (status & 0x700) == 0x300


# nvme_failover_req(), drivers/nvme/host/multipath.c
async def nvme_failover_req(rq):
    """nvme_failover_req(): park the bios on the head and end the request."""
    ns = rq.q.queuedata
    head = ns.head
    k = ns.ctrl.k
    await nvme_mpath_clear_current_path(ns)
    await spin_lock_irq(k, head.requeue_lock)
    if rq.bio is not None:  # blk_steal_bios()
        head.requeue_list.append(rq.bio)
        rq.bio = None
    await spin_unlock_irq(k, head.requeue_lock)
    await blk_mq.blk_mq_end_request(rq, BLK_STS_OK)
    await queue_work(k, k.kblockd_workqueue, head.requeue_work)


# nvme_complete_rq(), drivers/nvme/host/core.c
async def nvme_complete_rq(rq):
    """nvme_complete_rq() (->complete): done, or fail over on a path error."""
    req = rq.special
    if req.status == 0:
        await blk_mq.blk_mq_end_request(rq, BLK_STS_OK)
    elif rq.cmd_flags & REQ_NVME_MPATH and nvme_is_path_error(req.status):
        await nvme_failover_req(rq)
    else:
        await blk_mq.blk_mq_end_request(rq, BLK_STS_IOERR)


# nvme_tcp_complete_timed_out(), drivers/nvme/host/tcp.c
async def nvme_tcp_complete_timed_out(rq):
    """nvme_tcp_complete_timed_out(): stop the queue, fail the request as host-aborted."""
    ctrl = rq.q.queuedata.ctrl
    await nvme_tcp_stop_io_queues(ctrl.k, ctrl)  # nvme_tcp_stop_queue(): one I/O queue per controller here
    # blk_mq_request_started(rq) && !blk_mq_request_completed(rq): two
    # READ_ONCE(rq->state), each a step on the request.
    if await blk_mq.blk_mq_request_started(rq) and not await blk_mq.blk_mq_request_completed(rq):
        await access(rq.special, WRITE)
        rq.special.status = NVME_SC_HOST_ABORTED_CMD
        await blk_mq.blk_mq_complete_request(rq)


# nvme_tcp_timeout(), drivers/nvme/host/tcp.c
async def nvme_tcp_timeout(rq, reserved):
    """nvme_tcp_timeout() (v5.12): not LIVE, complete it now ("we may block
    controller teardown or setup"); LIVE, start error recovery, which cancels it."""
    ctrl = rq.q.queuedata.ctrl
    k = ctrl.k
    k.execution.event(f"{ctrl.name}: queue 1: timeout request {rq.name}")
    await access(ctrl, READ)
    if ctrl.state != NVME_CTRL_LIVE:
        await nvme_tcp_complete_timed_out(rq)
        return BLK_EH_DONE
    await nvme_tcp_error_recovery(k, ctrl)
    return BLK_EH_RESET_TIMER


# nvme_tcp_error_recovery(), drivers/nvme/host/tcp.c
async def nvme_tcp_error_recovery(k, ctrl):
    """nvme_tcp_error_recovery(): RESETTING, then err_work on nvme_reset_wq."""
    await access(ctrl, WRITE)
    if not nvme_change_ctrl_state(ctrl, NVME_CTRL_RESETTING):
        return
    k.execution.event(f"{ctrl.name}: starting error recovery")
    await queue_work(k, k.nvme_reset_wq, ctrl.err_work)


# nvme_tcp_error_recovery_work(), drivers/nvme/host/tcp.c
async def nvme_tcp_error_recovery_work(k, work):
    """nvme_tcp_error_recovery_work(): teardown, unquiesce "to fail fast
    pending requests", CONNECTING, then reconnect (after reconnect_delay) or remove."""
    ctrl = work.data
    await nvme_tcp_teardown_io_queues(k, ctrl, False)
    await nvme_start_queues(k, ctrl)
    await access(ctrl, WRITE)
    if not nvme_change_ctrl_state(ctrl, NVME_CTRL_CONNECTING):
        WARN_ON_ONCE(k, ctrl.state != NVME_CTRL_DELETING)  # "ok if we started ctrl delete"
        return
    await nvme_tcp_reconnect_or_remove(k, ctrl)


nvme_tcp_mq_ops = blk_mq_ops(queue_rq=nvme_tcp_queue_rq, complete=nvme_complete_rq, timeout=nvme_tcp_timeout)


# ----------------------------------------------------------- reset path


# nvme_change_ctrl_state(), drivers/nvme/host/core.c
def nvme_change_ctrl_state(ctrl, new_state):
    """nvme_change_ctrl_state(): the transitions the scenario takes."""
    allowed = {
        NVME_CTRL_RESETTING: (NVME_CTRL_LIVE, NVME_CTRL_NEW),
        NVME_CTRL_CONNECTING: (NVME_CTRL_RESETTING, NVME_CTRL_NEW),
        NVME_CTRL_LIVE: (NVME_CTRL_CONNECTING, NVME_CTRL_RESETTING, NVME_CTRL_NEW),
        NVME_CTRL_DELETING: (NVME_CTRL_LIVE, NVME_CTRL_RESETTING, NVME_CTRL_CONNECTING),
    }
    if ctrl.state not in allowed.get(new_state, ()):
        return False
    ctrl.state = new_state
    ctrl.k.execution.event(f"{ctrl.name}: {CTRL_STATE_NAMES[new_state]}")
    return True


# nvme_reset_ctrl(), drivers/nvme/host/core.c
async def nvme_reset_ctrl(k, ctrl):
    """nvme_reset_ctrl(): RESETTING, then the reset work (nvme_reset_wq)."""
    await access(ctrl, WRITE)
    if not nvme_change_ctrl_state(ctrl, NVME_CTRL_RESETTING):
        return -16
    await queue_work(k, k.nvme_reset_wq, ctrl.reset_work)
    return 0


# nvme_kick_requeue_lists(), drivers/nvme/host/multipath.c
async def nvme_kick_requeue_lists(k, ctrl):
    """nvme_kick_requeue_lists() (from nvme_change_ctrl_state(LIVE)): resubmit parked I/O."""
    for ns in ctrl.namespaces:
        await queue_work(k, k.kblockd_workqueue, ns.head.requeue_work)


# nvme_start_freeze(), drivers/nvme/host/core.c
async def nvme_start_freeze(k, ctrl):
    """nvme_start_freeze(): the reset work freezes, the reconnect unfreezes;
    the non-owner form (v6.13) keeps lockdep from calling that a leak."""
    for ns in ctrl.namespaces:
        await blk_mq.blk_freeze_queue_start_non_owner(ns.queue)


# nvme_unfreeze(), drivers/nvme/host/core.c
async def nvme_unfreeze(k, ctrl):
    for ns in ctrl.namespaces:
        await blk_mq.blk_mq_unfreeze_queue_non_owner(ns.queue)


# nvme_wait_freeze_timeout(), drivers/nvme/host/core.c
async def nvme_wait_freeze_timeout(k, ctrl, timeout_ns):
    for ns in ctrl.namespaces:
        if not await blk_mq.blk_mq_freeze_queue_wait_timeout(ns.queue, timeout_ns):
            return False
    return True


# nvme_stop_queues(), drivers/nvme/host/core.c
async def nvme_stop_queues(k, ctrl):
    for ns in ctrl.namespaces:
        await blk_mq.blk_mq_quiesce_queue(ns.queue)


# nvme_start_queues(), drivers/nvme/host/core.c
async def nvme_start_queues(k, ctrl):
    for ns in ctrl.namespaces:
        await blk_mq.blk_mq_unquiesce_queue(ns.queue)


# nvme_cancel_request(), drivers/nvme/host/core.c
async def nvme_cancel_request(rq):
    """nvme_cancel_request(): a started request is failed as host-aborted."""
    # "don't abort one completed request": blk_mq_request_completed(), a
    # READ_ONCE(rq->state) that a concurrent completion races with.
    if await blk_mq.blk_mq_request_completed(rq):
        return True
    await access(rq.special, WRITE)  # nvme_req(req)->status, the request's pdu
    rq.special.status = NVME_SC_HOST_ABORTED_CMD
    await blk_mq.blk_mq_complete_request(rq)
    return True


# nvme_cancel_tagset(), drivers/nvme/host/core.c
async def nvme_cancel_tagset(k, ctrl):
    await blk_mq.blk_mq_tagset_busy_iter(ctrl.tagset, nvme_cancel_request)


# nvme_tcp_stop_io_queues(), drivers/nvme/host/tcp.c
async def nvme_tcp_stop_io_queues(k, ctrl):
    """Tear the connection down: responses still on the wire are gone, and
    io_work is cancelled and waited for (cancel_work_sync(&queue->io_work))."""
    await access(ctrl, WRITE)
    ctrl.queue_live = False
    ctrl.generation += 1
    ctrl.responses.clear()
    await cancel_work_sync(k, ctrl.io_work)


# nvme_tcp_start_io_queues(), drivers/nvme/host/tcp.c
async def nvme_tcp_start_io_queues(k, ctrl):
    await access(ctrl, WRITE)
    ctrl.queue_live = True


# nvme_tcp_teardown_io_queues(), drivers/nvme/host/tcp.c
async def nvme_tcp_teardown_io_queues(k, ctrl, remove):
    """nvme_tcp_teardown_io_queues() (2875b0aecabe era unless toggled)."""
    if not k.patched(FREEZE_IN_SETUP):
        await nvme_start_freeze(k, ctrl)  # the freeze begins here and spans the reconnect
    await nvme_stop_queues(k, ctrl)
    # nvme_sync_io_queues(): no timeout handler is running in the model.
    await nvme_tcp_stop_io_queues(k, ctrl)
    await nvme_cancel_tagset(k, ctrl)
    if remove or k.patched(START_QUEUES_IN_TEARDOWN):
        await nvme_start_queues(k, ctrl)


# nvme_tcp_configure_io_queues(), drivers/nvme/host/tcp.c
async def nvme_tcp_configure_io_queues(k, ctrl, new):
    """nvme_tcp_configure_io_queues(): start, wait for the freeze, update, unfreeze."""
    await nvme_tcp_start_io_queues(k, ctrl)
    if k.patched(FREEZE_IN_SETUP):
        await nvme_start_freeze(k, ctrl)  # 99dc264014d5: after the queues start, before the unquiesce
    await nvme_start_queues(k, ctrl)
    if not await nvme_wait_freeze_timeout(k, ctrl, NVME_IO_TIMEOUT):
        # "If we timed out waiting for freeze we are likely to be stuck.
        # Fail the controller initialization just to be safe."
        if k.patched(FREEZE_IN_SETUP):
            await nvme_unfreeze(k, ctrl)  # 99dc264014d5: the freeze ends with the attempt
        # out_wait_freeze_timed_out:
        await nvme_stop_queues(k, ctrl)
        await nvme_tcp_stop_io_queues(k, ctrl)
        await nvme_cancel_tagset(k, ctrl)
        return -ENODEV
    await blk_mq.blk_mq_update_nr_hw_queues(ctrl.tagset, ctrl.tagset.nr_hw_queues)
    await nvme_unfreeze(k, ctrl)
    return 0


# nvme_update_ns_info(), drivers/nvme/host/core.c
async def nvme_update_ns_info(k, ns):
    """nvme_update_ns_info(): the scan freezes the namespace queue, then the
    multipath head's, to apply the limits (v5.12)."""
    await blk_mq.blk_mq_freeze_queue(ns.queue)
    await blk_mq.blk_mq_unfreeze_queue(ns.queue)
    await blk_mq.blk_mq_freeze_queue(ns.head.disk)
    await blk_mq.blk_mq_unfreeze_queue(ns.head.disk)


# nvme_scan_work(), drivers/nvme/host/core.c
async def nvme_scan_work(k, work):
    """nvme_scan_work(): validate every namespace (nvme_validate_ns() -> nvme_update_ns_info())."""
    ctrl = work.data
    await access(ctrl, READ)
    # "No tagset on a live ctrl means IO queues could not created"
    if ctrl.state != NVME_CTRL_LIVE or ctrl.tagset is None:
        return
    for ns in list(ctrl.namespaces):
        await nvme_update_ns_info(k, ns)


# nvme_queue_scan(), drivers/nvme/host/core.c
async def nvme_queue_scan(k, ctrl):
    """nvme_queue_scan(): "Only new queue scan work when admin and IO queues are both alive"."""
    await access(ctrl, READ)  # ctrl->state and ctrl->tagset, plain loads
    if ctrl.state == NVME_CTRL_LIVE and ctrl.tagset is not None:
        await queue_work(k, k.nvme_wq, ctrl.scan_work)


# nvme_start_ctrl(), drivers/nvme/host/core.c
async def nvme_start_ctrl(k, ctrl):
    """nvme_start_ctrl(): (keep-alive and AEN left out) the scan, and the I/O queues started."""
    await nvme_queue_scan(k, ctrl)
    await nvme_start_queues(k, ctrl)


# nvme_tcp_configure_admin_queue(), drivers/nvme/host/tcp.c
async def nvme_tcp_configure_admin_queue(k, ctrl, new):
    """nvme_tcp_configure_admin_queue(): connect the admin queue, identify
    (nvme_init_identify() -> nvme_mpath_init() reads the ANA log)."""
    await access(ctrl, WRITE)
    if ctrl.refuse_connects:
        ctrl.refuse_connects -= 1
        k.execution.event(f"{ctrl.name}: failed to connect queue: 0 ret=-111")
        return -ECONNREFUSED
    await nvme_read_ana_log(k, ctrl)
    return 0


# nvme_tcp_setup_ctrl(), drivers/nvme/host/tcp.c
async def nvme_tcp_setup_ctrl(k, ctrl, new):
    """nvme_tcp_setup_ctrl(): admin queue, I/O queues, LIVE, start (and scan)."""
    ret = await nvme_tcp_configure_admin_queue(k, ctrl, new)
    if ret:
        return ret
    ret = await nvme_tcp_configure_io_queues(k, ctrl, new)
    if ret:
        return ret  # destroy_admin: the admin queue is not modelled
    await access(ctrl, WRITE)
    if not nvme_change_ctrl_state(ctrl, NVME_CTRL_LIVE):
        # "state change failure is ok if we started ctrl delete"
        WARN_ON_ONCE(k, ctrl.state != NVME_CTRL_DELETING)
        # destroy_io:
        await nvme_stop_queues(k, ctrl)
        await nvme_tcp_stop_io_queues(k, ctrl)
        await nvme_cancel_tagset(k, ctrl)
        return -EINVAL
    await nvme_kick_requeue_lists(k, ctrl)  # from nvme_change_ctrl_state(LIVE)
    await nvme_start_ctrl(k, ctrl)
    return 0


# nvmf_should_reconnect(), drivers/nvme/host/fabrics.c
def nvmf_should_reconnect(ctrl):
    """nvmf_should_reconnect(): attempts left before ctrl_loss_tmo is spent."""
    return ctrl.opts.max_reconnects == -1 or ctrl.nr_reconnects < ctrl.opts.max_reconnects


# nvme_tcp_reconnect_or_remove(), drivers/nvme/host/tcp.c
async def nvme_tcp_reconnect_or_remove(k, ctrl):
    """nvme_tcp_reconnect_or_remove(): try again in reconnect_delay, or delete the controller."""
    await access(ctrl, READ)
    if ctrl.state != NVME_CTRL_CONNECTING:
        # "If we are resetting/deleting then do nothing"
        WARN_ON_ONCE(k, ctrl.state in (NVME_CTRL_NEW, NVME_CTRL_LIVE))
        return
    if nvmf_should_reconnect(ctrl):
        k.execution.event(f"{ctrl.name}: Reconnecting in {ctrl.opts.reconnect_delay} seconds...")
        await queue_delayed_work_on(
            k, WORK_CPU_UNBOUND, k.nvme_wq, ctrl.connect_work, ctrl.opts.reconnect_delay * NSEC_PER_SEC
        )
    else:
        k.execution.event(f"{ctrl.name}: Removing controller...")
        await nvme_delete_ctrl(k, ctrl)


# nvme_tcp_reconnect_ctrl_work(), drivers/nvme/host/tcp.c
async def nvme_tcp_reconnect_ctrl_work(k, work):
    """nvme_tcp_reconnect_ctrl_work() (connect_work)."""
    ctrl = work.data
    ctrl.nr_reconnects += 1
    if await nvme_tcp_setup_ctrl(k, ctrl, False):
        k.execution.event(f"{ctrl.name}: Failed reconnect attempt {ctrl.nr_reconnects}")
        await nvme_tcp_reconnect_or_remove(k, ctrl)
        return
    k.execution.event(f"{ctrl.name}: Successfully reconnected ({ctrl.nr_reconnects} attempt)")
    ctrl.nr_reconnects = 0


# nvme_reset_ctrl_work(), drivers/nvme/host/tcp.c
async def nvme_reset_ctrl_work(k, work):
    """nvme_reset_ctrl_work() (nvme-tcp): teardown, CONNECTING, setup; on failure, reconnect or remove."""
    ctrl = work.data
    await nvme_tcp_teardown_io_queues(k, ctrl, False)
    await access(ctrl, WRITE)
    if not nvme_change_ctrl_state(ctrl, NVME_CTRL_CONNECTING):
        WARN_ON_ONCE(k, ctrl.state != NVME_CTRL_DELETING)  # "ok if we started ctrl delete"
        return
    if await nvme_tcp_setup_ctrl(k, ctrl, False):
        # out_fail:
        ctrl.nr_reconnects += 1
        await nvme_tcp_reconnect_or_remove(k, ctrl)


# ---------------------------------------------------------------- delete


# nvme_delete_ctrl(), drivers/nvme/host/core.c
async def nvme_delete_ctrl(k, ctrl):
    """nvme_delete_ctrl(): DELETING, then the delete work (nvme_delete_wq)."""
    await access(ctrl, WRITE)
    if not nvme_change_ctrl_state(ctrl, NVME_CTRL_DELETING):
        return -EBUSY
    if not await queue_work(k, k.nvme_delete_wq, ctrl.delete_work):
        return -EBUSY
    return 0


# nvme_delete_ctrl_work(), drivers/nvme/host/core.c
async def nvme_delete_ctrl_work(k, work):
    """nvme_delete_ctrl_work() -> nvme_do_delete_ctrl()."""
    ctrl = work.data
    k.execution.event(f"{ctrl.name}: Removing ctrl")
    await flush_work(k, ctrl.reset_work)
    await nvme_remove_namespaces(k, ctrl)
    await nvme_tcp_delete_ctrl(k, ctrl)


# nvme_remove_namespaces(), drivers/nvme/host/core.c
async def nvme_remove_namespaces(k, ctrl):
    """nvme_remove_namespaces(): after any scan, every namespace goes."""
    if k.patched(REMOVE_UNQUIESCE):
        # 1b95e8179160: "Unquiesce io queues so any pending IO won't hang":
        # a reset that ended in a failed reconnect left them quiesced, and
        # blk_cleanup_queue() below waits for the requests parked there.
        await nvme_start_queues(k, ctrl)
    await flush_work(k, ctrl.scan_work)  # "prevent racing with ns scanning"
    ns_list, ctrl.namespaces = ctrl.namespaces, []
    for ns in ns_list:
        await nvme_ns_remove(k, ns)


# nvme_ns_remove(), drivers/nvme/host/core.c
async def nvme_ns_remove(k, ns):
    """nvme_ns_remove() (v5.12): out of the head's path list, wait for the
    submitters that may still use it, then tear its queue down."""
    head = ns.head
    await access(head, WRITE)
    head.list.remove(ns)  # list_del_rcu(&ns->siblings) under subsys->lock
    await synchronize_rcu(k)  # "guarantee not available in head->list"
    await nvme_mpath_clear_current_path(ns)
    await synchronize_srcu(k, head.srcu)  # "wait for concurrent submissions"
    await blk_cleanup_queue(ns.queue)  # del_gendisk() + blk_cleanup_queue()
    await nvme_mpath_check_last_path(k, ns)


# nvme_mpath_check_last_path(), drivers/nvme/host/nvme.h
async def nvme_mpath_check_last_path(k, ns):
    """nvme_mpath_check_last_path(): the last path gone, kick the parked
    bios so that they fail (kblockd_schedule_work(&head->requeue_work))."""
    head = ns.head
    await access(head, READ)
    if not head.list:
        await queue_work(k, k.kblockd_workqueue, head.requeue_work)


# nvme_tcp_delete_ctrl(), drivers/nvme/host/tcp.c
async def nvme_tcp_delete_ctrl(k, ctrl):
    """nvme_tcp_delete_ctrl() -> nvme_tcp_teardown_ctrl(ctrl, true): the I/O queues, for good."""
    await nvme_tcp_teardown_io_queues(k, ctrl, True)


# ------------------------------------------------------------------ setup


# model: nvme_init_subsystem() (drivers/nvme/host/core.c) for the scenario's subsystem
def nvme_alloc_subsystem(k, name="nvme0n1", nr_ctrls=2, queue_depth=2, latency_us=100, ana_states=None):
    """Controllers, their namespaces (one each) and the multipath head over them."""
    # nvme_core_init(): unbound, reclaim-safe workqueues
    k.nvme_reset_wq = alloc_workqueue(k, "nvme-reset-wq", WQ_UNBOUND | WQ_MEM_RECLAIM)
    k.nvme_wq = alloc_workqueue(k, "nvme-wq", WQ_UNBOUND | WQ_MEM_RECLAIM)
    k.nvme_delete_wq = alloc_workqueue(k, "nvme-delete-wq", WQ_UNBOUND | WQ_MEM_RECLAIM)
    k.nvme_tcp_wq = alloc_workqueue(k, "nvme_tcp_wq", WQ_MEM_RECLAIM | WQ_HIGHPRI)
    head = nvme_ns_head(k, name)
    head.disk = blk_alloc_queue(k, name, nvme_ns_head_submit_bio)
    head.disk.queuedata = head
    ctrls = []
    for i in range(nr_ctrls):
        ctrl = nvme_ctrl(k, f"nvme{i}", latency_us * NSEC_PER_USEC, io_cpu=i % k.nr_cpu_ids)
        # nvme_tcp_alloc_tagset(): BLK_MQ_F_SHOULD_MERGE | BLK_MQ_F_BLOCKING (queue_rq may send inline)
        set_ = blk_mq_tag_set(nvme_tcp_mq_ops, 1, queue_depth, BLK_MQ_F_SHOULD_MERGE | BLK_MQ_F_BLOCKING)
        blk_mq.blk_mq_alloc_tag_set(set_, f"{ctrl.name}.tags")
        ctrl.tagset = set_
        ns = nvme_ns(f"nvme0c{i}n1", ctrl, head)
        ns.queue = blk_mq.blk_mq_init_queue(k, set_, ns.name, [0] * k.nr_cpu_ids)
        ns.queue.queuedata = ns
        if ana_states is not None:
            ns.ana_state = ctrl.ana_log = ana_states[i]
        ctrl.namespaces.append(ns)
        head.list.append(ns)
        ctrls.append(ctrl)
    # The first __nvme_find_path(), at setup (every controller LIVE).
    paths = list(head.list)
    head.current_path = nvme_pick_path(paths, [ns.ana_state for ns in paths], [False] * len(paths))
    return head, ctrls


__all__ = ["SYNC"]
