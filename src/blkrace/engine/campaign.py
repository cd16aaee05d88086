"""A campaign: many runs of one model under one strategy, and replay.

Kept thin on purpose (Hypothesis's engine grew to 1,800 lines): run, keep the
first finding of each origin, stop when asked, never lose what was found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from blkrace.engine.execution import Execution
from blkrace.engine.strategy.replay import Replay
from blkrace.engine.violations import Violation


@dataclass
class Finding:
    violation: Violation
    choices: tuple
    schedule_index: int  # which run of the campaign (0-based)
    steps: int
    elapsed_s: float  # seconds into the campaign when it was found
    prefix: tuple = ()  # earlier runs whose campaign state (lockdep's graph) the finding builds on


@dataclass
class CampaignResult:
    strategy: str
    runs: int = 0  # runs started
    pruned: int = 0  # runs abandoned by sleep sets (DFS)
    # True only when an exhaustive strategy (dfs, dpor) ran out of runs and no
    # run was cut by the engine (step bound, starvation rescue, a timer fired
    # because it was passed over): what it proved is "every run within the
    # preemption bound ``bound``" (None: no bound).
    exhausted: bool = False
    bound: int | None = None  # the exhaustive strategy's preemption bound
    cut: int = 0  # runs the engine cut (RunResult.cut): the space explored is cut
    interrupted: bool = False
    elapsed_s: float = 0.0
    steps: int = 0
    findings: list = field(default_factory=list)

    @property
    def schedules(self):
        """Complete schedules explored (pruned runs do not count)."""
        return self.runs - self.pruned

    def kinds(self):
        return sorted({f.violation.kind for f in self.findings})


def run_once(build, strategy, index=0, *, max_steps=50_000, traced=False, shared=None):
    """One run: a fresh execution, the model built into it, run to its end."""
    execution = Execution(strategy, max_steps=max_steps, traced=traced, shared=shared)
    if not strategy.start_run(execution, index):
        return None, execution
    build(execution)
    result = execution.run()
    strategy.end_run(result)
    return result, execution


def explore(
    build,
    strategy,
    schedules,
    *,
    stop_on_first=True,
    max_steps=50_000,
    progress=None,
    time_limit_s=None,
    stop_when=None,
):
    """Run up to ``schedules`` runs; keep the first finding of each origin.

    Stops early at the first finding (``stop_on_first``), or once
    ``stop_when(kinds found so far)`` is true.
    """
    out = CampaignResult(strategy=strategy.name, bound=getattr(strategy, "bound", None))
    seen = set()
    shared = {}
    history = []  # choices of the runs that changed the campaign state, in order
    start = time.perf_counter()
    try:
        for index in range(schedules):
            before = _shared_version(shared)
            result, _ = run_once(build, strategy, index, max_steps=max_steps, shared=shared)
            if result is None:
                out.exhausted = out.cut == 0
                break
            out.runs += 1
            out.steps += result.steps
            if result.cut is not None:
                out.cut += 1
            if result.end_reason == "pruned":
                out.pruned += 1
            new = False
            for v in result.violations:
                if v.origin not in seen:
                    seen.add(v.origin)
                    prefix = tuple(history) if v.kind == "lockdep" else ()
                    out.findings.append(
                        Finding(v, tuple(result.choices), index, result.steps, time.perf_counter() - start, prefix)
                    )
                    new = True
            if _shared_version(shared) != before:
                history.append(tuple(result.choices))
            if progress is not None:
                progress(index + 1, len(out.findings))
            if new and stop_on_first:
                break
            if new and stop_when is not None and stop_when({f.violation.kind for f in out.findings}):
                break
            if time_limit_s is not None and time.perf_counter() - start > time_limit_s:
                break
        else:
            if getattr(strategy, "exhausted", False):
                out.exhausted = out.cut == 0
    except KeyboardInterrupt:
        out.interrupted = True
    out.elapsed_s = time.perf_counter() - start
    return out


def _shared_version(shared):
    graph = shared.get("lockdep")
    return graph.version if graph is not None else 0


def replay(build, choices, *, lenient=False, max_steps=50_000, traced=True, shared=None):
    """Replay recorded choices; a strict replay raises ScheduleMismatch on drift.

    ``shared`` carries campaign state (lockdep's graph) from earlier replays,
    so that a sequence of runs can be replayed as the campaign ran them.
    """
    strategy = Replay(choices, lenient=lenient)
    result, execution = run_once(build, strategy, 0, max_steps=max_steps, traced=traced, shared=shared)
    return result, execution, strategy
