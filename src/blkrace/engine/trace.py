"""Trace records and the coroutine-stack walker behind backtraces.

Exploration runs untraced (fast).  A run worth showing is replayed from its
token with ``traced=True``: replay is exact, so the traced run is the run.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

_ENGINE_DIR = __file__.rsplit("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Frame:
    """One line of a backtrace: a model function and where it is stopped."""

    function: str
    filename: str
    lineno: int
    offset: int  # lines from the function's ``def``: the "+0x.." of a kernel trace

    def short_file(self):
        marker = "/blkrace/"
        i = self.filename.rfind(marker)
        return self.filename[i + 1 :] if i >= 0 else self.filename


@dataclass(slots=True)
class TraceStep:
    """One entry of a traced run, in the order things happened."""

    step: int
    time_ns: int
    kind: str  # "step", "timer", "choose", "event", "spawn", "exit", "block", "sleep"
    task: str  # task name, or "" for the clock
    tid: int  # -1 for the clock
    lane: object  # the lane (a CPU number in the kernel model) or None
    function: str  # where the task was parked (the model function)
    lineno: int
    what: str  # the access or the event text
    stack: tuple = ()  # the task's model frames at that point, outermost first

    def as_dict(self):
        return {
            "step": self.step,
            "time_ns": self.time_ns,
            "kind": self.kind,
            "task": self.task,
            "tid": self.tid,
            "cpu": self.lane,
            "function": self.function,
            "line": self.lineno,
            "operation": self.what,
            "stack": [f.function for f in self.stack],
        }


def coroutine_stack(coro):
    """Frames of a task from the outermost coroutine to the innermost one.

    Walks ``cr_await``; the engine's own trap generators are skipped, so the
    innermost frame is the model function that awaited the scheduling point.
    """
    frames = []
    while coro is not None:
        if isinstance(coro, types.CoroutineType):
            frame = coro.cr_frame
            if frame is not None and not frame.f_code.co_filename.startswith(_ENGINE_DIR):
                code = frame.f_code
                frames.append(
                    Frame(code.co_name, code.co_filename, frame.f_lineno, frame.f_lineno - code.co_firstlineno)
                )
            coro = coro.cr_await
        elif isinstance(coro, types.GeneratorType):
            coro = coro.gi_yieldfrom
        else:
            break
    return frames


def running_stack(task, skip=()):
    """Frames of the task that is running now (cr_await is empty while a chain
    runs, so walk f_back from here to the task's outermost coroutine)."""
    import sys

    frames = []
    top = task.coro.cr_frame
    f = sys._getframe(1)
    while f is not None:
        code = f.f_code
        if not code.co_filename.startswith(_ENGINE_DIR) and code.co_name not in skip:
            frames.append(Frame(code.co_name, code.co_filename, f.f_lineno, f.f_lineno - code.co_firstlineno))
        if f is top:
            break
        f = f.f_back
    frames.reverse()
    return frames


def innermost(coro):
    frames = coroutine_stack(coro)
    return frames[-1] if frames else None


def frames_of_traceback(tb):
    """Model frames of an exception traceback, outermost first (for model_error)."""
    frames = []
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.startswith(_ENGINE_DIR):
            frames.append(Frame(code.co_name, code.co_filename, tb.tb_lineno, tb.tb_lineno - code.co_firstlineno))
        tb = tb.tb_next
    return frames


def format_backtrace(frames, indent=" "):
    """Kernel-style ``Call Trace:`` lines, innermost first."""
    lines = []
    for f in reversed(frames):
        lines.append(f"{indent}{f.function}+{f.offset}  ({f.short_file()}:{f.lineno})")
    return lines
