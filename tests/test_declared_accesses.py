"""Shared accesses declared at the kernel's granularity, so that DFS and DPOR see them.

DFS's sleep sets and DPOR's dependency analysis trust the object and kind a
step declares with ``await access(obj, kind)``.  A step that also touches an
undeclared object is "independent" of every other step on that object, and the
systematic strategies then explore only one order of the two.  Each test here
runs a small harness to exhaustion under DFS with sleep sets (no preemption
bound) and under DPOR, and checks that every outcome the kernel allows is
reached: without the declaration the test names, the systematic strategies
reach only one of them (docs/research/granularity-review.md, items 1.2-1.6, 2.5).
"""

import pytest

from blkrace.block import blk_mq
from blkrace.block.blk_mq import blk_mq_alloc_data, blk_mq_hctx_has_requests, blk_mq_rq_ctx_init
from blkrace.block.blk_mq_tag import BLK_MQ_S_INACTIVE
from blkrace.block.types import BLK_MQ_NO_TAG, MQ_RQ_COMPLETE, MQ_RQ_IDLE, MQ_RQ_IN_FLIGHT, request
from blkrace.drivers import nvme
from blkrace.drivers.null_blk import null_add_dev
from blkrace.engine import READ, WRITE, access
from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.kernel.boot import boot
from blkrace.kernel.cpuhp import CPUHP_AP_ONLINE, CPUHP_AP_ONLINE_IDLE, __cpu_disable, cpuhp_cpu_state, start_secondary
from blkrace.kernel.machine import cpu_online, cpumask, cpumask_clear_cpu
from blkrace.kernel.sched import kthread_run_on_cpu, task_run_on_cpu

SYSTEMATIC = ("dfs", "dpor")


def outcomes(setup, strategy, schedules=5000, nr_cpus=2, bound=None):
    """Every outcome ``setup(k)()`` gives at the end of a run, over an exhaustive search
    (``bound``: a preemption bound, under which DFS runs without sleep sets)."""
    seen = []

    def build(ex):
        k = boot(ex, nr_cpus=nr_cpus, hotplug=False)
        record = setup(k)

        def check(_ex):
            seen.append(record())
            return ()

        ex.checkers.append(check)

    result = explore(build, make_strategy(strategy, preemption_bound=bound), schedules, stop_on_first=False)
    assert result.exhausted, f"{strategy} did not exhaust the harness in {schedules} runs"
    assert not result.findings, result.findings[0].violation.message
    return set(seen)


# ----------------------------------------------------------- 1.3 start_secondary


def _bringup_vs_cpu_online(k):
    """cpu1 comes up (start_secondary()) while cpu0 asks cpu_online(1), then
    looks at how far the bring-up got."""
    cpumask_clear_cpu(1, k.cpu_online_mask)
    st = cpuhp_cpu_state(1, CPUHP_AP_ONLINE)  # no STARTING callback left to run
    out = {}

    async def reader(k):
        out["online"] = await cpu_online(k, 1)
        await access(st, READ)
        out["idle"] = st.state == CPUHP_AP_ONLINE_IDLE

    kthread_run_on_cpu(k, start_secondary, "swapper/1", 1, st)
    task_run_on_cpu(k, reader, "reader", 0)
    return lambda: (out["online"], out["idle"])


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_start_secondary_declares_its_cpu_online_mask_write(strategy):
    # (True, False): cpu_online(1) is true before cpu1 reaches CPUHP_AP_ONLINE_IDLE,
    # which needs set_cpu_online() declared as a step of its own.
    assert outcomes(_bringup_vs_cpu_online, strategy) == {(False, False), (False, True), (True, False), (True, True)}


# ------------------------------------------------ 1.2 blk_mq_all_tag_iter


def _null_queue(k):
    nb = null_add_dev(k, nr_hw_queues=1, hw_queue_depth=2, completion_us=100, managed_irqs=False)
    return nb.q, nb.q.queue_hw_ctx[0]


