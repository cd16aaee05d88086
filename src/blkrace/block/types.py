"""The structs of include/linux/blk-mq.h, blkdev.h and blk_types.h the model uses.

Plain slotted classes without behaviour: functions that stand for kernel
functions live in the modules named after the kernel files and take the
struct as their first argument, as in C.

Kernel baseline: v5.8 (the fields the v5.7-v5.12 paths use are the same).
"""

from __future__ import annotations

from blkrace.block.list import list_head
from blkrace.kernel.atomic import atomic_t, bitmap
from blkrace.kernel.locking.spinlock import spinlock_t
from blkrace.kernel.locking.srcu import srcu_struct
from blkrace.kernel.machine import cpumask

BLK_MQ_NO_TAG = -1
BLK_MQ_TAG_FAIL = -1

# hctx->state bits
BLK_MQ_S_STOPPED = 0
BLK_MQ_S_TAG_ACTIVE = 1
BLK_MQ_S_SCHED_RESTART = 2

# tag set flags
BLK_MQ_F_SHOULD_MERGE = 1 << 0
BLK_MQ_F_TAG_SHARED = 1 << 1
BLK_MQ_F_STACKING = 1 << 2  # bf0beec0607d: completions come from an underlying device
BLK_MQ_F_BLOCKING = 1 << 5

# blk_mq_alloc_data flags
BLK_MQ_REQ_NOWAIT = 1 << 0
BLK_MQ_REQ_RESERVED = 1 << 1
BLK_MQ_REQ_INTERNAL = 1 << 2

# request_queue flags
QUEUE_FLAG_STOPPED = 0
QUEUE_FLAG_SAME_COMP = 4  # complete on the CPU that submitted (rq_affinity=1)
QUEUE_FLAG_SAME_FORCE = 12  # ...even when the CPUs share a cache (rq_affinity=2)
QUEUE_FLAG_QUIESCED = 24

# request states
MQ_RQ_IDLE = 0
MQ_RQ_IN_FLIGHT = 1
MQ_RQ_COMPLETE = 2

# rq_flags
RQF_ELVPRIV = 1 << 12
RQF_TIMED_OUT = 1 << 21  # include/linux/blkdev.h (v5.8)

# blk_status_t
BLK_STS_OK = 0
BLK_STS_RESOURCE = 9
BLK_STS_DEV_RESOURCE = 13
BLK_STS_IOERR = 10
BLK_STS_TIMEOUT = 3
BLK_STS_AGAIN = 12
BLK_STS_NAMES = {
    BLK_STS_AGAIN: "BLK_STS_AGAIN",
    BLK_STS_OK: "BLK_STS_OK",
    BLK_STS_RESOURCE: "BLK_STS_RESOURCE",
    BLK_STS_DEV_RESOURCE: "BLK_STS_DEV_RESOURCE",
    BLK_STS_IOERR: "BLK_STS_IOERR",
    BLK_STS_TIMEOUT: "BLK_STS_TIMEOUT",
}

REQ_OP_READ = 0
REQ_OP_WRITE = 1
REQ_SYNC = 1 << 11
REQ_NOWAIT = 1 << 21
REQ_NVME_MPATH = 1 << 24  # REQ_DRV: the bio came through the nvme multipath head

BLK_MQ_RESOURCE_DELAY = 3  # ms

# enum blk_eh_timer_return
BLK_EH_DONE = 0
BLK_EH_RESET_TIMER = 1
BLK_MQ_CPU_WORK_BATCH = 8


class bio:
    """struct bio: what a submitter hands the block layer, and how it ends."""

    __slots__ = ("name", "bi_opf", "bi_status", "bi_end_io", "bi_private", "submitter", "ended", "bi_disk")

    def __init__(self, name, opf, end_io=None, private=None):
        self.name = name
        self.bi_opf = opf
        self.bi_status = BLK_STS_OK
        self.bi_end_io = end_io  # async end_io(k, bio)
        self.bi_private = private
        self.submitter = None  # comm of the submitting task
        self.ended = False
        self.bi_disk = None  # the request_queue


