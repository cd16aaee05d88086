"""The command line: list, check, replay.  Argument plumbing only.

Exit status: 0 no violation (or, for several variants, every expectation
held); 1 a violation found (or an expectation failed); 2 bad input; 3 an
exception inside model code; 130 interrupted by SIGINT or SIGTERM (what was
found is printed).
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field

import typer
from rich.table import Table
from rich.text import Text

from blkrace import __version__
from blkrace.engine import ScheduleMismatch
from blkrace.engine.campaign import Finding, replay
from blkrace.engine.params import ParamsError, decode_params, encode_params
from blkrace.engine.shrink import shrink
from blkrace.engine.strategy import STRATEGIES, make_strategy
from blkrace.engine.token import Schedule, TokenError, decode, encode
from blkrace.engine.violations import KINDS
from blkrace.interrupts import StopRequest, quiet_abandoned_coroutines, sigterm_as_interrupt
from blkrace.kernel.memory import MEMORY_MODELS
from blkrace.report import html as html_report
from blkrace.report.jsondoc import check_document, replay_document, trace_of
from blkrace.report.listing import render_list
from blkrace.report.progress import CheckProgress
from blkrace.report.text import TRACE_MODES, make_console, render_finding, render_timeline
from blkrace.scale import (
    PORTFOLIO,
    ScaleError,
    default_jobs,
    findings_report,
    open_store,
    prove_bounded,
    run_scaled,
)
from blkrace.scenarios import registry
from blkrace.scenarios.base import ENGINE_LIMITS, ParamError, format_value
from blkrace.scenarios.loader import FILE_SEPARATOR, LoadError, looks_like_file
from blkrace.scenarios.registry import fingerprint_of

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
    params: dict = field(default_factory=dict)  # the scenario parameters set on the command line
    memory_model: str = "sc"
    proof: object = None  # scale.Proof, when --prove asked for one
    proved_asked: bool = False  # --prove was given (a found variant is not proved: its proof stays None)

    @property
    def found_kinds(self):
        return sorted({f.violation.kind for f, _, _ in self.reports})

    @property
    def expectation_held(self):
        """True or False; None when the run was interrupted before it could tell."""
        if self.campaign.interrupted:
            return None
        found = set(self.found_kinds)
        return self.expect <= found and found <= self.expect | self.allowed

    def as_json(self, trace="full"):
        c = self.campaign
        return {
            "scenario": self.scenario,
            "variant": self.variant,
            "strategy": self.strategy,
            "seed": self.seed,
            "preempt": _preempt_name(self.preemptive),
            "params": dict(self.params),
            "memory_model": self.memory_model,
            "schedules": c.schedules,
            "pruned": c.pruned,
            "exhausted": c.exhausted,
            "bound": c.bound,
            "cut": c.cut,
            "interrupted": c.interrupted,
            "explored": getattr(c, "members", {}),  # runs per strategy of the portfolio
            "elapsed_s": round(c.elapsed_s, 4),
            "expected": sorted(self.expect),
            "allowed": sorted(self.allowed),
            "expectation_held": self.expectation_held,
            "proof": self.proof.as_json() if self.proof is not None else None,
            "violations": [
                {
                    "kind": f.violation.kind,
                    "message": _violation_of(f, res).message,  # the run the token replays
                    "token": token.split()[-1],
                    "prefix_tokens": token.split()[:-1],
                    "schedule": f.schedule_index + 1,
                    "found_by": _found_by(self, f),
                    "seconds_to_find": round(f.elapsed_s, 4),
                    "detail": _violation_of(f, res).detail,
                    "trace": trace_of(res, trace),
                }
                for f, res, token in self.reports
            ],
        }


def _found_by(run, finding):
    """The strategy that found ``finding``: the portfolio's member, or the campaign's one strategy
    (or the bounded proof's DPOR search, at its bound)."""
    bound = getattr(finding, "proof_bound", None)
    if bound is not None:
        return f"dpor-pb{bound}, proving"
    return (getattr(finding, "strategy", "") if run.strategy == PORTFOLIO else "") or run.strategy


def _violation_of(finding, replayed):
    if replayed is not None:
        for v in replayed.violations:
            if v.origin == finding.violation.origin:
                return v
    return finding.violation


def _fail(message):
    raise BadInput(message)


def _shorten(message, word=60, line=400):
    """A message that echoes a long argument keeps its head and says how long it was."""

    def cut(m):
        w = m.group(0)
        return f"{w[:40]}…({len(w):,} characters)"

    message = re.sub(rf"\S{{{word + 1},}}", cut, " ".join(str(message).split()))
    return message if len(message) <= line else message[: line - 1] + "…"


def _seconds_option():
    """A duration option's parser: a positive number of seconds (``10``, ``2.5``)."""

    def parse(value):
        if isinstance(value, (int, float)):
            number = float(value)
        elif re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,6})?", str(value).strip()):
            number = float(value)
        else:
            raise typer.BadParameter(f"{value!r} is not a number of seconds")
        if number <= 0:
            raise typer.BadParameter("give a positive number of seconds")
        return number

    return parse


