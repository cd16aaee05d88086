"""The kernel's memory model: marked accesses, barriers and atomics, under
sequential consistency (``sc``, the default) or a view-based model of the
Linux-kernel memory model (``lkmm``, tools/memory-model/linux-kernel.cat).

Kernel baseline: LKMM as of v5.8 (tools/memory-model/), the primitives'
names as include/asm-generic/barrier.h and Documentation/atomic_t.txt give them.

Under ``sc`` (``k.memory is None``) a load reads the latest store: the functions
below are a declared access and an attribute, as before, and cost nothing more.

Under ``lkmm`` every location keeps its modification order (``co``): a list of
messages (value, writing CPU, step, and two views).  A view maps locations to
timestamps in their ``co``.  A message carries ``cv``, the stores
cumul-fence-ordered before it (LKMM's ``cumul-fence``: release, smp_wmb,
smp_mb, a lock handoff), and ``gv``, the stores some strong fence has made
global before it (LKMM's ``pb``), passed on along happens-before.

Each CPU (an engine lane: tasks and interrupts of one CPU see that CPU's
stores; a task that migrates passes a full barrier, as the scheduler's is)
keeps:

* ``coh``: per location, the latest message it has read or written
  (coherence: CoRR, CoRW, CoWR, CoWW);
* ``pk`` / ``pkw``: what has propagated to it (``prop``: the messages it read
  and stored with their ``cv``) / its own stores only (for smp_wmb);
* ``pr`` / ``prg``: what its past loads learned (``ts``, ``cv`` and ``gv`` of
  the messages read) / its global part;
* ``rb``: the lower bound of its later loads, raised by smp_rmb (``pr``),
  acquire (the message read), smp_mb and lock acquisition: a load ordered
  after an event that saw a store cannot read older (``(prop minus id) & int``
  in ``hb``);
* ``wo``: the same for where its later stores may go in ``co``;
* ``wb`` / ``wcv``: the ``gv`` / ``cv`` its later stores carry.

``smp_mb()`` joins what has propagated to the CPU into one global view ``g``
and raises the CPU's bounds to it (``pb = prop ; strong-fence ; hb*``); the
order of full fences is the interleaving's.

The choices the weak model adds, owned by the explorer (engine ``choose``,
so in the token, replayed and shrunk): which message a load reads among those
at or after its bound (index 0 is the latest: shrinking leads back to SC), and
where a plain or release store goes in ``co`` among the places after what its
CPU has seen (index 0 is the end).  In model code RMWs (atomics, bitops,
cmpxchg) read the latest message and append; no later store may be placed
between an RMW and the message it read.  A choice is made only when there is
more than one option.

Checked against herd7 with linux-kernel.cat: the kernel's 35 litmus tests and
this project's own (tests/litmus), verdicts and execution counts.

Not produced in model code (named): load buffering (a store issued before a
po-earlier load: model code runs in program order and needs a load's value at
once; the litmus interpreter does issue such stores, see blkrace.litmus); an
RMW reading an older message than the latest (the interpreter does); address,
data and control dependencies (the interpreter tracks them per register).
RCU's and SRCU's grace-period guarantee (``rcu-fence``) only as two rules:
the end of a grace period makes what every CPU stored or saw global
(``grace_period``), and a read-side section begun after a grace period
started sees what its starting CPU had stored or seen (``gp_start``,
``read_lock``).  Not modelled at all: plain-access data races (LKMM's ``data-race`` flag),
``smp_mb__after_unlock_lock()``; smp_mb__after_atomic() orders everything
after the CPU's last RMW, a little more than LKMM's
``po? ; [RMW] ; fencerel(After-atomic)``; hb chains that return to a CPU
through others carry only what strong fences made global (a CPU's own
observations are not carried round), which no test here distinguishes.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, access, choose

SC = "sc"
LKMM = "lkmm"
MEMORY_MODELS = (SC, LKMM)

# Orderings of an access.
ONCE = 0  # READ_ONCE/WRITE_ONCE, relaxed atomics
ACQUIRE = 1
RELEASE = 2
MB = 3  # fully ordered (value-returning atomics, successful xchg/cmpxchg)

_EMPTY = {}


def _join(a, b):
    """a ⊔ b; ``a`` itself when b adds nothing (views are never mutated)."""
    out = None
    for loc, ts in b.items():
        if a.get(loc, -1.0) < ts:
            if out is None:
                out = dict(a)
            out[loc] = ts
    return a if out is None else out


def _with(a, loc, ts):
    if a.get(loc, -1.0) >= ts:
        return a
    out = dict(a)
    out[loc] = ts
    return out


class Msg:
    """One store in a location's modification order."""

    __slots__ = ("loc", "val", "ts", "gv", "cv", "cpu", "step", "rmw", "task", "hv", "time")

    def __init__(self, loc, val, ts, gv, cv, cpu, step, task=""):
        self.loc = loc
        self.val = val
        self.ts = ts
        self.gv = gv  # global facts that happen before it (pb: past strong fences)
        self.cv = cv  # stores cumul-fence-ordered before it (without this message itself)
        self.cpu = cpu
        self.step = step
        self.rmw = False  # the write half of an RMW: nothing goes between it and its read
        self.task = task
        self.hv = None  # an unlock's own stores before it (po-unlock-lock-po across a handoff)
        self.time = 0  # virtual time of the store (kernel model)

    # Which step and task stored it: for the report only (engine/state.py).
    __state_skip__ = ("step", "task")

    def __repr__(self):
        return f"<{self.val} @{self.ts} cpu{self.cpu}>"


