"""percpu_ref: include/linux/percpu-refcount.h and lib/percpu-refcount.c.

Kernel baseline: v5.8 (before v5.9 moved the fields into percpu_ref_data).

A percpu_ref starts in per-CPU mode (or in atomic mode with
PERCPU_REF_INIT_ATOMIC, as q_usage_counter does until blk_register_queue()
switches it): gets and puts then touch only the CPU's own counter, under
rcu_read_lock(), and nothing can see the ref reach zero.  The atomic count
carries PERCPU_COUNT_BIAS meanwhile.  percpu_ref_kill() marks the ref DEAD
and ATOMIC at once (new gets and puts go to the atomic count; tryget_live
fails) and drops the initial reference, but the per-CPU counts are only
folded into the atomic count, and the bias removed, by an RCU callback after
a grace period: every reader that saw per-CPU mode has finished its
increment by then.  Only after that can the count reach zero and release()
run.  A second kill WARNs ("called more than once"); a resurrect or a
switch while that callback is pending waits for it (percpu_ref_switch_waitq).

Each get or put is two scheduling points, as in the kernel: reading the
mode (percpu_count_ptr) under rcu_read_lock(), then the per-CPU or the
atomic operation.  A per-CPU operation touches only its CPU's counter, so
it is independent of other CPUs' for the explorer.

Under the ``lkmm`` memory model the mode word, the atomic count and each
CPU's counter are locations of blkrace.kernel.memory, with v5.8's orderings:
__ref_is_percpu() is a READ_ONCE() whose value addresses the per-CPU counter
(an address dependency, which pairs with the smp_store_release() of
__percpu_ref_switch_to_percpu(): the zeroed counters are seen by every
this_cpu op that sees per-CPU mode); the mode changes under
percpu_ref_switch_lock are plain stores; atomic_long_add() is unordered,
atomic_long_sub_and_test() and a successful atomic_long_inc_not_zero() fully
ordered; this_cpu_add() is a load and a store of one step (atomic against
the CPU's interrupts, not an LKMM RMW).  The switch to atomic mode relies on
the RCU grace period before percpu_ref_switch_to_atomic_rcu() (a call_rcu()
callback is ordered after the grace period, see rcu.py), with which
rcu_read_lock_sched() readers that saw per-CPU mode have finished.

Left out: percpu_ref_exit()'s freeing (the counters stay; the ref is marked
ATOMIC_DEAD), gfp failures of percpu_ref_init(), the _many variants.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, access
from blkrace.kernel.bug import WARN, WARN_ON_ONCE
from blkrace.kernel.locking.rcu import call_rcu, rcu_read_lock, rcu_read_unlock
from blkrace.kernel.locking.spinlock import spin_lock_irqsave, spin_unlock_irqrestore, spinlock_t
from blkrace.kernel.locking.wait import wait_event, wait_queue_head_t, wake_up
from blkrace.kernel.machine import smp_processor_id
from blkrace.kernel.memory import (
    MB,
    ONCE,
    WRITE_ONCE,
    mm_load,
    mm_load_dep,
    mm_rmw,
    mm_store_locked,
    mm_this_cpu_rmw,
    smp_store_release,
)

# The low bits of percpu_count_ptr: __PERCPU_REF_ATOMIC, __PERCPU_REF_DEAD
# (named without the leading underscores, which Python mangles in classes).
REF_ATOMIC = 1 << 0  # operating in atomic mode
REF_DEAD = 1 << 1  # (being) killed
REF_ATOMIC_DEAD = REF_ATOMIC | REF_DEAD

PERCPU_REF_INIT_ATOMIC = 1 << 0
PERCPU_REF_INIT_DEAD = 1 << 1
PERCPU_REF_ALLOW_REINIT = 1 << 2

PERCPU_COUNT_BIAS = 1 << 63  # 1LU << (BITS_PER_LONG - 1)


class _cell:
    """One memory location the explorer sees: the mode word, the atomic
    count, or one CPU's counter."""

    __slots__ = ("name", "value")

    def __init__(self, name, value=0):
        self.name = name
        self.value = value  # under lkmm: the location (the percpu_ref's field mirrors its latest store)


def _weak(ref):
    """The kernel when the memory model is weak (the cells are locations), else None."""
    return ref.k if ref.k.memory is not None else None


