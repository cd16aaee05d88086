"""Progress of a check, on stderr: a bar on a terminal, a line every few seconds otherwise.

`blkrace check --all | tee log` must never look hung: when stderr is not a
terminal, a line such as

    blkrace: nvme-mpath-freeze fixed: 2400/6000 schedules, 0 findings, 12.0 s

is written every ``interval_s`` seconds (the clock runs across variants, so
a run of short variants is reported too).  Nothing is written for a check
shorter than the interval.
"""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from blkrace.report.text import make_console

INTERVAL_S = 3.0


class CheckProgress:
    """``add(label, total)`` per variant, ``update(label, done, found)`` after each run."""

    def __init__(self, enabled=True, stream=None, interval_s=INTERVAL_S, clock=time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.terminal = enabled and _isatty(self.stream)
        self.interval_s = interval_s
        self.clock = clock
        self.start = self.last_line = clock()
        self.bar = None
        self.ids = {}
        self.totals = {}
        self.variant_start = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False

    def add(self, label, total):
        self.totals[label] = total
        self.variant_start[label] = self.clock()
        return label

    def update(self, label, done, found=0):
        if not self.enabled:
            return
        now = self.clock()
        if self.terminal:
            self._bar(label, done, now)
            return
        if now - self.last_line >= self.interval_s:
            self.last_line = now
            total = self.totals.get(label, "?")
            findings = "1 finding" if found == 1 else f"{found} findings"
            seconds = now - self.variant_start.get(label, now)
            print(
                f"blkrace: {label}: {done}/{total} schedules, {findings}, {seconds:.1f} s",
                file=self.stream,
                flush=True,
            )

    def done(self, label):
        if self.bar is not None and label in self.ids:
            self.bar.update(self.ids[label], visible=False)

    def _bar(self, label, done, now):
        if self.bar is None:
            if now - self.start < 1.0:
                return
            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=True,
                console=make_console(stderr=True),
            )
            self.bar.start()
        if label not in self.ids:
            self.ids[label] = self.bar.add_task(label, total=self.totals.get(label))
        self.bar.update(self.ids[label], completed=done)


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