def _drain_vs_rq_ctx_init(k):
    """The offline drain's blk_mq_hctx_has_requests() while a submitter that
    holds tag 0 runs blk_mq_rq_ctx_init() (the window of bf0beec0607d's drain)."""
    q, hctx = _null_queue(k)
    hctx.tags.bitmap_tags.map = 0b01  # tag 0 taken, request not initialised yet
    data = blk_mq_alloc_data(q)
    data.ctx = q.queue_ctx[1]
    data.hctx = hctx
    out = {}

    async def submitter(k):
        await blk_mq_rq_ctx_init(data, 0)

    async def drain(k):
        out["found"] = await blk_mq_hctx_has_requests(hctx)

    task_run_on_cpu(k, submitter, "fio", 1)
    task_run_on_cpu(k, drain, "cpuhp/0", 0)
    return lambda: out["found"]


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_tag_iter_declares_each_requests_mq_hctx_read(strategy):
    # The drain misses the request (rq->mq_hctx still NULL) or counts it.
    assert outcomes(_drain_vs_rq_ctx_init, strategy) == {False, True}


def _drain_vs_recheck(k):
    """The drain while a submitter whose request is initialised sees INACTIVE
    in the proposed recheck and gives the request back (rq->mq_hctx = NULL,
    then the tag)."""
    q, hctx = _null_queue(k)
    hctx.tags.bitmap_tags.map = 0b01
    data = blk_mq_alloc_data(q)
    data.ctx = q.queue_ctx[1]
    data.hctx = hctx
    hctx.state.bits |= 1 << BLK_MQ_S_INACTIVE  # set_bit() in blk_mq_hctx_notify_offline()
    out = {}

    async def submitter(k):
        rq = await blk_mq_rq_ctx_init(data, 0)
        await blk_mq.blk_mq_alloc_raced_offline(data, rq)

    async def drain(k):
        out["found"] = await blk_mq_hctx_has_requests(hctx)

    task_run_on_cpu(k, submitter, "fio", 1)
    task_run_on_cpu(k, drain, "cpuhp/0", 0)
    return lambda: out["found"]


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_recheck_declares_its_mq_hctx_store(strategy):
    # Counted while the submitter still holds it, or already given back.
    assert outcomes(_drain_vs_recheck, strategy) == {False, True}


def _in_flight(q, hctx, cpu=1, tag=0):
    """A request that holds driver tag ``tag`` of ``hctx`` and was started
    (what blk_mq_get_tag(), blk_mq_rq_ctx_init() and blk_mq_start_request()
    leave), with its reference on q_usage_counter."""
    tags = hctx.tags
    rq = request(f"{q.name}.rq{hctx.queue_num}.{tag}", q)
    tags.static_rqs[tag] = tags.rqs[tag] = rq
    tags.bitmap_tags.map |= 1 << tag
    rq.tag, rq.internal_tag = tag, BLK_MQ_NO_TAG
    rq.mq_ctx, rq.mq_hctx = q.queue_ctx[cpu], hctx
    rq.state = MQ_RQ_IN_FLIGHT
    q.q_usage_counter.count += 1  # blk_queue_enter()
    return rq


# --------------------------------------------------- 2.5 blk_mq_free_request


def _free_vs_rq_state(k):
    """The owner frees its request (blk_mq_free_request()) while another CPU
    reads the request's state (blk_mq_rq_state(), as the tag iterators do)."""
    q, hctx = _null_queue(k)
    rq = _in_flight(q, hctx)
    out = {}

    async def owner(k):
        await access(q.queue_flags, READ)  # the step before: any other object
        await blk_mq.blk_mq_free_request(rq)

    async def reader(k):
        out["state"] = await blk_mq.blk_mq_rq_state(rq)

    task_run_on_cpu(k, owner, "fio", 1)
    task_run_on_cpu(k, reader, "kworker/0", 0)
    return lambda: out["state"]


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_free_request_declares_its_state_store(strategy):
    assert outcomes(_free_vs_rq_state, strategy) == {MQ_RQ_IN_FLIGHT, MQ_RQ_IDLE}


# ---------------------------------- 1.5 blk_mq_tagset_busy_iter, nvme cancel


def _busy_iter_vs_free(k):
    """blk_mq_tagset_busy_iter() (nvme_cancel_tagset()'s walk) while the owner frees its request."""
    q, hctx = _null_queue(k)
    rq = _in_flight(q, hctx)
    out = {"visited": False}

    async def owner(k):
        await access(q.queue_flags, READ)
        await blk_mq.blk_mq_free_request(rq)

    async def visit(rq):
        out["visited"] = True
        return True

    async def walker(k):
        await blk_mq.blk_mq_tagset_busy_iter(q.tag_set, visit)

    task_run_on_cpu(k, owner, "fio", 1)
    task_run_on_cpu(k, walker, "kworker/0", 0)
    return lambda: out["visited"]


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_busy_iter_declares_each_requests_state_read(strategy):
    assert outcomes(_busy_iter_vs_free, strategy) == {False, True}


