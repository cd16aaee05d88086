"""The human report: the violation, a per-CPU timeline, blocked tasks' backtraces."""

from __future__ import annotations

import os
import textwrap

from rich.console import Console
from rich.text import Text

from blkrace.report.steps import describe
from blkrace.report.window import gaps, window

KIND_STYLE = {
    "deadlock": "bold red",
    "stall": "bold red",
    "hung_task": "bold red",
    "livelock": "bold magenta",
    "io_error": "bold red",
    "warning": "bold yellow",
    "bug": "bold red",
    "lockdep": "bold yellow",
    "model_error": "bold magenta",
}


def _lanes(trace):
    lanes = sorted({s.lane for s in trace if s.lane is not None})
    return lanes


def timeline_rows(trace):
    """Merge consecutive steps of one task in one function into one row."""
    rows = []
    for s in trace:
        text = describe(s)
        if s.kind in ("spawn",):
            continue
        if (
            rows
            and s.kind == "step"
            and rows[-1]["tid"] == s.tid
            and rows[-1]["kind"] == "step"
            and rows[-1]["func"] == text.split(":", 1)[0]
        ):
            rows[-1]["text"] += "; " + text.split(": ", 1)[-1]
            rows[-1]["last"] = s.step
            continue
        rows.append(
            {
                "first": s.step,
                "last": s.step,
                "time": s.time_ns,
                "lane": s.lane,
                "task": s.task,
                "tid": s.tid,
                "kind": s.kind,
                "func": text.split(":", 1)[0],
                "text": text,
            }
        )
    return rows


TRACE_MODES = ("window", "full", "none")
LEAD = 19  # "    step        ms ": where the CPU columns start
MIN_COL, MAX_COL = 22, 34  # a CPU column's width; narrower than MIN_COL, one row per line instead
_ROW_STYLE = {"event": "bold red", "block": "yellow", "exit": "dim", "choose": "magenta"}


