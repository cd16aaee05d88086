"""nvme-mpath-freeze: seed 002, the nvme-multipath freeze/SRCU deadlock, its failed fixes, and the fix.

Topology: 2 CPUs; one NVMe subsystem reached over TCP through two
controllers (paths) to one namespace, under the multipath head "nvme0n1";
each controller has one tag (exhaustion is one request away).  Path nvme0 is ANA-optimized, nvme1 is
inaccessible.  Workload: "fio-0" and "fio-1" read twice each through the head;
"admin" resets controller nvme0 (as `echo 1 > reset_controller` would) and
the target turns nvme1's group optimized (an ANA change notice: ana_work).
When the reset and the ANA change fall is the explorer's choice.

The kernel is non-preemptible (CONFIG_PREEMPT_NONE, a usual server
configuration; `--preempt full` runs it preemptible): a task keeps its CPU
until it sleeps or calls cond_resched(), and the soft-lockup watchdog runs.

The end-of-run checks: every bio completed or failed for a reason the kernel
gives (no path left), and no task waits forever; the engine names a wait-for
cycle when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass

from blkrace.block.blk_mq import QUIESCE_INSERT_RERUN
from blkrace.drivers.nvme import (
    FREEZE_IN_SETUP,
    MPATH_REQ_NOWAIT,
    NVME_ANA_INACCESSIBLE,
    NVME_ANA_OPTIMIZED,
    NVMF_DEF_CTRL_LOSS_TMO,
    REMOVE_DIRECT_MAKE_REQUEST,
    START_QUEUES_IN_TEARDOWN,
    SUBMIT_BIO_DIRECT,
    nvme_alloc_subsystem,
    nvme_reset_ctrl,
    nvmf_ctrl_options,
)
from blkrace.engine import NSEC_PER_USEC, choose, sleep
from blkrace.kernel.boot import boot
from blkrace.kernel.sched import task_run_on_cpu
from blkrace.kernel.workqueue import queue_work
from blkrace.scenarios.base import Scenario, Variant
from blkrace.scenarios.checks import check_bios
from blkrace.scenarios.workloads import sync_reader


async def reset_controller(k, ctrl):
    """`echo 1 > /sys/class/nvme/nvme0/reset_controller`, some time into the I/O;
    the target may refuse the first connect (the host retries in reconnect_delay)."""
    await sleep(await choose(3, "when the reset comes (x 50 us)") * 50 * NSEC_PER_USEC)
    ctrl.refuse_connects = await choose(2, "connects the target refuses")
    await nvme_reset_ctrl(k, ctrl)


async def ana_change(k, ctrl):
    """The target makes the other path optimized and tells the host (AEN -> ana_work)."""
    await sleep(await choose(3, "when the ANA change comes (x 50 us)") * 50 * NSEC_PER_USEC)
    ctrl.ana_log = NVME_ANA_OPTIMIZED
    await queue_work(k, k.nvme_wq, ctrl.ana_work)


@dataclass
class NvmeMpathFreeze(Scenario):
    # nvme connect --ctrl-loss-tmo: 600 s by default, so a refused connect is
    # retried and the controller comes back.  Shorter (tests use 10 s, one
    # attempt) and the refused reconnect deletes the controller instead.
    ctrl_loss_tmo: int = NVMF_DEF_CTRL_LOSS_TMO

    def build(self, execution, variant):
        k = boot(execution, nr_cpus=2, patches=variant.patches, hotplug=False, watchdog=True)
        head, ctrls = nvme_alloc_subsystem(
            k, nr_ctrls=2, queue_depth=1, latency_us=100, ana_states=[NVME_ANA_OPTIMIZED, NVME_ANA_INACCESSIBLE]
        )
        for ctrl in ctrls:
            ctrl.opts = nvmf_ctrl_options(ctrl_loss_tmo=self.ctrl_loss_tmo)
        task_run_on_cpu(k, sync_reader, "fio-0", 0, head.disk, 2)
        task_run_on_cpu(k, sync_reader, "fio-1", 1, head.disk, 2)
        task_run_on_cpu(k, reset_controller, "admin", 0, ctrls[0])
        task_run_on_cpu(k, ana_change, "target", 1, ctrls[1])
        execution.checkers.append(lambda ex: check_bios(head.disk, ex))


# Every variant runs with the 2024 quiesce/insert fix: without it the explorer
# also finds that older, unrelated stall (a request inserted behind a queue
# being unquiesced), which is not what these variants are about.
BASE = frozenset({QUIESCE_INSERT_RERUN.name})
FIXED = BASE | {REMOVE_DIRECT_MAKE_REQUEST.name, FREEZE_IN_SETUP.name}

SCENARIO = NvmeMpathFreeze(
    default_schedules=6000,
    # A CPU spinning for the soft-lockup threshold (20 s, sampled every 4 s)
    # takes about 25,000 steps: time passes 20 ms per 20 steps of spinning.
    max_steps=40_000,
    preempt=False,
    name="nvme-mpath-freeze",
    summary="a multipath submitter sleeps on a frozen path inside head->srcu while the reset (or ANA) work "
    "waits for that SRCU grace period: deadlock (seed 002)",
    seed="002_eb0caaf53a6d2903.txt",
    variants={
        "buggy": Variant(
            "buggy",
            BASE,
            frozenset({"deadlock"}),
            "pre-5.9: direct_make_request() under head->srcu blocks in blk_queue_enter() on the frozen path "
            "(or in blk_mq_get_tag()); nvme_mpath_set_live() waits in synchronize_srcu()",
            allowed=frozenset({"stall"}),  # the deadlocked tasks' bios never complete
        ),
        "submit-bio-direct": Variant(
            "submit-bio-direct",
            BASE | {SUBMIT_BIO_DIRECT.name},
            frozenset({"deadlock"}),
            "hch's blk_mq_submit_bio_direct(): no longer in blk_queue_enter(), now asleep in blk_mq_get_tag(); "
            "its retry loop is the one start-queues-in-teardown spins in, so a soft lockup may show too",
            allowed=frozenset({"stall", "soft_lockup"}),
        ),
        "start-queues-in-teardown": Variant(
            "start-queues-in-teardown",
            BASE | {SUBMIT_BIO_DIRECT.name, START_QUEUES_IN_TEARDOWN.name},
            frozenset({"soft_lockup"}),
            "Sagi's experiment: no more deadlock, but after a reset the resubmission spins in the retry loop "
            "against nvme_update_ns_info()'s freeze, on the CPU that must run the completion that would "
            "let the freeze finish: BUG: soft lockup",
        ),
        "nowait": Variant(
            "nowait",
            BASE | {MPATH_REQ_NOWAIT.name},
            frozenset({"io_error"}),
            "REQ_NOWAIT on multipath bios: I/O fails as soon as tags run out, even on a healthy path",
        ),
        "fixed": Variant(
            "fixed",
            FIXED,
            frozenset(),
            "5a6c35f9af41 (bios deferred on current->bio_list until head->srcu is released) and "
            "99dc264014d5 (the freeze starts in the reconnect, I/O fails over meanwhile)",
        ),
    },
)
