"""State fingerprints: what a run's future depends on, hashed.

A stateless search (DFS, DPOR) explores every run from the root, so two
schedules that reach the same state explore the same future twice: two
philosophers that put their forks down in either order, two workers that
finish independent items.  A stateful search (``engine/strategy/stateful.py``)
remembers the states whose future it has explored and abandons a run that
reaches one of them again (SPIN's visited set).  This module says what "the
same state" is for a model written as coroutines.

The state is everything reachable from the execution: the tasks (each one's
coroutine at its suspension point, with its locals and its evaluation stack),
the run queue, the lanes, the timers, the clock, and every model object those
reach.  It is walked in a fixed order and written as a flat sequence:

* a mutable object (an instance, a list, a dict, a cell, a coroutine) is
  written where the walk first meets it; a second reference writes its index,
  so aliasing is part of the state;
* an instance is its class's qualified name and its fields in order, less the
  fields its class names in ``__state_skip__`` (what only reports read); a
  class may instead define ``__state__()``, whose value is written for it;
* a coroutine or generator is its code, the instruction it is suspended at,
  the names of its locals that are set, and what the interpreter keeps alive
  in its frame: the locals' values and the evaluation stack (a ``for`` loop's
  iterator with its position, the coroutine it awaits);
* a function is its qualified name, its defaults and what its closure holds;
* a value of a type the walk does not know is an error
  (``NotFingerprintable``), never a guess: a fingerprint that leaves out what
  a future depends on would merge states that are not the same.

Left out, because no future depends on them:

* what the explorer keeps: the strategy, the choices, the trace, the
  violations already reported (this run's result, not its state), the
  end-of-run checkers (observers: what they read is reached from the tasks),
  and the campaign's shared state (lockdep's graph: see ``lockdep_graph``);
* tasks that have ended; the others are written by their rank among the live
  ones, not their tid: tids only name tasks, and two runs that spawned and
  ended a different number of helpers are the same state if the live tasks
  are (their futures correspond rank for rank, since the run queue is kept
  in tid order and a new task's tid is above every live one);
* which task ran last: the stateful search keeps it beside the fingerprint,
  since it decides only what counts as a preemption;
* the counters the engine keeps only to cut a run (the step a task last ran
  at, the steps since the clock last moved), until the run turns fair, when
  they decide who runs.  A future the engine would cut from one of two merged
  states is explored from the other one, in its uncut form or cut there too
  (then the campaign is not called exhausted): docs/DESIGN.md, "Stateful
  search";
* when a task that is not runnable last ran, and since when a task that does
  not block last blocked: read only in those states; when a runnable task
  last ran, if the clock may pass runnable tasks for ever (``max_delay_ns``
  None): read only to bound that.

Times are kept relative to ``now`` where only the difference is read (how
long a runnable task has waited, since when a task blocks, a timer's
deadline), and ``now`` itself is kept: a model may compare a time it stored
with the clock.  Timers are written in firing order, their sequence numbers
replaced by their rank.

The sequence is hashed with BLAKE2b (128 bits) over marshal's version-2
encoding, which depends on the values alone (no object addresses, no
reference counts, no PYTHONHASHSEED): the same state has the same fingerprint
in every process that runs the same code.
"""

from __future__ import annotations

import gc
import marshal
import sys
import types
from collections import deque
from hashlib import blake2b
from operator import attrgetter

from blkrace.engine.clock import Timer
from blkrace.engine.execution import Execution
from blkrace.engine.task import BLOCKED, DONE, RUNNABLE, Task

_PRIMITIVE = (int, float, str, bool, bytes, type(None))
_SKIP_IN_FRAME = (types.CodeType, types.FrameType)
_CORO = (types.CoroutineType, types.GeneratorType)


class NotFingerprintable(Exception):
    """The state holds a value whose meaning the walk cannot write down."""