class percpu_ref:
    """struct percpu_ref + percpu_ref_init(), lib/percpu-refcount.c.

    ``count`` is the atomic_long_t count (with PERCPU_COUNT_BIAS while per
    CPU); ``percpu_count[cpu]`` the per-CPU counters; ``flags`` the two low
    bits of percpu_count_ptr (ATOMIC, DEAD).
    """

    __slots__ = (
        "name",
        "k",
        "count",
        "percpu_count",
        "flags",
        "force_atomic",
        "allow_reinit",
        "release",
        "confirm_switch",
        "exited",
        "mode_cell",
        "count_cell",
        "cpu_cells",
    )

    def __init__(self, k, name, release=None, flags=0):
        self.k = k
        self.name = name
        self.release = release  # called when the count drops to zero
        self.percpu_count = [0] * k.nr_cpu_ids
        self.force_atomic = bool(flags & PERCPU_REF_INIT_ATOMIC)
        self.allow_reinit = bool(flags & PERCPU_REF_ALLOW_REINIT)
        self.flags = 0
        start = 0
        if flags & (PERCPU_REF_INIT_ATOMIC | PERCPU_REF_INIT_DEAD):
            self.flags |= REF_ATOMIC
            self.allow_reinit = True
        else:
            start += PERCPU_COUNT_BIAS
        if flags & PERCPU_REF_INIT_DEAD:
            self.flags |= REF_DEAD
        else:
            start += 1
        self.count = start
        self.confirm_switch = None
        self.exited = False
        self.mode_cell = _cell(f"{name}.percpu_count_ptr", self.flags)
        self.count_cell = _cell(f"{name}.count", start)
        self.cpu_cells = [_cell(f"{name}.percpu_count[{cpu}]") for cpu in range(k.nr_cpu_ids)]
        _globals(k)

    @property
    def dead(self):
        return bool(self.flags & REF_DEAD)

    def __repr__(self):
        mode = "atomic" if self.flags & REF_ATOMIC else "percpu"
        return f"<percpu_ref {self.name} {mode}{' dead' if self.dead else ''} count={self.count}>"


def _globals(k):
    """percpu_ref_switch_lock and percpu_ref_switch_waitq (file statics)."""
    g = getattr(k, "percpu_ref_switch", None)
    if g is None:
        g = k.percpu_ref_switch = (
            spinlock_t("percpu_ref_switch_lock"),
            wait_queue_head_t("percpu_ref_switch_waitq"),
        )
    return g


# ------------------------------------------------------------ the fast paths


async def __ref_is_percpu(ref):
    """__ref_is_percpu(), include/linux/percpu-refcount.h: READ_ONCE(percpu_count_ptr).

    Returns whether per CPU and, for ``percpu_countp``, the address dependency the
    READ_ONCE() gives the this_cpu op ("The dependency ordering from the
    READ_ONCE() pairs with smp_store_release() in __percpu_ref_switch_to_percpu()")."""
    k = _weak(ref)
    if k is None:
        await access(ref.mode_cell, READ)
        return not ref.flags & REF_ATOMIC_DEAD, None
    flags, dep = await mm_load_dep(k, ref.mode_cell)
    return not flags & REF_ATOMIC_DEAD, dep


async def _atomic_add(ref, nr, order=ONCE):
    """atomic_long_add() (unordered) or, with ``order=MB``, atomic_long_add_return()
    and atomic_long_sub_and_test() (fully ordered); returns the new count."""
    k = _weak(ref)
    if k is None:
        await access(ref.count_cell, WRITE)
        ref.count += nr
        return ref.count
    old = await mm_rmw(k, ref.count_cell, "value", lambda c: c + nr, order)
    ref.count = ref.count_cell.value
    return old + nr


async def _atomic_inc_not_zero(ref):
    """atomic_long_inc_not_zero(): fully ordered when it increments."""
    k = _weak(ref)
    if k is None:
        await access(ref.count_cell, WRITE)
        ret = ref.count != 0
        if ret:
            ref.count += 1
        return ret
    old = await mm_rmw(k, ref.count_cell, "value", lambda c: c + 1 if c != 0 else None, MB)
    ref.count = ref.count_cell.value
    return old != 0


