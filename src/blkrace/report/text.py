"""The human report: the violation, a per-CPU timeline, blocked tasks' backtraces."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from blkrace.report.steps import describe

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


COL = 26  # width of one CPU's column; text runs on to the right, as in seed 003's diagram


def render_timeline(trace, console, title="Timeline"):
    """One column per CPU: each row is written from its CPU's column rightwards.

    Consecutive steps of one task in one function share a row; the clock's
    advances and timers take a full row.
    """
    lanes = _lanes(trace)
    lead = 15  # "step" and "ms"
    console.print(Text(title, style="bold"))
    head = Text(f"{'step':>8} {'ms':>6} ")
    for lane in lanes:
        head.append(f"{'CPU' + str(lane):<{COL}}", style="bold underline")
    console.print(head, soft_wrap=True)
    last_task = {}
    for row in timeline_rows(trace):
        step = str(row["first"]) if row["first"] == row["last"] else f"{row['first']}-{row['last']}"
        line = Text(f"{step:>8} {row['time'] / 1e6:>6.3f} ", style="dim")
        if row["lane"] is None:
            line.append("── " + row["text"], style="cyan")
            console.print(line, soft_wrap=True)
            continue
        idx = lanes.index(row["lane"])
        line.append(" " * (COL * idx))
        if last_task.get(row["lane"]) != row["task"]:
            line.append(f"[{row['task']}] ", style="bold")
            last_task[row["lane"]] = row["task"]
        style = {"event": "bold red", "block": "yellow", "exit": "dim", "choose": "magenta"}.get(row["kind"], "")
        line.append(row["text"], style=style)
        console.print(line, soft_wrap=True)
    del lead


def render_finding(console, finding, replayed, token, header):
    v = finding_violation(finding, replayed)
    console.print()
    console.rule(Text(f"{v.kind}", style=KIND_STYLE.get(v.kind, "bold")), align="left")
    console.print(Text(v.message, style=KIND_STYLE.get(v.kind, "bold")))
    console.print(Text(header, style="dim"))
    result = replayed
    if result is not None and result.trace:
        render_timeline(result.trace, console)
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


def make_console(stderr=False, lanes=4):
    console = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=max(120, 40 + 34 * lanes))
    return console