# Execution fields that are part of the state as they are.
_EXECUTION_FIELDS = (
    "now",
    "idle_ns",
    "steps",
    "preemptive",
    "_fair",
    "_stopped",
    "hung_task_ns",
    "max_delay_ns",
    "max_starve_steps",
    "max_steps",
    "spin_steps",
)
# Execution fields written below in their own way, or left out (see the module docstring).
_EXECUTION_SKIP = frozenset(
    {
        *_EXECUTION_FIELDS,
        "strategy",
        "touched",
        "choices",
        "trace",
        "violations",
        "checkers",
        "traced",
        "cut",
        "clock_moves",
        "shared",
        "current",
        "last",
        "tasks",
        "runnable",
        "timers",
        "_lanes",
        "_holders",
        "_lane_since",
        "_excl",
        "_opts",
        "_moved_at",
        "_spin_check_at",
        "_end_reason",
    }
)


class _Walk:
    __slots__ = ("out", "memo", "now", "timer_rank", "task_rank", "bounded_delay")

    def __init__(self, now, timer_rank, task_rank, bounded_delay=True):
        self.out = []
        self.memo = {}  # id(object) -> the order the walk met it in
        self.now = now
        self.timer_rank = timer_rank  # id(timer) -> its place in the firing order
        self.task_rank = task_rank  # tid -> its place among the live tasks
        self.bounded_delay = bounded_delay  # is how long a task has been ready read (max_delay_ns)?

    def value(self, v):
        # The hot path of a stateful search: primitives first, then one
        # dictionary lookup for how to write an object of this class.
        out = self.out
        cls = v.__class__
        if cls is int or cls is bool or v is None or cls is float:
            out.append(v)
            return
        if cls is str:
            out.append("s")  # every other str in the sequence is a marker
            out.append(v)
            return
        if cls is tuple:
            out.append("t")
            out.append(len(v))
            for x in v:
                self.value(x)
            return
        key = id(v)
        seen = self.memo.get(key)
        if seen is not None:
            out.append("r")
            out.append(seen)
            return
        self.memo[key] = len(self.memo)
        write = _WRITERS.get(cls)
        if write is None:
            write = _WRITERS[cls] = _writer_for(cls)
        write(self, v)

    def sequence(self, v):
        out = self.out
        out.append("l")
        out.append(len(v))
        value = self.value
        for x in v:
            c = x.__class__
            if c is int or c is bool or x is None:
                out.append(x)
            else:
                value(x)

    def mapping(self, v):
        out = self.out
        out.append("d")
        out.append(len(v))
        for k, x in v.items():
            self.value(k)
            self.value(x)

    def timer(self, v):
        out = self.out
        out.append("timer")
        out.append(self.timer_rank.get(id(v), -1))
        out.append(v.deadline - self.now)
        out.append(v.active)
        out.append(v.daemon)
        out.append(v.name)
        self.value(v.fn)
        self.value(v.args)

    def root(self, v):
        self.out.append("execution")  # the root, written by state_sequence()

    def function(self, v):
        out = self.out
        out.append("f")
        out.append(v.__module__)
        out.append(v.__qualname__)
        self.value(v.__defaults__)
        cells = v.__closure__
        self.value(tuple(cells) if cells else None)

    def method(self, v):
        self.out.append("m")
        self.value(v.__func__)
        self.value(v.__self__)

    def cell(self, v):
        self.out.append("c")
        try:
            self.value(v.cell_contents)
        except ValueError:
            self.out.append("empty")

    def builtin_method(self, v):
        out = self.out
        out.append("B")
        out.append(v.__qualname__)
        owner = v.__self__
        if not isinstance(owner, types.ModuleType):
            self.value(owner)

    def klass(self, v):
        out = self.out
        out.append("T")
        out.append(v.__module__)
        out.append(v.__qualname__)

    def blob(self, v):
        self.out.append("b")
        self.out.append(v)

    def reduced(self, v):
        # A builtin on a frame's stack (a for loop's iterator, a range, an
        # enumerate): what it reduces to says all of it, the position
        # included (list_iterator -> (iter, (list,), index)).
        out = self.out
        out.append("i")
        out.append(v.__class__.__name__)
        try:
            parts = v.__reduce__()
        except TypeError:
            raise NotFingerprintable(f"cannot write down a {v.__class__.__name__}") from None
        self.value(parts[1:])

    def unordered(self, v):
        """A set: its elements sorted, so that insertion history and hashing
        do not matter.  Primitive elements sort by value; objects by where the
        walk met them, so an object met first in a set is an error (its place
        would be its address)."""
        out = self.out
        out.append("S")
        out.append(len(v))
        keys = []
        for x in v:
            if x.__class__ in _PRIMITIVE:
                keys.append((0, x.__class__.__name__, x))
                continue
            seen = self.memo.get(id(x))
            if seen is None:
                raise NotFingerprintable(f"a set holds {x!r}, which the walk meets nowhere else")
            keys.append((1, "", seen))
        keys.sort()
        for kind, _name, x in keys:
            if kind:
                out.append("r")
                out.append(x)
            else:
                self.value(x)

    def task(self, t):
        out = self.out
        out.append("K")
        out.append(self.task_rank.get(t.tid, -1))
        out.append(t.name)
        out.append(t.state)
        self.value(t.lane)
        out.append(t.level)
        if t.state is RUNNABLE:
            if self.bounded_delay:
                out.append(self.now - t.ready_at)  # the clock may pass it by max_delay_ns only
        elif t.state is BLOCKED:
            out.append(t.hung_check)
            out.append(self.now - t.blocked_since)  # the hung-task check
        self.value(t.pending)
        self.value(t.resume)
        self.value(t.send_value)
        self.value(t.blocked_on)
        self.value(t.timer)
        self.value(t.data)
        self.value(t.coro)

    def coroutine(self, c):
        out = self.out
        if c.__class__ is types.CoroutineType:
            code, frame = c.cr_code, c.cr_frame
        else:
            code, frame = c.gi_code, c.gi_frame
        out.append("C")
        out.append(code.co_filename)
        out.append(code.co_qualname)
        if frame is None:  # finished or closed
            out.append(-1)
            return
        out.append(frame.f_lasti)
        # Which locals are set (a slot may be empty), then what the frame
        # keeps alive, in slot order: the locals' values, then the evaluation
        # stack.  Together they say what each slot holds.
        out.append(tuple(frame.f_locals))
        refs = [r for r in gc.get_referents(c) if not isinstance(r, _SKIP_IN_FRAME)]
        out.append(len(refs))
        for r in refs:
            self.value(r)