class request:
    """struct request."""

    __slots__ = (
        "name",
        "q",
        "mq_ctx",
        "mq_hctx",
        "tag",
        "internal_tag",
        "state",
        "cmd_flags",
        "rq_flags",
        "bio",
        "end_io",
        "end_io_data",
        "end_io_status",
        "elv",
        "special",
        "deadline",
        "status",
        "csd",
    )

    def __init__(self, name, q):
        self.name = name
        self.q = q
        self.mq_ctx = None
        self.mq_hctx = None
        self.tag = BLK_MQ_NO_TAG
        self.internal_tag = BLK_MQ_NO_TAG
        self.state = MQ_RQ_IDLE
        self.cmd_flags = 0
        self.rq_flags = 0
        self.bio = None
        self.end_io = None
        self.end_io_data = None  # what end_io needs (blk_execute_rq(): the completion)
        self.end_io_status = 0  # the status end_io saw (blk_execute_rq() returns it)
        self.elv = None  # the elevator's private data (bfq: the bfq_queue)
        self.special = None  # the driver's per-request data (a scsi_cmnd)
        self.deadline = 0
        self.status = BLK_STS_OK
        self.csd = None  # call_single_data for a remote completion

    def __repr__(self):
        return f"<{self.name} tag={self.tag} sched_tag={self.internal_tag} state={self.state}>"


class blk_mq_tags:
    """struct blk_mq_tags: a sbitmap_queue of tags and the requests behind them."""

    __slots__ = ("name", "nr_tags", "bitmap_tags", "rqs", "static_rqs")

    def __init__(self, name, nr_tags):
        self.name = name
        self.nr_tags = nr_tags
        self.bitmap_tags = None  # struct sbitmap_queue
        self.rqs = [None] * nr_tags  # driver tags: the request now owning the tag
        self.static_rqs = []


class blk_mq_tag_set:
    __slots__ = ("ops", "nr_hw_queues", "queue_depth", "flags", "tags", "driver_data", "cmd_size", "queues")

    def __init__(self, ops, nr_hw_queues, queue_depth, flags=BLK_MQ_F_SHOULD_MERGE):
        self.ops = ops
        self.nr_hw_queues = nr_hw_queues
        self.queue_depth = queue_depth
        self.flags = flags
        self.tags = []
        self.driver_data = None
        self.cmd_size = 0
        self.queues = []  # tag_list: the request queues sharing these tags


class blk_mq_ops:
    """struct blk_mq_ops: the driver's table; optional ops are None."""

    __slots__ = ("queue_rq", "commit_rqs", "get_budget", "put_budget", "complete", "timeout")

    def __init__(self, queue_rq, commit_rqs=None, get_budget=None, put_budget=None, complete=None, timeout=None):
        self.queue_rq = queue_rq
        self.commit_rqs = commit_rqs
        self.get_budget = get_budget
        self.put_budget = put_budget
        self.complete = complete
        self.timeout = timeout


class blk_mq_ctx:
    """struct blk_mq_ctx: the per-CPU software queue."""

    __slots__ = ("name", "cpu", "rq_list", "lock", "hctx", "index_hw", "queue")

    def __init__(self, q, cpu):
        self.name = f"ctx{cpu}"
        self.cpu = cpu
        self.rq_list = list_head(f"ctx{cpu}->rq_lists")
        self.lock = spinlock_t(f"ctx{cpu}->lock")
        self.hctx = None
        self.index_hw = 0
        self.queue = q


