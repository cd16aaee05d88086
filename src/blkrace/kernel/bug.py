"""WARN_ON and BUG_ON: modelled assertions become violations, never crashes.

Kernel baseline: v5.8 (include/asm-generic/bug.h).
"""

from __future__ import annotations

import sys

from blkrace.engine import StopRun, Violation


def _site(depth):
    frame = sys._getframe(depth)
    code = frame.f_code
    path = code.co_filename
    i = path.rfind("/blkrace/")
    return f"{code.co_name} ({path[i + 1 :] if i >= 0 else path}:{frame.f_lineno})"


def WARN(k, condition, fmt="", *args):
    """WARN(cond, fmt, ...), include/asm-generic/bug.h: report and go on."""
    if condition:
        site = _site(2)
        text = (fmt % args) if args else fmt
        k.execution.report(Violation("warning", f"WARNING: at {site}: {text}".rstrip(": "), origin=f"warning:{site}"))
    return bool(condition)


# WARN_ON(), include/asm-generic/bug.h
def WARN_ON(k, condition):
    """WARN_ON(cond): report a warning at the caller's line and go on."""
    if condition:
        site = _site(2)
        k.execution.report(Violation("warning", f"WARNING: at {site}", origin=f"warning:{site}"))
    return bool(condition)


# WARN_ON_ONCE(), include/asm-generic/bug.h
def WARN_ON_ONCE(k, condition):
    """WARN_ON_ONCE(cond): as WARN_ON, once per call site and run."""
    if condition:
        site = _site(2)
        if site not in k.warned:
            k.warned.add(site)
            k.execution.report(Violation("warning", f"WARNING: at {site}", origin=f"warning:{site}"))
    return bool(condition)


# BUG_ON(), include/asm-generic/bug.h
def BUG_ON(k, condition, why=""):
    """BUG_ON(cond): the run ends here with a ``bug``."""
    if condition:
        site = _site(2)
        raise StopRun(Violation("bug", f"kernel BUG at {site}{': ' + why if why else ''}", origin=f"bug:{site}"))


# model: a BUG() or a failed scenario invariant, as a violation
def bug(message, origin=None):
    """A failed scenario invariant, as a violation to return from a checker."""
    return Violation("bug", message, origin=origin or f"bug:{message}")
