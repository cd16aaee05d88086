"""The HTML report: one self-contained page per check or replay.

The page is a swimlane per CPU over the run's steps and virtual time, with
cpuhp states, stop_machine stages, interrupts-off windows and offline CPUs
drawn as bands; every trace entry opens its source line and backtrace on
click; the finding (its message, the wait-for cycle, the blocked tasks'
backtraces) is shown on top and its entries highlighted; filters by task and
CPU.  Everything the page needs is inline (CSS, JS, the data as JSON): it
opens from a file with no network.

The data is built here from the traced replay (``TraceStep``), the run's
violations and its blocked tasks; the page's script only draws it.  The same
run gives the same bytes: nothing here reads the clock or iterates a set.
"""

from __future__ import annotations

import json
import linecache
import re
from importlib import resources

from blkrace import __version__
from blkrace.engine.violations import KINDS
from blkrace.report.steps import describe, is_primitive
from blkrace.report.text import finding_violation

FORMAT = "blkrace-html/1"

# Timeline events that open or close a band (the texts of kernel/cpuhp.py and kernel/stop_machine.py).
_STOP_MACHINE = re.compile(r"^stop_machine: (MULTI_STOP_\w+)$")
_CPUHP_STATE = re.compile(r"^cpuhp: cpu(\d+) (teardown|startup) (\S+)$")
_CPUHP_DOWN = re.compile(r"^cpu_down\((\d+)\)$")
_CPUHP_UP = re.compile(r"^cpu_up\((\d+)\)$")
_CPUHP_DIED = re.compile(r"^cpuhp: cpu(\d+) is down")
_IRQS_OFF = re.compile(r"^cpu(\d+): interrupts off")
_IRQS_ON = re.compile(r"^cpu(\d+): interrupts restored")
_OFFLINE = re.compile(r"^cpu(\d+): offline")
_ONLINE = re.compile(r"^cpu(\d+): online")
# The engine's wait-for cycle lines (engine/execution.py, _classify_blocked).
_CYCLE_EDGE = re.compile(r"^\s+(\S+) waits on (.+), held by (\S+)$")
_VIOLATION_EVENT = re.compile(r"^(" + "|".join(KINDS) + r"): ")


class PageWriteError(OSError):
    """The page could not be written (the message names the file and why)."""


def _short(filename):
    marker = "/blkrace/"
    i = filename.rfind(marker)
    return filename[i + 1 :] if i >= 0 else filename


class _Tables:
    """Frames and source lines interned once per page: a long run repeats the same stacks."""

    def __init__(self):
        self.frames = []  # [function, short file, line, offset]
        self.sources = {}  # "file:line" -> the source text of that line
        self._ids = {}

    def frame(self, f):
        key = (f.function, f.filename, f.lineno, f.offset)
        fid = self._ids.get(key)
        if fid is None:
            fid = self._ids[key] = len(self.frames)
            short = _short(f.filename)
            self.frames.append([f.function, short, f.lineno, f.offset])
            where = f"{short}:{f.lineno}"
            if where not in self.sources:
                self.sources[where] = linecache.getline(f.filename, f.lineno).strip()
        return fid

    def stack(self, frames):
        return [self.frame(f) for f in frames]


def _lane(lane):
    return lane if lane is None or isinstance(lane, int | str) else str(lane)


def trace_entries(trace, tables):
    """The trace as the page shows it: one entry per TraceStep, its text as the terminal report writes it."""
    out = []
    for s in trace:
        # The frame the line is about: the model function, not the atomic or lock helper it called.
        site = len(s.stack) - 1
        while site > 0 and is_primitive(s.stack[site]):
            site -= 1
        out.append(
            {
                "step": s.step,
                "t": s.time_ns,
                "kind": s.kind,
                "task": s.task,
                "cpu": _lane(s.lane),
                "text": describe(s),
                "stack": tables.stack(s.stack),
                "site": site,
            }
        )
    return out