class CpuView:
    """What one CPU has seen and what its fences guarantee (see the module docstring)."""

    __slots__ = (
        "coh",
        "rb",
        "wo",
        "wb",
        "wcv",
        "pr",
        "prg",
        "pk",
        "pkw",
        "ul",
        "ulg",
        "ulw",
        "rmw_done",
        "before_atomic",
    )

    def __init__(self):
        self.coh = self.rb = self.wo = self.wb = self.wcv = _EMPTY
        self.pr = self.prg = self.pk = self.pkw = _EMPTY
        self.ul = self.ulg = self.ulw = None  # views at this CPU's last unlock (po-unlock-lock-po)
        self.rmw_done = False
        self.before_atomic = False

    def clone(self):
        c = CpuView.__new__(CpuView)
        c.coh, c.rb, c.wo, c.wb, c.wcv = self.coh, self.rb, self.wo, self.wb, self.wcv
        c.pr, c.prg, c.pk, c.pkw = self.pr, self.prg, self.pk, self.pkw
        c.ul, c.ulg, c.ulw = self.ul, self.ulg, self.ulw
        c.rmw_done, c.before_atomic = self.rmw_done, self.before_atomic
        return c

    def key(self):
        out = []
        for s in self.__slots__:
            v = getattr(self, s)
            out.append(_vkey(v) if isinstance(v, dict) else v)
        return tuple(out)


def _vkey(v):
    return tuple(sorted(v.items())) if v else ()


