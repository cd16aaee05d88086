"""End-of-run checks shared by scenarios: they read the model state, nothing else."""

from __future__ import annotations

from blkrace.block.types import BLK_STS_NAMES, BLK_STS_OK, MQ_RQ_COMPLETE, MQ_RQ_IN_FLIGHT
from blkrace.engine import Violation


def where_is(q, rq):
    """Where a request sits, in blk-mq's terms."""
    e = q.elevator
    if e is not None:
        data = e.elevator_data
        for bfqq in getattr(data, "queues", {}).values():
            if rq in bfqq.sort_list:
                return f"queued in the I/O scheduler ({bfqq.name}), never dispatched"
    for hctx in q.queue_hw_ctx:
        if rq in hctx.dispatch.items:
            return f"on {hctx.name}->dispatch, never dispatched again"
        for ctx in hctx.ctxs:
            if rq in ctx.rq_list.items:
                return f"on {ctx.name}'s software queue of {hctx.name}, never dispatched"
    if rq.state == MQ_RQ_IN_FLIGHT:
        return "in flight at the device, never completed"
    if rq.state == MQ_RQ_COMPLETE:
        for cpu, head in enumerate(getattr(q.k, "call_single_queue", [])):
            if rq.csd is not None and rq.csd in head.items:
                return (
                    f"completed by the device, but its completion callback waits on cpu{cpu}'s "
                    "call_single_queue and never ran"
                )
        return "completed by the device, but the completion never finished"
    return "allocated but never issued"


def find_request(q, bio):
    for hctx in q.queue_hw_ctx:
        for tags in (hctx.sched_tags, hctx.tags):
            if tags is None:
                continue
            for rq in tags.static_rqs:
                if rq is not None and rq.bio is bio:
                    return rq
    return None


def check_bios(q, execution):
    """Every bio submitted to ``q`` ended, and ended well.

    A bio left unfinished when nothing can move is an I/O ``stall``; one that
    ended with an error, or that only the request timeout ended, is an
    ``io_error``.
    """
    for bio in q.bios:
        if not bio.ended:
            rq = find_request(bio.bi_disk, bio) if bio.bi_disk.queue_hw_ctx else None
            if rq is not None:
                where = where_is(bio.bi_disk, rq)
            elif bio in getattr(q.queuedata, "requeue_list", ()):
                where = f"parked on {q.name}'s multipath requeue list, never resubmitted"
            elif bio.bi_disk.mq_freeze_depth:
                where = f"not a request yet, and {bio.bi_disk.name} stays frozen"
            else:
                where = f"waiting on its way into {bio.bi_disk.name} (no request yet)"
            qq = bio.bi_disk
            hctxs = (
                ", ".join(
                    f"{h.name} has_work={bool(h.dispatch.items or h.ctx_map.bits or _elv_busy(qq))} "
                    f"run_work {'pending' if h.run_work.work.pending else 'idle'}"
                    for h in qq.queue_hw_ctx
                )
                or f"{qq.name} is bio-based"
            )
            yield Violation(
                "stall",
                f"I/O stall: {bio.name} from {bio.submitter} never completed: {rq.name + ' ' if rq else ''}{where}",
                origin=f"stall:bio-not-completed:{where.split(' (')[0]}",
                detail=[f"at the end: {hctxs}; no timer pending, no task runnable"],
            )
        elif bio in bio.bi_disk.timed_out_bios and bio.bi_status == BLK_STS_OK:
            yield Violation(
                "io_error",
                f"{bio.name} from {bio.submitter}: its request on {bio.bi_disk.name} timed out after "
                f"{bio.bi_disk.rq_timeout // 1_000_000_000} s and was completed by the timeout handler",
                origin="io_error:timeout",
            )
        elif bio.bi_status != BLK_STS_OK:
            status = BLK_STS_NAMES.get(bio.bi_status, str(bio.bi_status))
            yield Violation(
                "io_error",
                f"{bio.name} from {bio.submitter} completed with {status}",
                origin=f"io_error:{status}",
            )


def _elv_busy(q):
    e = q.elevator
    return bool(e and getattr(e.elevator_data, "busy_queues", 0))