def _int_option(minimum=None):
    """An integer option's parser: digits only (``1.0`` and ``1.5`` are refused alike)."""

    def parse(value):
        if isinstance(value, int):
            number = value
        elif re.fullmatch(r"[+-]?[0-9]{1,18}", str(value).strip()):
            number = int(value)
        else:
            raise typer.BadParameter(f"{value!r} is not a whole number")
        if minimum is not None and number < minimum:
            raise typer.BadParameter(f"{number} is below the minimum, {minimum}")
        return number

    return parse


def _resolve(scenario_name, variant_name):
    # A built-in name, a scenario file (./my_race.py) or an installed plugin's.
    try:
        scenario = registry.resolve(scenario_name)
    except KeyError as exc:
        _fail(exc.args[0])
    except LoadError as exc:
        _fail(str(exc))
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


# A scenario parameter's key in a token's params (run options have plain keys).
SCENARIO_PARAM_PREFIX = "p."


def _token(scenario, variant, choices, preemptive, params=None, memory_model="sc"):
    # The preemption and memory models and the scenario's parameters are part
    # of the run's identity: a token replays under the models it was found
    # with, whatever the variant's defaults.  No ``mm`` means sc.
    values = {"preempt": _preempt_name(preemptive)}
    if memory_model != "sc":
        values["mm"] = memory_model
    values.update({SCENARIO_PARAM_PREFIX + k: v for k, v in (params or {}).items()})
    return encode(
        Schedule(scenario.token_ref, variant.name, encode_params(values), fingerprint_of(scenario), tuple(choices))
    )


def _params_of_token(sched):
    """(preemption model or None, scenario parameters, memory model) a token was made with."""
    try:
        values = decode_params(sched.params)
    except ParamsError as exc:
        _fail(f"bad token: {exc}")
    preempt, params, mm = None, {}, "sc"
    for key, value in values.items():
        if key == "preempt" and value in PREEMPT_MODELS:
            preempt = PREEMPT_MODELS[value]
        elif key == "mm" and value in MEMORY_MODELS:
            mm = value
        elif key.startswith(SCENARIO_PARAM_PREFIX) and len(key) > len(SCENARIO_PARAM_PREFIX):
            params[key[len(SCENARIO_PARAM_PREFIX) :]] = value
        else:
            _fail(f"bad token: unknown parameter {key + '=' + value!r}")
    return preempt, params, mm