class MemoryState:
    """Locations with their modification orders, CPU views, the global fence view.

    ``weak=False`` is SC: one option for every load and store.  The same class
    serves the kernel model (choices through the engine) and the litmus
    interpreter (its own exhaustive search); it knows nothing of either.

    Loads return a pair of views for dependencies: (what the value carries for
    an address dependency, the global part a data or control dependency passes
    on to a store).
    """

    def __init__(self, weak=True):
        self.weak = weak
        self.hist = {}  # loc -> [Msg] in co order
        self.cpus = {}  # cpu -> CpuView
        self.g = _EMPTY  # the global view strong fences agree on
        self.locks = {}  # lock -> (cv, gv) released with it
        self.nmb = 0  # full fences so far
        self.rcu = {}  # RCU/SRCU domain name -> what grace periods started so far published

    # ------------------------------------------------------------ plumbing

    def clone(self):
        c = MemoryState.__new__(MemoryState)
        c.weak = self.weak
        c.hist = {loc: list(ms) for loc, ms in self.hist.items()}
        c.cpus = {cpu: v.clone() for cpu, v in self.cpus.items()}
        c.g = self.g
        c.locks = dict(self.locks)
        c.nmb = self.nmb
        c.rcu = dict(self.rcu)
        return c

    def key(self):
        return (
            tuple(
                (loc, tuple((m.val, m.ts, _vkey(m.gv), _vkey(m.cv), m.rmw) for m in ms))
                for loc, ms in sorted(self.hist.items())
            ),
            tuple((cpu, v.key()) for cpu, v in sorted(self.cpus.items())),
            _vkey(self.g),
            tuple((lk, _vkey(v), _vkey(c), _vkey(h)) for lk, (v, c, h) in sorted(self.locks.items())),
            tuple((d, _vkey(v)) for d, v in sorted(self.rcu.items())),
        )

    def cpu(self, cpu):
        v = self.cpus.get(cpu)
        if v is None:
            v = self.cpus[cpu] = CpuView()
        return v

    def history(self, loc, init):
        ms = self.hist.get(loc)
        if ms is None:
            ms = self.hist[loc] = [Msg(loc, init, 0.0, _EMPTY, _EMPTY, None, 0, "init")]
        return ms

    def latest(self, loc):
        return self.hist[loc][-1]

    # --------------------------------------------------------------- loads

    def load_options(self, cpu, loc, init, dep=_EMPTY, floor=0.0):
        """The messages a load may read, latest first (none older than ``floor``)."""
        ms = self.history(loc, init)
        if not self.weak:
            return [ms[-1]]
        c = self.cpu(cpu)
        bound = max(c.coh.get(loc, 0.0), c.rb.get(loc, 0.0), dep.get(loc, 0.0), floor)
        out = []
        for m in reversed(ms):
            if m.ts < bound:
                break
            out.append(m)
        return out

    def load_commit(self, cpu, m, order=ONCE):
        """The load of ``cpu`` reads ``m``; returns (full, global) dependency views."""
        c = self.cpu(cpu)
        loc, ts = m.loc, m.ts
        c.coh = _with(c.coh, loc, ts)
        seen = _with(_join(m.cv, m.gv), loc, ts)
        c.pr = _join(c.pr, seen)
        c.prg = _join(c.prg, m.gv)
        c.pk = _with(_join(c.pk, m.cv), loc, ts)
        if order == ACQUIRE:
            c.rb = _join(c.rb, seen)
            c.wo = _join(c.wo, seen)
            c.wb = _join(c.wb, m.gv)
        return seen, m.gv

    # -------------------------------------------------------------- stores

    def store_options(self, cpu, loc, init, order=ONCE, dep=_EMPTY, floor=0.0):
        """Where a store may go in ``co``: indices to insert at, the end first."""
        ms = self.history(loc, init)
        n = len(ms)
        if not self.weak:
            return [n]
        c = self.cpu(cpu)
        bound = max(c.coh.get(loc, 0.0), c.wo.get(loc, 0.0), c.wb.get(loc, 0.0), dep.get(loc, 0.0), floor)
        if order == RELEASE:
            bound = max(bound, c.pr.get(loc, 0.0))
        out = [n]
        for i in range(n - 1, 0, -1):
            if ms[i - 1].ts < bound:
                break
            if not ms[i].rmw:
                out.append(i)
        return out

    def store_commit(self, cpu, loc, val, index, order=ONCE, dep=_EMPTY, step=0, task="", rmw=False):
        """``dep``: the global view of the registers a data or control dependency brings in
        (``store_options`` takes their full view)."""
        ms = self.hist[loc]
        n = len(ms)
        ts = ms[-1].ts + 1.0 if index == n else (ms[index - 1].ts + ms[index].ts) / 2
        c = self.cpu(cpu)
        if order == RELEASE:
            gv = _join(c.wb, c.prg)
            cv = c.pk
        else:
            gv = c.wb
            cv = c.wcv
        if dep:
            gv = _join(gv, dep)
        m = Msg(loc, val, ts, gv, cv, cpu, step, task)
        m.rmw = rmw
        ms.insert(index, m)
        c.coh = _with(c.coh, loc, ts)
        c.pk = _with(_join(c.pk, cv), loc, ts)
        c.pkw = _with(_join(c.pkw, cv), loc, ts)
        return m

    # -------------------------------------------------------------- fences

    def smp_mb(self, cpu):
        self.nmb += 1
        c = self.cpu(cpu)
        self.g = g = _join(self.g, _join(c.pk, c.coh))
        c.rb = _join(_join(c.rb, c.pr), g)
        c.wo = _join(_join(c.wo, c.pr), g)
        c.wb = _join(_join(c.wb, c.prg), g)
        c.wcv = _join(c.wcv, g)

    def smp_rmb(self, cpu):
        c = self.cpu(cpu)
        c.rb = _join(c.rb, c.pr)

    def smp_wmb(self, cpu):
        c = self.cpu(cpu)
        c.wcv = _join(c.wcv, c.pkw)

    def unlocked(self, cpu):
        """A spin_unlock() of this CPU: remembered for po-unlock-lock-po."""
        c = self.cpu(cpu)
        c.ul = _join(c.pr, c.pk)
        c.ulg = _join(c.prg, c.wb)
        c.ulw = c.pkw

    def locked(self, cpu):
        """A lock acquisition after an unlock on the same CPU orders both sides
        (po-unlock-lock-po is in ppo and in cumul-fence)."""
        c = self.cpu(cpu)
        if c.ul is not None:
            c.rb = _join(c.rb, c.ul)
            c.wo = _join(c.wo, c.ul)
            c.wb = _join(c.wb, c.ulg)
            c.wcv = _join(c.wcv, c.ulw)

    def handoff(self, cpu, m):
        """A lock acquired from another CPU's unlock ``m``: the stores po-before that
        unlock are cumul-fence-ordered before this CPU's accesses after the lock
        (po-unlock-lock-po with its rf link)."""
        if m.hv is not None:
            c = self.cpu(cpu)
            c.wcv = _join(c.wcv, m.hv)

    def lock_release(self, cpu, lock):
        """spin_unlock() of a lock that is not a location (kernel model): a release."""
        c = self.cpu(cpu)
        self.unlocked(cpu)
        self.locks[lock] = (c.pk, _join(c.wb, c.prg), c.pkw)

    def lock_acquire(self, cpu, lock):
        """spin_lock() of such a lock: an acquire of what its last unlock released."""
        c = self.cpu(cpu)
        self.locked(cpu)
        got = self.locks.get(lock)
        if got is not None:
            cv, gv, hv = got
            seen = _join(cv, gv)
            c.rb = _join(c.rb, seen)
            c.wo = _join(c.wo, seen)
            c.wb = _join(c.wb, gv)
            c.wcv = _join(c.wcv, hv)
            c.pr = _join(c.pr, seen)
            c.prg = _join(c.prg, gv)
            c.pk = _join(c.pk, cv)

    def grace_period(self, cpu):
        """An RCU or SRCU grace period ends on ``cpu``: every CPU has passed a
        quiescent state, with a full barrier, since it began; what any CPU had
        stored or seen is then global, and the caller is past a full fence."""
        g = self.g
        for c in self.cpus.values():
            g = _join(g, _join(c.pk, c.coh))
        self.g = g
        self.smp_mb(cpu)

    def gp_start(self, cpu, domain):
        """A grace period of ``domain`` starts on ``cpu`` (synchronize_rcu(), call_rcu()):
        what the CPU has stored or seen is published to every later reader."""
        c = self.cpu(cpu)
        self.rcu[domain] = _join(self.rcu.get(domain, _EMPTY), _join(self.g, _join(c.pk, c.coh)))

    def read_lock(self, cpu, domain):
        """A read-side critical section of ``domain`` begins on ``cpu``: a grace period
        that started before it does not wait for it, so it sees what that grace
        period published (RCU's guarantee: a reader that a grace period does not
        wait for sees every store before the grace period's start)."""
        pub = self.rcu.get(domain)
        if pub:
            c = self.cpu(cpu)
            c.rb = _join(c.rb, pub)
            c.wo = _join(c.wo, pub)
            c.wb = _join(c.wb, pub)

    def migrate(self, old, new):
        """A task moves between CPUs: the scheduler's full barriers on both,
        and the task keeps seeing what it saw (its own stores included)."""
        self.smp_mb(old)
        self.smp_mb(new)
        c, o = self.cpu(new), self.cpu(old)
        c.coh = _join(c.coh, o.coh)
        c.rb = _join(c.rb, o.coh)


