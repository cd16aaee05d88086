"""The kernel's C litmus format (tools/memory-model/litmus-tests), parsed.

A test is ``C name``, an optional comment, an init block ``{ x=1; p=y; }``,
processes ``P0(int *x, spinlock_t *l) { ... }`` and a final condition
(``exists``, ``~exists`` or ``forall`` over ``/\\ \\/ ~``, with ``locations``
and ``filter``).  Bodies are the subset the kernel's tests use: register
declarations, marked and plain loads and stores, fences, atomics, xchg and
cmpxchg, spinlocks, RCU's pointer publication, ``if``/``else``.  Anything
else is a :class:`LitmusError` naming file, line and construct: never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class LitmusError(Exception):
    """A test this reader does not support, or malformed input: one line."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|"
    r"(?P<op>/\\|\\/|==|!=|<=|>=|&&|\|\||[-+*/&|^~!<>=(){}\[\];:,]))"
)

# Calls: name -> (kind, ordering, arity).  Loads return a value.
LOADS = {
    "READ_ONCE": "once",
    "smp_load_acquire": "acquire",
    "rcu_dereference": "once",
    "atomic_read": "once",
    "atomic_read_acquire": "acquire",
    "srcu_dereference": None,
}
STORES = {
    "WRITE_ONCE": "once",
    "smp_store_release": "release",
    "rcu_assign_pointer": "release",
    "atomic_set": "once",
    "atomic_set_release": "release",
    "smp_store_mb": "mb-after",
}
FENCES = {
    "smp_mb": "mb",
    "smp_rmb": "rmb",
    "smp_wmb": "wmb",
    "smp_mb__before_atomic": "before-atomic",
    "smp_mb__after_atomic": "after-atomic",
    "smp_mb__after_spinlock": "mb",
    "smp_mb__after_unlock_lock": "after-unlock-lock",
    "barrier": "barrier",
    "rcu_read_lock": "rcu-lock",
    "rcu_read_unlock": "rcu-unlock",
}
_ORD = {"": "mb", "_relaxed": "once", "_acquire": "acquire", "_release": "release"}
_OPS = {"add": "+", "sub": "-", "and": "&", "or": "|", "xor": "^", "andnot": "&~"}


def rmw_of(name):
    """(op, operand count, ordering, returns) for an atomic/xchg/cmpxchg name, or None."""
    for suffix, order in sorted(_ORD.items(), key=lambda kv: -len(kv[0])):
        if suffix and not name.endswith(suffix):
            continue
        base = name[: len(name) - len(suffix)] if suffix else name
        if base in ("xchg", "atomic_xchg"):
            return ("xchg", order, "old")
        if base in ("cmpxchg", "atomic_cmpxchg"):
            return ("cmpxchg", order, "old")
        m = re.fullmatch(r"atomic_(fetch_)?(add|sub|and|or|xor|andnot|inc|dec)(_return)?", base)
        if m:
            fetch, op, ret = m.groups()
            if fetch and ret:
                return None
            if not fetch and not ret:
                return (op, "noreturn", None) if suffix == "" else None
            return (op, order, "old" if fetch else "new")
        m = re.fullmatch(r"atomic_(inc|dec|sub)_and_test", base)
        if m and suffix == "":
            return (m.group(1), "mb", "zero")
    return None


@dataclass
class Node:
    kind: str
    line: int
    args: tuple = ()


@dataclass
class Thread:
    index: int
    params: list
    body: list


@dataclass
class Litmus:
    name: str
    path: str
    init: dict = field(default_factory=dict)  # location -> value (int or a location name)
    reg_init: dict = field(default_factory=dict)  # (thread, reg) -> value
    threads: list = field(default_factory=list)
    locks: set = field(default_factory=set)
    quantifier: str = "exists"  # exists, ~exists, forall
    cond: object = None
    filter: object = None
    locations: list = field(default_factory=list)


class _Tokens:
    def __init__(self, text, path, base_line):
        self.path = path
        self.toks = []
        line = base_line
        pos = 0
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise LitmusError(f"{path}:{line}: unexpected text {text[pos:].strip()[:20]!r}")
            line += text.count("\n", pos, m.start(m.lastgroup))
            kind = m.lastgroup
            self.toks.append((kind, m.group(kind), line))
            line += text.count("\n", m.start(m.lastgroup), m.end())
            pos = m.end()
        self.i = 0

    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else (None, None, self.toks[-1][2] if self.toks else 0)

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def expect(self, value):
        kind, v, line = self.next()
        if v != value:
            raise LitmusError(f"{self.path}:{line}: expected {value!r}, found {v!r}")
        return line

    def accept(self, value):
        if self.peek()[1] == value:
            self.i += 1
            return True
        return False

    def line(self):
        return self.peek()[2]


