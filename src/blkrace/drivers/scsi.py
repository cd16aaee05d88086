"""SCSI mid layer (drivers/scsi/scsi_lib.c, scsi.c, v5.7) and a scsi_debug-like host.

The dispatch budget of blk-mq is SCSI's: ``sdev->device_busy`` against
``sdev->queue_depth``, one counter for all hw queues of the device's
request_queue.  Completion gives the budget back (scsi_device_unbusy) and
then runs every hw queue (scsi_end_request); nothing else kicks a queue.

The low-level driver is reduced to what the race needs: queuecommand()
starts a timer for the device latency; when it fires, the hw queue's
(managed) interrupt is raised on its CPU and the handler completes the
command (scsi_debug does the same from an hrtimer).

Under the ``lkmm`` memory model the host's and the device's counters are
atomic_t locations (Documentation/atomic_t.txt: atomic_inc_return() fully
ordered, atomic_dec() and atomic_read() not).  The budget relies on a
pairing: a dispatcher denied the budget (scsi_mq_get_budget(): the fully
ordered atomic_inc_return() of scsi_dev_queue_ready(), then the rescue's
atomic_read() of ``device_busy``) against a completion that gives it back
(scsi_device_unbusy()'s unordered atomic_dec()) and then looks for pending
work when it reruns the queues.  The completion's full barrier between the
two is sbitmap_queue_clear()'s smp_mb__before_atomic() on the freed tag
(__blk_mq_end_request() -> blk_mq_free_request(), before
blk_mq_run_hw_queues()); v5.10's scsi_run_queue_async() comment names it
("smp_mb() present in sbitmap_queue_clear() or implied in .end_io").
Either the dispatcher sees the budget free and reruns, or the completion sees
the request.
"""

from __future__ import annotations

from blkrace.block import blk_mq
from blkrace.block.types import (
    BLK_STS_DEV_RESOURCE,
    BLK_STS_OK,
    BLK_STS_RESOURCE,
    blk_mq_ops,
    blk_mq_tag_set,
)
from blkrace.engine import NSEC_PER_USEC
from blkrace.kernel.atomic import (
    atomic_dec,
    atomic_dec_return,
    atomic_inc_return,
    atomic_read,
    atomic_t,
    bitmap,
    clear_bit,
    test_and_set_bit,
)
from blkrace.kernel.irq import generic_handle_irq, request_irq

SCSI_QUEUE_DELAY = 3  # ms
SCMD_STATE_COMPLETE = 0
SDEV_RUNNING = 2


class Scsi_Host:
    __slots__ = ("name", "can_queue", "host_busy", "host_blocked", "latency_ns", "irqs", "k")

    def __init__(self, k, can_queue, latency_ns):
        self.k = k
        self.name = "host0"
        self.can_queue = can_queue
        self.host_busy = atomic_t("shost->host_busy", k=k)
        self.host_blocked = atomic_t("shost->host_blocked", k=k)
        self.latency_ns = latency_ns
        self.irqs = []  # one managed vector per hw queue


class scsi_device:
    __slots__ = ("name", "host", "queue_depth", "device_busy", "device_blocked", "sdev_state", "request_queue")

    def __init__(self, host, queue_depth):
        self.name = "sdev0"
        self.host = host
        self.queue_depth = queue_depth
        self.device_busy = atomic_t("sdev->device_busy", k=host.k)
        self.device_blocked = atomic_t("sdev->device_blocked", k=host.k)
        self.sdev_state = SDEV_RUNNING
        self.request_queue = None


class scsi_cmnd:
    __slots__ = ("name", "request", "device", "state", "result")

    def __init__(self, rq, sdev):
        self.name = f"cmd:{rq.name}"
        self.request = rq
        self.device = sdev
        self.state = bitmap(f"{rq.name}->cmd.state")
        self.result = 0


# ------------------------------------------------------------------ budget