# ---------------------------------------------------------------- the kernel API


class KernelMemory:
    """The memory model of one run of the kernel model (``k.memory``; None under sc)."""

    name = LKMM

    def __init__(self, execution):
        self.ex = execution
        self.state = MemoryState(weak=True)
        self.lane_of = {}  # engine task -> the lane it last accessed memory from

    def floor(self, loc):
        """Stores propagate to every CPU before virtual time moves on: a message
        stored before now hides every older one (LKMM has no time; the machine
        drains its store buffers in far less than the model's clock resolution,
        and without this a lockless reader could miss a store for ever)."""
        ms = self.state.hist.get(loc)
        if ms is None:
            return 0.0
        now = self.ex.now
        for m in reversed(ms):
            if m.time < now:
                return m.ts
        return 0.0

    def cpu(self):
        task = self.ex.current
        lane = task.lane
        last = self.lane_of.get(task)
        if last != lane:
            if last is not None:
                self.state.migrate(last, lane)
            self.lane_of[task] = lane
        return lane


# model: the memory model of one machine (sc or lkmm)
def make_memory_model(execution):
    """The memory model a run was built with (``execution.shared["memory_model"]``)."""
    name = execution.shared.get("memory_model", SC)
    if name == SC:
        return None
    if name == LKMM:
        return KernelMemory(execution)
    raise ValueError(f"unknown memory model {name!r} (valid: {', '.join(MEMORY_MODELS)})")


