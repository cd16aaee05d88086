"""Virtual time: nanoseconds, and a heap of timers keyed (deadline, seq)."""

from __future__ import annotations

import heapq

NSEC_PER_USEC = 1_000
NSEC_PER_MSEC = 1_000_000
NSEC_PER_SEC = 1_000_000_000


class Timer:
    """A callback due at ``deadline``.  Ties break on ``seq``, never on identity."""

    __slots__ = ("deadline", "seq", "fn", "args", "active", "name", "daemon")

    def __init__(self, deadline, seq, fn, args, name, daemon=False):
        self.deadline = deadline
        self.seq = seq
        self.fn = fn
        self.args = args
        self.active = True
        self.name = name
        self.daemon = daemon

    def __repr__(self):
        return f"<Timer {self.name} @{self.deadline}ns{'' if self.active else ' (done)'}>"


class TimerHeap:
    """The pending timers of one execution (SimPy's core heap, nothing more).

    A *daemon* timer (a periodic watchdog) fires when the clock passes it but
    does not by itself keep a run going: a run whose tasks all wait and whose
    only timers are daemons has ended.
    """

    __slots__ = ("heap", "seq", "live", "active")

    def __init__(self):
        self.heap = []
        self.seq = 0
        self.live = 0  # active non-daemon timers still in the heap
        self.active = 0  # active timers of either kind

    def add(self, deadline, fn, args, name, daemon=False):
        self.seq += 1
        timer = Timer(deadline, self.seq, fn, args, name, daemon)
        heapq.heappush(self.heap, (deadline, self.seq, timer))
        self.active += 1
        if not daemon:
            self.live += 1
        return timer

    def cancel(self, timer):
        """Deactivate ``timer``; return whether it was still pending."""
        if not timer.active:
            return False
        self._retire(timer)
        return True

    def _retire(self, timer):
        timer.active = False
        self.active -= 1
        if not timer.daemon:
            self.live -= 1

    def next_deadline(self):
        heap = self.heap
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def next_timer(self):
        """The next active timer, or None."""
        return self.heap[0][2] if self.next_deadline() is not None else None

    def pop_due(self, now, max_seq):
        """Pop the next active timer due by ``now`` and armed before ``max_seq``."""
        heap = self.heap
        while heap:
            deadline, seq, timer = heap[0]
            if not timer.active:
                heapq.heappop(heap)
                continue
            if deadline > now or seq > max_seq:
                return None
            heapq.heappop(heap)
            self._retire(timer)
            return timer
        return None