def bands(entries):
    """Stages as bands over trace entry indices: [{band, cpu, label, first, last}].

    ``stop_machine`` (every CPU: MULTI_STOP_PREPARE .. EXIT), ``cpuhp`` (one
    CPU: each hotplug state from its callback to the next one), ``irqs_off``
    (one CPU, stop_machine's interrupts-off window) and ``offline`` (one CPU,
    from its removal from cpu_online_mask to its return).
    """
    out = []
    open_ = {}  # (band, cpu) -> the band being drawn

    def close(key, last):
        b = open_.pop(key, None)
        if b is not None:
            b["last"] = max(b["first"], last)
            out.append(b)

    def start(key, label, i):
        close(key, i - 1)
        open_[key] = {"band": key[0], "cpu": key[1], "label": label, "first": i, "last": i}

    for i, e in enumerate(entries):
        if e["kind"] != "event":
            continue
        text = e["text"]
        if m := _STOP_MACHINE.match(text):
            start(("stop_machine", None), m.group(1), i)
        elif m := _CPUHP_STATE.match(text):
            cpu = int(m.group(1))
            start(("cpuhp", cpu), f"{m.group(2)} {m.group(3)}", i)
        elif m := _CPUHP_DOWN.match(text):
            start(("cpuhp", int(m.group(1))), "cpu_down", i)
        elif m := _CPUHP_UP.match(text):
            start(("cpuhp", int(m.group(1))), "cpu_up", i)
        elif m := _CPUHP_DIED.match(text):
            start(("cpuhp", int(m.group(1))), "__cpu_die", i)
        elif m := _IRQS_OFF.match(text):
            start(("irqs_off", int(m.group(1))), "interrupts off", i)
        elif m := _IRQS_ON.match(text):
            cpu = int(m.group(1))
            close(("irqs_off", cpu), i)
            # stop_machine ends when the last CPU has its interrupts back.
            sm = open_.get(("stop_machine", None))
            if sm is not None and sm["label"] == "MULTI_STOP_EXIT":
                sm["last"] = i
                if not any(k[0] == "irqs_off" for k in open_):
                    close(("stop_machine", None), i)
        elif m := _OFFLINE.match(text):
            start(("offline", int(m.group(1))), "offline", i)
        elif m := _ONLINE.match(text):
            close(("offline", int(m.group(1))), i)
    # A hotplug operation's last state ends where its thread goes back to sleep;
    # whatever is still open at the end of the run lasts to its end.
    end = len(entries) - 1
    for key in list(open_):
        b = open_[key]
        if b["band"] == "cpuhp" and b["label"].startswith("startup"):
            close(key, _next_block(entries, b["first"], b["cpu"]))
        elif b["band"] == "stop_machine" and b["label"] == "MULTI_STOP_EXIT":
            close(key, b["last"])
        else:
            close(key, end)
    out.sort(key=lambda b: (b["first"], b["band"], -1 if b["cpu"] is None else b["cpu"]))
    return out


def _next_block(entries, first, cpu):
    for j in range(first + 1, len(entries)):
        if entries[j]["kind"] == "block" and entries[j]["cpu"] == cpu:
            return j
    return len(entries) - 1


def cycle_edges(detail):
    """The wait-for cycle of a deadlock's detail lines: [{task, waits_on, held_by}]."""
    edges = []
    for line in detail:
        if m := _CYCLE_EDGE.match(line):
            edges.append({"task": m.group(1), "waits_on": m.group(2), "held_by": m.group(3)})
    return edges


def _violation(v, entries):
    where = None
    for i, e in enumerate(entries):
        if e["kind"] == "event" and e["cpu"] is None and e["text"] == f"{v.kind}: {v.message}":
            where = i
            break
    return {
        "kind": v.kind,
        "message": v.message,
        "step": v.step,
        "time_ns": v.time_ns,
        "detail": list(v.detail),
        "cycle": cycle_edges(v.detail),
        "entry": where,
    }


def run_view(result, violations, tables):
    """One traced run: its entries, bands, lanes, tasks, violations and blocked tasks."""
    trace = result.trace if result is not None else []
    entries = trace_entries(trace, tables)
    lanes = []
    tasks = []
    for e in entries:
        if e["cpu"] is not None and e["cpu"] not in lanes:
            lanes.append(e["cpu"])
        if e["task"] and e["task"] not in tasks:
            tasks.append(e["task"])
    lanes.sort(key=lambda x: (isinstance(x, str), x))
    blocked = []
    for name, lane, wq, frames, state in result.blocked if result is not None else []:
        last = None
        for i, e in enumerate(entries):
            if e["task"] == name and e["kind"] == "block":
                last = i
        blocked.append(
            {
                "task": name,
                "cpu": _lane(lane),
                "waits_on": wq,
                "state": state,
                "stack": tables.stack(frames),
                "entry": last,
            }
        )
    return {
        "lanes": lanes,
        "tasks": tasks,
        "entries": entries,
        "bands": bands(entries),
        "violations": [_violation(v, entries) for v in violations],
        "blocked": blocked,
        "steps": result.steps if result is not None else 0,
        "time_ns": result.time_ns if result is not None else 0,
    }