def _label(obj, field):
    name = getattr(obj, "name", type(obj).__name__)
    return name if field in ("counter", "bits", "value") else f"{name}.{field}"


def _describe(m):
    who = "the initial value" if m.cpu is None else f"CPU{m.cpu}'s store at step {m.step}"
    return who


async def _load(mm, obj, field, order, what=None, dep=_EMPTY, out=None):
    st = mm.state
    cpu = mm.cpu()
    opts = st.load_options(cpu, obj, getattr(obj, field), dep=dep, floor=mm.floor(obj))
    i = await choose(len(opts), f"reads-from {_label(obj, field)}") if len(opts) > 1 else 0
    m = opts[i]
    seen, _ = st.load_commit(cpu, m, order)
    if out is not None:
        out.append(seen)
    if i and mm.ex.traced:
        newest = opts[0]
        shown = what(m.val) if what else m.val
        mm.ex.event(
            f"reads {_label(obj, field)} = {shown} (stale: {_describe(newest)} not yet visible; reads {_describe(m)})"
        )
    return m.val


async def _store(mm, obj, field, val, order):
    st = mm.state
    cpu = mm.cpu()
    if order == MB:
        st.smp_mb(cpu)
    opts = st.store_options(cpu, obj, getattr(obj, field), order, floor=mm.floor(obj))
    i = await choose(len(opts), f"co-place {_label(obj, field)}") if len(opts) > 1 else 0
    idx = opts[i]
    ms = st.hist[obj]
    after = ms[idx] if idx < len(ms) else None
    st.store_commit(cpu, obj, val, idx, order, step=mm.ex.steps, task=mm.ex.current.name).time = mm.ex.now
    setattr(obj, field, ms[-1].val)
    if after is not None and mm.ex.traced:
        mm.ex.event(
            f"stores {_label(obj, field)} = {val} before {_describe(after)} in its coherence order"
            " (that store is not yet visible to this CPU)"
        )


def _rmw_sync(mm, obj, field, fn, order):
    """An RMW: reads the latest message, appends its write (atomicity)."""
    st = mm.state
    cpu = mm.cpu()
    c = st.cpu(cpu)
    ms = st.history(obj, getattr(obj, field))
    m = ms[-1]
    new = fn(m.val)
    if new is None:  # a failed cmpxchg: a plain read, no ordering
        st.load_commit(cpu, m, ONCE)
        return m.val
    if order == MB or c.before_atomic:
        st.smp_mb(cpu)
    st.load_commit(cpu, m, ACQUIRE if order in (ACQUIRE, MB) else ONCE)
    st.store_commit(
        cpu,
        obj,
        new,
        len(ms),
        RELEASE if order == RELEASE else ONCE,
        step=mm.ex.steps,
        task=mm.ex.current.name,
        rmw=True,
    ).time = mm.ex.now
    setattr(obj, field, new)
    c.rmw_done = True
    c.before_atomic = False
    if order == MB:
        st.smp_mb(cpu)
    return m.val


# model: a marked load of a location, under the machine's memory model
async def mm_load(k, obj, field, order=ONCE, what=None):
    """A marked load of ``obj.field`` (READ_ONCE, smp_load_acquire, atomic_read...)."""
    await access(obj, READ)
    mm = k.memory
    if mm is None:
        return getattr(obj, field)
    return await _load(mm, obj, field, order, what)


