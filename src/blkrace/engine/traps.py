"""The only awaitables that ever yield to the engine.

Every scheduling point of a model is one of the traps below (the idea is
Trio's ``_traps.py``).  A task's coroutine yields a small tuple whose first
element says what it wants; the loop in :mod:`blkrace.engine.execution`
dispatches on that element alone.

Rules the rest of the project builds on:

* Awaiting a trap means "another CPU may run here".  Code between two awaits
  runs atomically, so a model makes a shared access that matters for a race
  visible by awaiting :func:`access` *before* performing it: the access is
  declared, the explorer decides who runs next, and only then does the code
  after the await run (loom's "declare the operation, then branch").
* The step that resumes a task after :func:`block` or :func:`sleep` runs the
  code after the await up to the next one.  By default the explorer knows
  nothing of what it touches, and counts it dependent with every step.  A
  wait that re-checks one object after a wake (a mutex its owner, a wait
  queue its condition, under the same declaration as the first check)
  says so with ``resume=(obj, kind)``: that code then touches ``obj`` only
  (and what it declares with ``Execution.touch``), like any declared step.
* :func:`choose` is a data choice owned by the explorer.  It is *not* a
  scheduling point: the task keeps the CPU and receives the chosen index.
"""

from __future__ import annotations

import types

# Message tags.  Small ints: the loop compares them with ``is``-cheap equality.
STEP = 0  # (STEP, obj, kind): declare an access, stay runnable
BLOCK = 1  # (BLOCK, waitqueue, timeout_ns or None, hung_check, resume)
SLEEP = 2  # (SLEEP, duration_ns, resume)
CHOOSE = 3  # (CHOOSE, n, label)

# Access kinds.  Two accesses to one object are dependent unless both read.
READ = 1
WRITE = 2
SYNC = 3  # a synchronisation operation (lock, wake): dependent like a write

KIND_LETTER = {READ: "R", WRITE: "W", SYNC: "S", None: "?"}

# What a timed-out block returns instead of the waker's value.
TIMED_OUT = type("TimedOut", (), {"__repr__": lambda self: "TIMED_OUT"})()


@types.coroutine
def access(obj, kind=WRITE):
    """Scheduling point: the task is about to touch ``obj`` (``None``: anything)."""
    yield (STEP, obj, kind)


@types.coroutine
def block(waitq, timeout_ns=None, hung_check=True, resume=None):
    """Park the current task on ``waitq`` until woken (or until the timeout).

    Returns the value given to the wake, or :data:`TIMED_OUT`.  Before calling
    this, the caller must have arranged for a later ``wake`` (Trio's contract);
    if nothing ever wakes it, the run ends as a deadlock or stall.
    ``hung_check`` marks an uninterruptible wait the hung-task check watches.
    ``resume=(obj, kind)`` declares what the code after the wake touches
    before its next await (see the module docstring).
    """
    return (yield (BLOCK, waitq, timeout_ns, hung_check, resume))


@types.coroutine
def sleep(duration_ns, resume=None):
    """Sleep for ``duration_ns`` of virtual time (msleep, schedule_timeout);
    ``resume`` as for :func:`block`."""
    yield (SLEEP, duration_ns, resume)


# What a resumed step declares when the code after the wake touches nothing
# shared before its next await: a read of an object nobody writes, so it is
# independent of every step.
NOTHING = type("Nothing", (), {"__repr__": lambda self: "nothing", "__slots__": ()})()
TOUCHES_NOTHING = (NOTHING, READ)


@types.coroutine
def choose(n, label=""):
    """Return an index in ``range(n)`` picked by the explorer (no reschedule)."""
    if n <= 1:
        return 0
    return (yield (CHOOSE, n, label))
