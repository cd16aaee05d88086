"""include/linux/list.h for the lists other CPUs look at without the lock.

``list_empty_careful()`` is a lockless read: it is a declared READ, and every
change of the list is a declared WRITE, so that a reader racing with a writer
is a race the explorer sees (and DFS counts them as dependent).

Kernel baseline: v5.8.

A list created with ``k`` under the ``lkmm`` memory model also keeps its
head as a location of :mod:`blkrace.kernel.memory` (``nonempty``, what
``READ_ONCE(head->next) != head`` tells): every change stores it, and
``list_empty_careful()`` loads it, so a lockless reader may see the list
empty after another CPU's list_add() (a stale read).  Readers under the
list's lock see the list itself.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, access
from blkrace.kernel.memory import ONCE, mm_load, mm_store


class list_head:
    __slots__ = ("name", "items", "k", "nonempty")

    def __init__(self, name, k=None):
        self.name = name
        self.items = []
        self.k = k if k is not None and k.memory is not None else None
        self.nonempty = False

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        return f"{self.name}{[getattr(i, 'name', i) for i in self.items]}"


# list_empty_careful(), include/linux/list.h
async def list_empty_careful(head):
    if head.k is not None:
        return not await mm_load(head.k, head, "nonempty", ONCE)
    await access(head, READ)
    return not head.items


async def _write(head, nonempty):
    """The store a list change makes (WRITE_ONCE of head->next, for lockless readers)."""
    if head.k is not None:
        await mm_store(head.k, head, "nonempty", nonempty, ONCE)
    else:
        await access(head, WRITE)


# list_add_tail(), include/linux/list.h
async def list_add_tail(item, head):
    if head.k is None:
        await access(head, WRITE)
    else:
        await mm_store(head.k, head, "nonempty", True, ONCE)
    head.items.append(item)


# list_add(), include/linux/list.h
async def list_add(item, head):
    if head.k is None:
        await access(head, WRITE)
    else:
        await mm_store(head.k, head, "nonempty", True, ONCE)
    head.items.insert(0, item)


# list_del_init(), include/linux/list.h
async def list_del_init(item, head):
    if head.k is None:
        await access(head, WRITE)
    else:
        await mm_store(head.k, head, "nonempty", len(head.items) > 1, ONCE)
    head.items.remove(item)


# list_splice_init(), include/linux/list.h
async def list_splice_init(src, dst):
    """Move all of ``src`` to the front of ``dst``."""
    await _write(src, False)
    moved, src.items = src.items, []
    await _write(dst, bool(moved or dst.items))
    dst.items[:0] = moved


# list_splice_tail_init(), include/linux/list.h
async def list_splice_tail_init(src, dst):
    await _write(src, False)
    moved, src.items = src.items, []
    await _write(dst, bool(moved or dst.items))
    dst.items.extend(moved)


# model: list_first_entry() + list_del_init() (include/linux/list.h) in one step
async def list_pop_first(head):
    if head.k is None:
        await access(head, WRITE)
    else:
        await mm_store(head.k, head, "nonempty", len(head.items) > 1, ONCE)
    return head.items.pop(0) if head.items else None