async def _this_cpu_add(ref, nr, dep=None):
    cpu = smp_processor_id(ref.k)
    k = _weak(ref)
    if k is None:
        await access(ref.cpu_cells[cpu], WRITE)
        ref.percpu_count[cpu] += nr
        return
    await mm_this_cpu_rmw(k, ref.cpu_cells[cpu], lambda c: c + nr, dep=dep)
    ref.percpu_count[cpu] = ref.cpu_cells[cpu].value


async def _set_mode(ref, flags, release=False):
    """A store of percpu_count_ptr's mode bits, under percpu_ref_switch_lock: plain
    (``ref->percpu_count_ptr |= ...``) or smp_store_release()."""
    k = _weak(ref)
    if k is None:
        await access(ref.mode_cell, WRITE)
        ref.flags = flags
        return
    if release:
        await smp_store_release(k, ref.mode_cell, flags)
    else:
        await WRITE_ONCE(k, ref.mode_cell, flags)
    ref.flags = ref.mode_cell.value


# percpu_ref_get_many(), include/linux/percpu-refcount.h
async def percpu_ref_get(ref):
    """percpu_ref_get(): this CPU's counter, or the atomic count."""
    k = ref.k
    rcu_read_lock(k)
    percpu, dep = await __ref_is_percpu(ref)
    if percpu:
        await _this_cpu_add(ref, 1, dep)
    else:
        await _atomic_add(ref, 1)
    rcu_read_unlock(k)


# percpu_ref_tryget(), include/linux/percpu-refcount.h
async def percpu_ref_tryget(ref):
    """percpu_ref_tryget(): succeeds unless the atomic count is zero (even after kill)."""
    k = ref.k
    rcu_read_lock(k)
    percpu, dep = await __ref_is_percpu(ref)
    if percpu:
        await _this_cpu_add(ref, 1, dep)
        ret = True
    else:
        ret = await _atomic_inc_not_zero(ref)
    rcu_read_unlock(k)
    return ret


# percpu_ref_tryget_live(), include/linux/percpu-refcount.h
async def percpu_ref_tryget_live(ref):
    """percpu_ref_tryget_live(): fails once the ref is DEAD."""
    k = ref.k
    rcu_read_lock(k)
    ret = False
    percpu, dep = await __ref_is_percpu(ref)
    if percpu:
        await _this_cpu_add(ref, 1, dep)
        ret = True
    elif not await _dead(ref):
        ret = await _atomic_inc_not_zero(ref)
    rcu_read_unlock(k)
    return ret


async def _dead(ref):
    """``ref->percpu_count_ptr & __PERCPU_REF_DEAD`` in percpu_ref_tryget_live():
    a second (plain) load under lkmm; under sc the value __ref_is_percpu() saw."""
    k = _weak(ref)
    if k is None:
        return bool(ref.flags & REF_DEAD)
    return bool(await mm_load(k, ref.mode_cell, "value", ONCE) & REF_DEAD)


# percpu_ref_put_many(), include/linux/percpu-refcount.h
async def percpu_ref_put(ref):
    """percpu_ref_put(): in atomic mode, release() when the count hits zero."""
    k = ref.k
    rcu_read_lock(k)
    percpu, dep = await __ref_is_percpu(ref)
    if percpu:
        await _this_cpu_add(ref, -1, dep)
    elif await _atomic_add(ref, -1, MB) == 0 and ref.release is not None:  # atomic_long_sub_and_test()
        ref.release(ref)
    rcu_read_unlock(k)


# percpu_ref_is_zero(), include/linux/percpu-refcount.h (v5.8; lib/percpu-refcount.c from v5.9)
async def percpu_ref_is_zero(ref):
    """percpu_ref_is_zero(): never while per CPU; else the atomic count."""
    if (await __ref_is_percpu(ref))[0]:
        return False
    k = _weak(ref)
    if k is not None:
        return await mm_load(k, ref.count_cell, "value", ONCE) == 0  # atomic_long_read()
    await access(ref.count_cell, READ)
    return ref.count == 0


# percpu_ref_is_dying(), include/linux/percpu-refcount.h
def percpu_ref_is_dying(ref):
    return bool(ref.flags & REF_DEAD)


# ---------------------------------------------------------- mode switching