class blk_mq_hw_ctx:
    """struct blk_mq_hw_ctx."""

    __slots__ = (
        "name",
        "queue",
        "queue_num",
        "cpumask",
        "ctxs",
        "nr_ctx",
        "ctx_map",
        "dispatch",
        "lock",
        "state",
        "run_work",
        "tags",
        "sched_tags",
        "next_cpu",
        "next_cpu_batch",
        "dispatch_busy",
        "flags",
        "dispatch_from",
        "run",
        "queued",
        "wait_index",
        "dispatch_wait",
        "dispatch_wait_lock",
        "cpuhp_online",
        "cpuhp_dead",
        "srcu",
    )

    def __init__(self, q, idx, cpus, flags):
        self.name = f"hctx{idx}"
        self.queue = q
        self.queue_num = idx
        self.cpumask = cpumask(f"hctx{idx}->cpumask", cpus)
        self.ctxs = []
        self.nr_ctx = 0
        self.ctx_map = bitmap(f"hctx{idx}->ctx_map", k=q.k)
        self.dispatch = list_head(f"hctx{idx}->dispatch", k=q.k)
        self.lock = spinlock_t(f"hctx{idx}->lock")
        self.state = bitmap(f"hctx{idx}->state", k=q.k)
        self.run_work = None
        self.tags = None
        self.sched_tags = None
        self.next_cpu = 0
        self.next_cpu_batch = BLK_MQ_CPU_WORK_BATCH
        self.dispatch_busy = 0
        self.flags = flags
        self.dispatch_from = None
        self.run = 0
        self.queued = 0
        self.wait_index = atomic_t(f"hctx{idx}->wait_index")
        self.dispatch_wait = None  # set up by blk_mq_init_queue() (blk_mq_dispatch_wake() is blk-mq's)
        self.dispatch_wait_lock = None
        self.cpuhp_online = None  # the hctx's instances in the cpuhp states
        self.cpuhp_dead = None
        # BLK_MQ_F_BLOCKING: ->queue_rq may sleep, so dispatch runs under SRCU
        self.srcu = srcu_struct(f"{q.name}.hctx{idx}->srcu") if flags & BLK_MQ_F_BLOCKING else None


class request_queue:
    """struct request_queue."""

    __slots__ = (
        "k",
        "name",
        "queue_hw_ctx",
        "nr_hw_queues",
        "queue_ctx",
        "elevator",
        "mq_ops",
        "tag_set",
        "queuedata",
        "queue_flags",
        "nr_requests",
        "bios",
        "timed_out_bios",
        "rq_timeout",
        "timeout",
        "timeout_work",
        "q_usage_counter",
        "submit_bio",
        "mq_freeze_depth",
        "mq_freeze_lock",
        "mq_freeze_wq",
        "mq_freeze_drain_wq",
        "freeze_owner",
        "mq_freeze_owner",
        "mq_freeze_owner_depth",
        "io_lockdep_map",
        "q_lockdep_map",
        "quiesce_owner",
        "quiesce_depth",
        "queue_lock",
        "dying",
        "td",
        "cfqd",
    )

    def __init__(self, k, name, set_):
        self.k = k
        self.name = name
        self.tag_set = set_
        self.mq_ops = set_.ops if set_ is not None else None
        self.queue_hw_ctx = []
        self.nr_hw_queues = set_.nr_hw_queues if set_ is not None else 0
        self.queue_ctx = []
        self.elevator = None
        self.queuedata = None
        self.queue_flags = bitmap(f"{name}->queue_flags", k=k)
        self.nr_requests = set_.queue_depth if set_ is not None else 0
        self.bios = []  # every bio submitted, for the end-of-run checks
        self.timed_out_bios = []  # bios whose request blk_mq_rq_timed_out() handled
        self.rq_timeout = 30 * 1_000_000_000  # 30 s, BLK_DEFAULT_SG_TIMEOUT
        self.timeout = None  # timer_list: blk_rq_timed_out_timer
        self.timeout_work = None  # work_struct: blk_mq_timeout_work
        self.q_usage_counter = None  # percpu_ref
        self.submit_bio = None  # a bio-based disk's fops->submit_bio
        self.mq_freeze_depth = 0
        self.mq_freeze_lock = None  # mutex
        self.mq_freeze_wq = None  # wait_queue_head_t
        self.mq_freeze_drain_wq = None
        self.freeze_owner = None  # the task that froze it (for the wait-for graph)
        # Lockdep's view of the freeze (v6.13, f1be1788a32e): the queue's
        # usage counter is a rwsem, held for write from the owner's freeze to
        # its unfreeze and "taken for read" on every entry.  One class per
        # queue, as the kernel registers a lock_class_key per queue.
        self.mq_freeze_owner = None
        self.mq_freeze_owner_depth = 0
        self.io_lockdep_map = f"&{name}->q_usage_counter(io)"
        self.q_lockdep_map = f"&{name}->q_usage_counter(queue)"
        self.quiesce_owner = None
        self.quiesce_depth = 0
        self.queue_lock = spinlock_t(f"{name}->queue_lock", key="&q->queue_lock")
        self.dying = False
        self.td = None  # blk-throttle's throtl_data
        self.cfqd = None  # CFQ's cfq_data (its cgroup groups only)
