"""Lockdep (kernel/lockdep.c, v3.x with RECLAIM_FS as a usage state).

Lock classes are keyed by name, as the kernel keys them by their static key.
Each task has its stack of held locks.  One dependency graph lives across
every run of a campaign, as lockdep's lives across a boot: a dependency seen
in one run and its reverse in another is a report, though neither run
deadlocked.  Usage states per class: hardirq and softirq safe/unsafe, and
reclaim (RECLAIM_FS: a lock held across a __GFP_FS allocation is
RECLAIM_FS-ON; one taken inside reclaim is IN-RECLAIM_FS).  Like lockdep, it
reports once: the first report switches it off for the rest of the campaign.

Reports use lockdep's headings and layout as v3.0-v3.2 print them (see
docs/research/lockdep-v3.md); the "[<address>] function+off" lines are the
model's stacks, with stable pseudo addresses.  Left out: lock chains' hash
cache, read-recursion subtleties beyond read/write letters, nested lock
subclasses, and print_irqtrace_events() beyond its first line (the model
keeps no history of irq enable/disable events; the stamp is the step number).
"""

from __future__ import annotations

import zlib

from blkrace.engine import Violation
from blkrace.engine.trace import running_stack
from blkrace.kernel.patch import Patch
from blkrace.kernel.sched import PF_MEMALLOC

FS_RECLAIM_REWORK = Patch(
    "lockdep-rework-fs-reclaim",
    "d92a8cfcb37e",
    "locking/lockdep: Rework FS_RECLAIM annotation (v4.14: the fs_reclaim pseudo-lock)",
)

# enum lock_usage_bit: for each state, USED_IN, USED_IN_READ, ENABLED, ENABLED_READ.
STATES = ("HARDIRQ", "SOFTIRQ", "RECLAIM_FS")
HARDIRQ, SOFTIRQ, RECLAIM_FS = 0, 4, 8
USED_IN, USED_IN_READ, ENABLED, ENABLED_READ = 0, 1, 2, 3
LOCK_USED = 12

__GFP_WAIT = 0x10
__GFP_IO = 0x40
__GFP_FS = 0x80
__GFP_NOMEMALLOC = 0x10000


