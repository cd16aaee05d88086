"""A null_blk-like device (drivers/block/null_blk_main.c, v5.8) with managed interrupts.

Configurable hw queue count, queue depth and completion latency.  Real
null_blk completes from an hrtimer or inline and has no interrupts; here the
device raises its hw queue's managed interrupt after the latency, as a PCI
device (nvme) would, because that interrupt is what CPU hotplug shuts down.
"""

from __future__ import annotations

from blkrace.block import blk_mq
from blkrace.block.types import (
    BLK_EH_DONE,
    BLK_STS_OK,
    BLK_STS_TIMEOUT,
    MQ_RQ_COMPLETE,
    QUEUE_FLAG_SAME_FORCE,
    blk_mq_ops,
    blk_mq_tag_set,
)
from blkrace.engine import NSEC_PER_USEC, StopRun, Violation
from blkrace.kernel.irq import generic_handle_irq, request_irq
from blkrace.kernel.patch import Patch


class nullb_cmd:
    __slots__ = ("rq", "error")

    def __init__(self, rq):
        self.rq = rq
        self.error = BLK_STS_OK


class nullb:
    __slots__ = ("k", "name", "q", "irqs", "completion_nsec", "tag_set")

    def __init__(self, k, name, completion_nsec):
        self.k = k
        self.name = name
        self.q = None
        self.irqs = []
        self.completion_nsec = completion_nsec  # None: irqmode=0, completed inside queue_rq
        self.tag_set = None


# null_queue_rq(), drivers/block/null_blk_main.c
async def null_queue_rq(hctx, rq, last):
    """null_queue_rq(): start the request; the device answers after the latency."""
    nb = rq.q.queuedata
    cmd = rq.special
    if cmd is None:
        cmd = rq.special = nullb_cmd(rq)
    cmd.error = BLK_STS_OK
    await blk_mq.blk_mq_start_request(rq)
    if nb.completion_nsec is None:
        # irqmode=0 (NULL_IRQ_NONE): null_handle_cmd() -> end_cmd(), in the
        # submitter's context.
        await blk_mq.blk_mq_end_request(rq, cmd.error)
        return BLK_STS_OK
    nb.k.execution.add_timer(
        nb.completion_nsec, null_device_done, nb, hctx.queue_num, rq, name=f"{nb.name} completes {rq.name}"
    )
    return BLK_STS_OK


# model: the device finishing a command: raise the hw queue's interrupt
def null_device_done(nb, queue_num, rq):
    """The device finished ``rq``: raise the hw queue's interrupt."""
    generic_handle_irq(nb.k, nb.irqs[queue_num], rq)


# model: the interrupt handler a PCI device's driver would have (null_blk has none)
async def null_irq_handler(k, desc, rq):
    """The interrupt handler: hand the request back to blk-mq."""
    await blk_mq.blk_mq_complete_request(rq)


# null_complete_rq(), drivers/block/null_blk_main.c
async def null_complete_rq(rq):
    """null_complete_rq() (->complete): end the request with the command's status."""
    if rq.state != MQ_RQ_COMPLETE:
        # Checked invariant: a request completes once; a second completion
        # touches a request that was freed and maybe reused.
        raise StopRun(
            Violation(
                "bug",
                f"{rq.name} completed again while not in flight (state {rq.state}): use after free",
                origin="bug:double-completion",
            )
        )
    await blk_mq.blk_mq_end_request(rq, rq.special.error)


NULL_TIMEOUT_STATUS = Patch(
    "null-blk-timeout-status",
    "de3510e52b0a",
    "null_blk: fix command timeout completion handling (v5.12)",
)


async def null_timeout_rq(rq, reserved):
    """null_timeout_rq(), drivers/block/null_blk_main.c (v5.8): "rq %p timed
    out", then complete it: with the status the command already had
    (BLK_STS_OK for a command the device never answered).

    With de3510e52b0a (v5.12) the command's status becomes BLK_STS_TIMEOUT
    and only a fake (injected) timeout is completed here; a real one is left
    for the submission path to complete.  The model injects no fake timeouts.
    """
    rq.q.k.execution.event(f"null_blk: rq {rq.name} timed out")
    if rq.q.k.patched(NULL_TIMEOUT_STATUS):
        rq.special.error = BLK_STS_TIMEOUT
        return BLK_EH_DONE  # cmd->fake_timeout is never set here
    await blk_mq.blk_mq_complete_request(rq)
    return BLK_EH_DONE


null_mq_ops = blk_mq_ops(queue_rq=null_queue_rq, complete=null_complete_rq, timeout=null_timeout_rq)


# null_add_dev(), drivers/block/null_blk_main.c
def null_add_dev(
    k,
    name="nullb0",
    nr_hw_queues=1,
    hw_queue_depth=8,
    completion_us=100,
    cpu_map=None,
    managed_irqs=True,
    irq_cpus=None,
    rq_affinity=2,
    flags=0,
    tag_set=None,
):
    """null_add_dev(): a tag set, a queue, one interrupt per hw queue.

    ``cpu_map[cpu]`` is each CPU's hw queue (default: even split); a queue's
    interrupt is affine to its CPUs (``irq_cpus[i]`` overrides), managed by
    default.  ``rq_affinity=2`` completes on the submitting CPU by IPI.
    ``completion_us=None`` is irqmode=0: a request ends inside queue_rq.
    ``tag_set``: another device's tag set to share (the shared_tags module
    parameter: every device on one set, which makes its hctxs
    BLK_MQ_F_TAG_SHARED); its depth and hw queue count then apply.
    """
    if cpu_map is None:
        cpu_map = [cpu * nr_hw_queues // k.nr_cpu_ids for cpu in range(k.nr_cpu_ids)]
    nb = nullb(k, name, None if completion_us is None else completion_us * NSEC_PER_USEC)
    if tag_set is not None:
        set_ = tag_set
    else:
        set_ = blk_mq_tag_set(null_mq_ops, nr_hw_queues, hw_queue_depth, flags)
        blk_mq.blk_mq_alloc_tag_set(set_)
    nb.tag_set = set_
    q = blk_mq.blk_mq_init_queue(k, set_, name, cpu_map)
    q.queuedata = nb
    nb.q = q
    if rq_affinity == 2:
        q.queue_flags.bits |= 1 << QUEUE_FLAG_SAME_FORCE
    base = 40 + 10 * len(k.irq_descs)
    for hctx in q.queue_hw_ctx:
        cpus = irq_cpus[hctx.queue_num] if irq_cpus else list(hctx.cpumask)
        nb.irqs.append(
            request_irq(k, base + hctx.queue_num, f"{name}-q{hctx.queue_num}", null_irq_handler, cpus, managed_irqs)
        )
    return nb