# scsi_dev_queue_ready(), drivers/scsi/scsi_lib.c
async def scsi_dev_queue_ready(q, sdev):
    """scsi_dev_queue_ready(): optimistic increment, undone when over the depth."""
    busy = await atomic_inc_return(sdev.device_busy) - 1
    if await atomic_read(sdev.device_blocked):
        if busy:
            await atomic_dec(sdev.device_busy)
            return False
        if await atomic_dec_return(sdev.device_blocked) > 0:
            await atomic_dec(sdev.device_busy)
            return False
    if busy >= sdev.queue_depth:
        await atomic_dec(sdev.device_busy)
        return False
    return True


# scsi_mq_get_budget(), drivers/scsi/scsi_lib.c
async def scsi_mq_get_budget(hctx):
    """scsi_mq_get_budget() as of a0823421a4d7, still with 7e70aa789d4a's rescue
    (reverted by the series' 4/4 later): an idle device reruns this hctx."""
    q = hctx.queue
    sdev = q.queuedata
    if await scsi_dev_queue_ready(q, sdev):
        return True
    if await atomic_read(sdev.device_busy) == 0 and not await scsi_device_blocked(sdev):
        await blk_mq.blk_mq_delay_run_hw_queue(hctx, SCSI_QUEUE_DELAY)
    return False


# scsi_mq_put_budget(), drivers/scsi/scsi_lib.c
async def scsi_mq_put_budget(hctx):
    """scsi_mq_put_budget(): give the budget back; no kick."""
    sdev = hctx.queue.queuedata
    await atomic_dec(sdev.device_busy)


# model: the atomic_read(&sdev->device_blocked) test of scsi_dev_queue_ready() (drivers/scsi/scsi_lib.c)
async def scsi_device_blocked(sdev):
    return await atomic_read(sdev.device_blocked) > 0


# ------------------------------------------------------------------ submit


# scsi_host_queue_ready(), drivers/scsi/scsi_lib.c
async def scsi_host_queue_ready(q, shost, sdev, cmd):
    busy = await atomic_inc_return(shost.host_busy) - 1
    if busy >= shost.can_queue:
        await atomic_dec(shost.host_busy)
        return False
    return True


# scsi_dec_host_busy(), drivers/scsi/scsi_lib.c
async def scsi_dec_host_busy(shost, cmd):
    await atomic_dec(shost.host_busy)


# scsi_queue_rq(), drivers/scsi/scsi_lib.c
async def scsi_queue_rq(hctx, rq, last):
    """scsi_queue_rq(): the budget is ours; on failure give it back here."""
    q = rq.q
    sdev = q.queuedata
    shost = sdev.host
    cmd = rq.special
    if cmd is None:
        cmd = rq.special = scsi_cmnd(rq, sdev)
    ret = BLK_STS_RESOURCE
    if await scsi_host_queue_ready(q, shost, sdev, cmd):
        await clear_bit(SCMD_STATE_COMPLETE, cmd.state)
        await blk_mq.blk_mq_start_request(rq)
        reason = await scsi_dispatch_cmd(cmd)
        if not reason:
            return BLK_STS_OK
        await scsi_dec_host_busy(shost, cmd)
    # out_put_budget:
    await scsi_mq_put_budget(hctx)
    if ret == BLK_STS_RESOURCE:
        if await atomic_read(sdev.device_busy) or await scsi_device_blocked(sdev):
            ret = BLK_STS_DEV_RESOURCE
    return ret


# scsi_commit_rqs(), drivers/scsi/scsi_lib.c
async def scsi_commit_rqs(hctx):
    """scsi_commit_rqs(): the host's commit_rqs hook; the model's host has nothing to flush."""


# scsi_dispatch_cmd(), drivers/scsi/scsi_lib.c
async def scsi_dispatch_cmd(cmd):
    """scsi_dispatch_cmd() -> the host template's queuecommand()."""
    return sdebug_queuecommand(cmd.device.host, cmd)


# ----------------------------------------------------------- the "device"


# sdebug_queuecommand(), drivers/scsi/scsi_debug.c
def sdebug_queuecommand(shost, cmd):
    """queuecommand() of the model host: the command completes after the latency."""
    k = shost.k
    k.execution.add_timer(shost.latency_ns, sdebug_complete, shost, cmd, name=f"device completes {cmd.request.name}")
    return 0


