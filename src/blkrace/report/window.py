"""Which timeline rows a default report shows: a window around the finding.

A lockup's run is tens of thousands of steps; the report needs the end of
it.  Kept: the last rows of the run (whatever the CPU), the last rows of each
CPU, the last rows of each task still blocked (or kept off its CPU) at the
end, and the violation events.  A run short enough is shown whole.
"""

from __future__ import annotations

WHOLE_ROWS = 60  # a timeline of at most this many rows is shown whole
LAST_ROWS = 14  # the end of the run, on any CPU
PER_CPU_ROWS = 8  # the last rows of each CPU
PER_TASK_ROWS = 6  # the last rows of each blocked task
EVENT_ROWS = 6  # the last violation events


def window(rows, blocked=()):
    """Indexes into ``rows`` (timeline rows, in order) to show, ascending.

    ``blocked``: the run's (task name, cpu, ...) tuples for the tasks left
    blocked or runnable-but-kept-off at its end.
    """
    n = len(rows)
    if n <= WHOLE_ROWS:
        return list(range(n))
    keep = set(range(max(0, n - LAST_ROWS), n))
    lanes = sorted({r["lane"] for r in rows if r["lane"] is not None})
    tasks = []
    for entry in blocked:
        if entry[0] not in tasks:
            tasks.append(entry[0])
    _last_matching(rows, keep, PER_CPU_ROWS, lambda r, lane: r["lane"] == lane, lanes)
    _last_matching(rows, keep, PER_TASK_ROWS, lambda r, task: r["task"] == task and r["lane"] is not None, tasks)
    events = [i for i, r in enumerate(rows) if r["kind"] == "event"]
    keep.update(events[-EVENT_ROWS:])
    shown = sorted(keep)
    # A gap of one or two rows costs as many lines as its marker: show them.
    for a, b in zip(shown, shown[1:]):
        if b - a <= 3:
            keep.update(range(a + 1, b))
    return sorted(keep)


def _last_matching(rows, keep, count, match, keys):
    for key in keys:
        found = 0
        for i in range(len(rows) - 1, -1, -1):
            if match(rows[i], key):
                keep.add(i)
                found += 1
                if found == count:
                    break


def gaps(indexes):
    """(index, rows skipped before it) for each kept index."""
    out = []
    prev = -1
    for i in indexes:
        out.append((i, i - prev - 1))
        prev = i
    return out