def _strip_comments(text):
    # (* ... *) comments (not nested in the kernel's tests) and // comments; keep newlines.
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))

    # "(*x" in C code is a dereference, not a comment: a comment opens with "(*" and a space.
    text = re.sub(r"\(\*(?=[\s*]).*?\*\)", blank, text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", blank, text, flags=re.S)
    return re.sub(r"//[^\n]*", blank, text)


def parse_file(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise LitmusError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LitmusError(f"{path}: not a text file") from None
    return parse(text, path)


def parse(text, path="<litmus>"):
    text = _strip_comments(text)
    lines = text.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise LitmusError(f"{path}: empty file")
    head = lines[first].split()
    if head[0] != "C" or len(head) < 2:
        raise LitmusError(f"{path}:{first + 1}: not a C litmus test (the first line should be 'C name')")
    t = Litmus(name=head[1], path=path)
    tk = _Tokens("\n".join(lines[first + 1 :]), path, first + 2)
    _parse_init(tk, t)
    while tk.peek()[0] == "id" and re.fullmatch(r"P\d+", tk.peek()[1]):
        t.threads.append(_parse_thread(tk, t))
    if not t.threads:
        raise LitmusError(f"{path}:{tk.line()}: no process P0(...) found")
    for i, th in enumerate(t.threads):
        if th.index != i:
            raise LitmusError(f"{path}: processes must be P0, P1, ... in order")
    _parse_final(tk, t)
    return t


def _parse_init(tk, t):
    tk.expect("{")
    while not tk.accept("}"):
        line = tk.line()
        if tk.accept(";"):
            continue
        # "int x = 1;", "x = 1;", "0:r1 = 2;", "int *p = &x;" / "p = x;"
        while tk.peek()[1] in ("int", "spinlock_t", "atomic_t", "unsigned", "long", "*", "const"):
            tk.next()
        kind, name, _ = tk.next()
        reg = None
        if tk.peek()[1] == ":" and kind == "num":
            tk.next()
            reg = (int(name), tk.next()[1])
        elif kind != "id":
            raise LitmusError(f"{tk.path}:{line}: unsupported init entry near {name!r}")
        if tk.accept(";"):
            if reg is None:
                t.init.setdefault(name, 0)
            continue
        tk.expect("=")
        tk.accept("&")
        vk, v, _ = tk.next()
        value = int(v) if vk == "num" else v
        if vk not in ("num", "id"):
            raise LitmusError(f"{tk.path}:{line}: unsupported init value {v!r}")
        if reg is None:
            t.init[name] = value
        else:
            t.reg_init[reg] = value
        tk.expect(";")


_TYPES = ("int", "spinlock_t", "atomic_t", "unsigned", "long", "struct", "const", "volatile", "intptr_t")


def _parse_thread(tk, t):
    _, pname, line = tk.next()
    idx = int(pname[1:])
    tk.expect("(")
    params = []
    while not tk.accept(")"):
        types = []
        while tk.peek()[1] in _TYPES or tk.peek()[1] == "*":
            types.append(tk.next()[1])
        kind, name, pl = tk.next()
        if kind != "id":
            raise LitmusError(f"{tk.path}:{pl}: unsupported parameter near {name!r}")
        if "spinlock_t" in types:
            t.locks.add(name)
        elif "struct" in types:
            raise LitmusError(f"{tk.path}:{pl}: unsupported construct 'struct' parameter")
        params.append(name)
        tk.accept(",")
    body = _parse_block(tk)
    return Thread(idx, params, body)


def _parse_block(tk):
    tk.expect("{")
    out = []
    while not tk.accept("}"):
        out.extend(_parse_stmt(tk))
    return out


def _parse_stmt(tk):
    line = tk.line()
    v = tk.peek()[1]
    if v == ";":
        tk.next()
        return []
    if v == "{":
        return _parse_block(tk)
    if v == "if":
        tk.next()
        tk.expect("(")
        cond = _parse_expr(tk)
        tk.expect(")")
        then = _parse_stmt(tk)
        other = []
        if tk.accept("else"):
            other = _parse_stmt(tk)
        return [Node("if", line, (cond, then, other))]
    if v in ("while", "for", "do", "goto", "return", "switch"):
        raise LitmusError(f"{tk.path}:{line}: unsupported construct '{v}'")
    if v in _TYPES:
        while tk.peek()[1] in _TYPES or tk.peek()[1] == "*":
            tk.next()
        out = []
        while True:
            while tk.accept("*"):
                pass
            kind, name, _ = tk.next()
            if kind != "id":
                raise LitmusError(f"{tk.path}:{line}: unsupported declaration near {name!r}")
            if tk.accept("="):
                out.append(Node("assign", line, (("reg", name), _parse_expr(tk))))
            else:
                out.append(Node("decl", line, (name,)))
            if tk.accept(";"):
                return out
            tk.expect(",")
    # expression statement or assignment
    lhs = _parse_expr(tk)
    if tk.accept("="):
        rhs = _parse_expr(tk)
        tk.expect(";")
        if lhs[0] not in ("reg", "deref"):
            raise LitmusError(f"{tk.path}:{line}: unsupported assignment target")
        return [Node("assign", line, (lhs, rhs))]
    tk.expect(";")
    if lhs[0] != "call":
        raise LitmusError(f"{tk.path}:{line}: unsupported statement")
    return [Node("call", line, (lhs,))]


_BINOPS = [("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="), ("+", "-"), ("*",)]


def _parse_expr(tk, level=0):
    if level == len(_BINOPS):
        return _parse_unary(tk)
    left = _parse_expr(tk, level + 1)
    while tk.peek()[1] in _BINOPS[level] and tk.peek()[0] == "op":
        op = tk.next()[1]
        right = _parse_expr(tk, level + 1)
        left = ("bin", op, left, right)
    return left


def _parse_unary(tk):
    kind, v, line = tk.peek()
    if v == "*" and kind == "op":
        tk.next()
        return ("deref", _parse_unary(tk))
    if v == "&" and kind == "op":
        tk.next()
        inner = _parse_unary(tk)
        if inner[0] == "deref":
            return inner[1]
        raise LitmusError(f"{tk.path}:{line}: unsupported construct '&' of a non-location")
    if v == "!" or v == "-" or v == "~":
        tk.next()
        return ("un", v, _parse_unary(tk))
    if v == "(":
        tk.next()
        e = _parse_expr(tk)
        tk.expect(")")
        return e
    tk.next()
    if kind == "num":
        return ("num", int(v))
    if kind == "id":
        if tk.peek()[1] == "(":
            tk.next()
            args = []
            while not tk.accept(")"):
                args.append(_parse_expr(tk))
                tk.accept(",")
            return ("call", v, tuple(args), line)
        if v in ("true", "false"):
            return ("num", int(v == "true"))
        return ("reg", v)
    raise LitmusError(f"{tk.path}:{line}: unsupported expression near {v!r}")


# ----------------------------------------------------------- final condition


def _parse_final(tk, t):
    while tk.peek()[0] is not None:
        kind, v, line = tk.peek()
        if v == "locations":
            tk.next()
            tk.expect("[")
            while not tk.accept("]"):
                t.locations.append(_cond_loc(tk))
                tk.accept(";")
            continue
        if v == "filter":
            tk.next()
            t.filter = _cond_or(tk)
            continue
        if v == "~" and tk.peek(1)[1] == "exists":
            tk.next()
            tk.next()
            t.quantifier = "~exists"
        elif v in ("exists", "forall"):
            tk.next()
            t.quantifier = v
        else:
            raise LitmusError(f"{tk.path}:{line}: unsupported construct {v!r} in the final condition")
        t.cond = _cond_or(tk)
        if tk.peek()[0] is not None:
            raise LitmusError(f"{tk.path}:{tk.line()}: unexpected {tk.peek()[1]!r} after the final condition")
        return
    raise LitmusError(f"{tk.path}: no final condition (exists, ~exists or forall)")


def _cond_or(tk):
    left = _cond_and(tk)
    while tk.accept("\\/"):
        left = ("or", left, _cond_and(tk))
    return left


def _cond_and(tk):
    left = _cond_atom(tk)
    while tk.accept("/\\"):
        left = ("and", left, _cond_atom(tk))
    return left


def _cond_loc(tk):
    kind, v, line = tk.next()
    if kind == "num" and tk.peek()[1] == ":":
        tk.next()
        return ("reg", int(v), tk.next()[1])
    if kind == "id":
        if v.startswith("*"):
            v = v[1:]
        return ("loc", v)
    if v == "*":
        return _cond_loc(tk)
    raise LitmusError(f"{tk.path}:{line}: unsupported location {v!r} in the final condition")


def _cond_atom(tk):
    if tk.accept("~"):
        return ("not", _cond_atom(tk))
    if tk.accept("("):
        e = _cond_or(tk)
        tk.expect(")")
        return e
    if tk.peek()[1] in ("true", "false"):
        return ("const", tk.next()[1] == "true")
    loc = _cond_loc(tk)
    line = tk.line()
    op = tk.next()[1]
    if op not in ("=", "!=", "=="):
        raise LitmusError(f"{tk.path}:{line}: unsupported comparison {op!r}")
    kind, v, _ = tk.next()
    if kind == "op" and v == "-":
        v = "-" + tk.next()[1]
        kind = "num"
    value = int(v) if kind == "num" else v
    return ("eq" if op != "!=" else "ne", loc, value)