# model: the {+.+.?.} usage letters of get_usage_chars(), kernel/lockdep.c (v3.1)
def usage_str(bit):
    """usage_str[]: "IN-HARDIRQ-W", "HARDIRQ-ON-R", ..."""
    if bit == LOCK_USED:
        return "INITIAL USE"
    state, kind = STATES[bit // 4], bit % 4
    rw = "R" if kind in (USED_IN_READ, ENABLED_READ) else "W"
    return f"IN-{state}-{rw}" if kind in (USED_IN, USED_IN_READ) else f"{state}-ON-{rw}"


class lock_class:
    __slots__ = ("name", "usage_mask", "usage_traces", "forwards", "backwards")

    def __init__(self, name):
        self.name = name
        self.usage_mask = 0
        self.usage_traces = {}  # bit -> (task name, frames) where it was first set
        self.forwards = {}  # class -> trace of the first "self then that" (frames of the second acquire)
        self.backwards = {}

    def __state__(self):
        # A class is its name in a state fingerprint (engine/state.py): its
        # usage and dependencies belong to the campaign's graph, which only
        # decides what lockdep reports (see lockdep_graph.__state__).
        return self.name

    def usage_chars(self):
        """get_usage_chars(): '.', '+' (enabled), '-' (used in), '?' (both), write then read."""
        out = []
        for base in (HARDIRQ, SOFTIRQ, RECLAIM_FS):
            for rd in (0, 1):
                c = "."
                if self.usage_mask & (1 << (base + ENABLED + rd)):
                    c = "+"
                if self.usage_mask & (1 << (base + USED_IN + rd)):
                    c = "?" if self.usage_mask & (1 << (base + ENABLED + rd)) else "-"
                out.append(c)
        return "".join(out)


class held_lock:
    __slots__ = ("cls", "frames", "read", "trylock")

    def __init__(self, cls, frames, read, trylock):
        self.cls = cls
        self.frames = frames  # the acquire site
        self.read = read
        self.trylock = trylock

    # The acquire site is for the report only (engine/state.py).
    __state_skip__ = ("frames",)


UTS_RELEASE = "3.1.0-blkrace #1"  # the era the reports imitate; print_kernel_ident()
UTS_RELEASE_4_14 = "4.14.0-blkrace #1"


class lockdep_graph:
    """The classes, their usage and dependencies: one per campaign (a boot)."""

    def __init__(self):
        self.classes = {}
        self.debug_locks = True  # cleared by the first report: lockdep reports once
        self.reports = []
        self.version = 0  # bumped by every new usage bit or dependency

    def __state__(self):
        # Left out of a run's state fingerprint (engine/state.py): the graph
        # only decides what lockdep reports, and a report is raised by the
        # run that adds the last dependency or usage bit of a bad pattern.
        # A stateful search that skips a repeated future skips no
        # dependency: the same steps from the same state added them when the
        # state's future was explored, so the campaign's graph ends the same.
        return None

    def get_class(self, name):
        cls = self.classes.get(name)
        if cls is None:
            cls = self.classes[name] = lock_class(name)
        return cls


class task_lockdep:
    """A task's lockdep state (held_locks, lockdep_reclaim_gfp)."""

    __slots__ = ("held_locks", "lockdep_reclaim_gfp")

    def __init__(self):
        self.held_locks = []
        self.lockdep_reclaim_gfp = 0


# ------------------------------------------------------------------ helpers


def _state(k):
    ts = k.current
    st = ts.extra.get("lockdep")
    if st is None:
        st = ts.extra["lockdep"] = task_lockdep()
    return ts, st


def _frames(k):
    """The running task's stack, lockdep's own entry points included (as in a splat)."""
    return running_stack(k.execution.current, skip=("_frames", "_state", "_report", "lock_acquire", "lock_release"))


def _addr(frame):
    """A stable pseudo address for "[<%p>]": the kernel's are as arbitrary."""
    return 0xFFFFFFFF81000000 + (zlib.crc32(frame.function.encode()) & 0xFFFFFF) * 16 + frame.offset


def _fmt_frames(frames, indent="  "):
    return [
        f"{indent}[<{_addr(f):016x}>] {f.function}+{f.offset}  ({f.short_file()}:{f.lineno})" for f in reversed(frames)
    ]


def _site(frames):
    """ "[<address>] function+offset" of the acquire site: the caller of the lock primitive."""
    for f in reversed(frames):
        if f.function not in ("mutex_lock", "spin_lock", "spin_lock_irqsave", "spin_lock_irq", "mark_lock"):
            return f"[<{_addr(f):016x}>] {f.function}+{f.offset}"
    return "[<0000000000000000>] ?"


def _task_header(k, ts):
    hc = 1 if ts.context == 2 else 0
    sc = 1 if ts.context == 1 else 0
    he = 0 if ts.irqs_off or ts.context else 1
    se = 0 if ts.context else 1
    return f"{ts.comm}/{ts.pid} [HC{hc}[{hc}]:SC{sc}[{sc}]:HE{he}:SE{se}]"


def _held_locks_lines(ts, st):
    if not st.held_locks:
        return [f"no locks held by {ts.comm}/{ts.pid}."]
    n = len(st.held_locks)
    lines = [f"{n} lock{'s' if n > 1 else ''} held by {ts.comm}/{ts.pid}:"]
    for i, h in enumerate(st.held_locks):
        lines.append(f" #{i}:  ({h.cls.name}){{{h.cls.usage_chars()}}}, at: {_site(h.frames)}")
    return lines


def _report(k, graph, ts, st, kind_title, lines, origin, message):
    """Every report ends the same way: the held locks, then dump_stack()."""
    graph.debug_locks = False  # debug_locks_off(): lockdep reports once
    if k.patched(FS_RECLAIM_REWORK):
        # The v4.14 era: splats are tagged "WARNING:" (since v4.11).
        head, release = f"WARNING: {kind_title}", UTS_RELEASE_4_14
    else:
        head, release = f"[ INFO: {kind_title} ]", UTS_RELEASE
    lines = lines + _held_locks_lines(ts, st)
    lines += ["", "stack backtrace:", f"Pid: {ts.pid}, comm: {ts.comm} Not tainted {release}", "Call Trace:"]
    lines += _fmt_frames(_frames(k), " ")
    text = ["", "=" * len(head), head, release, "-" * len(head)] + lines
    v = Violation("lockdep", message, origin=origin, detail=text)
    graph.reports.append(v)
    k.execution.report(v)


# ------------------------------------------------------------ usage checks


# mark_lock(), kernel/lockdep.c (v3.1)
def mark_lock(k, graph, ts, st, hlock, bit):
    """mark_lock(): set a usage bit; the first time, check it against the others."""
    cls = hlock.cls
    if cls.usage_mask & (1 << bit):
        return True
    cls.usage_mask |= 1 << bit
    cls.usage_traces[bit] = (ts.comm, _frames(k))
    graph.version += 1
    if not graph.debug_locks:
        return True
    base, kind = bit - bit % 4, bit % 4
    if kind in (USED_IN, USED_IN_READ):
        # valid_state(): USED_IN-X against ENABLED-X of the same class (write, or read+write).
        for other in (base + ENABLED, base + ENABLED_READ) if kind == USED_IN else (base + ENABLED,):
            if cls.usage_mask & (1 << other):
                return print_usage_bug(k, graph, ts, st, hlock, other, bit)
        # check_usage_forwards(): a lock taken after this one with X enabled.
        bad = _reach(cls, "forwards", base + ENABLED)
        if bad is not None:
            return print_irq_inversion_bug(k, graph, ts, st, hlock, bad, bit, base + ENABLED, forwards=True)
    else:
        for other in (base + USED_IN, base + USED_IN_READ) if kind == ENABLED else (base + USED_IN,):
            if cls.usage_mask & (1 << other):
                return print_usage_bug(k, graph, ts, st, hlock, other, bit)
        bad = _reach(cls, "backwards", base + USED_IN)
        if bad is not None:
            return print_irq_inversion_bug(k, graph, ts, st, hlock, bad, bit, base + USED_IN, forwards=False)
    return True


def _reach(start, direction, bit):
    """A class reachable from ``start`` (not itself) with usage ``bit``, breadth first."""
    seen = {start}
    queue = list(getattr(start, direction))
    while queue:
        cls = queue.pop(0)
        if cls in seen:
            continue
        seen.add(cls)
        if cls.usage_mask & (1 << bit):
            return cls
        queue.extend(getattr(cls, direction))
    return None


def _path(start, target):
    """Dependency path start -> ... -> target as a list of classes, breadth first."""
    prev = {start: None}
    queue = [start]
    while queue:
        cls = queue.pop(0)
        if cls is target:
            path = []
            while cls is not None:
                path.append(cls)
                cls = prev[cls]
            return list(reversed(path))
        for nxt in cls.forwards:
            if nxt not in prev:
                prev[nxt] = cls
                queue.append(nxt)
    return None


# ----------------------------------------------------------------- reports


# print_usage_bug(), kernel/lockdep.c (v3.1)
def print_usage_bug(k, graph, ts, st, hlock, prev_bit, new_bit):
    """print_usage_bug(): "inconsistent {%s} -> {%s} usage"."""
    cls = hlock.cls
    state = STATES[new_bit // 4]
    lines = [
        f"inconsistent {{{usage_str(prev_bit)}}} -> {{{usage_str(new_bit)}}} usage.",
        f"{_task_header(k, ts)} takes:",
        f" ({cls.name}){{{cls.usage_chars()}}}, at: {_site(hlock.frames)}",
        f"{{{usage_str(prev_bit)}}} state was registered at:",
    ]
    who, frames = cls.usage_traces.get(prev_bit, ("?", []))
    lines += _fmt_frames(frames)
    lines += [
        f"irq event stamp: {k.execution.steps}",
        "",
        "other info that might help us debug this:",
        " Possible unsafe locking scenario:",
        "",
        "       CPU0",
        "       ----",
        f"  lock({cls.name});",
        "  <Interrupt>",
        f"    lock({cls.name});",
        "",
        " *** DEADLOCK ***",
        "",
    ]
    _report(
        k,
        graph,
        ts,
        st,
        "inconsistent lock state",
        lines,
        f"lockdep:inconsistent:{cls.name}:{usage_str(prev_bit)}:{usage_str(new_bit)}",
        f"inconsistent {{{usage_str(prev_bit)}}} -> {{{usage_str(new_bit)}}} usage on {cls.name} "
        f"({state} recursion: {ts.comm} takes it in a context that may interrupt a holder)",
    )
    return False


# print_irq_inversion_bug(), kernel/lockdep.c (v3.1)
def print_irq_inversion_bug(k, graph, ts, st, hlock, other, bit, other_bit, forwards):
    """print_irq_inversion_bug(): "possible irq lock inversion dependency detected"."""
    cls = hlock.cls
    state = STATES[bit // 4]
    safe, unsafe = (cls, other) if forwards else (other, cls)
    lines = [
        f"{_task_header(k, ts)} just changed the state of lock:",
        f" ({cls.name}){{{cls.usage_chars()}}}, at: {_site(hlock.frames)}",
        f"but this lock {'took another' if forwards else 'was taken by another'}, "
        f"{state}-{'unsafe' if forwards else 'safe'} lock in the past:",
        f" ({other.name}){{{other.usage_chars()}}}",
        "",
        "and interrupts could create inverse lock ordering between them.",
        "",
        "other info that might help us debug this:",
        " Possible interrupt unsafe locking scenario:",
        "",
        "       CPU0                    CPU1",
        "       ----                    ----",
        f"  lock({unsafe.name});",
        "                               local_irq_disable();",
        f"                               lock({safe.name});",
        f"                               lock({unsafe.name});",
        "  <Interrupt>",
        f"    lock({safe.name});",
        "",
        " *** DEADLOCK ***",
        "",
    ]
    _report(
        k,
        graph,
        ts,
        st,
        "possible irq lock inversion dependency detected",
        lines,
        f"lockdep:irq-inversion:{safe.name}:{unsafe.name}",
        f"possible {state} lock inversion: {safe.name} ({state}-safe) -> {unsafe.name} ({state}-unsafe)",
    )
    return False


# print_circular_bug(), kernel/lockdep.c (v3.1)
def print_circular_bug(k, graph, ts, st, prev, nxt, cycle):
    """print_circular_bug(): "possible circular locking dependency detected"."""
    lines = [
        f"{ts.comm}/{ts.pid} is trying to acquire lock:",
        f" ({nxt.cls.name}){{{nxt.cls.usage_chars()}}}, at: {_site(nxt.frames)}",
        "",
        "but task is already holding lock:",
        f" ({prev.cls.name}){{{prev.cls.usage_chars()}}}, at: {_site(prev.frames)}",
        "",
        "which lock already depends on the new lock.",
        "",
        "",
        "the existing dependency chain (in reverse order) is:",
    ]
    # cycle: nxt -> ... -> prev (existing), plus the new prev -> nxt.
    chain = list(reversed(cycle))  # prev ... nxt
    for depth, cls in enumerate(chain):
        lines.append("")
        lines.append(f"-> #{len(chain) - 1 - depth} ({cls.name}){{{cls.usage_chars()}}}:")
        # The stack saved when the dependency into this class was recorded;
        # for #0, the new lock, the stack of this very acquisition.
        before = chain[depth + 1] if depth + 1 < len(chain) else None
        trace = before.forwards.get(cls) if before is not None else None
        lines += _fmt_frames(trace[1] if trace else nxt.frames, "       ")
    lines += ["", "other info that might help us debug this:", ""]
    if len(cycle) == 2:
        a, b = prev.cls.name, nxt.cls.name
        lines += [
            " Possible unsafe locking scenario:",
            "",
            "       CPU0                    CPU1",
            "       ----                    ----",
            f"  lock({a});",
            f"                               lock({b});",
            f"                               lock({a});",
            f"  lock({b});",
            "",
            " *** DEADLOCK ***",
            "",
        ]
    else:
        lines += [
            "Chain exists of:",
            "  " + " --> ".join(c.name for c in cycle),
            "",
            " Possible unsafe locking scenario:",
            "",
            "       CPU0                    CPU1",
            "       ----                    ----",
            f"  lock({cycle[-1].name});",
            f"                               lock({cycle[1].name});",
            f"                               lock({cycle[-1].name});",
            f"  lock({cycle[0].name});",
            "",
            " *** DEADLOCK ***",
            "",
        ]
    names = sorted({prev.cls.name, nxt.cls.name})
    _report(
        k,
        graph,
        ts,
        st,
        "possible circular locking dependency detected",
        lines,
        f"lockdep:circular:{names[0]}:{names[1]}",
        f"possible circular locking dependency: {prev.cls.name} -> {nxt.cls.name} and back",
    )


# print_deadlock_bug(), kernel/lockdep.c (v3.1)
def print_deadlock_bug(k, graph, ts, st, prev, nxt):
    """print_deadlock_bug(): "possible recursive locking detected"."""
    lines = [
        f"{ts.comm}/{ts.pid} is trying to acquire lock:",
        f" ({nxt.cls.name}){{{nxt.cls.usage_chars()}}}, at: {_site(nxt.frames)}",
        "",
        "but task is already holding lock:",
        f" ({prev.cls.name}){{{prev.cls.usage_chars()}}}, at: {_site(prev.frames)}",
        "",
        "other info that might help us debug this:",
        " Possible unsafe locking scenario:",
        "",
        "       CPU0",
        "       ----",
        f"  lock({prev.cls.name});",
        f"  lock({nxt.cls.name});",
        "",
        " *** DEADLOCK ***",
        "",
        " May be due to missing lock nesting notation",
        "",
    ]
    _report(
        k,
        graph,
        ts,
        st,
        "possible recursive locking detected",
        lines,
        f"lockdep:recursive:{nxt.cls.name}",
        f"possible recursive locking: {ts.comm} takes {nxt.cls.name} while holding it",
    )


# ------------------------------------------------------------- the hooks


# lock_acquire(), kernel/lockdep.c (v3.1)
def lock_acquire(k, name, read=0, trylock=False):
    """lock_acquire() -> __lock_acquire(): usage, recursion, dependencies, then hold it.

    ``read``: 0 a write (exclusive) acquisition, 1 a read (down_read()), 2 a
    recursive read (rcu_read_lock(), srcu_read_lock()), as the kernel's."""
    graph = getattr(k, "lockdep", None)
    if graph is None:
        return
    ts, st = _state(k)
    cls = graph.get_class(name)
    hlock = held_lock(cls, _frames(k), read, trylock)
    if graph.debug_locks:
        # mark_irqflags(): the context this acquisition happens in.
        if ts.context == 2:
            mark_lock(k, graph, ts, st, hlock, HARDIRQ + (USED_IN_READ if read else USED_IN))
        elif ts.context == 1:
            mark_lock(k, graph, ts, st, hlock, SOFTIRQ + (USED_IN_READ if read else USED_IN))
        else:
            if not ts.irqs_off:
                mark_lock(k, graph, ts, st, hlock, HARDIRQ + (ENABLED_READ if read else ENABLED))
                mark_lock(k, graph, ts, st, hlock, SOFTIRQ + (ENABLED_READ if read else ENABLED))
        if not trylock and st.lockdep_reclaim_gfp & __GFP_FS and not k.patched(FS_RECLAIM_REWORK):
            mark_lock(k, graph, ts, st, hlock, RECLAIM_FS + (USED_IN_READ if read else USED_IN))
    nested_recursive_read = False
    if graph.debug_locks and not trylock:
        # check_deadlock(): the same class already held.  Only a recursive
        # read (read == 2: rcu/srcu_read_lock) may nest on a read; an ordinary
        # read (down_read) on a held read is "possible recursive locking".
        for h in st.held_locks:
            if h.cls is cls:
                if read == 2 and h.read:
                    nested_recursive_read = True  # validate_chain(): no new dependencies
                else:
                    print_deadlock_bug(k, graph, ts, st, h, hlock)
                break
    if graph.debug_locks and st.held_locks and not trylock and not nested_recursive_read:
        # check_prevs_add(): a dependency from the held locks, back to the first
        # non-trylock one; a held recursive read gives none (v3.x) and is walked past.
        for prev in reversed(st.held_locks):
            if prev.read == 2:
                continue
            if prev.cls is not cls and cls not in prev.cls.forwards:
                cycle = _path(cls, prev.cls)
                if cycle is not None:
                    print_circular_bug(k, graph, ts, st, prev, hlock, cycle)
                    break
                prev.cls.forwards[cls] = (ts.comm, hlock.frames)
                cls.backwards[prev.cls] = (ts.comm, hlock.frames)
                graph.version += 1
                # check_irq_usage() on the new edge, per state.
                for base in (HARDIRQ, SOFTIRQ, RECLAIM_FS):
                    if prev.cls.usage_mask & (1 << (base + USED_IN)) and (
                        cls.usage_mask & (1 << (base + ENABLED)) or _reach(cls, "forwards", base + ENABLED)
                    ):
                        unsafe = (
                            cls if cls.usage_mask & (1 << (base + ENABLED)) else _reach(cls, "forwards", base + ENABLED)
                        )
                        print_irq_inversion_bug(k, graph, ts, st, prev, unsafe, base + USED_IN, base + ENABLED, True)
                        break
            # Stop after the first non-trylock entry: it added its own
            # dependencies on the locks below it, so they are connected to
            # this one through it; a trylock did not.
            if not prev.trylock:
                break
    st.held_locks.append(hlock)


# lock_release(), kernel/lockdep.c (v3.1)
def lock_release(k, name):
    graph = getattr(k, "lockdep", None)
    if graph is None:
        return
    ts, st = _state(k)
    for i in range(len(st.held_locks) - 1, -1, -1):
        if st.held_locks[i].cls.name == name:
            del st.held_locks[i]
            return


# __need_fs_reclaim(), mm/page_alloc.c (v4.14)
def __need_fs_reclaim(k, gfp_mask):
    """May this allocation enter FS reclaim? (the condition both forms share)"""
    ts = k.current
    if not gfp_mask & __GFP_WAIT:
        return False
    if ts.flags & PF_MEMALLOC and not gfp_mask & __GFP_NOMEMALLOC:
        return False
    return bool(gfp_mask & __GFP_FS)


# fs_reclaim_acquire(), mm/page_alloc.c (v4.14)
def fs_reclaim_acquire(k, gfp_mask):
    """fs_reclaim_acquire() (d92a8cfcb37e): take the fs_reclaim pseudo-lock."""
    if __need_fs_reclaim(k, gfp_mask):
        lock_acquire(k, "fs_reclaim")


# fs_reclaim_release(), mm/page_alloc.c (v4.14)
def fs_reclaim_release(k, gfp_mask):
    if __need_fs_reclaim(k, gfp_mask):
        lock_release(k, "fs_reclaim")


# lockdep_trace_alloc(), kernel/lockdep.c (v3.1)
def lockdep_trace_alloc(k, gfp_mask):
    """lockdep_trace_alloc() -> __lockdep_trace_alloc(): an allocation that may enter
    FS reclaim marks every held lock RECLAIM_FS-ON (mark_held_locks()).  With
    d92a8cfcb37e: prepare_alloc_pages() takes and drops fs_reclaim instead,
    recording "held locks -> fs_reclaim" dependencies."""
    graph = getattr(k, "lockdep", None)
    if graph is None or not graph.debug_locks:
        return
    if k.patched(FS_RECLAIM_REWORK):
        fs_reclaim_acquire(k, gfp_mask)
        fs_reclaim_release(k, gfp_mask)
        return
    ts, st = _state(k)
    if not __need_fs_reclaim(k, gfp_mask):
        return
    for h in list(st.held_locks):
        if not mark_lock(k, graph, ts, st, h, RECLAIM_FS + (ENABLED_READ if h.read else ENABLED)):
            return


# lockdep_set_current_reclaim_state(), kernel/lockdep.c (v3.1)
def lockdep_set_current_reclaim_state(k, gfp_mask):
    _state(k)[1].lockdep_reclaim_gfp = gfp_mask


# lockdep_clear_current_reclaim_state(), kernel/lockdep.c (v3.1)
def lockdep_clear_current_reclaim_state(k):
    _state(k)[1].lockdep_reclaim_gfp = 0
