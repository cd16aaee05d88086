"""kernel/watchdog.c: the soft-lockup detector (v5.12 shape).

Each CPU runs an hrtimer every sample_period (watchdog_thresh * 2 / 5 = 4 s);
watchdog_timer_fn() kicks the CPU's stopper to run softlockup_fn(), which
touches watchdog_touch_ts, and reports a soft lockup when the touch is
older than the threshold (watchdog_thresh * 2 = 20 s):

    BUG: soft lockup - CPU#0 stuck for 22s! [fio-0:3]

The stopper can only run when the CPU schedules, so the touch is as old as
the last time the CPU scheduled.  The model reads that time off the engine's
non-preemptible lane (who has had the CPU since when) instead of running a
stopper task every 4 s: the same answer without the extra tasks.  With full
preemption every task-level loop is preemptible and the detector stays
quiet (spinning with preemption off is not covered: a named gap).

The timers are daemons: they fire as time passes but do not keep a run
going on their own.  softlockup_panic is off: the report stops the run, as
nothing it does afterwards would be different.
"""

from __future__ import annotations

from blkrace.engine import NSEC_PER_SEC, StopRun, Violation

watchdog_thresh = 10  # seconds, kernel.watchdog_thresh


# get_softlockup_thresh(), kernel/watchdog.c
def get_softlockup_thresh():
    """get_softlockup_thresh(): twice watchdog_thresh, in seconds."""
    return watchdog_thresh * 2


# get_sample_period(), kernel/watchdog.c
def get_sample_period():
    """get_sample_period(): the hrtimer period, in ns."""
    return get_softlockup_thresh() * (NSEC_PER_SEC // 5)


# lockup_detector_init(), kernel/watchdog.c
def lockup_detector_init(k):
    """lockup_detector_init() -> watchdog_enable() on every CPU."""
    for cpu in range(k.nr_cpu_ids):
        _arm(k, cpu)


def _arm(k, cpu):
    k.execution.add_timer(get_sample_period(), watchdog_timer_fn, k, cpu, name=f"watchdog/{cpu}", daemon=True)


# is_softlockup(), kernel/watchdog.c
def is_softlockup(k, touch_ts):
    """is_softlockup(): seconds stuck if the touch is older than the threshold, else 0."""
    now = k.now // NSEC_PER_SEC
    if now > touch_ts + get_softlockup_thresh():
        return now - touch_ts
    return 0


# watchdog_timer_fn(), kernel/watchdog.c
def watchdog_timer_fn(k, cpu):
    """watchdog_timer_fn(): the per-CPU hrtimer (interrupt context)."""
    _arm(k, cpu)  # hrtimer_forward_now()
    if not k.cpu_online_mask.bits >> cpu & 1:
        # Offline: the kernel cancels the timer (watchdog_disable()) and
        # starts it again when the CPU comes back; here it keeps ticking
        # and looks at nothing meanwhile.
        return
    held = k.execution.lane_holder(cpu)
    if held is None:
        return  # the CPU has scheduled since: softlockup_fn() touched the timestamp
    task, since_ns = held
    duration = is_softlockup(k, since_ns // NSEC_PER_SEC)
    if not duration:
        return
    ts = task.data
    comm, pid = (ts.comm, ts.pid) if ts is not None else (task.name, task.tid)
    raise StopRun(
        Violation(
            "soft_lockup",
            f"BUG: soft lockup - CPU#{cpu} stuck for {duration}s! [{comm}:{pid}]",
            origin=f"soft_lockup:{k.execution.blocked_site(task)}",
            detail=k.execution.backtrace(task),
        )
    )