class _Instance:
    """How to write an instance of one class (made once per class)."""

    __slots__ = ("marker", "module", "name", "slots", "get", "has_dict", "skip", "own")

    def __init__(self, cls):
        self.module = cls.__module__
        self.name = cls.__qualname__
        self.own = getattr(cls, "__state__", None)
        self.skip = frozenset(getattr(cls, "__state_skip__", ()))
        self.slots = tuple(n for n in _slots_of(cls) if n not in self.skip)
        # One C call for every slot, when all are set (the common case).
        self.get = attrgetter(*self.slots) if len(self.slots) > 1 else None
        self.has_dict = cls.__dictoffset__ != 0

    def __call__(self, walk, v):
        out = walk.out
        out.append("o")
        out.append(self.module)
        out.append(self.name)
        if self.own is not None:
            walk.value(self.own(v))
            return
        value = walk.value
        if self.get is not None:
            try:
                fields = self.get(v)
            except AttributeError:
                fields = None
            if fields is not None:
                append = out.append
                for x in fields:
                    c = x.__class__
                    if c is int or c is bool or x is None:  # value() inlined for the commonest fields
                        append(x)
                    elif c is str:
                        append("s")
                        append(x)
                    else:
                        value(x)
            else:
                for name in self.slots:
                    try:
                        x = getattr(v, name)
                    except AttributeError:
                        out.append("unset")
                        continue
                    value(x)
        elif self.slots:
            try:
                value(getattr(v, self.slots[0]))
            except AttributeError:
                out.append("unset")
        if self.has_dict:
            d = v.__dict__
            skip = self.skip
            out.append(len(d))
            for name, x in d.items():
                if name not in skip:
                    out.append(name)
                    value(x)


