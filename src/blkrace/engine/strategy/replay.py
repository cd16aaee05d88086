"""Replay: take every choice from a recorded list (a schedule token's)."""

from __future__ import annotations

from blkrace.engine.execution import ScheduleMismatch


class Replay:
    """Strict by default: a choice that does not fit the model is an error.

    ``lenient=True`` serves an explicit request (replaying a buggy-variant
    token on the fixed variant): at a misaligned choice it keeps running the
    previous task if it can, else the lowest task, and notes the step where
    the schedule diverged (Hypothesis's drift tolerance).
    """

    name = "replay"

    def __init__(self, choices, lenient=False):
        self.choices = list(choices)
        self.lenient = lenient
        self.pos = 0
        self.diverged_at = None
        self._execution = None

    def start_run(self, execution, index):
        self.pos = 0
        self.diverged_at = None
        self._execution = execution
        return True

    def _next(self):
        if self.pos >= len(self.choices):
            return None
        value = self.choices[self.pos]
        self.pos += 1
        return value

    def _diverge(self, why):
        if not self.lenient:
            raise ScheduleMismatch(why)
        if self.diverged_at is None:
            self.diverged_at = (self._execution.steps, why)

    def pick(self, options, can_advance):
        value = self._next()
        if value == 0 and can_advance:
            return len(options)
        if value:
            tid = value - 1
            for i, task in enumerate(options):
                if task.tid == tid:
                    return i
        self._diverge(
            f"step {self._execution.steps}: the token says "
            + (
                "the schedule ended"
                if value is None
                else "advance the clock"
                if value == 0
                else f"run task {value - 1}"
            )
            + f", but the model offers {[t.tid for t in options]}{' and the clock' if can_advance else ''}"
        )
        last = self._execution.last
        for i, task in enumerate(options):
            if task is last:
                return i
        return 0

    def choose(self, n):
        value = self._next()
        if value is not None and value < n:
            return value
        self._diverge(f"step {self._execution.steps}: the token's data choice {value} does not fit choose({n})")
        return 0

    def end_run(self, result):
        if self.pos != len(self.choices):
            self._diverge(f"the run ended with {len(self.choices) - self.pos} choices of the token unused")