def _sorted_violations(main, result):
    others = [o for o in (result.violations if result is not None else []) if o is not main]
    return [main] + sorted(others, key=lambda o: KINDS.index(o.kind))


def _proved(run):
    proof = getattr(run, "proof", None)
    if proof is not None:
        return proof.verdict()
    return "-" if getattr(run, "proved_asked", False) else None


def check_page(runs, command):
    """The page of a ``blkrace check``: every variant's verdict, and each finding's run.

    ``runs`` are the command line's variant runs (scenario, variant, strategy,
    seed, expect, allowed, campaign, preemptive, reports, found_kinds,
    expectation_held).
    """
    tables = _Tables()
    summary, findings = [], []
    for r in runs:
        c = r.campaign
        summary.append(
            {
                "scenario": r.scenario,
                "variant": r.variant,
                "expected": sorted(r.expect),
                "allowed": sorted(r.allowed),
                "found": list(r.found_kinds),
                "schedules": c.schedules,
                "exhausted": c.exhausted,
                "elapsed_s": round(c.elapsed_s, 3),
                "held": r.expectation_held,
                # --prove: "bound k", "none", "no: found at bound k"; "-" not attempted; None not asked
                "proved": _proved(r),
                "strategy": r.strategy,
                "seed": r.seed,
            }
        )
        shown = set()
        ordered = sorted(r.reports, key=lambda rep: (rep[0].schedule_index, KINDS.index(rep[0].violation.kind)))
        for finding, replayed, token in ordered:
            # Findings of one run share its timeline: one view per run.
            if finding.schedule_index in shown:
                continue
            shown.add(finding.schedule_index)
            main = finding_violation(finding, replayed)
            view = run_view(replayed, _sorted_violations(main, replayed), tables)
            view.update(
                {
                    "scenario": r.scenario,
                    "variant": r.variant,
                    "title": f"{r.scenario} --variant {r.variant}: {main.kind}",
                    "found": (
                        f"found at schedule {finding.schedule_index + 1} ({r.strategy}, seed {r.seed}) "
                        f"after {finding.elapsed_s:.2f} s"
                    ),
                    "token": token,
                }
            )
            findings.append(view)
    return _page_data(command, summary, findings, tables)


def replay_page(scenario, variant, result, token, command, diverged=None):
    """The page of a ``blkrace replay``: the replayed run, with or without a violation."""
    tables = _Tables()
    ordered = sorted(result.violations, key=lambda v: KINDS.index(v.kind))
    view = run_view(result, ordered, tables)
    kinds = ", ".join(sorted({v.kind for v in result.violations})) or "no violation"
    view.update(
        {
            "scenario": scenario,
            "variant": variant,
            "title": f"{scenario} --variant {variant}: {kinds}",
            "found": f"replayed: {result.steps} steps, {result.time_ns / 1e6:.3f} ms virtual"
            + (f"; {diverged}" if diverged else ""),
            "token": token,
        }
    )
    return _page_data(command, [], [view], tables)


def _page_data(command, summary, findings, tables):
    return {
        "format": FORMAT,
        "version": __version__,
        "command": command,
        "summary": summary,
        "findings": findings,
        "frames": tables.frames,
        "sources": tables.sources,
    }


def _asset(name):
    return resources.files("blkrace.report").joinpath("assets", name).read_text(encoding="utf-8")


def _script_json(data):
    # Inside <script>, "</script>" or "<!--" in a message would end the block: escape < > &.
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render(data):
    """The page as one string: inline CSS, the data as JSON, inline JS."""
    title = _escape(data["findings"][0]["title"] if data["findings"] else data["command"])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>blkrace: {title}</title>\n"
        f"<style>\n{_asset('report.css')}</style>\n"
        "</head>\n<body>\n"
        '<div id="app"><noscript>This report draws itself with JavaScript.</noscript></div>\n'
        f'<script type="application/json" id="blkrace-data">{_script_json(data)}</script>\n'
        f"<script>\n{_asset('report.js')}</script>\n"
        "</body>\n</html>\n"
    )


def _escape(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def check_writable(path):
    """Fail before a long check, not after it: the page's file must be writable (PageWriteError)."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise PageWriteError(f"cannot write the HTML report to {path}: {exc.strerror or exc}") from None


def write(path, data):
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(data))
    except OSError as exc:
        raise PageWriteError(f"cannot write the HTML report to {path}: {exc.strerror or exc}") from None
