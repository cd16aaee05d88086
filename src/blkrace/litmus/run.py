"""Running a litmus test through the kernel's memory model, exhaustively.

Each process runs on its own CPU of one :class:`blkrace.kernel.memory.MemoryState`
(the model the kernel code runs on under ``lkmm``).  The search visits every
interleaving of the processes' memory operations and every choice the memory
model offers (which message a load reads, where a store goes in ``co``), with
states already visited pruned (a stateful depth-first search: two orders of
independent steps reach one state).

One thing the kernel model cannot do and this interpreter does: a store may
be issued before po-earlier loads when nothing orders them (LKMM's preserved
program order: no address, data or control dependency into the store, no
acquire, release, lock or full fence between, and a different location).
That is where load buffering (LB+poonceonces) comes from.

The verdict is herd7's shape: ``Observation NAME Always|Sometimes|Never POS NEG``,
POS and NEG counting distinct executions (reads-from and coherence order)
that satisfy the condition or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blkrace.kernel.memory import ACQUIRE, MB, ONCE, RELEASE, MemoryState
from blkrace.litmus.parse import FENCES, LOADS, STORES, LitmusError, rmw_of

_ORDERS = {"once": ONCE, "plain": ONCE, "acquire": ACQUIRE, "release": RELEASE, "mb": MB}
_EMPTY = {}
_NODEP = (_EMPTY, _EMPTY)  # a register's views: (for an address dependency, for a data/control one)


# ------------------------------------------------------------------ compiling


class _Compiler:
    def __init__(self, test, th):
        self.test = test
        self.th = th
        self.code = []
        self.tmp = 0
        self.params = set(th.params)

    def err(self, line, what):
        raise LitmusError(f"{self.test.path}:{line}: unsupported construct {what}")

    def addr(self, e, line, deref):
        """A location expression: ('loc', name) or ('reg', r) holding a pointer."""
        if deref:
            if e[0] != "deref":
                self.err(line, "(expected *pointer)")
            e = e[1]
        if e[0] == "reg":
            name = e[1]
            if name in self.params:
                return ("loc", name)
            return ("reg", name)
        self.err(line, "(an address that is not a variable)")

    def expr(self, e, line):
        """Compile loads out of ``e``; return a pure expression over registers."""
        k = e[0]
        if k == "num":
            return e
        if k == "reg":
            if e[1] in self.params:
                return ("ptr", e[1])
            return e
        if k == "bin":
            return ("bin", e[1], self.expr(e[2], line), self.expr(e[3], line))
        if k == "un":
            return ("un", e[1], self.expr(e[2], line))
        if k == "deref":
            r = self.fresh()
            self.code.append(("load", r, self.addr(e, line, True), "plain", line, f"*{_show(e[1])}"))
            return ("reg", r)
        if k == "call":
            r = self.fresh()
            if not self.call(e, line, r):
                self.err(e[3], f"'{e[1]}' as a value")
            return ("reg", r)
        self.err(line, repr(k))

    def fresh(self):
        self.tmp += 1
        return f"%t{self.tmp}"

    def call(self, e, line, dst):
        _, name, args, cline = e
        text = f"{name}({', '.join(_show(a) for a in args)})"
        if name in LOADS:
            if LOADS[name] is None:
                self.err(cline, f"'{name}'")
            deref = name in ("READ_ONCE", "rcu_dereference")
            self.code.append(("load", dst, self.addr(args[0], cline, deref), LOADS[name], cline, text))
            return True
        if name in ("spin_is_locked", "spin_trylock"):
            self.code.append(
                (
                    "islocked" if name == "spin_is_locked" else "trylock",
                    dst,
                    self.addr(args[0], cline, False),
                    cline,
                    text,
                )
            )
            return True
        rmw = rmw_of(name)
        if rmw is not None:
            op, order, ret = rmw
            if order == "noreturn":
                self.err(cline, f"'{name}' as a value")
            if op in ("xchg", "cmpxchg"):
                a = self.addr(args[0], cline, False)
                operands = tuple(self.expr(x, cline) for x in args[1:])
            elif op in ("inc", "dec"):
                a = self.addr(args[0], cline, False)
                operands = (("num", 1),)
            else:
                a = self.addr(args[1], cline, False)
                operands = (self.expr(args[0], cline),)
            self.code.append(("rmw", dst, a, op, operands, order, ret, cline, text))
            return True
        return False

    def stmt(self, n):
        k = n.kind
        if k == "decl":
            return
        if k == "assign":
            lhs, rhs = n.args
            if lhs[0] == "deref":
                val = self.expr(rhs, n.line)
                self.code.append(
                    ("store", self.addr(lhs, n.line, True), val, "plain", n.line, f"*{_show(lhs[1])} = {_show(rhs)}")
                )
                return
            if rhs[0] == "call" and rhs[1] not in FENCES:
                if self.call(rhs, n.line, lhs[1]):
                    return
            self.code.append(("set", lhs[1], self.expr(rhs, n.line)))
            return
        if k == "if":
            cond, then, other = n.args
            c = self.expr(cond, n.line)
            br = len(self.code)
            self.code.append(None)
            for s in then:
                self.stmt(s)
            if other:
                jmp = len(self.code)
                self.code.append(None)
                self.code[br] = ("br", c, len(self.code), n.line)
                for s in other:
                    self.stmt(s)
                self.code[jmp] = ("jmp", len(self.code))
            else:
                self.code[br] = ("br", c, len(self.code), n.line)
            return
        if k == "call":
            e = n.args[0]
            _, name, args, cline = e
            text = f"{name}({', '.join(_show(a) for a in args)})"
            if name in STORES:
                # WRITE_ONCE(X, V), smp_store_mb(X, V) and rcu_assign_pointer(X, V) take an
                # lvalue (*x), the others a pointer (linux-kernel.def).
                deref = name in ("WRITE_ONCE", "smp_store_mb", "rcu_assign_pointer")
                a = self.addr(args[0], cline, deref)
                self.code.append(("store", a, self.expr(args[1], cline), STORES[name], cline, text))
                return
            if name in FENCES:
                if name == "smp_mb__after_unlock_lock":
                    self.err(cline, f"'{name}'")
                self.code.append(("fence", FENCES[name], cline, text))
                return
            if name == "spin_lock":
                self.code.append(("lock", self.addr(args[0], cline, False), cline, text))
                return
            if name == "spin_unlock":
                self.code.append(("unlock", self.addr(args[0], cline, False), cline, text))
                return
            rmw = rmw_of(name)
            if rmw is not None:
                op, order, ret = rmw
                if op in ("inc", "dec"):
                    a, operands = self.addr(args[0], cline, False), (("num", 1),)
                elif op in ("xchg", "cmpxchg"):
                    a, operands = self.addr(args[0], cline, False), tuple(self.expr(x, cline) for x in args[1:])
                else:
                    a, operands = self.addr(args[1], cline, False), (self.expr(args[0], cline),)
                self.code.append(
                    ("rmw", None, a, op, operands, "once" if order == "noreturn" else order, ret, cline, text)
                )
                return
            self.err(cline, f"'{name}'")
        self.err(n.line, k)


def _show(e):
    k = e[0]
    if k == "num":
        return str(e[1])
    if k == "reg":
        return e[1]
    if k == "deref":
        return "*" + _show(e[1])
    if k == "bin":
        return f"{_show(e[2])} {e[1]} {_show(e[3])}"
    if k == "un":
        return e[1] + _show(e[2])
    if k == "call":
        return f"{e[1]}({', '.join(_show(a) for a in e[2])})"
    return str(e)


@dataclass
class Program:
    test: object
    code: list  # per thread: instructions
    init: dict
    locks: set
    locations: list = field(default_factory=list)


def compile_test(test):
    code = []
    for th in test.threads:
        c = _Compiler(test, th)
        for n in th.body:
            c.stmt(n)
        code.append(c.code)
    locs = set(test.init)
    for th in test.threads:
        locs.update(th.params)
    _check_plain(test, code)
    return Program(test, code, dict(test.init), set(test.locks), sorted(locs))


def _check_plain(test, code):
    """Plain accesses to a location another process touches: LKMM gives them
    data-race semantics, which this interpreter does not model."""
    touched = {}
    plain = {}
    for i, instrs in enumerate(code):
        for ins in instrs:
            if ins[0] in ("load", "store", "rmw", "lock", "unlock", "islocked", "trylock"):
                a = ins[2] if ins[0] in ("load", "rmw", "islocked", "trylock") else ins[1]
                if a[0] == "reg":
                    continue
                touched.setdefault(a[1], set()).add(i)
                if ins[0] in ("load", "store") and ins[3] == "plain":
                    plain.setdefault(a[1], ins[4])
    for loc, line in plain.items():
        if len(touched.get(loc, ())) > 1:
            raise LitmusError(
                f"{test.path}:{line}: unsupported construct: plain access to '{loc}', which another process accesses "
                "(LKMM's data-race rules are not modelled)"
            )


# ------------------------------------------------------------------ running


class _Thread:
    __slots__ = ("pc", "regs", "rview", "done", "ctrl", "nstores", "reads", "trace")

    def clone(self):
        t = _Thread.__new__(_Thread)
        t.pc = self.pc
        t.regs = dict(self.regs)
        t.rview = dict(self.rview)
        t.done = self.done
        t.ctrl = self.ctrl
        t.nstores = self.nstores
        t.reads = self.reads
        t.trace = self.trace
        return t

    def key(self):
        return (
            self.pc,
            tuple(sorted(self.regs.items(), key=lambda kv: kv[0])),
            tuple(sorted((r, _vk(v[0]), _vk(v[1])) for r, v in self.rview.items())),
            self.done,
            _vk(self.ctrl[0]) + _vk(self.ctrl[1]),
            self.nstores,
            self.reads,
        )


def _vk(v):
    return tuple(sorted(v.items())) if v else ()


def _join2(a, b):
    if b is _NODEP:
        return a
    if a is _NODEP:
        return b
    return (_join(a[0], b[0]), _join(a[1], b[1]))


def _join(a, b):
    if not b:
        return a
    if not a:
        return b
    out = dict(a)
    for k, v in b.items():
        if out.get(k, -1.0) < v:
            out[k] = v
    return out


class _State:
    __slots__ = ("mem", "threads", "mbs")

    def clone(self):
        s = _State.__new__(_State)
        s.mem = self.mem.clone()
        s.threads = [t.clone() for t in self.threads]
        s.mbs = self.mbs
        return s

    def key(self):
        """What the state is a function of: each process's executed instructions in
        its execution order with the message each load read, each location's
        coherence order, and the order of full fences (the global view's history).
        Every view follows from these, so two interleavings that agree on them
        reach the same state."""
        return (
            tuple(t.trace for t in self.threads),
            tuple(tuple(m.task for m in ms) for ms in self.mem.hist.values()),
            self.mbs,
        )


def _eval(e, t):
    """(value, view) of a pure expression."""
    k = e[0]
    if k == "num":
        return e[1], _NODEP
    if k == "ptr":
        return e[1], _NODEP
    if k == "reg":
        return t.regs.get(e[1], 0), t.rview.get(e[1], _NODEP)
    if k == "un":
        v, w = _eval(e[2], t)
        if e[1] == "!":
            return int(not v), w
        if e[1] == "-":
            return -v, w
        return ~v, w
    a, wa = _eval(e[2], t)
    b, wb = _eval(e[3], t)
    op = e[1]
    w = _join2(wa, wb)
    if op in ("==", "!="):
        r = (a == b) == (op == "==")
        return int(r), w
    fn = _BINOPS.get(op)
    if fn is None:
        raise LitmusError(f"operator {op}")
    if isinstance(a, str) or isinstance(b, str):
        raise LitmusError(f"arithmetic on a pointer ({op})")
    return int(fn(a, b)), w


_BINOPS = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b,
    "&&": lambda a, b: bool(a) and bool(b),
    "||": lambda a, b: bool(a) or bool(b),
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _addr(a, t):
    if a[0] == "loc":
        return a[1], _NODEP
    v = t.regs.get(a[1], 0)
    if not isinstance(v, str):
        raise LitmusError(f"dereference of a non-pointer register {a[1]}")
    return v, t.rview.get(a[1], _NODEP)


def _regs_of(e, out):
    if e[0] == "reg":
        out.add(e[1])
    elif e[0] == "bin":
        _regs_of(e[2], out)
        _regs_of(e[3], out)
    elif e[0] == "un":
        _regs_of(e[2], out)
    return out


def _rmw_value(op, old, vals):
    """The value an RMW writes after reading ``old``; None: it does not write."""
    if op == "xchg":
        return vals[0]
    if op == "cmpxchg":
        return vals[1] if old == vals[0] else None
    return _RMW_FN[op](old, vals[0])


_RMW_FN = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "inc": lambda a, b: a + b,
    "dec": lambda a, b: a - b,
    "and": lambda a, b: a & b,
    "or": lambda a, b: a | b,
    "xor": lambda a, b: a ^ b,
    "andnot": lambda a, b: a & ~b,
}


class Explorer:
    """Every execution of a program under one memory model (``weak``: lkmm)."""

    def __init__(self, prog, weak=True):
        self.prog = prog
        self.weak = weak
        self.seen = set()
        self.finals = {}  # execution signature -> (final values, path)

    def initial(self):
        s = _State()
        s.mem = MemoryState(weak=self.weak)
        for loc in self.prog.locations:
            s.mem.history(loc, self.prog.init.get(loc, 0))
        s.threads = []
        s.mbs = ()
        for i, code in enumerate(self.prog.code):
            t = _Thread()
            t.pc = 0
            t.regs = {r: v for (ti, r), v in self.prog.test.reg_init.items() if ti == i}
            t.rview = {}
            t.done = frozenset()
            t.ctrl = _NODEP
            t.nstores = 0
            t.reads = ()
            t.trace = ()
            _settle(code, t)
            s.threads.append(t)
        return s

    def run(self):
        self._dfs(self.initial(), ())
        return self.finals

    def _dfs(self, s, path):
        key = s.key()
        if key in self.seen:
            return
        self.seen.add(key)
        moves = self._moves(s)
        if not moves:
            if all(t.pc >= len(c) for t, c in zip(s.threads, self.prog.code)):
                sig = self._signature(s)
                if sig not in self.finals:
                    self.finals[sig] = (self._final_values(s), path)
            return  # else: a process waits for a lock forever (not an execution)
        for tid, j, choice in moves:
            n = s.clone()
            what = self._step(n, tid, j, choice)
            self._dfs(n, path + ((tid, what),))

    # --------------------------------------------------------------- moves

    def _moves(self, s):
        out = []
        for tid, t in enumerate(s.threads):
            code = self.prog.code[tid]
            if t.pc >= len(code):
                continue
            ins = code[t.pc]
            for c in self._choices(s, tid, t, ins):
                out.append((tid, t.pc, c))
            if self.weak:
                for j in self._hoistable(s, tid, t, code):
                    for c in self._choices(s, tid, t, code[j]):
                        out.append((tid, j, c))
        return out

    def _hoistable(self, s, tid, t, code):
        """Stores po-after the pending load at pc that nothing orders after it."""
        if code[t.pc][0] != "load" or code[t.pc][3] == "acquire":
            return
        pending_regs = set()
        pending_locs = set()
        for j in range(t.pc, len(code)):
            if j in t.done:
                continue
            ins = code[j]
            op = ins[0]
            if op == "load":
                if ins[3] == "acquire" or ins[2][0] == "reg" and ins[2][1] in pending_regs:
                    return
                pending_regs.add(ins[1])
                pending_locs.add(ins[2][1] if ins[2][0] == "loc" else None)
                continue
            if op == "set":
                if _regs_of(ins[2], set()) & pending_regs:
                    pending_regs.add(ins[1])
                continue
            if op == "fence" and ins[1] in ("rmb", "wmb", "barrier", "rcu-lock", "rcu-unlock"):
                continue
            if op == "rmw" and ins[5] in ("once", "acquire") and j > t.pc:
                # a relaxed or acquire RMW: nothing orders it after the pending loads
                a = ins[2]
                if a[0] == "reg" or a[1] in pending_locs or None in pending_locs:
                    return
                used = set()
                for x in ins[4]:
                    _regs_of(x, used)
                if used & pending_regs:
                    return
                yield j
                return
            if op == "store" and ins[3] in ("once", "plain") and j > t.pc:
                a = ins[1]
                if a[0] == "reg" or a[1] in pending_locs or None in pending_locs:
                    return
                if _regs_of(ins[2], set()) & pending_regs:
                    return
                yield j
            return

    def _choices(self, s, tid, t, ins):
        op = ins[0]
        mem = s.mem
        if op == "load":
            loc, dep = _addr(ins[2], t)
            return range(len(mem.load_options(tid, loc, 0, dep[0])))
        if op == "store":
            loc, dep = _addr(ins[1], t)
            order = _ORDERS["release" if ins[3] == "release" else "once"]
            return range(len(mem.store_options(tid, loc, 0, order, self._store_dep(t, ins, dep)[0])))
        if op == "trylock":
            return range(len(self._trylock_options(mem, tid, t, ins)))
        if op == "rmw":
            return range(len(self._rmw_options(mem, tid, t, ins)))
        if op == "lock":
            loc, _ = _addr(ins[1], t)
            return [0] if mem.history(loc, 0)[-1].val == 0 else []
        if op == "islocked":
            loc, dep = _addr(ins[2], t)
            return range(len(mem.load_options(tid, loc, 0, dep[0])))
        return [0]

    @staticmethod
    def _store_dep(t, ins, adep):
        """The views a store's address, data and control dependencies bring."""
        _, vdep = _eval(ins[2], t)
        return _join2(_join2(adep, vdep), t.ctrl)

    @staticmethod
    def _trylock_options(mem, tid, t, ins):
        """spin_trylock(): succeed on an unlocked lock word (an RMW on the latest
        message), or fail reading any locked value the CPU may still see (LF)."""
        loc, dep = _addr(ins[2], t)
        latest = mem.history(loc, 0)[-1]
        out = [None] if latest.val == 0 else []
        out += [m for m in mem.load_options(tid, loc, 0, dep[0]) if m.val != 0]
        return out

    # ---------------------------------------------------------------- steps

    def _step(self, s, tid, j, choice):
        t = s.threads[tid]
        code = self.prog.code[tid]
        ins = code[j]
        mem = s.mem
        op = ins[0]
        nmb = mem.nmb
        nreads = len(t.reads)
        if j != t.pc:
            # a hoisted store: apply a skipped smp_wmb first (it orders the stores before it)
            for k in range(t.pc, j):
                if code[k][0] == "fence" and code[k][1] == "wmb" and k not in t.done:
                    mem.smp_wmb(tid)
        if op == "load":
            loc, dep = _addr(ins[2], t)
            m = mem.load_options(tid, loc, 0, dep[0])[choice]
            hv = mem.load_commit(tid, m, _ORDERS[ins[3]])
            t.regs[ins[1]] = m.val
            t.rview[ins[1]] = _join2(hv, dep)
            t.reads = t.reads + ((j, m.task),)
            what = f"{ins[5]}: reads {loc} = {m.val}" + _stale(mem, loc, m)
        elif op == "store":
            loc, dep = _addr(ins[1], t)
            val, _ = _eval(ins[2], t)
            order = RELEASE if ins[3] == "release" else ONCE
            d = self._store_dep(t, ins, dep)
            idx = mem.store_options(tid, loc, 0, order, d[0])[choice]
            ms = mem.hist[loc]
            before = ms[idx] if idx < len(ms) else None
            t.nstores += 1
            mem.store_commit(tid, loc, val, idx, order, d[1], task=f"{tid}:{t.nstores}")
            if ins[3] == "mb-after":
                mem.smp_mb(tid)
            what = f"{ins[5]}: {loc} = {val}"
            if before is not None:
                what += f" (co-before P{before.cpu}'s store {loc} = {before.val})" if before.cpu is not None else ""
            if j != t.pc:
                what += " (issued before the po-earlier load)"
        elif op == "rmw":
            what = self._rmw(s, t, tid, ins, j, choice)
        elif op == "fence":
            kind = ins[1]
            if kind == "mb" or kind == "after-atomic" and mem.cpu(tid).rmw_done:
                mem.smp_mb(tid)
            elif kind == "rmb":
                mem.smp_rmb(tid)
            elif kind == "wmb":
                mem.smp_wmb(tid)
            elif kind == "before-atomic":
                mem.cpu(tid).before_atomic = True
            what = ins[3]
        elif op == "lock":
            loc, _ = _addr(ins[1], t)
            m = mem.hist[loc][-1]
            mem.load_commit(tid, m, ACQUIRE)
            mem.locked(tid)
            mem.handoff(tid, m)
            t.nstores += 1
            mem.store_commit(tid, loc, 1, len(mem.hist[loc]), ONCE, task=f"{tid}:{t.nstores}", rmw=True)
            t.reads = t.reads + ((j, m.task),)
            what = ins[3]
        elif op == "unlock":
            loc, _ = _addr(ins[1], t)
            mem.unlocked(tid)
            t.nstores += 1
            idx = mem.store_options(tid, loc, 0, RELEASE)[0]
            hv = mem.cpu(tid).pkw
            mem.store_commit(tid, loc, 0, idx, RELEASE, task=f"{tid}:{t.nstores}").hv = hv
            what = ins[3]
        elif op == "islocked":
            loc, dep = _addr(ins[2], t)
            m = mem.load_options(tid, loc, 0, dep[0])[choice]
            mem.load_commit(tid, m, ONCE)
            t.regs[ins[1]] = int(m.val != 0)
            t.rview[ins[1]] = _NODEP
            t.reads = t.reads + ((j, m.task),)
            what = f"{ins[4]} = {int(m.val != 0)}"
        elif op == "trylock":
            loc, _ = _addr(ins[2], t)
            m = self._trylock_options(mem, tid, t, ins)[choice]
            if m is None:
                m = mem.hist[loc][-1]
                mem.load_commit(tid, m, ACQUIRE)
                mem.locked(tid)
                mem.handoff(tid, m)
                t.nstores += 1
                mem.store_commit(tid, loc, 1, len(mem.hist[loc]), ONCE, task=f"{tid}:{t.nstores}", rmw=True)
                t.regs[ins[1]] = 1
            else:
                mem.load_commit(tid, m, ONCE)
                t.regs[ins[1]] = 0
            t.reads = t.reads + ((j, m.task),)
            t.rview[ins[1]] = _NODEP
            what = f"{ins[4]} = {t.regs[ins[1]]}"
        else:  # pragma: no cover - local instructions are settled eagerly
            raise AssertionError(op)
        t.trace = t.trace + ((j, t.reads[-1][1] if len(t.reads) > nreads else None),)
        if mem.nmb != nmb:
            s.mbs = s.mbs + ((tid, len(t.trace)),)
        if j == t.pc:
            t.pc += 1
        else:
            t.done = t.done | {j}
        _settle(code, t)
        return what

    @staticmethod
    def _rmw_options(mem, tid, t, ins):
        """An RMW may read any message it can see whose successor in ``co`` is not
        an RMW's write, and goes right after it (atomicity): (index read, succeeds)."""
        _, dst, a, op, operands, order, ret, line, text = ins
        loc, dep = _addr(a, t)
        vals = [_eval(x, t)[0] for x in operands]
        ms = mem.history(loc, 0)
        pos = {m.task: i for i, m in enumerate(ms)}
        o = _ORDERS[order]
        out = []
        for m in mem.load_options(tid, loc, 0, dep[0]):
            if _rmw_value(op, m.val, vals) is None:
                out.append((pos[m.task], False))  # a failed cmpxchg: a plain read
        smem = mem
        if o == MB or mem.cpu(tid).before_atomic:
            smem = mem.clone()
            smem.smp_mb(tid)
        places = set(smem.store_options(tid, loc, 0, RELEASE if o == RELEASE else ONCE, dep[0]))
        for m in smem.load_options(tid, loc, 0, dep[0]):
            i = pos[m.task]
            if _rmw_value(op, m.val, vals) is not None and i + 1 in places:
                out.append((i, True))
        return out

    def _rmw(self, s, t, tid, ins, j, choice):
        _, dst, a, op, operands, order, ret, line, text = ins
        mem = s.mem
        loc, dep = _addr(a, t)
        i, ok = self._rmw_options(mem, tid, t, ins)[choice]
        vals = [_eval(x, t) for x in operands]
        m = mem.hist[loc][i]
        old = m.val
        new = _rmw_value(op, old, [v for v, _ in vals])
        c = mem.cpu(tid)
        t.reads = t.reads + ((j, m.task),)
        if not ok:
            hv = mem.load_commit(tid, m, ONCE)
        else:
            o = _ORDERS[order]
            if o == MB or c.before_atomic:
                mem.smp_mb(tid)
            hv = mem.load_commit(tid, m, ACQUIRE if o in (ACQUIRE, MB) else ONCE)
            d = _join(dep[1], t.ctrl[1])
            for _, w in vals:
                d = _join(d, w[1])
            t.nstores += 1
            mem.store_commit(
                tid,
                loc,
                new,
                i + 1,
                RELEASE if o == RELEASE else ONCE,
                d,
                task=f"{tid}:{t.nstores}",
                rmw=True,
            )
            c.rmw_done = True
            c.before_atomic = False
            if o == MB:
                mem.smp_mb(tid)
        if dst is not None:
            if ret == "old":
                r = old
            elif ret == "new":
                r = new
            else:
                r = int(new == 0)
            t.regs[dst] = r
            t.rview[dst] = _join2(hv, dep)
        return f"{text}: {loc} {old} -> {new if new is not None else old}"

    # ------------------------------------------------------------ outcomes

    def _signature(self, s):
        rf = tuple(tuple(sorted(t.reads)) for t in s.threads)
        co = tuple((loc, tuple(m.task for m in ms)) for loc, ms in sorted(s.mem.hist.items()))
        return (rf, co)

    def _final_values(self, s):
        regs = {(i, r): v for i, t in enumerate(s.threads) for r, v in t.regs.items()}
        locs = {loc: ms[-1].val for loc, ms in s.mem.hist.items()}
        return regs, locs


def _stale(mem, loc, m):
    latest = mem.hist[loc][-1]
    if latest is m:
        return ""
    who = "the initial value" if latest.cpu is None else f"P{latest.cpu}'s store {loc} = {latest.val}"
    return f" (stale: {who} not yet visible)"


def _settle(code, t):
    """Run local instructions (register arithmetic, branches) at once."""
    while t.pc < len(code):
        if t.pc in t.done:
            t.pc += 1
            continue
        ins = code[t.pc]
        op = ins[0]
        if op == "set":
            v, w = _eval(ins[2], t)
            t.regs[ins[1]] = v
            t.rview[ins[1]] = w
            t.pc += 1
        elif op == "br":
            v, w = _eval(ins[1], t)
            t.ctrl = _join2(t.ctrl, w)
            t.pc = t.pc + 1 if v else ins[2]
        elif op == "jmp":
            t.pc = ins[1]
        elif op == "fence" and ins[1] in ("barrier", "rcu-lock", "rcu-unlock"):
            t.pc += 1
        else:
            return