def _parse_param_options(items):
    """``--param k=v`` options as a dict of strings (the scenario checks names and values)."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            _fail(f"--param takes NAME=VALUE, not {item!r}")
        if "," in value or "=" in value:
            _fail(f"--param {key}: a value may not hold ',' or '=' ({value!r})")
        out[key] = value
    return out


def _check_params(scenario, variant, params):
    try:
        return scenario.resolve(variant, params)
    except ParamError as exc:
        _fail(str(exc))


def _parse_memory_model(value):
    if value is not None and value not in MEMORY_MODELS:
        _fail(f"unknown memory model {value!r} (valid: {', '.join(MEMORY_MODELS)})")
    return value


@dataclass
class _Setup:
    """What every campaign of one variant shares: its model, as the options set it."""

    scenario: object
    variant: object
    preemptive: bool
    params: dict
    memory_model: str
    build: object
    explore_build: object  # build, refusing to start a run once a stop was requested
    max_steps: int
    expect: frozenset
    allowed: frozenset

    def options(self, options):
        """The command line's options, with this variant's models filled in."""
        return {**options, "preempt": self.preemptive, "params": self.params, "memory_model": self.memory_model}

    def token(self, choices):
        return _token(self.scenario, self.variant, choices, self.preemptive, self.params, self.memory_model)


def _setup(scenario, variant, options):
    lockdep = options.get("lockdep", True)
    preempt = options.get("preempt")
    preemptive = scenario.preempt_of(variant) if preempt is None else preempt
    params = options.get("params") or {}
    _check_params(scenario, variant, params)
    mm = options.get("memory_model") or scenario.memory_model_of(variant)
    build = scenario.builder(variant, lockdep=lockdep, preempt=preemptive, params=params, memory_model=mm)
    stop = options.get("stop")
    # With a stop request installed, a signal ends the campaign between runs (blkrace/interrupts.py).
    explore_build = stop.guard(build) if stop is not None else build
    return _Setup(
        scenario,
        variant,
        preemptive,
        params,
        mm,
        build,
        explore_build,
        options["max_steps"] or scenario.max_steps_of(variant),
        variant.expect if lockdep else variant.expect - {"lockdep"},
        variant.allowed if lockdep else variant.allowed - {"lockdep"},
    )


def _reports(setup, findings, *, do_shrink, interrupted):
    """(finding, replayed run, token) for each finding: shrunk unless asked not
    to (or interrupted), replayed with its trace, named by a token."""
    out = []
    for finding in findings:
        choices = list(finding.choices)
        if do_shrink and finding.violation.kind != "model_error" and not finding.prefix and not interrupted:
            try:
                choices = shrink(setup.explore_build, choices, finding.violation.origin, max_steps=setup.max_steps)
            except KeyboardInterrupt:
                interrupted = True  # reported as found, unshrunk
        # A lockdep finding builds on the graph of earlier runs: replay them first.
        shared = {}
        for earlier in finding.prefix:
            replay(setup.build, earlier, max_steps=setup.max_steps, traced=False, shared=shared)
        replayed, _, _ = replay(setup.build, choices, max_steps=setup.max_steps, shared=shared)
        tokens = [setup.token(p) for p in finding.prefix]
        tokens.append(setup.token(replayed.choices))
        out.append((finding, replayed, " ".join(tokens)))
    return out


def run_variant(scenario, variant, *, strategy_name, schedules, seed, stop_on_first, do_shrink, progress, options):
    if strategy_name != PORTFOLIO:
        _strategy(strategy_name, seed, options["preemption_bound"], options["depth"])
    setup = _setup(scenario, variant, options)
    wanted = set(setup.expect)

    def on_progress(done, nfound):
        if progress is not None:
            progress(done, nfound)

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
            max_steps=setup.max_steps,
            progress=on_progress,
            options=setup.options(options),
            token_of=setup.token,
        )
    except ScaleError as exc:
        _fail(str(exc))
    out = VariantRun(
        scenario.name, variant.name, campaign.strategy, seed, setup.expect, setup.allowed, campaign, setup.preemptive
    )
    out.params = dict(setup.params)
    out.memory_model = setup.memory_model
    out.reports = _reports(setup, campaign.findings, do_shrink=do_shrink, interrupted=campaign.interrupted)
    return out


def prove_variant(run, scenario, variant, *, seconds, do_shrink, progress, options):
    """After a campaign that found nothing: the bounded proof (scale.prove_bounded).
    A finding of the proof is reported as the campaign's are."""
    setup = _setup(scenario, variant, options)
    try:
        proof = prove_bounded(
            scenario,
            variant,
            seconds=seconds,
            max_bound=options["preemption_bound"],
            max_steps=setup.max_steps,
            options=setup.options(options),
            progress=progress,
        )
    except ScaleError as exc:
        _fail(str(exc))
    for step in proof.steps:
        for f in step.findings:
            f.proof_bound = step.bound
    run.proof = proof
    if proof.interrupted:
        run.campaign.interrupted = True  # the check stops here; what was found is reported
    run.reports += _reports(setup, proof.findings, do_shrink=do_shrink, interrupted=proof.interrupted)
    return run


def _severity(report):
    return (report[0].schedule_index, KINDS.index(report[0].violation.kind))


def _print_variant_report(console, run, trace="window"):
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
            f"({_found_by(run, finding)}, seed {run.seed}) after {finding.elapsed_s:.2f} s"
        )
        render_finding(console, finding, replayed, token, header, trace=trace)
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
    if run.proof is not None:
        console.print(_proof_text(run.proof))
    if c.interrupted:
        console.print(
            Text(
                f"interrupted after {c.schedules} schedules: the findings above are all that was found, "
                "and the variant's expectation is not decided",
                style="yellow",
            )
        )


def _summary_line(run):
    c = run.campaign
    why = "sleep sets, or a state whose future was explored" if "sdfs" in run.strategy else "sleep sets"
    pruned = f" ({c.pruned} more pruned by {why})" if c.pruned else ""
    kinds = ", ".join(run.found_kinds) or "no violation"
    members = getattr(c, "members", {})
    per = " (" + ", ".join(f"{k} {m['runs']}" for k, m in members.items()) + ")" if len(members) > 1 else ""
    return (
        f"{run.scenario} --variant {run.variant}: {kinds}; {_space(c)}{pruned}, "
        f"{c.elapsed_s:.2f} s, strategy {run.strategy}{per}, seed {run.seed}, preempt {_preempt_name(run.preemptive)}"
        + (f", memory model {run.memory_model}" if run.memory_model != "sc" else "")
    )


