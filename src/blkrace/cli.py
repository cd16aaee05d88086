"""The command line: list, check, replay, findings.  Argument plumbing only.

Exit status: 0 no violation (or, for several variants, every expectation
held); 1 a violation found (or an expectation failed); 2 bad input; 3 an
exception inside model code; 130 interrupted (what was found is printed).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass, field

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from blkrace import __version__
from blkrace.engine import ScheduleMismatch
from blkrace.engine.campaign import Finding, replay
from blkrace.engine.shrink import shrink
from blkrace.engine.strategy import STRATEGIES, make_strategy
from blkrace.engine.token import Schedule, TokenError, decode, encode
from blkrace.engine.violations import KINDS
from blkrace.report.text import make_console, render_finding, render_timeline
from blkrace.scale import PORTFOLIO, ScaleError, default_jobs, findings_report, open_store, run_scaled
from blkrace.scenarios.registry import SCENARIOS, get, model_fingerprint

EXIT_OK, EXIT_FOUND, EXIT_BAD_INPUT, EXIT_MODEL_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_STRATEGY = PORTFOLIO
CHECK_STRATEGIES = (PORTFOLIO, *STRATEGIES)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Find Linux block-layer races in a deterministic model of blk-mq, and replay them.",
)


class BadInput(Exception):
    """Bad input: a one-line message, exit status 2."""


@dataclass
class VariantRun:
    scenario: str
    variant: str
    strategy: str
    seed: int
    expect: frozenset
    allowed: frozenset = frozenset()
    campaign: object = None
    preemptive: bool = True
    reports: list = field(default_factory=list)  # (finding, replayed result, token)

    @property
    def found_kinds(self):
        return sorted({f.violation.kind for f, _, _ in self.reports})

    @property
    def expectation_held(self):
        found = set(self.found_kinds)
        return self.expect <= found and found <= self.expect | self.allowed

    def as_json(self):
        c = self.campaign
        return {
            "scenario": self.scenario,
            "variant": self.variant,
            "strategy": self.strategy,
            "seed": self.seed,
            "preempt": _preempt_name(self.preemptive),
            "schedules": c.schedules,
            "pruned": c.pruned,
            "exhausted": c.exhausted,
            "interrupted": c.interrupted,
            "explored": getattr(c, "members", {}),  # runs per strategy of the portfolio
            "elapsed_s": round(c.elapsed_s, 4),
            "expected": sorted(self.expect),
            "allowed": sorted(self.allowed),
            "expectation_held": self.expectation_held,
            "violations": [
                {
                    "kind": f.violation.kind,
                    "message": f.violation.message,
                    "token": token.split()[-1],
                    "prefix_tokens": token.split()[:-1],
                    "schedule_index": f.schedule_index,
                    "found_by": getattr(f, "strategy", self.strategy),
                    "seconds_to_find": round(f.elapsed_s, 4),
                    "detail": _violation_of(f, res).detail,
                    "trace": [s.as_dict() for s in (res.trace if res else [])],
                }
                for f, res, token in self.reports
            ],
        }


def _violation_of(finding, replayed):
    if replayed is not None:
        for v in replayed.violations:
            if v.origin == finding.violation.origin:
                return v
    return finding.violation


def _fail(message):
    raise BadInput(message)


def _resolve(scenario_name, variant_name):
    try:
        scenario = get(scenario_name)
    except KeyError as exc:
        _fail(exc.args[0])
    if variant_name is not None and variant_name not in scenario.variants:
        _fail(f"unknown variant {variant_name!r} of {scenario.name} (valid: {', '.join(scenario.variants)})")
    return scenario


def _strategy(name, seed, preemption_bound, depth):
    try:
        return make_strategy(name, seed, preemption_bound=preemption_bound, depth=depth)
    except ValueError as exc:
        _fail(str(exc))


PREEMPT_MODELS = {"full": True, "none": False}


def _preempt_name(preemptive):
    return "full" if preemptive else "none"


def _parse_preempt(value):
    """``--preempt`` (None: each variant's own model)."""
    if value is None:
        return None
    if value not in PREEMPT_MODELS:
        _fail(f"unknown preemption model {value!r} (valid: {', '.join(PREEMPT_MODELS)})")
    return PREEMPT_MODELS[value]


def _token(scenario, variant, choices, preemptive):
    # The preemption model is part of the run's identity: a token replays
    # under the model it was found with, whatever the variant's default.
    params = f"preempt={_preempt_name(preemptive)}"
    return encode(Schedule(scenario.name, variant.name, params, model_fingerprint(), tuple(choices)))


def _preempt_of_token(sched):
    """The preemption model a token was made with; None for a token without one."""
    for item in filter(None, sched.params.split(",")):
        key, _, value = item.partition("=")
        if key == "preempt" and value in PREEMPT_MODELS:
            return PREEMPT_MODELS[value]
        _fail(f"bad token: unknown parameter {item!r}")
    return None


def run_variant(scenario, variant, *, strategy_name, schedules, seed, stop_on_first, do_shrink, progress, options):
    if strategy_name != PORTFOLIO:
        _strategy(strategy_name, seed, options["preemption_bound"], options["depth"])
    lockdep = options.get("lockdep", True)
    preempt = options.get("preempt")
    preemptive = scenario.preempt_of(variant) if preempt is None else preempt
    build = scenario.builder(variant, lockdep=lockdep, preempt=preemptive)
    max_steps = options["max_steps"] or scenario.max_steps
    expect = variant.expect if lockdep else variant.expect - {"lockdep"}
    allowed = variant.allowed if lockdep else variant.allowed - {"lockdep"}
    wanted = set(expect)

    def on_progress(done, nfound):
        if progress is not None:
            progress(done, schedules)

    # Stop as soon as every expected kind was seen (or at the first finding
    # when asked to); a clean variant explores the whole budget.  Units of
    # work run here, in worker processes or on a Dask cluster (blkrace/scale.py).
    try:
        campaign = run_scaled(
            scenario,
            variant,
            strategy_name=strategy_name,
            schedules=schedules,
            seed=seed,
            stop_on_first=stop_on_first and not wanted,
            want=wanted if wanted and stop_on_first else None,
            max_steps=max_steps,
            progress=on_progress,
            options=options,
            token_of=lambda choices: _token(scenario, variant, choices, preemptive),
        )
    except ScaleError as exc:
        _fail(str(exc))
    out = VariantRun(scenario.name, variant.name, campaign.strategy, seed, expect, allowed, campaign, preemptive)
    for finding in campaign.findings:
        choices = list(finding.choices)
        if do_shrink and finding.violation.kind != "model_error" and not finding.prefix:
            choices = shrink(build, choices, finding.violation.origin, max_steps=max_steps)
        # A lockdep finding builds on the graph of earlier runs: replay them first.
        shared = {}
        for earlier in finding.prefix:
            replay(build, earlier, max_steps=max_steps, traced=False, shared=shared)
        replayed, _, _ = replay(build, choices, max_steps=max_steps, shared=shared)
        tokens = [_token(scenario, variant, p, preemptive) for p in finding.prefix]
        tokens.append(_token(scenario, variant, replayed.choices, preemptive))
        out.reports.append((finding, replayed, " ".join(tokens)))
    return out


def _severity(report):
    return (report[0].schedule_index, KINDS.index(report[0].violation.kind))


def _print_variant_report(console, run):
    c = run.campaign
    shown = set()
    # One report per run, headed by its most severe finding (a deadlock before the stalls it causes).
    for finding, replayed, token in sorted(run.reports, key=_severity):
        # Findings of one run share its timeline: show each run once.
        if finding.schedule_index in shown:
            continue
        shown.add(finding.schedule_index)
        header = (
            f"{run.scenario} --variant {run.variant}: found at schedule {finding.schedule_index + 1} "
            f"({getattr(finding, 'strategy', '') or run.strategy}, seed {run.seed}) after {finding.elapsed_s:.2f} s"
        )
        render_finding(console, finding, replayed, token, header)
    verdict = _summary_line(run)
    console.print()
    lockdep = [f for f, _, _ in run.reports if f.violation.kind == "lockdep"]
    if lockdep:
        # Lockdep says a deadlock is possible; the explorer says whether it found one.
        deadlocks = [f for f, _, _ in run.reports if f.violation.kind == "deadlock"]
        if deadlocks:
            console.print(
                f"lockdep's report is real: a schedule that deadlocks was found at schedule "
                f"{deadlocks[0].schedule_index + 1}"
            )
        else:
            console.print(
                f"lockdep's report: no schedule that really deadlocks within {c.schedules} schedules "
                f"({run.strategy}, seed {run.seed})"
            )
    console.print(verdict)
    if c.interrupted:
        console.print("[yellow]interrupted: the findings above are all that was found[/yellow]")


def _summary_line(run):
    c = run.campaign
    space = "the bounded space is exhausted" if c.exhausted else f"{c.schedules} schedules"
    pruned = f" ({c.pruned} more pruned by sleep sets)" if c.pruned else ""
    kinds = ", ".join(run.found_kinds) or "no violation"
    members = getattr(c, "members", {})
    per = " (" + ", ".join(f"{k} {m['runs']}" for k, m in members.items()) + ")" if len(members) > 1 else ""
    return (
        f"{run.scenario} --variant {run.variant}: {kinds} in {space}{pruned}, "
        f"{c.elapsed_s:.2f} s, strategy {run.strategy}{per}, seed {run.seed}, preempt {_preempt_name(run.preemptive)}"
    )


def _exit_code(runs, several):
    if any(f.violation.kind == "model_error" for r in runs for f, _, _ in r.reports):
        return EXIT_MODEL_ERROR
    if any(r.campaign.interrupted for r in runs):
        return EXIT_INTERRUPTED
    if several:
        return EXIT_OK if all(r.expectation_held for r in runs) else EXIT_FOUND
    return EXIT_FOUND if runs[0].reports else EXIT_OK


def _all_table(runs):
    table = Table(title="blkrace check: every scenario and variant against its declared outcome", title_justify="left")
    for col in ("scenario", "variant", "expected", "found", "schedules", "seconds", "held"):
        table.add_column(col, justify="right" if col in ("schedules", "seconds") else "left")
    for r in runs:
        c = r.campaign
        first = min((f.schedule_index + 1 for f, _, _ in r.reports), default=None)
        sched = (
            f"{first} of {c.schedules}"
            if first
            else (f"{c.schedules} (exhausted)" if c.exhausted else str(c.schedules))
        )
        table.add_row(
            r.scenario,
            r.variant,
            ", ".join(sorted(r.expect)) or "none",
            ", ".join(r.found_kinds) or "none",
            sched,
            f"{c.elapsed_s:.2f}",
            "[green]yes[/green]" if r.expectation_held else "[bold red]NO[/bold red]",
        )
    return table


@app.command("list")
def list_cmd():
    """List the scenarios, their variants and what each variant is expected to show."""
    console = make_console()
    table = Table(title="scenarios", title_justify="left")
    for col in ("scenario", "variant", "patches", "expected", "what it shows"):
        table.add_column(col, overflow="fold")
    for s in SCENARIOS.values():
        table.add_row(f"[bold]{s.name}[/bold]", "", "", "", s.summary)
        for v in s.variants.values():
            table.add_row(
                "", v.name, ", ".join(sorted(v.patches)) or "-", ", ".join(sorted(v.expect)) or "none", v.summary
            )
    console.print(table)


@app.command("check")
def check_cmd(
    scenario: str = typer.Argument(None, help="Scenario name (see `blkrace list`)."),
    variant: str = typer.Option(None, "--variant", "-v", help="One variant; default: every variant of the scenario."),
    all_: bool = typer.Option(False, "--all", help="Every scenario and variant against its declared outcome."),
    strategy: str = typer.Option(
        DEFAULT_STRATEGY, "--strategy", "-s", help=f"One of: {', '.join(CHECK_STRATEGIES)} (several side by side)."
    ),
    schedules: int = typer.Option(None, "--schedules", "-n", min=1, help="Runs to explore (default: the scenario's)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random strategies."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the report."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Explore every schedule even after findings."),
    no_shrink: bool = typer.Option(False, "--no-shrink", help="Report findings as found, without shrinking."),
    max_steps: int = typer.Option(None, "--max-steps", min=10, help="Step bound per run (livelock beyond)."),
    preemption_bound: int = typer.Option(2, "--preemption-bound", min=0, help="DFS: most preemptions per run."),
    depth: int = typer.Option(3, "--depth", min=1, help="PCT: bug depth d."),
    no_lockdep: bool = typer.Option(
        False, "--no-lockdep", help="Lockdep off, for speed; a variant's expected lockdep report is then not expected."
    ),
    preempt: str = typer.Option(
        None,
        "--preempt",
        help="Preemption model: full (CONFIG_PREEMPT) or none (CONFIG_PREEMPT_NONE); default: each variant's own. "
        "Declared outcomes are for the variant's own model.",
    ),
    jobs: int = typer.Option(
        None, "--jobs", "-j", min=1, help="Worker processes (default: this machine's cores); same findings for any N."
    ),
    dask: str = typer.Option(None, "--dask", help="Run on a Dask distributed cluster: its scheduler's address."),
    store: str = typer.Option(None, "--store", help="Campaign store (SQLite): explored units and findings."),
    resume: bool = typer.Option(False, "--resume", help="Continue the campaign of --store FILE where it stopped."),
):
    """Explore schedules of a scenario and report what breaks."""
    if all_ and scenario:
        _fail("give a scenario or --all, not both")
    if not all_ and not scenario:
        _fail("name a scenario (see `blkrace list`) or pass --all")
    if strategy not in CHECK_STRATEGIES:
        _fail(f"unknown strategy {strategy!r} (valid: {', '.join(CHECK_STRATEGIES)})")
    if resume and not store:
        _fail("--resume continues the campaign of a store: give --store FILE")
    if all_ and variant:
        _fail("--variant goes with a scenario, not with --all")
    preemptive = _parse_preempt(preempt)
    if all_ and preemptive is not None:
        _fail("--preempt goes with a scenario, not with --all (declared outcomes are for each variant's own model)")
    targets = []
    if all_:
        for s in SCENARIOS.values():
            targets += [(s, v) for v in s.variants.values()]
    else:
        s = _resolve(scenario, variant)
        targets = [(s, s.variants[variant])] if variant else [(s, v) for v in s.variants.values()]
    several = len(targets) > 1 or all_
    options = {
        "max_steps": max_steps,
        "preemption_bound": preemption_bound,
        "depth": depth,
        "lockdep": not no_lockdep,
        "preempt": preemptive,
        "jobs": jobs or default_jobs(),
        "dask": dask,
        "resume": resume,
    }
    if store:
        try:
            options["store"] = open_store(store)
        except ScaleError as exc:
            _fail(str(exc))
    console = make_console()
    runs = []
    interrupted = False
    with _Progress(enabled=not json_out) as progress:
        for s, v in targets:
            n = schedules or s.default_schedules
            task = progress.add(f"{s.name} {v.name}", n)
            try:
                run = run_variant(
                    s,
                    v,
                    strategy_name=strategy,
                    schedules=n,
                    seed=seed,
                    stop_on_first=not keep_going,
                    do_shrink=not no_shrink,
                    progress=lambda done, total, task=task: progress.update(task, done),
                    options=options,
                )
            except KeyboardInterrupt:
                interrupted = True
                break
            runs.append(run)
            progress.done(task)
            if run.campaign.interrupted:
                interrupted = True
                break
    if json_out:
        if several:
            print(json.dumps({"ok": all(r.expectation_held for r in runs), "results": [r.as_json() for r in runs]}))
        elif runs:
            print(json.dumps(runs[0].as_json()))
    else:
        for run in runs:
            if not all_:
                _print_variant_report(console, run)
                continue
            # --all is a summary: one line per finding, with the token to replay it.
            for f, _, token in run.reports:
                console.print(f"{run.scenario} --variant {run.variant}: {f.violation.kind}: {f.violation.message}")
                console.print(f"  blkrace replay {token}", soft_wrap=True)
        if several:
            console.print()
            console.print(_all_table(runs))
    code = _exit_code(runs, several) if runs else EXIT_INTERRUPTED
    if interrupted:
        code = EXIT_INTERRUPTED
    for r in runs:
        for f, _, _ in r.reports:
            if f.violation.kind == "model_error":
                print(
                    f"blkrace: error: model error in {r.scenario}/{r.variant}: {f.violation.message}", file=sys.stderr
                )
    raise typer.Exit(code)


@app.command("replay")
def replay_cmd(
    tokens: list[str] = typer.Argument(  # noqa: B008
        ...,
        help="Schedule tokens from `blkrace check`: the earlier runs a lockdep finding builds on, then its own.",
    ),
    variant: str = typer.Option(
        None,
        "--variant",
        "-v",
        help="Replay on another variant of the same scenario (lenient: shows where the schedule diverges).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the report."),
    max_steps: int = typer.Option(None, "--max-steps", min=10, help="Step bound of the run."),
):
    """Replay one schedule exactly, with its full trace."""
    scheds = []
    for token in tokens:
        try:
            scheds.append(decode(token))
        except TokenError as exc:
            _fail(f"bad token: {exc}")
    sched = scheds[-1]
    if sched.scenario not in SCENARIOS:
        _fail(f"the token is for scenario {sched.scenario!r}, which this blkrace does not have")
    s = SCENARIOS[sched.scenario]
    if sched.variant not in s.variants:
        _fail(f"the token is for variant {sched.variant!r} of {s.name}, which this blkrace does not have")
    for other in scheds:
        if other.fingerprint != model_fingerprint():
            _fail(
                "the token was made with another version of the model (fingerprint "
                f"{other.fingerprint.hex()}, this one is {model_fingerprint().hex()}); re-run `blkrace check`"
            )
        if (other.scenario, other.variant) != (sched.scenario, sched.variant):
            _fail("the tokens belong to different scenarios or variants; give one campaign's tokens in order")
    lenient = variant is not None and variant != sched.variant
    target = s.variants[sched.variant]
    if variant is not None:
        _resolve(s.name, variant)
        target = s.variants[variant]
    preempt = _preempt_of_token(sched)
    preemptive = s.preempt_of(target) if preempt is None else preempt
    build = s.builder(target, preempt=preemptive)
    steps = max_steps or s.max_steps
    start = time.perf_counter()
    shared = {}
    try:
        for earlier in scheds[:-1]:
            replay(build, earlier.choices, lenient=lenient, max_steps=steps, traced=False, shared=shared)
        result, _, strategy = replay(build, sched.choices, lenient=lenient, max_steps=steps, shared=shared)
    except ScheduleMismatch as exc:
        _fail(f"the token does not replay on this model: {exc}")
    elapsed = time.perf_counter() - start
    token = " ".join(tokens)
    if json_out:
        out = {
            "scenario": s.name,
            "variant": target.name,
            "token_variant": sched.variant,
            "preempt": _preempt_name(preemptive),
            "diverged": strategy.diverged_at[1] if strategy.diverged_at else None,
            "steps": result.steps,
            "time_ns": result.time_ns,
            "violations": [
                {"kind": v.kind, "message": v.message, "detail": v.detail, "token": token} for v in result.violations
            ],
            "trace": [st.as_dict() for st in result.trace],
        }
        print(json.dumps(out))
    else:
        console = make_console()
        if strategy.diverged_at:
            console.print(
                f"[yellow]replaying a {sched.variant} token on {target.name}: {strategy.diverged_at[1]}[/yellow]"
            )
        if not result.violations:
            render_timeline(result.trace, console, title=f"{s.name} --variant {target.name}: no violation")
        ordered = sorted(result.violations, key=lambda v: KINDS.index(v.kind))
        if ordered:
            render_finding(
                console,
                Finding(ordered[0], tuple(result.choices), 0, result.steps, elapsed),
                result,
                token,
                f"replayed {s.name} --variant {target.name}: {result.steps} steps, "
                f"{result.time_ns / 1e6:.3f} ms virtual",
            )
        console.print(
            f"{s.name} --variant {target.name}: "
            + (", ".join(sorted({v.kind for v in result.violations})) or "no violation")
            + f" ({result.steps} steps)"
        )
    if any(v.kind == "model_error" for v in result.violations):
        raise typer.Exit(EXIT_MODEL_ERROR)
    raise typer.Exit(EXIT_FOUND if result.violations else EXIT_OK)


@app.command("findings")
def findings_cmd(
    file: str = typer.Argument(..., help="A campaign store written by `blkrace check --store FILE`."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the report."),
):
    """List what a campaign store holds: schedules per strategy, findings by signature, first token and count."""
    try:
        campaigns = findings_report(file)
    except ScaleError as exc:
        _fail(str(exc))
    if json_out:
        print(json.dumps({"store": file, "campaigns": campaigns}))
        raise typer.Exit(EXIT_FOUND if any(c["findings"] for c in campaigns) else EXIT_OK)
    console = make_console()
    for c in campaigns:
        runs = sum(e["runs"] for e in c["explored"])
        per = ", ".join(
            f"{e['strategy']} {e['runs']}" + (" (exhausted)" if e["exhausted"] else "") for e in c["explored"]
        )
        console.print(f"[bold]{c['campaign']}[/bold]: {runs} of {c['schedules']} schedules ({per or 'none yet'})")
        for f in c["findings"]:
            console.print(
                f"  {f['kind']}: {f['message']}  [{f['count']} run{'s' if f['count'] != 1 else ''}, first at "
                f"schedule {f['schedule_index'] + 1} by {f['strategy']}]",
                soft_wrap=True,
            )
            console.print(f"    signature {f['signature']}", soft_wrap=True)
            if f["token"]:
                console.print(f"    blkrace replay {f['token']}", soft_wrap=True)
    if not campaigns:
        console.print(f"{file}: no campaign yet")
    raise typer.Exit(EXIT_FOUND if any(c["findings"] for c in campaigns) else EXIT_OK)


class _Progress:
    """A rich progress bar on stderr, shown only once a check has run for a second."""

    def __init__(self, enabled):
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None
        self.start = time.perf_counter()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False

    def add(self, label, total):
        self.label, self.total = label, total
        return label

    def update(self, task, done):
        if not self.enabled:
            return
        if self.bar is None:
            if time.perf_counter() - self.start < 1.0:
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
            self.ids = {}
        if task not in self.ids:
            self.ids[task] = self.bar.add_task(task, total=self.total)
        self.bar.update(self.ids[task], completed=done)

    def done(self, task):
        if self.bar is not None and task in getattr(self, "ids", {}):
            self.bar.update(self.ids[task], visible=False)


def version_callback(value: bool):
    if value:
        print(f"blkrace {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_callback(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Print the version."
    ),
):
    """blkrace: an executable, deterministic model of Linux blk-mq, and an explorer of its interleavings."""


def _sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    """Console entry point: every error is one line and a distinct status, never a traceback."""
    # Typer runs on click (vendored in recent typer): its exceptions are told
    # apart by what they carry, so that either flavour works.
    if argv is None:
        argv = sys.argv[1:]
    if not argv:
        argv = ["--help"]
    signal.signal(signal.SIGTERM, _sigterm)  # SIGTERM behaves like SIGINT: what was found is printed
    try:
        rv = app(args=argv, standalone_mode=False)
    except BadInput as exc:
        print(f"blkrace: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print("blkrace: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - click's usage errors and exits
        if type(exc).__name__ == "Exit" and hasattr(exc, "exit_code"):
            sys.exit(exc.exit_code)
        if type(exc).__name__ == "Abort":
            print("blkrace: interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        if hasattr(exc, "format_message"):
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            print(f"blkrace: error: {exc.format_message()}{hint}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        raise
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


if __name__ == "__main__":
    main()
