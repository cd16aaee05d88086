"""Virtual time: nanoseconds, and a heap of timers keyed (deadline, seq)."""

from __future__ import annotations

import heapq

NSEC_PER_USEC = 1_000
NSEC_PER_MSEC = 1_000_000
NSEC_PER_SEC = 1_000_000_000


class Timer:
    """A callback due at ``deadline``.  Ties break on ``seq``, never on identity."""

    __slots__ = ("deadline", "seq", "fn", "args", "active", "name")

    def __init__(self, deadline, seq, fn, args, name):
        self.deadline = deadline
        self.seq = seq
        self.fn = fn
        self.args = args
        self.active = True
        self.name = name

    def __repr__(self):
        return f"<Timer {self.name} @{self.deadline}ns{'' if self.active else ' (done)'}>"


class TimerHeap:
    """The pending timers of one execution (SimPy's core heap, nothing more)."""

    __slots__ = ("heap", "seq", "live")

    def __init__(self):
        self.heap = []
        self.seq = 0
        self.live = 0  # active timers still in the heap

    def add(self, deadline, fn, args, name):
        self.seq += 1
        timer = Timer(deadline, self.seq, fn, args, name)
        heapq.heappush(self.heap, (deadline, self.seq, timer))
        self.live += 1
        return timer

    def cancel(self, timer):
        """Deactivate ``timer``; return whether it was still pending."""
        if not timer.active:
            return False
        timer.active = False
        self.live -= 1
        return True

    def next_deadline(self):
        heap = self.heap
        while heap and not heap[0][2].active:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

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
            timer.active = False
            self.live -= 1
            return timer
        return None