def _proof_text(proof):
    """What a bounded proof (--prove) established, in one paragraph."""
    done = "; ".join(
        f"bound {st.bound}: {st.schedules} schedules in {st.elapsed_s:.2f} s"
        + (" (from the store)" if st.stored else "")
        for st in proof.steps
        if st.exhausted and not st.findings
    )
    last = proof.steps[-1] if proof.steps else None
    if last is not None and last.findings:
        kinds = ", ".join(sorted({f.violation.kind for f in last.findings}))
        tail = f"DPOR at preemption bound {last.bound} found {kinds} (reported above)"
    elif last is not None and proof.interrupted:
        tail = f"interrupted at bound {last.bound}"
    elif last is not None and last.cut:
        tail = f"bound {last.bound}: {last.cut} runs cut by the engine's step or fairness bounds, not exhausted"
    elif last is not None and not last.exhausted:
        tail = f"bound {last.bound}: {last.schedules} schedules in {last.elapsed_s:.2f} s, not exhausted in time"
    elif last is not None and last.bound >= proof.max_bound:
        tail = f"bound {proof.max_bound} was the highest asked for (--preemption-bound)"
    else:
        tail = f"no time left for bound {0 if last is None else last.bound + 1}"
    if proof.bound is None:
        return f"proof ({proof.seconds:g} s): not proved at any preemption bound; {tail}"
    return (
        f"proved within preemption bound {proof.bound} ({proof.seconds:g} s): every interleaving of dependent "
        f"steps up to that bound explored by DPOR ({done}); {tail}"
    )


def _space(c):
    """What a campaign explored: exhausted (and within which bound) or sampled."""
    if c.exhausted:
        if c.bound is None:
            return f"the space is exhausted: {c.schedules} schedules, every interleaving of dependent steps"
        return (
            f"the bounded space is exhausted: {c.schedules} schedules, preemption bound {c.bound}, "
            "every interleaving of dependent steps up to that bound"
        )
    cut = f" ({c.cut} runs cut by the engine's step or fairness bounds)" if c.cut else ""
    return f"{c.schedules} schedules sampled, not exhausted{cut}"


def _exit_code(runs, several):
    if any(f.violation.kind == "model_error" for r in runs for f, _, _ in r.reports):
        return EXIT_MODEL_ERROR
    if any(r.campaign.interrupted for r in runs):
        return EXIT_INTERRUPTED
    if several:
        return EXIT_OK if all(r.expectation_held for r in runs) else EXIT_FOUND
    return EXIT_FOUND if runs[0].reports else EXIT_OK


def _all_table(runs, width=200):
    """The summary of several variants: a table, or two lines per variant below 110 columns."""
    title = "blkrace check: every scenario and variant against its declared outcome"
    table = Table(title=title, title_justify="left")
    proving = any(r.proved_asked for r in runs)
    columns = ("scenario", "variant", "expected", "found", "schedules", "seconds") + (("proved",) if proving else ())
    for col in (*columns, "held"):
        table.add_column(col, justify="right" if col in ("schedules", "seconds") else "left")
    narrow = Text(title + "\n", style="bold")
    for r in runs:
        c = r.campaign
        first = min(
            (f.schedule_index + 1 for f, _, _ in r.reports if getattr(f, "proof_bound", None) is None), default=None
        )
        sched = (
            f"{first} of {c.schedules}"
            if first
            else (f"{c.schedules} (exhausted, bound {c.bound})" if c.exhausted else str(c.schedules))
        )
        expected = ", ".join(sorted(r.expect)) or "none"
        found = ", ".join(r.found_kinds) or "none"
        proved = _proved_cell(r) if proving else None
        cells = [r.scenario, r.variant, expected, found, sched, f"{c.elapsed_s:.2f}"] + ([proved] if proving else [])
        table.add_row(*cells, _held_cell(r))
        held = _held_cell(r)
        narrow.append(f"{held.plain:>11} ", style=held.style)
        narrow.append(f"{r.scenario} {r.variant}\n", style="bold")
        narrow.append(f"{'':>11} expected {expected}; found {found}; {sched} schedules, {c.elapsed_s:.2f} s")
        narrow.append(f"; proved: {proved}\n" if proving else "\n")
    if width < 110:
        narrow.rstrip()
        return narrow
    return table


def _proved_cell(run):
    """The --all table's word on a variant's bounded proof."""
    if run.proof is None:
        return "-"  # not attempted: the campaign found something
    return run.proof.verdict()


