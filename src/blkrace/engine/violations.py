"""Typed violations: what a run can find, and how findings are told apart."""

from __future__ import annotations

from dataclasses import dataclass, field

# Exactly these kinds, in this order of severity for summaries.
KINDS = (
    "deadlock",  # a wait-for cycle
    "stall",  # work left undone when nothing can move
    "hung_task",  # a task blocked longer than the virtual hung-task timeout
    "soft_lockup",  # a CPU ran one task without scheduling past the watchdog threshold
    "livelock",  # the step bound was hit while tasks kept running
    "io_error",  # a request completed with an error (a timeout included)
    "latency",  # a bio took longer than a scenario's bound, in idle virtual time (scenarios/latency.py)
    "warning",  # a modelled WARN_ON fired
    "bug",  # a modelled BUG_ON or a scenario invariant failed
    "lockdep",  # a lockdep report
    "model_error",  # an exception in model code
)


@dataclass
class Violation:
    """One finding of one run.

    ``origin`` is what makes two findings "the same bug" for deduplication
    (kind plus a model location or a stable description), in the spirit of
    Hypothesis's InterestingOrigin.  ``detail`` holds extra report lines
    (a backtrace, the wait-for cycle).
    """

    kind: str
    message: str
    origin: str = ""
    step: int = 0
    time_ns: int = 0
    detail: list = field(default_factory=list)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown violation kind {self.kind!r}")
        if not self.origin:
            self.origin = f"{self.kind}:{self.message}"


class StopRun(Exception):
    """Raised inside model code to end the run at once with a violation (BUG_ON)."""

    def __init__(self, violation):
        super().__init__(violation.message)
        self.violation = violation
