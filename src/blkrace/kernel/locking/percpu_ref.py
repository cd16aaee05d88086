"""percpu_ref (include/linux/percpu-refcount.h, lib/percpu-refcount.c), atomic mode.

The per-CPU fast path is not modelled: a percpu_ref behaves like its atomic
mode, with the initial reference that percpu_ref_kill() drops.  tryget
succeeds while the count is above zero (even after kill); tryget_live only
before the kill.  ``release`` runs when the count reaches zero.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, access


class percpu_ref:
    __slots__ = ("name", "count", "dead", "release")

    def __init__(self, name, release=None):
        self.name = name
        self.count = 1  # the initial reference
        self.dead = False  # __PERCPU_REF_DEAD
        self.release = release  # called when the count drops to zero


def _put(ref):
    ref.count -= 1
    if ref.count == 0 and ref.release is not None:
        ref.release(ref)


async def percpu_ref_tryget(ref):
    await access(ref, WRITE)
    if ref.count > 0:
        ref.count += 1
        return True
    return False


async def percpu_ref_tryget_live(ref):
    await access(ref, WRITE)
    if ref.dead:
        return False
    ref.count += 1
    return True


async def percpu_ref_get(ref):
    await access(ref, WRITE)
    ref.count += 1


async def percpu_ref_put(ref):
    await access(ref, WRITE)
    _put(ref)


async def percpu_ref_kill(ref):
    """percpu_ref_kill(): no new live gets; drop the initial reference."""
    await access(ref, WRITE)
    ref.dead = True
    _put(ref)


async def percpu_ref_resurrect(ref):
    """percpu_ref_resurrect(): live again, with a new initial reference."""
    await access(ref, WRITE)
    ref.dead = False
    ref.count += 1


async def percpu_ref_is_zero(ref):
    await access(ref, READ)
    return ref.count == 0