def _held_cell(run):
    held = run.expectation_held
    if held is None:
        return Text("interrupted", style="yellow")
    return Text("yes", style="green") if held else Text("NO", style="bold red")


@app.command("list")
def list_cmd(
    files: list[str] = typer.Argument(  # noqa: B008
        None, help="Scenario files to list as well (./my_race.py); installed plugins are always listed."
    ),
):
    """List the scenarios, their variants and what each variant is expected to show."""
    scenarios, errors = registry.all_scenarios()
    for ref in files or ():
        scenarios.append(_resolve(ref, None))
    render_list(make_console(), scenarios, settings=_scenario_settings)
    for line in errors:
        print(f"blkrace: warning: {line}", file=sys.stderr)


def _scenario_settings(s):
    """`blkrace list`'s lines on a scenario's parameters and the engine limits it changes."""
    lines = [
        f"--param {name}={format_value(p.default)}" + (f": {p.help}" if p.help else "") for name, p in s.params.items()
    ]
    changed = [f"{key}={getattr(s, key)}" for key, default in ENGINE_LIMITS.items() if getattr(s, key) != default]
    if changed:
        lines.append("engine limits: " + ", ".join(changed))
    return lines


@app.command("check")
def check_cmd(
    scenario: str = typer.Argument(None, help="Scenario name (see `blkrace list`)."),
    variant: str = typer.Option(None, "--variant", "-v", help="One variant; default: every variant of the scenario."),
    all_: bool = typer.Option(False, "--all", help="Every scenario and variant against its declared outcome."),
    strategy: str = typer.Option(
        DEFAULT_STRATEGY, "--strategy", "-s", help=f"One of: {', '.join(CHECK_STRATEGIES)} (several side by side)."
    ),
    schedules: int = typer.Option(
        None,
        "--schedules",
        "-n",
        parser=_int_option(1),
        help="Runs to explore (default: the scenario's).",
    ),
    seed: int = typer.Option(0, "--seed", parser=_int_option(), help="Seed of the random strategies."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of the report."),
    keep_going: bool = typer.Option(False, "--keep-going", help="Explore every schedule even after findings."),
    no_shrink: bool = typer.Option(False, "--no-shrink", help="Report findings as found, without shrinking."),
    max_steps: int = typer.Option(
        None, "--max-steps", parser=_int_option(10), help="Step bound per run (livelock beyond)."
    ),
    preemption_bound: int = typer.Option(
        2, "--preemption-bound", parser=_int_option(0), help="DFS, DPOR: most preemptions per run."
    ),
    depth: int = typer.Option(3, "--depth", parser=_int_option(1), help="PCT: bug depth d."),
    no_lockdep: bool = typer.Option(
        False, "--no-lockdep", help="Lockdep off, for speed; a variant's expected lockdep report is then not expected."
    ),
    preempt: str = typer.Option(
        None,
        "--preempt",
        help="Preemption model: full (CONFIG_PREEMPT) or none (CONFIG_PREEMPT_NONE); default: each variant's own. "
        "Declared outcomes are for the variant's own model.",
    ),
    param: list[str] = typer.Option(  # noqa: B008
        None, "--param", "-p", help="Set a scenario parameter, NAME=VALUE (see `blkrace list`); repeatable."
    ),
    html_out: str = typer.Option(None, "--html", metavar="FILE", help="Also write a self-contained HTML report."),
    trace: str = typer.Option(
        "window",
        "--trace",
        help="Timeline: window (the end of the run: the last steps of each CPU and of each blocked task; "
        "a short run whole), full or none. JSON carries every step unless none.",
    ),
    memory_model: str = typer.Option(
        None,
        "--memory-model",
        help="Memory model: sc (sequentially consistent) or lkmm (the Linux-kernel memory model: stale "
        "loads and reordered stores are the explorer's choices); default: each variant's own.",
    ),
    jobs: int = typer.Option(
        None,
        "--jobs",
        "-j",
        parser=_int_option(1),
        help="Worker processes (default: this machine's cores); the same findings for any N.",
    ),
    dask: str = typer.Option(None, "--dask", help="Run on a Dask distributed cluster: its scheduler's address."),
    store: str = typer.Option(None, "--store", metavar="FILE", help="Campaign store (SQLite): units and findings."),
    resume: bool = typer.Option(False, "--resume", help="Continue the campaign of --store FILE where it stopped."),
    prove: float = typer.Option(
        None,
        "--prove",
        metavar="SECONDS",
        parser=_seconds_option(),
        help="Then prove each variant that showed nothing: DPOR at preemption bound 0, 1, ... up to "
        "--preemption-bound, while each bound's search finishes within SECONDS in all; the report names the "
        "largest bound proved. With --store each finished bound is kept; --resume takes the bounds "
        "exhausted there.",
    ),
):
    """Explore schedules of a scenario (a name, or a file ./my_race.py) and report what breaks."""
    if all_ and scenario:
        _fail("give a scenario or --all, not both")
    if not all_ and not scenario:
        _fail("name a scenario (see `blkrace list`) or pass --all")
    if strategy not in CHECK_STRATEGIES:
        _fail(f"unknown strategy {strategy!r} (valid: {', '.join(CHECK_STRATEGIES)})")
    if resume and not store:
        _fail("--resume continues the campaign of a store: give --store FILE")
    _check_trace(trace)
    if all_ and variant:
        _fail("--variant goes with a scenario, not with --all")
    preemptive = _parse_preempt(preempt)
    if all_ and preemptive is not None:
        _fail("--preempt goes with a scenario, not with --all (declared outcomes are for each variant's own model)")
    params = _parse_param_options(param)
    if all_ and params:
        _fail("--param goes with a scenario, not with --all")
    _html_check_writable(html_out)
    memory_model = _parse_memory_model(memory_model)
    if all_ and memory_model is not None:
        _fail(
            "--memory-model goes with a scenario, not with --all (declared outcomes are for each variant's own model)"
        )
    targets = []
    if all_:
        scenarios, errors = registry.all_scenarios()
        for line in errors:
            print(f"blkrace: warning: {line}", file=sys.stderr)
        for s in scenarios:
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
        "params": params,
        "memory_model": memory_model,
        "jobs": jobs or default_jobs(),
        "dask": dask,
        "resume": resume,
    }
    if store:
        try:
            options["store"] = open_store(store)
        except ScaleError as exc:
            _fail(str(exc))
    for s, v in targets:
        _check_params(s, v, params)  # bad input before any exploration
    console = make_console()
    runs = []
    interrupted = False
    with CheckProgress() as progress, StopRequest() as stop:
        options["stop"] = stop
        for s, v in targets:
            n = schedules or s.schedules_of(v)
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
                    progress=lambda done, found, task=task: progress.update(task, done, found),
                    options=options,
                )
            except KeyboardInterrupt:
                interrupted = True
                break
            runs.append(run)
            progress.done(task)
            run.proved_asked = prove is not None
            if prove is not None and not run.reports and not run.campaign.interrupted and not stop.requested:
                label = progress.add(f"{s.name} {v.name}: proving", None)
                try:
                    prove_variant(
                        run,
                        s,
                        v,
                        seconds=prove,
                        do_shrink=not no_shrink,
                        progress=lambda bound, done, label=label: progress.update(label, done),
                        options=options,
                    )
                except KeyboardInterrupt:
                    run.campaign.interrupted = True
                progress.done(label)
            if run.campaign.interrupted or stop.requested:
                interrupted = True
                break
    if interrupted:
        quiet_abandoned_coroutines()
    code = _exit_code(runs, several) if runs else EXIT_INTERRUPTED
    if interrupted:
        code = EXIT_INTERRUPTED
    if json_out:
        started = {(r.scenario, r.variant) for r in runs}
        skipped = [(s.name, v.name) for s, v in targets if (s.name, v.name) not in started]
        doc = check_document(
            [r.as_json(trace) for r in runs], exit_status=code, interrupted=interrupted, skipped=skipped
        )
        print(json.dumps(doc))
    else:
        for run in runs:
            if not all_:
                _print_variant_report(console, run, trace)
                continue
            # --all is a summary: one line per finding, with the token to replay it.
            for f, _, token in run.reports:
                by = f" ({_found_by(run, f)})" if run.strategy == PORTFOLIO else ""
                console.print(
                    Text(f"{run.scenario} --variant {run.variant}: {f.violation.kind}{by}: {f.violation.message}")
                )
                console.print(Text(f"  blkrace replay {token}"), soft_wrap=True)
        if several:
            console.print()
            console.print(_all_table(runs, console.width))
        if interrupted:
            console.print(
                Text(f"interrupted: {len(targets) - len(runs)} of {len(targets)} variants not run", style="yellow")
            )
    if html_out:
        command = " ".join(["blkrace check", scenario or "--all"] + (["--variant", variant] if variant else []))
        _html_write(html_out, lambda: html_report.check_page(runs, command))
    for r in runs:
        for f, _, _ in r.reports:
            if f.violation.kind == "model_error":
                message = _shorten(f"model error in {r.scenario}/{r.variant}: {f.violation.message}", line=2000)
                print(f"blkrace: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _check_trace(trace):
    if trace not in TRACE_MODES:
        _fail(f"unknown trace mode {trace!r} (valid: {', '.join(TRACE_MODES)})")


def _token_scenario(ref, scenario_file):
    """The scenario a token names; a scenario file may be given where it is now.

    A token names a scenario file by the path `check` was given (``./x.py``
    or ``x.py::name``), so it replays from the directory it was made in;
    ``--scenario-file`` points at the file from anywhere else.  The
    fingerprint still decides: it covers the file's name and bytes, not its
    directory."""
    is_file = looks_like_file(ref)
    if scenario_file is not None:
        if not is_file:
            _fail(f"the token is for scenario {ref!r}, not a scenario file: --scenario-file does not apply")
        _, sep, name = ref.partition(FILE_SEPARATOR)
        ref = scenario_file + (sep + name if sep else "")
    try:
        return registry.resolve(ref)
    except KeyError:
        _fail(f"the token is for scenario {ref!r}, which this blkrace does not have")
    except LoadError as exc:
        hint = ""
        if is_file and scenario_file is None:
            hint = " (replay from the directory the token was made in, or give the file with --scenario-file FILE)"
        _fail(f"the token is for scenario {ref!r}: {exc}{hint}")


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
    max_steps: int = typer.Option(None, "--max-steps", parser=_int_option(10), help="Step bound of the run."),
    trace: str = typer.Option(
        "window", "--trace", help="Timeline: window (default), full or none. JSON carries every step unless none."
    ),
    html_out: str = typer.Option(None, "--html", metavar="FILE", help="Also write a self-contained HTML report."),
    scenario_file: str = typer.Option(
        None,
        "--scenario-file",
        metavar="FILE",
        help="Where the token's scenario file is now, if not at the path the token names "
        "(it names the path given to `check`: run elsewhere or moved).",
    ),
):
    """Replay one schedule exactly, with its trace."""
    _check_trace(trace)
    scheds = []
    for token in tokens:
        try:
            scheds.append(decode(token))
        except TokenError as exc:
            _fail(f"bad token: {exc}")
    sched = scheds[-1]
    s = _token_scenario(sched.scenario, scenario_file)
    if sched.variant not in s.variants:
        _fail(f"the token is for variant {sched.variant!r} of {s.name}, which this blkrace does not have")
    fingerprint = fingerprint_of(s)
    for other in scheds:
        if other.fingerprint != fingerprint:
            what = "the model or the scenario file" if s.source_files else "the model"
            _fail(
                f"the token was made with another version of {what} (fingerprint "
                f"{other.fingerprint.hex()}, this one is {fingerprint.hex()}); re-run `blkrace check`"
            )
        if (other.scenario, other.variant) != (sched.scenario, sched.variant):
            _fail("the tokens belong to different scenarios or variants; give one campaign's tokens in order")
    lenient = variant is not None and variant != sched.variant
    target = s.variants[sched.variant]
    if variant is not None:
        _resolve(s.name, variant)
        target = s.variants[variant]
    preempt, params, mm = _params_of_token(sched)
    preemptive = s.preempt_of(target) if preempt is None else preempt
    _html_check_writable(html_out)
    _check_params(s, target, params)
    build = s.builder(target, preempt=preemptive, params=params, memory_model=mm)
    steps = max_steps or s.max_steps_of(target)
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
    if any(v.kind == "model_error" for v in result.violations):
        code = EXIT_MODEL_ERROR
    else:
        code = EXIT_FOUND if result.violations else EXIT_OK
    if json_out:
        out = {
            "scenario": s.name,
            "variant": target.name,
            "token_variant": sched.variant,
            "preempt": _preempt_name(preemptive),
            "memory_model": mm,
            "diverged": strategy.diverged_at[1] if strategy.diverged_at else None,
            "steps": result.steps,
            "time_ns": result.time_ns,
            "violations": [
                {"kind": v.kind, "message": v.message, "detail": v.detail, "token": token} for v in result.violations
            ],
            "trace": trace_of(result, trace),
        }
        print(json.dumps(replay_document(out, exit_status=code)))
    else:
        console = make_console()
        if strategy.diverged_at:
            console.print(
                Text(f"replaying a {sched.variant} token on {target.name}: {strategy.diverged_at[1]}", style="yellow")
            )
        if not result.violations:
            render_timeline(
                result.trace, console, title=f"{s.name} --variant {target.name}: no violation", trace_mode=trace
            )
        ordered = sorted(result.violations, key=lambda v: KINDS.index(v.kind))
        if ordered:
            render_finding(
                console,
                Finding(ordered[0], tuple(result.choices), 0, result.steps, elapsed),
                result,
                token,
                f"replayed {s.name} --variant {target.name}: {result.steps} steps, "
                f"{result.time_ns / 1e6:.3f} ms virtual",
                trace=trace,
            )
        console.print(
            Text(
                f"{s.name} --variant {target.name}: "
                + (", ".join(sorted({v.kind for v in result.violations})) or "no violation")
                + f" ({result.steps} steps)"
            )
        )
    if html_out:
        diverged = None
        if strategy.diverged_at:
            diverged = f"replaying a {sched.variant} token on {target.name}: {strategy.diverged_at[1]}"
        command = f"blkrace replay {tokens[-1][:16]}…" + (f" --variant {target.name}" if lenient else "")
        _html_write(html_out, lambda: html_report.replay_page(s.name, target.name, result, token, command, diverged))
    raise typer.Exit(code)


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
    code = EXIT_FOUND if any(c["findings"] for c in campaigns) else EXIT_OK
    if json_out:
        print(json.dumps({"store": file, "campaigns": campaigns}))
        raise typer.Exit(code)
    console = make_console()
    for c in campaigns:
        runs = sum(e["runs"] for e in c["explored"])
        per = ", ".join(
            f"{e['strategy']} {e['runs']}" + (" (exhausted)" if e["exhausted"] else "") for e in c["explored"]
        )
        console.print(
            Text(f"{c['campaign']}: {runs} of {c['schedules']} schedules ({per or 'none yet'})", style="bold")
        )
        for f in c["findings"]:
            runs_word = "run" if f["count"] == 1 else "runs"
            console.print(
                Text(
                    f"  {f['kind']}: {f['message']}  [{f['count']} {runs_word}, first at schedule "
                    f"{f['schedule_index'] + 1} by {f['strategy']}]"
                ),
                soft_wrap=True,
            )
            console.print(Text(f"    signature {f['signature']}"), soft_wrap=True)
            if f["token"]:
                console.print(Text(f"    blkrace replay {f['token']}"), soft_wrap=True)
        if c.get("proof"):
            console.print(Text("  proof (DPOR, check --prove):"))
            for b in c["proof"]:
                if b["found"]:
                    state = f"found {', '.join(b['found'])}"
                elif b["exhausted"]:
                    state = "exhausted"
                elif b["cut"]:
                    state = f"{b['cut']} runs cut by the engine, not exhausted"
                else:
                    state = "not exhausted in time"
                line = f"    bound {b['bound']}: {b['schedules']} schedules in {b['elapsed_s']:.2f} s, {state}"
                console.print(Text(line))
    if not campaigns:
        console.print(Text(f"{file}: no campaign yet"))
    raise typer.Exit(code)


