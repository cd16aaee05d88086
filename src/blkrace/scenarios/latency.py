"""The ``latency`` check: a bio slower than a bound, in time the engine cannot fake.

Virtual time in a run moves for two kinds of reasons.  Either nothing can
run (every task sleeps or waits, and the clock jumps to the next timer: a
device's latency, a delayed work, an msleep()), or the explorer lets time
pass while something could run: the clock may pass a runnable task by up to
``max_delay_ns`` (bounded unfairness, the way "this CPU was busy elsewhere
for a while" is expressed), and every ``spin_steps`` steps without a clock
move it moves on by up to ``max_delay_ns`` while tasks keep running (so that
timeouts see a spinning CPU).  Time of the second kind is a modelling
device: how much of it a bio sees depends on the schedule and on the limits,
not on the kernel.  A correct kernel can show a bio 20 ms "late" under the
default limits, as often as the explorer likes.

So a ``LatencyWatch`` measures each bio in *idle* time
(``Execution.idle_ns``): the part of its life during which no task could
run.  That is time the kernel itself made everyone wait: its timers, its
device, its delayed runs.  What a scenario may assume:

* a bio's idle latency counts only time during which every task waited for
  a timer; the check never fires because the engine let time pass while
  something could run, whatever ``max_delay_ns`` and ``spin_steps`` are;
* the interleaving itself may include delays of up to ``max_delay_ns`` per
  runnable task (a timer may fire before a task that was ready runs): if a
  bound only holds when tasks run promptly relative to a timer, declare a
  ``max_delay_ns`` below that timer's slack in the scenario's limits;
* time spent spinning does not count: a bio delayed only because a CPU spins
  is a ``soft_lockup`` or ``livelock`` finding, not a ``latency`` one;
* a bio that never ends is a ``stall`` (``checks.check_bios``), not a
  latency.

``clock="virtual"`` measures plain virtual time instead; it is unsound (the
check then fires on correct kernels) and is there to show the difference.
"""

from __future__ import annotations

from blkrace.block.blk_core import submit_bio
from blkrace.block.types import REQ_OP_READ, REQ_SYNC, bio
from blkrace.engine import Violation
from blkrace.kernel.locking.wait import complete, completion, wait_for_completion

CLOCKS = ("idle", "virtual")


class LatencyWatch:
    """Per-bio latencies of one run, checked against ``bound_ns`` as bios end."""

    def __init__(self, execution, bound_ns, clock="idle"):
        if clock not in CLOCKS:
            raise ValueError(f"unknown latency clock {clock!r} (valid: {', '.join(CLOCKS)})")
        self.execution = execution
        self.bound_ns = bound_ns
        self.clock = clock
        self.started = {}  # bio name -> (virtual ns, idle ns) at submission
        self.samples = []  # (bio name, latency ns in this watch's clock, virtual ns), in completion order

    def _stamp(self):
        ex = self.execution
        return ex.now, ex.idle_ns

    def submitted(self, b):
        """Call right before submit_bio(``b``)."""
        self.started[b.name] = self._stamp()

    def ended(self, b):
        """Call from ``b``'s end_io: records the latency, reports one over the bound."""
        now, idle = self._stamp()
        t0, idle0 = self.started.pop(b.name)
        virtual = now - t0
        measured = idle - idle0 if self.clock == "idle" else virtual
        self.samples.append((b.name, measured, virtual))
        if measured > self.bound_ns:
            self.execution.report(
                Violation(
                    "latency",
                    f"{b.name} from {b.submitter} took {measured / 1e6:.3f} ms of {self.clock} time "
                    f"(bound {self.bound_ns / 1e6:.3f} ms; {virtual / 1e6:.3f} ms virtual in all)",
                    origin=f"latency:{self.clock}",
                )
            )


async def timed_end_io(k, b):
    """The end_io of ``timed_sync_reader``'s bios: submit_bio_wait_endio(), timed."""
    done, watch = b.bi_private
    watch.ended(b)
    await complete(k, done)


async def timed_sync_reader(k, q, nr_reads, watch):
    """A process reading synchronously (submit_bio_wait()) ``nr_reads`` times,
    each bio timed by ``watch`` from submit_bio() to its end_io."""
    ts = k.current
    for i in range(nr_reads):
        done = completion(f"{ts.comm}:read#{i}.done")
        b = bio(f"bio:{ts.comm}#{i}", REQ_OP_READ | REQ_SYNC, timed_end_io, (done, watch))
        b.bi_disk = q
        watch.submitted(b)
        await submit_bio(k, b)
        await wait_for_completion(k, done)
