"""A task: one coroutine the engine drives, plus its scheduling state."""

from __future__ import annotations

NEW = "N"  # spawned, not yet parked at its first trap
RUNNABLE = "R"
BLOCKED = "D"  # parked on a wait queue
SLEEPING = "S"  # waiting for a timer
DONE = "X"


class Task:
    """One schedulable coroutine.

    ``tid`` comes from the execution's counter, so it is the same in every
    process for the same run.  ``lane`` groups tasks for the per-CPU timeline
    and for lane exclusion (see :meth:`Execution.lane_push`); ``level`` orders
    tasks within a lane (a higher level interrupts a lower one).  ``data``
    belongs to the layer above (the kernel keeps its task_struct there).
    """

    __slots__ = (
        "tid",
        "name",
        "coro",
        "state",
        "pending",
        "send_value",
        "lane",
        "level",
        "blocked_on",
        "blocked_since",
        "hung_check",
        "timer",
        "data",
        "park_site",
        "steps",
        "execution",
        "ready_at",
        "ran_at_step",
        "resume",
    )

    def __init__(self, execution, tid, name, coro, lane, level, data):
        self.execution = execution
        self.tid = tid
        self.name = name
        self.coro = coro
        self.state = NEW
        self.pending = None  # the trap message the task is parked at
        self.send_value = None  # what the next coro.send delivers
        self.lane = lane
        self.level = level
        self.blocked_on = None
        self.blocked_since = 0
        self.hung_check = False
        self.timer = None  # wake-up or timeout timer while blocked or sleeping
        self.data = data
        self.park_site = None  # (function, file, line) where parked; traced runs only
        self.steps = 0
        self.ready_at = execution.now  # when it last ran or became runnable
        self.ran_at_step = execution.steps  # the step at which it last ran or became runnable
        self.resume = None  # while blocked or sleeping: the pending trap its wake restores (traps.block's resume)

    def __repr__(self):
        return f"<Task {self.tid} {self.name} {self.state}>"