def _writer_for(cls):
    if cls is list or cls is deque:
        return _Walk.sequence
    if cls is dict:
        return _Walk.mapping
    if cls is Task:
        return _Walk.task
    if cls in _CORO:
        return _Walk.coroutine
    if cls is Timer:
        return _Walk.timer
    if cls is Execution:
        return _Walk.root
    if cls is types.FunctionType:
        return _Walk.function
    if cls is types.MethodType:
        return _Walk.method
    if cls is types.CellType:
        return _Walk.cell
    if cls is set or cls is frozenset:
        return _Walk.unordered
    if cls is bytes:
        return _Walk.blob
    if cls is types.BuiltinMethodType:
        return _Walk.builtin_method
    if issubclass(cls, type):
        return _Walk.klass
    if cls.__module__ == "builtins" and cls.__dictoffset__ == 0:
        return _Walk.reduced
    for klass in cls.__mro__[:-1]:
        if not _python_class(klass):
            # A class written in C (or a subclass of a builtin container)
            # may keep state its fields do not show: no guess.
            raise NotFingerprintable(f"cannot write down a {cls.__module__}.{cls.__qualname__}")
    return _Instance(cls)


_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: made by a class statement (or by C code at run time)


def _python_class(klass):
    """Was ``klass`` defined by a class statement in a Python source file?"""
    if not klass.__flags__ & _HEAPTYPE:
        return False
    module = sys.modules.get(klass.__module__)
    return str(getattr(module, "__file__", "")).endswith(".py")


_WRITERS = {}


_SLOTS = {}


def _slots_of(cls):
    slots = _SLOTS.get(cls)
    if slots is None:
        names = []
        for klass in reversed(cls.__mro__):
            declared = klass.__dict__.get("__slots__", ())
            if isinstance(declared, str):
                declared = (declared,)
            names.extend(n for n in declared if n not in ("__dict__", "__weakref__"))
        slots = _SLOTS[cls] = tuple(names)
    return slots


def state_sequence(execution):
    """The state of ``execution`` written as a flat list (see the module docstring)."""
    ex = execution
    now = ex.now
    live_timers = sorted((d, s, t) for d, s, t in ex.timers.heap if t.active)
    alive = [t for t in ex.tasks if t.state is not DONE]
    rank = {t.tid: i for i, t in enumerate(alive)}
    w = _Walk(now, {id(t): i for i, (_d, _s, t) in enumerate(live_timers)}, rank, ex.max_delay_ns is not None)
    out = w.out
    for name in _EXECUTION_FIELDS:
        out.append(getattr(ex, name))
    out.append(ex._spin_check_at - ex.steps)  # when time may next pass while tasks spin
    if ex._fair:
        # A fair run picks the least recently run option, the clock included.
        out.append(ex.steps - ex._moved_at)
        out.append(tuple(ex.steps - t.ran_at_step for t in alive))
    out.append(len(alive))
    for t in alive:
        w.value(t)
    out.append(tuple(rank[t.tid] for t in ex.runnable))
    for lane in sorted(ex._lanes, key=repr):
        stack = ex._lanes[lane]
        if stack:
            out.append("lane")
            w.value(lane)
            out.append(tuple((rank.get(owner.tid, -1), excl) for owner, excl in stack))
    for lane in sorted(ex._holders, key=repr):
        task, since_ns, _since_step = ex._holders[lane]
        out.append("held")
        w.value(lane)
        out.append(rank.get(task.tid, -1))
        out.append(now - since_ns)
    out.append(len(live_timers))
    for _deadline, _seq, timer in live_timers:
        w.value(timer)
    # What the layers above keep on the execution (the kernel, its memory model).
    for name, x in vars(ex).items():
        if name not in _EXECUTION_SKIP:
            out.append(name)
            w.value(x)
    return out


def fingerprint(execution):
    """16 bytes, equal for two executions in the same state."""
    return blake2b(marshal.dumps(state_sequence(execution), 2), digest_size=16).digest()


def live_rank(execution, task):
    """``task``'s place among the tasks that have not ended (-1: none, or it ended)."""
    if task is None or task.state is DONE:
        return -1
    return sum(1 for t in execution.tasks[: task.tid] if t.state is not DONE)