# model: a marked store to a location, under the machine's memory model
async def mm_store(k, obj, field, val, order=ONCE):
    """A marked store (WRITE_ONCE, smp_store_release, atomic_set...)."""
    await access(obj, WRITE)
    mm = k.memory
    if mm is None:
        setattr(obj, field, val)
        return
    await _store(mm, obj, field, val, order)


# model: an atomic read-modify-write, under the machine's memory model
async def mm_rmw(k, obj, field, fn, order=MB):
    """An atomic read-modify-write: ``fn(old)`` gives the new value (None: no
    write, a failed cmpxchg).  Returns the old value."""
    await access(obj, WRITE)
    mm = k.memory
    if mm is None:
        old = getattr(obj, field)
        new = fn(old)
        if new is not None:
            setattr(obj, field, new)
        return old
    return _rmw_sync(mm, obj, field, fn, order)


# model: a store made under a lock whose acquisition was the step (kernel model)
def mm_store_locked(k, obj, field, val):
    """A marked store by code holding the lock every writer of ``obj.field`` takes
    (e.g. a wait queue's list under its spinlock): no step of its own, the lock's
    step declares it; it goes at the end of ``co``, the only place the lock's
    acquire ordering leaves (every other writer's store was released to it)."""
    mm = k.memory if k is not None else None
    if mm is None:
        setattr(obj, field, val)
        return
    st = mm.state
    cpu = mm.cpu()
    ms = st.history(obj, getattr(obj, field))
    st.store_commit(cpu, obj, val, len(ms), ONCE, step=mm.ex.steps, task=mm.ex.current.name).time = mm.ex.now
    setattr(obj, field, val)


# model: READ_ONCE() whose value later accesses depend on by address (kernel model)
async def mm_load_dep(k, obj, field="value"):
    """READ_ONCE() of a pointer later used to address memory: returns the value
    and the dependency (what the message read carries; pass it as ``dep`` to the
    dependent access).  Under ``sc`` the dependency is None."""
    await access(obj, READ)
    mm = k.memory
    if mm is None:
        return getattr(obj, field), None
    out = []
    val = await _load(mm, obj, field, ONCE, out=out)
    return val, out[0]


# model: a per-CPU read-modify-write (this_cpu_add(), include/linux/percpu-defs.h)
async def mm_this_cpu_rmw(k, obj, fn, field="value", dep=None):
    """this_cpu_add() and the like: one instruction, atomic against interrupts on
    its CPU but not an LKMM RMW: a load (at or after ``dep``, an address
    dependency from mm_load_dep()) then a store, as one step.  Returns the new value."""
    await access(obj, WRITE)
    mm = k.memory
    if mm is None:
        new = fn(getattr(obj, field))
        setattr(obj, field, new)
        return new
    old = await _load(mm, obj, field, ONCE, dep=dep or _EMPTY)
    new = fn(old)
    await _store(mm, obj, field, new, ONCE)
    return new


# The kernel's names.  ``obj.value`` unless a field is named.


async def READ_ONCE(k, obj, field="value"):
    """READ_ONCE(), include/asm-generic/rwonce.h."""
    return await mm_load(k, obj, field, ONCE)


async def WRITE_ONCE(k, obj, val, field="value"):
    """WRITE_ONCE(), include/asm-generic/rwonce.h."""
    await mm_store(k, obj, field, val, ONCE)


async def smp_load_acquire(k, obj, field="value"):
    """smp_load_acquire(), include/asm-generic/barrier.h."""
    return await mm_load(k, obj, field, ACQUIRE)


async def smp_store_release(k, obj, val, field="value"):
    """smp_store_release(), include/asm-generic/barrier.h."""
    await mm_store(k, obj, field, val, RELEASE)


# smp_store_mb(), include/asm-generic/barrier.h
async def smp_store_mb(k, obj, val, field="value"):
    """smp_store_mb(): WRITE_ONCE() then smp_mb()."""
    await mm_store(k, obj, field, val, ONCE)
    smp_mb(k)