def _nvme_ctrl(k):
    _head, (ctrl,) = nvme.nvme_alloc_subsystem(k, nr_ctrls=1)
    return ctrl


def _cancel_vs_completion(k):
    """nvme_cancel_request() on a request whose completion is being recorded
    by another CPU (the rq->state store of __blk_mq_complete_request())."""
    ctrl = _nvme_ctrl(k)
    q = ctrl.namespaces[0].queue
    rq = _in_flight(q, q.queue_hw_ctx[0])
    rq.special = nvme.nvme_request(rq)

    async def completer(k):
        await access(rq, WRITE)
        rq.state = MQ_RQ_COMPLETE

    async def teardown(k):
        await access(ctrl, READ)  # the step before: any other object
        await nvme.nvme_cancel_request(rq)

    task_run_on_cpu(k, completer, "io_work", 1)
    task_run_on_cpu(k, teardown, "reset_work", 0)
    return lambda: rq.special.status == nvme.NVME_SC_HOST_ABORTED_CMD


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_nvme_cancel_request_declares_its_state_read(strategy):
    # Cancelled (status host-aborted) or left alone as completed.
    assert outcomes(_cancel_vs_completion, strategy) == {False, True}


# ------------------------------------------------ 1.6 nvme ctrl->state reads


def _deleter(ctrl):
    async def delete(k):
        # nvme_delete_ctrl()'s first step (its delete_work is left out here).
        await access(ctrl, WRITE)
        nvme.nvme_change_ctrl_state(ctrl, nvme.NVME_CTRL_DELETING)

    return delete


def _queue_scan_vs_delete(k):
    ctrl = _nvme_ctrl(k)
    out = {"scanned": False}

    async def scan(k, work):
        out["scanned"] = True

    ctrl.scan_work.func = scan

    async def starter(k):
        await access(ctrl.namespaces[0].queue.queue_flags, READ)  # the step before
        await nvme.nvme_queue_scan(k, ctrl)

    task_run_on_cpu(k, starter, "reset_work", 0)
    task_run_on_cpu(k, _deleter(ctrl), "nvme-cli", 1)
    return lambda: out["scanned"]


def _ana_work_vs_delete(k):
    ctrl = _nvme_ctrl(k)
    ns = ctrl.namespaces[0]
    ctrl.ana_log = nvme.NVME_ANA_INACCESSIBLE  # the AEN's news

    async def aen(k):
        await access(ns.queue.queue_flags, READ)  # the step before
        await nvme.nvme_ana_work(k, ctrl.ana_work)

    task_run_on_cpu(k, aen, "kworker/0", 0)
    task_run_on_cpu(k, _deleter(ctrl), "nvme-cli", 1)
    return lambda: ns.ana_state == nvme.NVME_ANA_INACCESSIBLE


@pytest.mark.parametrize("strategy", SYSTEMATIC)
@pytest.mark.parametrize("setup", [_queue_scan_vs_delete, _ana_work_vs_delete], ids=["queue_scan", "ana_work"])
def test_nvme_ctrl_state_reads_are_declared(setup, strategy):
    # Before the delete: the scan is queued / the log is read; after it: not.
    assert outcomes(setup, strategy) == {False, True}


# ------------------------------------------------- 1.4 blk_mq_hctx_next_cpu


def _next_cpu_vs_offline(k):
    """A kblockd run of an hctx mapped to CPUs 0 and 1 picks its CPU while
    CPU 1 leaves cpu_online_mask (__cpu_disable())."""
    nb = null_add_dev(k, nr_hw_queues=2, hw_queue_depth=2, completion_us=100, managed_irqs=False)
    hctx = nb.q.queue_hw_ctx[0]
    hctx.cpumask = cpumask("hctx0.cpumask", [0, 1])
    hctx.next_cpu, hctx.next_cpu_batch = 0, 1  # this run moves on to the next CPU

    async def runner(k):
        await access(hctx.ctx_map, READ)  # the step before (blk_mq_hctx_has_pending())
        await blk_mq.blk_mq_delay_run_hw_queue(hctx, 0)

    async def offline(k):
        await __cpu_disable(k)

    task_run_on_cpu(k, runner, "fio", 0)
    task_run_on_cpu(k, offline, "migration/1", 1)
    return lambda: hctx.next_cpu


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_hctx_next_cpu_declares_its_online_mask_read(strategy):
    # CPU 1 while it is online, else back to CPU 0.
    assert outcomes(_next_cpu_vs_offline, strategy) == {0, 1}


