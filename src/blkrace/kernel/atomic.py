"""atomic_t and bit operations: each one a declared access, then atomic.

Kernel baseline: v5.8 (x86's arch/x86/include/asm/atomic.h and bitops.h).
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, access


class atomic_t:
    """include/linux/types.h: atomic_t.  ``name`` labels it in traces."""

    __slots__ = ("name", "counter")

    def __init__(self, name, counter=0):
        self.name = name
        self.counter = counter

    def __repr__(self):
        return f"{self.name}={self.counter}"


# atomic_read(), arch/x86/include/asm/atomic.h
async def atomic_read(v):
    await access(v, READ)
    return v.counter


# atomic_set(), arch/x86/include/asm/atomic.h
async def atomic_set(v, i):
    await access(v, WRITE)
    v.counter = i


# atomic_inc(), arch/x86/include/asm/atomic.h
async def atomic_inc(v):
    await access(v, WRITE)
    v.counter += 1


# atomic_dec(), arch/x86/include/asm/atomic.h
async def atomic_dec(v):
    await access(v, WRITE)
    v.counter -= 1


# atomic_inc_return(), arch/x86/include/asm/atomic.h
async def atomic_inc_return(v):
    await access(v, WRITE)
    v.counter += 1
    return v.counter


# atomic_dec_return(), arch/x86/include/asm/atomic.h
async def atomic_dec_return(v):
    await access(v, WRITE)
    v.counter -= 1
    return v.counter


# atomic_dec_and_test(), arch/x86/include/asm/atomic.h
async def atomic_dec_and_test(v):
    await access(v, WRITE)
    v.counter -= 1
    return v.counter == 0


# atomic_cmpxchg(), arch/x86/include/asm/atomic.h
async def atomic_cmpxchg(v, old, new):
    await access(v, WRITE)
    cur = v.counter
    if cur == old:
        v.counter = new
    return cur


class bitmap:
    """An ``unsigned long`` of flag bits (hctx->state, q->queue_flags)."""

    __slots__ = ("name", "bits")

    def __init__(self, name, bits=0):
        self.name = name
        self.bits = bits

    def __repr__(self):
        return f"{self.name}={self.bits:#x}"


# test_bit(), arch/x86/include/asm/bitops.h
async def test_bit(nr, addr):
    await access(addr, READ)
    return bool(addr.bits >> nr & 1)


# set_bit(), arch/x86/include/asm/bitops.h
async def set_bit(nr, addr):
    await access(addr, WRITE)
    addr.bits |= 1 << nr


# clear_bit(), arch/x86/include/asm/bitops.h
async def clear_bit(nr, addr):
    await access(addr, WRITE)
    addr.bits &= ~(1 << nr)


# test_and_set_bit(), arch/x86/include/asm/bitops.h
async def test_and_set_bit(nr, addr):
    await access(addr, WRITE)
    old = addr.bits >> nr & 1
    addr.bits |= 1 << nr
    return bool(old)


# test_and_clear_bit(), arch/x86/include/asm/bitops.h
async def test_and_clear_bit(nr, addr):
    await access(addr, WRITE)
    old = addr.bits >> nr & 1
    addr.bits &= ~(1 << nr)
    return bool(old)
