"""Turning trace steps into kernel-flavoured lines: "function: primitive(object)"."""

from __future__ import annotations

# Helpers that stand for one instruction or one lock operation: a step is
# shown under the model function that called them, not under the helper.
_PRIMITIVE_FILES = (
    "blkrace/kernel/atomic.py",
    "blkrace/kernel/memory.py",
    "blkrace/block/list.py",
    "blkrace/kernel/locking/spinlock.py",
    "blkrace/kernel/locking/wait.py",
    "blkrace/kernel/locking/rcu.py",
)


def is_primitive(frame):
    return frame.filename.endswith(_PRIMITIVE_FILES) or frame.function == "schedule_on"


def site_and_primitive(stack):
    """(the model function to show, the primitive it called or None)."""
    if not stack:
        return "", None
    i = len(stack) - 1
    while i > 0 and is_primitive(stack[i]):
        i -= 1
    prim = stack[i + 1].function if i + 1 < len(stack) else None
    return stack[i].function, prim


def describe(step):
    """One short line for a trace step."""
    if step.kind != "step":
        return step.what
    func, prim = site_and_primitive(step.stack)
    what = step.what
    obj = what[2:] if len(what) > 2 and what[1] == " " else what
    if prim:
        return f"{func}: {prim}({obj})" if obj else f"{func}: {prim}"
    if what in ("starts", "wakes up", ""):
        return f"{func}: {what}" if what else func
    return f"{func}: {what}"