def _html_check_writable(path):
    if path:
        try:
            html_report.check_writable(path)
        except html_report.PageWriteError as exc:
            _fail(str(exc))


def _html_write(path, page):
    """Write the HTML report after the terminal one: a failure here loses nothing printed."""
    try:
        html_report.write(path, page())
    except html_report.PageWriteError as exc:
        _fail(str(exc))


@app.command("litmus")
def litmus_cmd(
    files: list[str] = typer.Argument(..., help="C litmus tests (tools/memory-model/litmus-tests format)."),  # noqa: B008
    memory_model: str = typer.Option("lkmm", "--memory-model", "-m", help="lkmm or sc."),
    no_witness: bool = typer.Option(False, "--no-witness", help="Verdicts only, without the witness timeline."),
):
    """Run litmus tests through the kernel's memory model: herd7's Observation line for each."""
    from blkrace.litmus import main as litmus_main

    if memory_model not in MEMORY_MODELS:
        _fail(f"unknown memory model {memory_model!r} (valid: {', '.join(MEMORY_MODELS)})")
    raise typer.Exit(litmus_main(files, memory_model, witness=not no_witness))


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


def main(argv=None):
    """Console entry point: every error is one line and a distinct status, never a traceback."""
    # Typer runs on click (vendored in recent typer): its exceptions are told
    # apart by what they carry, so that either flavour works.
    if argv is None:
        argv = sys.argv[1:]
    if not argv:
        argv = ["--help"]
    restore_sigterm = sigterm_as_interrupt()
    try:
        rv = app(args=argv, standalone_mode=False)
    except BadInput as exc:
        print(f"blkrace: error: {_shorten(exc)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        quiet_abandoned_coroutines()
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
            print(f"blkrace: error: {_shorten(exc.format_message())}{hint}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        raise
    finally:
        restore_sigterm()
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


if __name__ == "__main__":
    main()