# sdebug_complete(), drivers/scsi/scsi_debug.c
def sdebug_complete(shost, cmd):
    """The device is done: raise the hw queue's interrupt."""
    hctx = cmd.request.mq_hctx
    generic_handle_irq(shost.k, shost.irqs[hctx.queue_num], cmd)


# sdebug_irq_handler(), drivers/scsi/scsi_debug.c
async def sdebug_irq_handler(k, desc, cmd):
    """The host's interrupt handler: hand the command back to the mid layer."""
    await scsi_mq_done(cmd)


# -------------------------------------------------------------- completion


# scsi_mq_done(), drivers/scsi/scsi_lib.c
async def scsi_mq_done(cmd):
    """scsi_mq_done(): the LLD's done(), in hardirq context."""
    if await test_and_set_bit(SCMD_STATE_COMPLETE, cmd.state):
        return
    if not await blk_mq.blk_mq_complete_request(cmd.request):
        await clear_bit(SCMD_STATE_COMPLETE, cmd.state)


# scsi_softirq_done(), drivers/scsi/scsi_lib.c
async def scsi_softirq_done(rq):
    """scsi_softirq_done(): the ->complete op; every command here succeeds."""
    await scsi_finish_command(rq.special)


# scsi_device_unbusy(), drivers/scsi/scsi_lib.c
async def scsi_device_unbusy(sdev, cmd):
    """scsi_device_unbusy(): host, then device: the budget is released here."""
    await scsi_dec_host_busy(sdev.host, cmd)
    await atomic_dec(sdev.device_busy)


async def scsi_finish_command(cmd):
    """scsi_finish_command(), drivers/scsi/scsi.c: unbusy first, then complete the I/O."""
    sdev = cmd.device
    await scsi_device_unbusy(sdev, cmd)
    await scsi_io_completion(cmd, 1)


# scsi_io_completion(), drivers/scsi/scsi_lib.c
async def scsi_io_completion(cmd, good_bytes):
    """scsi_io_completion(): success path only."""
    await scsi_end_request(cmd.request, BLK_STS_OK, good_bytes)


# scsi_end_request(), drivers/scsi/scsi_lib.c
async def scsi_end_request(req, error, nbytes):
    """scsi_end_request(): end the request, then run every hw queue."""
    q = req.q
    if await blk_mq.blk_update_request(req, error):
        return True
    await blk_mq.__blk_mq_end_request(req, error)
    # No single_lun target and no starved list in the model:
    await blk_mq.blk_mq_run_hw_queues(q, True)
    return False


scsi_mq_ops = blk_mq_ops(
    queue_rq=scsi_queue_rq,
    commit_rqs=scsi_commit_rqs,
    get_budget=scsi_mq_get_budget,
    put_budget=scsi_mq_put_budget,
    complete=scsi_softirq_done,
)


# scsi_add_device(), drivers/scsi/scsi_scan.c
def scsi_add_device(k, nr_hw_queues, queue_depth=1, can_queue=32, latency_us=100, cpu_map=None):
    """Probe a host with one LUN: tag set, request_queue, managed vectors.

    ``cpu_map[cpu]`` is the hw queue of each CPU (managed affinity spreads
    the vectors the same way); by default CPUs are split evenly.
    """
    if cpu_map is None:
        cpu_map = [cpu * nr_hw_queues // k.nr_cpu_ids for cpu in range(k.nr_cpu_ids)]
    shost = Scsi_Host(k, can_queue, latency_us * NSEC_PER_USEC)
    sdev = scsi_device(shost, queue_depth)
    set_ = blk_mq_tag_set(scsi_mq_ops, nr_hw_queues, can_queue)
    blk_mq.blk_mq_alloc_tag_set(set_)
    q = blk_mq.blk_mq_init_queue(k, set_, "sda", cpu_map)
    q.queuedata = sdev
    sdev.request_queue = q
    for hctx in q.queue_hw_ctx:
        cpus = list(hctx.cpumask)
        shost.irqs.append(
            request_irq(k, 24 + hctx.queue_num, f"sdebug-q{hctx.queue_num}", sdebug_irq_handler, cpus, True)
        )
    return sdev
