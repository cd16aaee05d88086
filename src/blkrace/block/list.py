"""include/linux/list.h for the lists other CPUs look at without the lock.

``list_empty_careful()`` is a lockless read: it is a declared READ, and every
change of the list is a declared WRITE, so that a reader racing with a writer
is a race the explorer sees (and DFS counts them as dependent).

Kernel baseline: v5.8.
"""

from __future__ import annotations

from blkrace.engine import READ, WRITE, access


class list_head:
    __slots__ = ("name", "items")

    def __init__(self, name):
        self.name = name
        self.items = []

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        return f"{self.name}{[getattr(i, 'name', i) for i in self.items]}"


# list_empty_careful(), include/linux/list.h
async def list_empty_careful(head):
    await access(head, READ)
    return not head.items


# list_add_tail(), include/linux/list.h
async def list_add_tail(item, head):
    await access(head, WRITE)
    head.items.append(item)


# list_add(), include/linux/list.h
async def list_add(item, head):
    await access(head, WRITE)
    head.items.insert(0, item)


# list_del_init(), include/linux/list.h
async def list_del_init(item, head):
    await access(head, WRITE)
    head.items.remove(item)


# list_splice_init(), include/linux/list.h
async def list_splice_init(src, dst):
    """Move all of ``src`` to the front of ``dst``."""
    await access(src, WRITE)
    moved, src.items = src.items, []
    await access(dst, WRITE)
    dst.items[:0] = moved


# list_splice_tail_init(), include/linux/list.h
async def list_splice_tail_init(src, dst):
    await access(src, WRITE)
    moved, src.items = src.items, []
    await access(dst, WRITE)
    dst.items.extend(moved)


# model: list_first_entry() + list_del_init() (include/linux/list.h) in one step
async def list_pop_first(head):
    await access(head, WRITE)
    return head.items.pop(0) if head.items else None