# xchg(), include/asm-generic/atomic-instrumented.h
async def xchg(k, obj, val, field="value", order=MB):
    """xchg() (and _relaxed/_acquire/_release by ``order``)."""
    return await mm_rmw(k, obj, field, lambda old: val, order)


# cmpxchg(), include/asm-generic/atomic-instrumented.h
async def cmpxchg(k, obj, old, new, field="value", order=MB):
    """cmpxchg(): fully ordered when it succeeds, a plain read when it fails."""
    return await mm_rmw(k, obj, field, lambda cur: new if cur == old else None, order)


# rcu_assign_pointer(), include/linux/rcupdate.h
def rcu_assign_pointer(k, obj, val, field="value"):
    """rcu_assign_pointer(): smp_store_release()."""
    return smp_store_release(k, obj, val, field)


# rcu_dereference(), include/linux/rcupdate.h
def rcu_dereference(k, obj, field="value"):
    """rcu_dereference(): READ_ONCE() plus an address dependency (not tracked in model code)."""
    return READ_ONCE(k, obj, field)


def _fence(k, fn):
    mm = k.memory
    if mm is not None:
        fn(mm.state, mm.cpu())


# smp_mb(), include/asm-generic/barrier.h
def smp_mb(k):
    """smp_mb(): a full (strong) fence."""
    _fence(k, MemoryState.smp_mb)


# smp_rmb(), include/asm-generic/barrier.h
def smp_rmb(k):
    """smp_rmb(): orders loads before it against loads after it."""
    _fence(k, MemoryState.smp_rmb)


# smp_wmb(), include/asm-generic/barrier.h
def smp_wmb(k):
    """smp_wmb(): orders stores before it against stores after it."""
    _fence(k, MemoryState.smp_wmb)


# smp_mb__before_atomic(), include/asm-generic/barrier.h
def smp_mb__before_atomic(k):
    """smp_mb__before_atomic(): a full fence in front of the next RMW."""
    mm = k.memory
    if mm is not None:
        mm.state.cpu(mm.cpu()).before_atomic = True


# smp_mb__after_atomic(), include/asm-generic/barrier.h
def smp_mb__after_atomic(k):
    """smp_mb__after_atomic(): a full fence after the CPU's last RMW."""
    mm = k.memory
    if mm is not None:
        cpu = mm.cpu()
        if mm.state.cpu(cpu).rmw_done:
            mm.state.smp_mb(cpu)


# smp_mb__after_spinlock(), include/linux/spinlock.h
def smp_mb__after_spinlock(k):
    """smp_mb__after_spinlock(): a full fence after a lock acquisition."""
    smp_mb(k)


# model: the ordering a grace period gives (synchronize_rcu(), kernel/rcu/tree.c)
def synchronize_rcu_order(k):
    """The end of synchronize_rcu()/synchronize_srcu(): a grace period (called by rcu.py, srcu.py)."""
    mm = k.memory
    if mm is not None:
        mm.state.grace_period(mm.cpu())


# model: the ordering a grace period's start gives its later readers (kernel/rcu/tree.c)
def rcu_gp_start_order(k, domain="rcu"):
    """A grace period starts (synchronize_rcu(), call_rcu(), synchronize_srcu()):
    called by rcu.py and srcu.py with the domain's name."""
    mm = k.memory
    if mm is not None:
        mm.state.gp_start(mm.cpu(), domain)


# model: the ordering rcu_read_lock() gets from grace periods started before it
def rcu_read_lock_order(k, domain="rcu"):
    """rcu_read_lock()/srcu_read_lock(): a reader that began after a grace period
    started sees the stores before that start (called by rcu.py, srcu.py)."""
    mm = k.memory
    if mm is not None:
        mm.state.read_lock(mm.cpu(), domain)


# model: the acquire ordering of spin_lock() (include/linux/spinlock.h)
def spin_acquire_order(k, lock):
    """The acquire half of spin_lock() (LKR is an Acquire): called by spinlock.py."""
    mm = k.memory
    if mm is not None:
        mm.state.lock_acquire(mm.cpu(), lock)


# model: the release ordering of spin_unlock() (include/linux/spinlock.h)
def spin_release_order(k, lock):
    """The release half of spin_unlock() (UL is a Release): called by spinlock.py."""
    mm = k.memory
    if mm is not None:
        mm.state.lock_release(mm.cpu(), lock)
