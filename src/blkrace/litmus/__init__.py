"""C litmus tests (tools/memory-model/litmus-tests) run through the kernel's
memory model: ``blkrace litmus FILE...`` prints herd7's verdict shape."""

from __future__ import annotations

import time
from dataclasses import dataclass

from blkrace.litmus.parse import LitmusError, parse, parse_file
from blkrace.litmus.run import Explorer, compile_test

__all__ = ["LitmusError", "Verdict", "check", "check_text", "format_verdict"]


@dataclass
class Verdict:
    name: str
    quantifier: str
    observation: str  # Always, Sometimes, Never
    pos: int
    neg: int
    states: list  # sorted lines "0:r0=0; 1:r0=1;"
    witness: tuple  # ((thread, what), ...) of an execution satisfying the condition, or ()
    condition: str
    elapsed_s: float
    model: str
    nthreads: int


def _value(loc, regs, locs):
    if loc[0] == "reg":
        return regs.get((loc[1], loc[2]), 0)
    return locs.get(loc[1], 0)


def _holds(c, regs, locs):
    k = c[0]
    if k == "and":
        return _holds(c[1], regs, locs) and _holds(c[2], regs, locs)
    if k == "or":
        return _holds(c[1], regs, locs) or _holds(c[2], regs, locs)
    if k == "not":
        return not _holds(c[1], regs, locs)
    if k == "const":
        return c[1]
    v = _value(c[1], regs, locs)
    return (v == c[2]) == (k == "eq")


def _cond_locs(c, out):
    k = c[0]
    if k in ("and", "or"):
        _cond_locs(c[1], out)
        _cond_locs(c[2], out)
    elif k == "not":
        _cond_locs(c[1], out)
    elif k in ("eq", "ne"):
        if c[1] not in out:
            out.append(c[1])
    return out


def _show_loc(loc):
    return f"{loc[1]}:{loc[2]}" if loc[0] == "reg" else loc[1]


def _show_cond(c):
    k = c[0]
    if k == "and":
        return f"{_show_cond(c[1])} /\\ {_show_cond(c[2])}"
    if k == "or":
        return f"({_show_cond(c[1])} \\/ {_show_cond(c[2])})"
    if k == "not":
        return f"~{_show_cond(c[1])}"
    if k == "const":
        return "true" if c[1] else "false"
    return f"{_show_loc(c[1])}{'=' if k == 'eq' else '!='}{c[2]}"


def run_test(test, model="lkmm"):
    t0 = time.perf_counter()
    prog = compile_test(test)
    finals = Explorer(prog, weak=model == "lkmm").run()
    shown = list(test.locations)
    _cond_locs(test.cond, shown)
    pos = neg = 0
    states = set()
    witness = ()
    for _sig, ((regs, locs), path) in finals.items():
        if test.filter is not None and not _holds(test.filter, regs, locs):
            continue
        states.add("; ".join(f"{_show_loc(loc)}={_value(loc, regs, locs)}" for loc in shown) + ";")
        if _holds(test.cond, regs, locs):
            pos += 1
            if not witness:
                witness = path
        else:
            neg += 1
    if pos == 0:
        obs = "Never"
    elif neg == 0:
        obs = "Always"
    else:
        obs = "Sometimes"
    cond = f"{test.quantifier} ({_show_cond(test.cond)})"
    return Verdict(
        test.name,
        test.quantifier,
        obs,
        pos,
        neg,
        sorted(states),
        witness,
        cond,
        time.perf_counter() - t0,
        model,
        len(test.threads),
    )


def check(path, model="lkmm"):
    return run_test(parse_file(path), model)


def check_text(text, model="lkmm", path="<litmus>"):
    return run_test(parse(text, path), model)


def format_verdict(v, witness=True):
    """herd7's layout (Test, States, Ok/No, Witnesses, Condition, Observation), then the witness."""
    if v.quantifier == "forall":
        ok = v.neg == 0
        kind = "Required"
    elif v.quantifier == "~exists":
        ok = v.pos == 0
        kind = "Allowed"
    else:
        ok = v.pos > 0
        kind = "Allowed"
    lines = [f"Test {v.name} {kind}", f"States {len(v.states)}"]
    lines += v.states
    lines += ["Ok" if ok else "No", "Witnesses", f"Positive: {v.pos} Negative: {v.neg}", f"Condition {v.condition}"]
    lines.append(f"Observation {v.name} {v.observation} {v.pos} {v.neg}")
    lines.append(f"Time {v.name} {v.elapsed_s:.3f} (memory model {v.model})")
    if witness and v.witness:
        lines.append("Witness (a blkrace timeline of one execution satisfying the condition):")
        width = 44
        lines.append("  step  " + "".join(f"P{i}".ljust(width) for i in range(v.nthreads)).rstrip())
        for n, (tid, what) in enumerate(v.witness, 1):
            lines.append(f"  {n:4d}  " + " " * (width * tid) + what)
    return "\n".join(lines)


def main(files, model="lkmm", witness=True, out=print, err=None):
    """``blkrace litmus FILE...``: a verdict per file; returns the exit status
    (0, or 2 when a file could not be read or uses a construct not supported,
    after printing every verdict that could be given)."""
    import sys

    err = err or (lambda line: print(line, file=sys.stderr))
    status = 0
    first = True
    for path in files:
        try:
            v = check(path, model)
        except LitmusError as exc:
            err(f"blkrace: error: {exc}")
            status = 2
            continue
        except RecursionError:
            err(f"blkrace: error: {path}: the test is too large for the interpreter")
            status = 2
            continue
        if not first:
            out("")
        first = False
        out(format_verdict(v, witness))
    return status
