"""The engine: deterministic coroutine scheduling, virtual time, exploration.

It knows nothing of the kernel.  Model code imports what it needs from here:
traps (the only scheduling points), WaitQueue, violations, the clock.
"""

from blkrace.engine.clock import NSEC_PER_MSEC, NSEC_PER_SEC, NSEC_PER_USEC
from blkrace.engine.execution import PRUNE, Execution, ModelError, RunResult, ScheduleMismatch
from blkrace.engine.traps import READ, SYNC, TIMED_OUT, TOUCHES_NOTHING, WRITE, access, block, choose, sleep
from blkrace.engine.violations import KINDS, StopRun, Violation
from blkrace.engine.waitq import WaitQueue

__all__ = [
    "KINDS",
    "NSEC_PER_MSEC",
    "NSEC_PER_SEC",
    "NSEC_PER_USEC",
    "PRUNE",
    "READ",
    "SYNC",
    "TIMED_OUT",
    "TOUCHES_NOTHING",
    "WRITE",
    "Execution",
    "ModelError",
    "RunResult",
    "ScheduleMismatch",
    "StopRun",
    "Violation",
    "WaitQueue",
    "access",
    "block",
    "choose",
    "sleep",
]