# ------------------------------------- 2.19 nvme_tcp_queue_rq's connection


def _queue_rq_vs_stop(monkeypatch):
    """nvme_tcp_queue_rq() while nvme_tcp_stop_io_queues() tears the
    connection down.  Outcome: (sent, queue still live right after,
    answer accepted, answer already in when the submitter looked)."""

    def setup(k):
        ctrl = _nvme_ctrl(k)
        q = ctrl.namespaces[0].queue
        hctx = q.queue_hw_ctx[0]
        rq = _in_flight(q, hctx)
        rq.state = MQ_RQ_IDLE  # initialised, not started
        out = {"sent": False, "accepted": None}

        async def no_timeout(k, timer):
            pass

        q.timeout.function = no_timeout

        def answer(ctrl_, rq_, generation):  # nvme_tcp_response()'s generation test, recorded
            out["accepted"] = generation == ctrl_.generation

        monkeypatch.setattr(nvme, "nvme_tcp_response", answer)

        async def submitter(k):
            out["sent"] = await nvme.nvme_tcp_queue_rq(hctx, rq, True) == 0 and rq.state == MQ_RQ_IN_FLIGHT
            await access(ctrl, READ)
            out["live"] = ctrl.queue_live
            out["answered"] = out["accepted"] is not None

        async def teardown(k):
            await nvme.nvme_tcp_stop_io_queues(k, ctrl)

        task_run_on_cpu(k, submitter, "fio", 0)
        task_run_on_cpu(k, teardown, "kworker/1", 1)
        return lambda: (out["sent"], out["live"], out["accepted"], out["answered"])

    return setup


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_nvme_tcp_queue_rq_reads_the_connection_with_its_live_test(strategy, monkeypatch):
    # Plain DFS (a preemption bound, no sleep sets) explores every order of
    # the two tasks' steps, declared or not: the check of what the model does,
    # independent of the declarations.  DPOR shows they are declared.
    seen = outcomes(_queue_rq_vs_stop(monkeypatch), strategy, bound=2 if strategy == "dfs" else None)
    # Sent, torn down before the answer: dropped.
    assert (True, False, False, False) in seen
    # Sent and answered on a live connection.
    assert (True, True, True, True) in seen
    # Never: torn down before the answer came, yet the answer counted.  With
    # the generation read after blk_mq_start_request(), a teardown between
    # the live test and the start made the answer count.
    assert (True, False, True, False) not in seen


# ---------------------------------------- 2.18 nvme path selection, ctrl->state


def _find_path_vs_reset(k):
    """A submitter picks a path (nvme_find_path()) while nvme0 starts a reset."""
    head, ctrls = nvme.nvme_alloc_subsystem(k, nr_ctrls=2)
    out = {}

    async def submitter(k):
        await access(head.disk.queue_flags, READ)  # the step before
        out["path"] = (await nvme.nvme_find_path(head)).name

    async def reset(k):
        await access(ctrls[0], WRITE)  # nvme_reset_ctrl()'s state change (its work left out)
        nvme.nvme_change_ctrl_state(ctrls[0], nvme.NVME_CTRL_RESETTING)

    task_run_on_cpu(k, submitter, "fio", 0)
    task_run_on_cpu(k, reset, "nvme-cli", 1)
    return lambda: out["path"]


def _available_path_vs_delete(k):
    """No usable path (nvme0 reconnecting): is one available, while nvme0 is deleted?"""
    head, (ctrl,) = nvme.nvme_alloc_subsystem(k, nr_ctrls=1)
    ctrl.state = nvme.NVME_CTRL_CONNECTING
    out = {}

    async def submitter(k):
        await access(head.disk.queue_flags, READ)  # the step before
        out["available"] = await nvme.nvme_available_path(head)

    task_run_on_cpu(k, submitter, "fio", 0)
    task_run_on_cpu(k, _deleter(ctrl), "nvme-cli", 1)
    return lambda: out["available"]


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_nvme_find_path_reads_each_ctrl_state_at_its_own_step(strategy):
    assert outcomes(_find_path_vs_reset, strategy) == {"nvme0c0n1", "nvme0c1n1"}


@pytest.mark.parametrize("strategy", SYSTEMATIC)
def test_nvme_available_path_reads_each_ctrl_state_at_its_own_step(strategy):
    assert outcomes(_available_path_vs_delete, strategy) == {False, True}