# percpu_ref_exit(), lib/percpu-refcount.c
def percpu_ref_exit(ref):
    """percpu_ref_exit(): the counters are gone; the ref reads as ATOMIC_DEAD."""
    WARN_ON_ONCE(ref.k, ref.confirm_switch is not None)
    ref.exited = True
    if _weak(ref) is not None and ref.flags != REF_ATOMIC_DEAD:
        mm_store_locked(ref.k, ref.mode_cell, "value", REF_ATOMIC_DEAD)  # no reader may be left: no step
    ref.flags = REF_ATOMIC_DEAD


# percpu_ref_call_confirm_rcu(), lib/percpu-refcount.c
async def percpu_ref_call_confirm_rcu(k, ref):
    ref.confirm_switch(ref)
    ref.confirm_switch = None
    await wake_up(k, _globals(k)[1])  # wake_up_all()
    if not ref.allow_reinit:
        percpu_ref_exit(ref)
    await percpu_ref_put(ref)  # drop the ref from percpu_ref_switch_to_atomic()


# percpu_ref_switch_to_atomic_rcu(), lib/percpu-refcount.c
async def percpu_ref_switch_to_atomic_rcu(k, ref):
    """After the grace period: fold the per-CPU counts in, then drop the bias."""
    total = 0
    for cpu in range(k.nr_cpu_ids):
        if _weak(ref) is not None:
            total += await mm_load(k, ref.cpu_cells[cpu], "value", ONCE)
            continue
        await access(ref.cpu_cells[cpu], READ)
        total += ref.percpu_count[cpu]
    await _atomic_add(ref, total - PERCPU_COUNT_BIAS)
    k.execution.event(f"{ref.name}: switched to atomic mode (count {ref.count})")
    if ref.count <= 0 and ("percpu_ref<=0", ref.name) not in k.warned:  # WARN_ONCE()
        k.warned.add(("percpu_ref<=0", ref.name))
        WARN(k, True, "percpu ref (%s) <= 0 (%d) after switching to atomic", ref.name, ref.count)
    await percpu_ref_call_confirm_rcu(k, ref)


# percpu_ref_noop_confirm_switch(), lib/percpu-refcount.c
def percpu_ref_noop_confirm_switch(ref):
    pass


# __percpu_ref_switch_to_atomic(), lib/percpu-refcount.c
async def __percpu_ref_switch_to_atomic(ref, confirm_switch):
    if ref.flags & REF_ATOMIC:
        if confirm_switch is not None:
            confirm_switch(ref)
        return
    # switching from percpu to atomic
    await _set_mode(ref, ref.flags | REF_ATOMIC)
    ref.confirm_switch = confirm_switch or percpu_ref_noop_confirm_switch
    await percpu_ref_get(ref)  # put after confirmation
    call_rcu(ref.k, percpu_ref_switch_to_atomic_rcu, ref)


# __percpu_ref_switch_to_percpu(), lib/percpu-refcount.c
async def __percpu_ref_switch_to_percpu(ref):
    k = ref.k
    if not ref.flags & REF_ATOMIC:
        return
    if WARN_ON_ONCE(k, not ref.allow_reinit):
        return
    await _atomic_add(ref, PERCPU_COUNT_BIAS)
    # Restore per-cpu operation.  smp_store_release() is paired with
    # READ_ONCE() in __ref_is_percpu() and guarantees that the zeroing is
    # visible to all percpu accesses which can see the following
    # __PERCPU_REF_ATOMIC clearing.
    for cpu in range(k.nr_cpu_ids):
        if _weak(ref) is not None:
            await WRITE_ONCE(k, ref.cpu_cells[cpu], 0)
            ref.percpu_count[cpu] = ref.cpu_cells[cpu].value
            continue
        await access(ref.cpu_cells[cpu], WRITE)
        ref.percpu_count[cpu] = 0
    await _set_mode(ref, ref.flags & ~REF_ATOMIC, release=True)


