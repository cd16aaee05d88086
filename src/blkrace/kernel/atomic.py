"""atomic_t and bit operations: each one a declared access, then atomic.

Kernel baseline: v5.8 (x86's arch/x86/include/asm/atomic.h and bitops.h).

Under the ``lkmm`` memory model an atomic_t or bitmap created with ``k``
(``atomic_t(name, 0, k=k)``) is a location of :mod:`blkrace.kernel.memory`,
with the ordering LKMM gives each operation (Documentation/atomic_t.txt,
Documentation/atomic_bitops.txt): non-value-returning operations (atomic_inc,
set_bit, clear_bit) are unordered, value-returning ones (atomic_inc_return,
atomic_dec_and_test, test_and_set_bit, test_and_clear_bit, a successful
atomic_cmpxchg) are fully ordered, clear_bit_unlock is a release.  Objects
created without ``k``, and every object under ``sc``, keep the sequentially
consistent fast path.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, access
from blkrace.kernel.memory import MB, ONCE, RELEASE, mm_load, mm_rmw, mm_store


class atomic_t:
    """include/linux/types.h: atomic_t.  ``name`` labels it in traces."""

    __slots__ = ("name", "counter", "k")

    def __init__(self, name, counter=0, k=None):
        self.name = name
        self.counter = counter
        self.k = k if k is not None and k.memory is not None else None

    def __repr__(self):
        return f"{self.name}={self.counter}"


# atomic_read(), arch/x86/include/asm/atomic.h
async def atomic_read(v):
    if v.k is not None:
        return await mm_load(v.k, v, "counter", ONCE)
    await access(v, READ)
    return v.counter


# atomic_set(), arch/x86/include/asm/atomic.h
async def atomic_set(v, i):
    if v.k is not None:
        return await mm_store(v.k, v, "counter", i, ONCE)
    await access(v, WRITE)
    v.counter = i


# atomic_inc(), arch/x86/include/asm/atomic.h
async def atomic_inc(v):
    if v.k is not None:
        await mm_rmw(v.k, v, "counter", lambda c: c + 1, ONCE)
        return
    await access(v, WRITE)
    v.counter += 1


# atomic_dec(), arch/x86/include/asm/atomic.h
async def atomic_dec(v):
    if v.k is not None:
        await mm_rmw(v.k, v, "counter", lambda c: c - 1, ONCE)
        return
    await access(v, WRITE)
    v.counter -= 1


# atomic_inc_return(), arch/x86/include/asm/atomic.h
async def atomic_inc_return(v):
    if v.k is not None:
        return await mm_rmw(v.k, v, "counter", lambda c: c + 1, MB) + 1
    await access(v, WRITE)
    v.counter += 1
    return v.counter


# atomic_dec_return(), arch/x86/include/asm/atomic.h
async def atomic_dec_return(v):
    if v.k is not None:
        return await mm_rmw(v.k, v, "counter", lambda c: c - 1, MB) - 1
    await access(v, WRITE)
    v.counter -= 1
    return v.counter


# atomic_dec_and_test(), arch/x86/include/asm/atomic.h
async def atomic_dec_and_test(v):
    if v.k is not None:
        return await mm_rmw(v.k, v, "counter", lambda c: c - 1, MB) == 1
    await access(v, WRITE)
    v.counter -= 1
    return v.counter == 0


# atomic_cmpxchg(), arch/x86/include/asm/atomic.h
async def atomic_cmpxchg(v, old, new):
    if v.k is not None:
        return await mm_rmw(v.k, v, "counter", lambda c: new if c == old else None, MB)
    await access(v, WRITE)
    cur = v.counter
    if cur == old:
        v.counter = new
    return cur


class bitmap:
    """An ``unsigned long`` of flag bits (hctx->state, q->queue_flags)."""

    __slots__ = ("name", "bits", "k")

    def __init__(self, name, bits=0, k=None):
        self.name = name
        self.bits = bits
        self.k = k if k is not None and k.memory is not None else None

    def __repr__(self):
        return f"{self.name}={self.bits:#x}"


def _bit(nr):
    return lambda bits: f"{bits:#x} (bit {nr} {'set' if bits >> nr & 1 else 'clear'})"


# test_bit(), arch/x86/include/asm/bitops.h
async def test_bit(nr, addr):
    if addr.k is not None:
        return bool(await mm_load(addr.k, addr, "bits", ONCE, _bit(nr)) >> nr & 1)
    await access(addr, READ)
    return bool(addr.bits >> nr & 1)


# set_bit(), arch/x86/include/asm/bitops.h
async def set_bit(nr, addr):
    if addr.k is not None:
        await mm_rmw(addr.k, addr, "bits", lambda b: b | 1 << nr, ONCE)
        return
    await access(addr, WRITE)
    addr.bits |= 1 << nr


# clear_bit(), arch/x86/include/asm/bitops.h
async def clear_bit(nr, addr):
    if addr.k is not None:
        await mm_rmw(addr.k, addr, "bits", lambda b: b & ~(1 << nr), ONCE)
        return
    await access(addr, WRITE)
    addr.bits &= ~(1 << nr)


# clear_bit_unlock(), include/asm-generic/bitops/lock.h
async def clear_bit_unlock(nr, addr):
    """clear_bit_unlock(): clear_bit() with release ordering."""
    if addr.k is not None:
        await mm_rmw(addr.k, addr, "bits", lambda b: b & ~(1 << nr), RELEASE)
        return
    await clear_bit(nr, addr)


# test_and_set_bit(), arch/x86/include/asm/bitops.h
async def test_and_set_bit(nr, addr):
    if addr.k is not None:
        return bool(await mm_rmw(addr.k, addr, "bits", lambda b: b | 1 << nr, MB) >> nr & 1)
    await access(addr, WRITE)
    old = addr.bits >> nr & 1
    addr.bits |= 1 << nr
    return bool(old)


# test_and_clear_bit(), arch/x86/include/asm/bitops.h
async def test_and_clear_bit(nr, addr):
    if addr.k is not None:
        return bool(await mm_rmw(addr.k, addr, "bits", lambda b: b & ~(1 << nr), MB) >> nr & 1)
    await access(addr, WRITE)
    old = addr.bits >> nr & 1
    addr.bits &= ~(1 << nr)
    return bool(old)