def timeline_layout(width, nlanes):
    """("columns", column width) when every CPU gets a readable column, else ("list", 0)."""
    if nlanes and LEAD + nlanes * MIN_COL <= width:
        return "columns", max(MIN_COL, min(MAX_COL, (width - LEAD) // nlanes))
    return "list", 0


def _wrap(text, avail):
    avail = max(avail, 12)
    return textwrap.wrap(text, width=avail, subsequent_indent="  ", break_long_words=True, break_on_hyphens=False) or [
        ""
    ]


def render_timeline(trace, console, title="Timeline", trace_mode="full", blocked=()):
    """The run as a timeline that fits the console's width.

    Wide enough for a column per CPU (22 characters or more each), each row
    starts in its CPU's column and runs on to the right, wrapped at the
    edge; narrower, each row is one line with its CPU and task.  Consecutive
    steps of one task in one function share a row; the clock's advances and
    timers take a full row.  ``trace_mode`` "window" shows the end of a long
    run (report/window.py), "full" every row.
    """
    if trace_mode == "none":
        return
    width = console.width
    lanes = _lanes(trace)
    rows = timeline_rows(trace)
    shown = window(rows, blocked) if trace_mode == "window" else list(range(len(rows)))
    if len(shown) < len(rows):
        title = f"{title} (the end of the run: {len(shown)} of {len(rows):,} rows; --trace full shows all)"
    console.print(Text(title, style="bold"))
    mode, col = timeline_layout(width, len(lanes))
    head = Text(f"{'step':>8} {'ms':>9} ")
    if mode == "columns":
        for lane in lanes:
            head.append(f"{'CPU' + str(lane):<{col}}"[: width - len(head)], style="bold underline")
    else:
        head.append("CPU  [task] what", style="bold underline")
    console.print(head, soft_wrap=True)
    last_task = {}
    for i, skipped in gaps(shown):
        if skipped:
            console.print(
                Text(f"{'···':>8} {'':>9} {skipped:,} row{'' if skipped == 1 else 's'} not shown", style="dim"),
                soft_wrap=True,
            )
            last_task.clear()
        row = rows[i]
        step = str(row["first"]) if row["first"] == row["last"] else f"{row['first']}-{row['last']}"
        lead = f"{step:>8} {row['time'] / 1e6:>9.3f} "
        if row["lane"] is None:
            _print_wrapped(console, lead, "── " + row["text"], LEAD, width, "cyan", 0)
            continue
        style = _ROW_STYLE.get(row["kind"], "")
        if mode == "columns":
            idx = lanes.index(row["lane"])
            tag = ""
            if last_task.get(row["lane"]) != row["task"]:
                tag = f"[{row['task']}] "
                last_task[row["lane"]] = row["task"]
            _print_wrapped(
                console, lead + " " * (col * idx), tag + row["text"], LEAD + col * idx, width, style, len(tag)
            )
        else:
            cpu = f"{'CPU' + str(row['lane']):<5}"
            tag = f"[{row['task']}] "
            _print_wrapped(console, lead + cpu, tag + row["text"], LEAD + 5, width, style, len(tag))


def _print_wrapped(console, first, text, indent, width, style, bold):
    """``first`` + ``text`` wrapped at ``width``; continuation lines indented to ``indent``."""
    for n, part in enumerate(_wrap(text, width - indent)):
        if n == 0:
            line = Text(first, style="dim")
            line.append(part[:bold], style="bold")
            line.append(part[bold:], style=style)
        else:
            line = Text(" " * indent)
            line.append(part, style=style)
        console.print(line, soft_wrap=True)


def render_finding(console, finding, replayed, token, header, trace="window"):
    v = finding_violation(finding, replayed)
    console.print()
    console.rule(Text(f"{v.kind}", style=KIND_STYLE.get(v.kind, "bold")), align="left")
    console.print(Text(v.message, style=KIND_STYLE.get(v.kind, "bold")))
    console.print(Text(header, style="dim"))
    result = replayed
    if result is not None and result.trace:
        render_timeline(result.trace, console, trace_mode=trace, blocked=result.blocked)
    others = [o for o in (result.violations if result else []) if o is not v]
    for o in [v] + others:
        if o is not v:
            console.print(Text(f"also in this run: {o.kind}: {o.message}", style=KIND_STYLE.get(o.kind, "")))
        for line in o.detail:
            console.print(Text(line), highlight=False)
    if result is not None and result.blocked:
        console.print(Text("Blocked tasks at the end of the run:", style="bold"))
        for name, lane, wq, frames, state in result.blocked:
            console.print(Text(f" task:{name:<16} state:{state} cpu:{lane}  waiting on {wq}"), highlight=False)
            console.print(Text(" Call Trace:"), highlight=False)
            console.print(Text("  __schedule"), highlight=False)
            for f in reversed(frames):
                console.print(Text(f"  {f.function}+{f.offset}  ({f.short_file()}:{f.lineno})"), highlight=False)
    console.print(Text("Replay this run exactly with:", style="bold"))
    console.print(Text(f"  blkrace replay {token}"), highlight=False, soft_wrap=True)


def finding_violation(finding, replayed):
    """The replayed run's violation of the same origin (it carries the full detail)."""
    if replayed is not None:
        for v in replayed.violations:
            if v.origin == finding.violation.origin:
                return v
    return finding.violation


DEFAULT_WIDTH = 100  # piped output without COLUMNS


def make_console(stderr=False):
    """A console that never reads markup in what it prints (messages hold
    brackets: ``[fio-0:1]``).  On a terminal, its width (or ``COLUMNS``);
    piped, ``COLUMNS`` or 100 columns."""
    console = Console(stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(
            stderr=stderr, highlight=False, markup=False, emoji=False, soft_wrap=False, width=piped_width()
        )
    return console


def piped_width(environ=None):
    environ = os.environ if environ is None else environ
    value = environ.get("COLUMNS", "").strip()
    if value.isdigit() and 40 <= int(value) <= 1000:
        return int(value)
    return DEFAULT_WIDTH