# __percpu_ref_switch_mode(), lib/percpu-refcount.c
async def __percpu_ref_switch_mode(ref, confirm_switch, flags):
    """Called with percpu_ref_switch_lock held; returns the irq flags to restore
    (the lock is dropped and retaken while waiting for a pending switch:
    wait_event_lock_irq())."""
    k = ref.k
    lock, waitq = _globals(k)
    while ref.confirm_switch is not None:
        await spin_unlock_irqrestore(k, lock, flags)
        await wait_event(k, waitq, lambda: ref.confirm_switch is None, what="percpu_ref_switch_waitq")
        flags = await spin_lock_irqsave(k, lock)
    if ref.force_atomic or ref.flags & REF_DEAD:
        await __percpu_ref_switch_to_atomic(ref, confirm_switch)
    else:
        await __percpu_ref_switch_to_percpu(ref)
    return flags


# percpu_ref_switch_to_atomic(), lib/percpu-refcount.c
async def percpu_ref_switch_to_atomic(ref, confirm_switch=None):
    k = ref.k
    lock, _ = _globals(k)
    flags = await spin_lock_irqsave(k, lock)
    ref.force_atomic = True
    flags = await __percpu_ref_switch_mode(ref, confirm_switch, flags)
    await spin_unlock_irqrestore(k, lock, flags)


# percpu_ref_switch_to_percpu(), lib/percpu-refcount.c
async def percpu_ref_switch_to_percpu(ref):
    k = ref.k
    lock, _ = _globals(k)
    flags = await spin_lock_irqsave(k, lock)
    ref.force_atomic = False
    flags = await __percpu_ref_switch_mode(ref, None, flags)
    await spin_unlock_irqrestore(k, lock, flags)


# percpu_ref_kill_and_confirm(), lib/percpu-refcount.c
async def percpu_ref_kill_and_confirm(ref, confirm_kill=None):
    """Mark DEAD, start the switch to atomic mode, drop the initial reference."""
    k = ref.k
    lock, _ = _globals(k)
    flags = await spin_lock_irqsave(k, lock)
    if ref.flags & REF_DEAD and ("kill-twice", ref.name) not in k.warned:  # WARN_ONCE()
        k.warned.add(("kill-twice", ref.name))
        WARN(k, True, "percpu_ref_kill_and_confirm called more than once on %s!", ref.name)
    await _set_mode(ref, ref.flags | REF_DEAD)
    flags = await __percpu_ref_switch_mode(ref, confirm_kill, flags)
    await percpu_ref_put(ref)
    await spin_unlock_irqrestore(k, lock, flags)


# percpu_ref_kill(), include/linux/percpu-refcount.h
async def percpu_ref_kill(ref):
    """percpu_ref_kill(): percpu_ref_kill_and_confirm(ref, NULL)."""
    await percpu_ref_kill_and_confirm(ref, None)


# percpu_ref_resurrect(), lib/percpu-refcount.c
async def percpu_ref_resurrect(ref):
    """Back from dead to live: a new initial reference, per-CPU mode again
    (after any pending switch to atomic mode has been confirmed)."""
    k = ref.k
    lock, _ = _globals(k)
    flags = await spin_lock_irqsave(k, lock)
    WARN_ON_ONCE(k, not ref.flags & REF_DEAD)
    WARN_ON_ONCE(k, (await __ref_is_percpu(ref))[0])
    await _set_mode(ref, ref.flags & ~REF_DEAD)
    await percpu_ref_get(ref)
    flags = await __percpu_ref_switch_mode(ref, None, flags)
    await spin_unlock_irqrestore(k, lock, flags)


# model: percpu_ref_switch_to_percpu() (lib/percpu-refcount.c) while the model
# is being built and nothing runs yet, as blk_register_queue() does for
# q_usage_counter when the disk is added
def percpu_ref_switch_to_percpu_at_init(ref):
    ref.force_atomic = False
    if ref.flags & REF_ATOMIC and not ref.flags & REF_DEAD and ref.allow_reinit:
        ref.count += PERCPU_COUNT_BIAS
        ref.percpu_count = [0] * len(ref.percpu_count)
        ref.flags &= ~REF_ATOMIC
        # Nothing has run: the locations' initial values.
        ref.count_cell.value = ref.count
        ref.mode_cell.value = ref.flags
        for c in ref.cpu_cells:
            c.value = 0


# percpu_ref_reinit(), lib/percpu-refcount.c
async def percpu_ref_reinit(ref):
    """percpu_ref_reinit(): only for a ref that reached zero."""
    WARN_ON_ONCE(ref.k, not await percpu_ref_is_zero(ref))
    await percpu_ref_resurrect(ref)
