"""Campaigns on every core, or on a cluster: units of work, merged in plan order.

A campaign is the plan of ``engine/portfolio.py``: units of runs of one
strategy each.  This module runs the units (in this process, in worker
processes, or on a Dask distributed cluster) and merges what they found.

Determinism.  A unit starts from fresh strategy state (or, for a systematic
member, from the frontier its predecessor handed back) and fresh campaign
state, so what it finds depends on the unit alone.  Results are merged in
plan order whatever order they come back in, and the stop rules (the first
finding, every wanted kind, a systematic member's exhausted space) are
applied at merge time: the same seed gives the same findings, the same
schedule numbers and the same tokens with one worker or many.  Work a worker
did beyond the stopping point is thrown away.

Campaign state.  Lockdep's dependency graph lives across the runs of a
unit, as it lives across a boot.  A finding that builds on it carries, as its
``prefix``, the choices of the earlier runs of its own unit that changed that
state; replaying them in order on fresh state, then the finding, repeats the
run exactly.

Work orders are plain data: the unit, the member, the member's carried state,
and a ``recipe`` (a dict: scenario name, variant, options) that
``make_build(recipe)`` turns into the build callable inside the worker.
``make_build`` must be a module-level function (pickled by reference); the
engine knows nothing of what the recipe means.

Interrupts.  SIGINT and SIGTERM stop the campaign: workers are stopped, and
everything that came back (the unit in progress too, when it runs in this
process) is merged and reported.  Nothing of a unit in flight in a worker is
kept.  With a store (``engine/store.py``) every unit is written to disk as it
is merged, in plan order, before it counts.
"""

from __future__ import annotations

import importlib
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field

from blkrace.engine.campaign import CampaignResult, Finding, _shared_version, run_once
from blkrace.engine.portfolio import Member, plan, restore_state, strategy_state


class CampaignError(Exception):
    """A unit could not run at all (the worker's model differs, the recipe names nothing...)."""


@dataclass
class PortfolioFinding(Finding):
    strategy: str = ""  # the member that found it: "pct-d3", "random", "dfs-pb2"
    count: int = 1  # runs of the campaign that showed this signature
    unit: int = 0  # the unit of the plan it came from


@dataclass
class PortfolioResult(CampaignResult):
    members: dict = field(default_factory=dict)  # label -> {"runs", "pruned", "exhausted"}
    units: int = 0  # units merged
    resumed_units: int = 0  # of which read back from a store
    jobs: int = 1
    backend: str = "inline"  # "inline", "processes" or "dask"
    cut: int = 0  # runs the engine cut short (step bound, starvation rescue): no exhausted claim then
    bound: int | None = None  # the preemption bound of the systematic member whose space was exhausted


@dataclass
class Work:
    """One unit's work order: everything a worker needs, picklable."""

    make_build: object  # module-level function: recipe -> build(execution)
    recipe: dict
    member: dict  # Member.as_dict()
    uid: int
    first: int
    count: int
    state: object = None  # a systematic member's frontier from the previous unit
    stop_on_first: bool = True
    want: frozenset | None = None
    max_steps: int = 50_000


@dataclass
class UnitResult:
    uid: int
    label: str
    runs: int = 0
    pruned: int = 0
    steps: int = 0
    exhausted: bool = False
    cut: int = 0  # runs the engine cut (RunResult.cut, where the engine reports it)
    interrupted: bool = False
    started: float = 0.0  # wall clock (time.time()) when the unit started
    elapsed_s: float = 0.0
    # (position in the unit, violation, choices, steps, seconds into the unit, prefix), first per origin
    findings: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)  # origin -> runs that showed it
    state: object = None  # a systematic member's frontier after the unit
    error: str = ""


def run_unit(work, progress=None, wrap=None):
    """Run one unit: ``work.count`` runs of one member from index ``work.first``.

    ``wrap(build)``, in this process only, may refuse to start a run (a stop
    request raising KeyboardInterrupt): the unit then ends as interrupted.
    """
    m = Member.from_dict(work.member)
    out = UnitResult(work.uid, m.label, started=time.time())
    try:
        build = work.make_build(work.recipe)
    except Exception as exc:  # noqa: BLE001 - reported to the campaign as one line
        out.error = f"{type(exc).__name__}: {exc}"
        return out
    if wrap is not None:
        build = wrap(build)
    strategy = m.make()
    if work.state is not None:
        restore_state(strategy, work.state)
    shared = {}
    history = []  # choices of the runs that changed the campaign state, in order
    kinds = set()
    start = time.perf_counter()
    try:
        for pos in range(work.count):
            before = _shared_version(shared)
            result, _ = run_once(build, strategy, work.first + pos, max_steps=work.max_steps, shared=shared)
            if result is None:
                out.exhausted = True
                break
            out.runs += 1
            out.steps += result.steps
            if getattr(result, "cut", None) is not None:
                out.cut += 1
            if result.end_reason == "pruned":
                out.pruned += 1
            new = False
            for v in result.violations:
                n = out.counts.get(v.origin, 0)
                out.counts[v.origin] = n + 1
                if n == 0:
                    prefix = tuple(history) if v.kind == "lockdep" else ()
                    elapsed = time.perf_counter() - start
                    out.findings.append((pos, v, tuple(result.choices), result.steps, elapsed, prefix))
                    kinds.add(v.kind)
                    new = True
            if _shared_version(shared) != before:
                history.append(tuple(result.choices))
            if progress is not None:
                progress(1)
            if new and work.stop_on_first:
                break
            if new and work.want and work.want <= kinds:
                break
        else:
            if getattr(strategy, "exhausted", False):
                out.exhausted = True
    except KeyboardInterrupt:
        out.interrupted = True
    out.elapsed_s = time.perf_counter() - start
    if m.systematic:
        out.state = strategy_state(strategy)
    return out


# ---------------------------------------------------------------- executors


class _Inline:
    """Units run here, one at a time, in plan order."""

    name = "inline"
    capacity = 1

    def __init__(self, on_run, wrap=None):
        self.on_run = on_run
        self.wrap = wrap
        self.done = []

    def submit(self, work):
        self.done.append(run_unit(work, progress=self.on_run, wrap=self.wrap))

    def next_done(self):
        return self.done.pop(0)

    def stop(self):
        pass


def _worker_init(parent_pid):
    # Interrupts are the campaign's business: it stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def orphan_watch():
        # A campaign killed with SIGKILL cannot stop its workers: they stop themselves.
        while True:
            time.sleep(0.5)
            try:
                os.kill(parent_pid, 0)
            except OSError:
                os._exit(1)

    threading.Thread(target=orphan_watch, daemon=True).start()


class _Processes:
    """A pool of worker processes on this machine (multiprocessing, forkserver on Linux)."""

    name = "processes"

    def __init__(self, jobs, preload=(), check=None):
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if ctx.get_start_method() == "forkserver":
            # The server imports the model once; every worker forks from it.
            ctx.set_forkserver_preload(["blkrace.engine.parallel", *preload])
        self.capacity = 2 * jobs  # one unit queued behind each running one: no worker waits for the next
        self.pool = ctx.Pool(jobs, initializer=_worker_init, initargs=(os.getpid(),))
        self.results = queue.Queue()
        self.check = check

    def submit(self, work):
        self.pool.apply_async(run_unit, (work,), callback=self.results.put, error_callback=self.results.put)

    def next_done(self):
        while True:
            try:
                res = self.results.get(timeout=0.2)
            except queue.Empty:
                if self.check is not None:
                    self.check()
                continue
            if isinstance(res, BaseException):
                raise CampaignError(f"a worker failed: {type(res).__name__}: {res}")
            return res

    def stop(self):
        """End the workers.  CPython's Pool.terminate() can hang for good when its
        task-handler thread is blocked putting a unit into the workers' pipe as
        they go (seen once in a CI run): terminate() runs in a thread of its own,
        and if it has not returned after a few seconds the workers are killed and
        the stuck thread (a daemon, as the pool's own threads are) is left behind."""
        ender = threading.Thread(target=self._terminate, name="blkrace-pool-stop", daemon=True)
        ender.start()
        ender.join(5)
        if ender.is_alive():
            for proc in list(getattr(self.pool, "_pool", ())):  # the pool's worker processes
                if proc.is_alive():
                    proc.kill()

    def _terminate(self):
        self.pool.terminate()
        self.pool.join()


def _preload(modules):
    for name in modules:
        importlib.import_module(name)


class _Dask:
    """Units as tasks on a Dask distributed cluster (``address``: its scheduler)."""

    name = "dask"

    def __init__(self, address, check=None, preload=()):
        self.check = check
        try:
            from distributed import Client, wait
        except ImportError:
            raise CampaignError("--dask needs Dask distributed: pip install 'blkrace[dask]'") from None
        try:
            self.client = address if isinstance(address, Client) else Client(address, timeout="10s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise CampaignError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self.own = not isinstance(address, Client)
        self.capacity = 2 * max(1, sum(self.client.nthreads().values()))
        # Every worker imports the model once before the first unit, as the
        # forkserver does for --jobs: a unit's time is then exploration only.
        try:
            self.client.run(_preload, ["blkrace.engine.parallel", *preload])
        except Exception as exc:  # noqa: BLE001 - a worker that cannot import the model, in one line
            raise CampaignError(f"a Dask worker cannot load the model: {type(exc).__name__}: {exc}") from None
        self.wait = wait
        self.futures = []

    def submit(self, work):
        fut = self.client.submit(run_unit, work, pure=False, key=f"blkrace-unit-{work.uid}-{time.time_ns()}")
        self.futures.append(fut)

    def next_done(self):
        while True:
            try:
                self.wait(self.futures, timeout=0.2, return_when="FIRST_COMPLETED")
            except TimeoutError:
                if self.check is not None:
                    self.check()  # a stop request: KeyboardInterrupt
                continue
            break
        fut = next(f for f in self.futures if f.done())
        self.futures.remove(fut)
        try:
            return fut.result()
        except Exception as exc:  # noqa: BLE001 - a worker's failure, named in one line
            raise CampaignError(f"a Dask worker failed: {type(exc).__name__}: {exc}") from None

    def stop(self):
        if self.futures:
            self.client.cancel(self.futures)
        self.futures = []
        if self.own:
            self.client.close()


# ----------------------------------------------------------------- campaign


def run_campaign(
    make_build,
    recipe,
    members,
    budget,
    *,
    jobs=1,
    dask=None,
    store=None,
    stop_on_first=True,
    want=None,
    max_steps=50_000,
    progress=None,
    time_limit_s=None,
    inline_s=1.0,
    strategy_name=None,
    stop=None,
):
    """Run a campaign of ``budget`` runs of ``members``; merged findings, first per signature.

    ``jobs``: worker processes (1: all in this process).  The first
    ``inline_s`` seconds run in this process anyway: a campaign that ends
    sooner never pays for starting workers.  ``dask``: a scheduler address
    (or a ``distributed.Client``); units then run on that cluster.
    ``store``: a ``CampaignStore`` whose finished units are read back instead
    of run again, and to which every unit is written as it comes back.
    ``progress(runs done, findings)`` is called as runs finish.  ``stop``: a
    stop request (``guard(build)``, ``check()``, raising KeyboardInterrupt once
    a signal came) that the caller installed; without one, SIGTERM raises
    KeyboardInterrupt as SIGINT does while the campaign runs.
    """
    units = plan(members, budget)
    want = frozenset(want) if want else None
    label = strategy_name or (members[0].label if len(members) == 1 else "portfolio")
    out = PortfolioResult(strategy=label, jobs=jobs)
    for m in members:
        out.members[m.label] = {"runs": 0, "pruned": 0, "exhausted": False}
    results = dict(store.completed()) if store is not None else {}
    out.resumed_units = len(results)
    campaign_start = time.time()
    perf_start = time.perf_counter()
    runs_done = [0]

    def on_run(n):
        runs_done[0] += n
        if progress is not None:
            progress(runs_done[0], len(out.findings))

    wrap = stop.guard if stop is not None else None
    check = stop.check if stop is not None else None
    executor = _Dask(dask, check, preload=[make_build.__module__]) if dask is not None else _Inline(on_run, wrap)
    out.backend = executor.name
    inflight = set()
    next_submit = 0
    merger = _Merger(out, units, members, campaign_start, stop_on_first, want, store, set(results))
    stopped_by = None
    old_term = _on_sigterm() if stop is None else None
    try:
        merger.merge_ready(results)
        while not merger.finished:
            if time_limit_s is not None and time.perf_counter() - perf_start > time_limit_s:
                break
            if (
                jobs > 1
                and isinstance(executor, _Inline)
                and time.perf_counter() - perf_start > inline_s
                and merger.next < len(units)
            ):
                executor = _Processes(jobs, preload=[make_build.__module__], check=check)
                out.backend = executor.name
            # Submit in plan order, a little ahead of the merge point; a systematic
            # member's next unit waits for the frontier of the one before it.
            window = merger.next + 2 * executor.capacity + len(members)
            next_submit = max(next_submit, merger.next)
            progressed = True
            while progressed and len(inflight) < executor.capacity:
                progressed = False
                for u in units[next_submit:window]:
                    if u.uid in results or u.uid in inflight:
                        continue
                    m = members[u.member]
                    state = None
                    if m.systematic:
                        prev = _previous(units, u)
                        if prev is not None:
                            if prev.uid not in results:
                                continue  # its frontier is not back yet
                            if results[prev.uid].exhausted:
                                continue  # the chain has ended
                            state = results[prev.uid].state
                    work = Work(
                        make_build, recipe, m.as_dict(), u.uid, u.first, u.count, state, stop_on_first, want, max_steps
                    )
                    inflight.add(u.uid)
                    executor.submit(work)
                    progressed = True
                    break
            if not inflight:
                break  # nothing runnable: the chains ended before the plan
            res = executor.next_done()
            inflight.discard(res.uid)
            if res.error:
                raise CampaignError(res.error)
            if res.interrupted:
                results[res.uid] = res
                raise KeyboardInterrupt
            results[res.uid] = res
            if not isinstance(executor, _Inline):
                on_run(res.runs)
            merger.merge_ready(results)
        stopped_by = merger.stopped_by
    except KeyboardInterrupt:
        out.interrupted = True
    finally:
        executor.stop()
        _restore_sigterm(old_term)
    if out.interrupted:
        # Lose nothing found: merge every unit that came back, in plan order, past any gap.
        merger.merge_all(results)
    # A space is proved only if no run of the campaign was cut by the engine.
    out.exhausted = stopped_by == "exhausted" and out.cut == 0
    # The bound of the systematic member (dfs, dpor): what an exhausted claim is within.
    out.bound = next((m.options.get("preemption_bound") for m in members if m.systematic), None)
    out.elapsed_s = time.perf_counter() - perf_start
    return out


def _previous(units, unit):
    """The unit of the same member just before ``unit`` in the plan (None for its first)."""
    for u in reversed(units[: unit.uid]):
        if u.member == unit.member:
            return u
    return None


class _Merger:
    """Folds unit results into the campaign's result in plan order, and applies the stop rules."""

    def __init__(self, out, units, members, campaign_start, stop_on_first, want, store, resumed):
        self.store = store
        self.resumed = resumed  # uids read back from the store
        self.out = out
        self.units = units
        self.members = members
        self.campaign_start = campaign_start
        self.stop_on_first = stop_on_first
        self.want = want
        self.next = 0  # the next uid to merge
        self.offset = 0  # runs merged so far: the schedule index of the next unit's first run
        self.by_origin = {}
        self.finished = False
        self.stopped_by = None
        self.merged = set()

    def merge_ready(self, results):
        while not self.finished and self.next < len(self.units) and self.next in results:
            res = results[self.next]
            if self.store is not None and res.uid not in self.resumed:
                self.store.save(res)  # on disk before it counts, in plan order
            self._merge(res)
            self.next += 1
            self._check_stop(res)
        if self.next >= len(self.units):
            self.finished = True

    def merge_all(self, results):
        for uid in sorted(results):
            if uid not in self.merged:
                self._merge(results[uid])

    def _merge(self, res):
        out = self.out
        self.merged.add(res.uid)
        stats = out.members[res.label]
        stats["runs"] += res.runs
        stats["pruned"] += res.pruned
        stats["exhausted"] = stats["exhausted"] or res.exhausted
        out.runs += res.runs
        out.pruned += res.pruned
        out.cut += res.cut
        out.steps += res.steps
        out.units += 1
        for origin, n in res.counts.items():
            if origin in self.by_origin:
                self.by_origin[origin].count += n
        for pos, v, choices, steps, elapsed, prefix in res.findings:
            if v.origin in self.by_origin:
                continue
            when = max(0.0, res.started - self.campaign_start) + elapsed if res.started else elapsed
            f = PortfolioFinding(
                v, choices, self.offset + pos, steps, when, prefix, res.label, res.counts.get(v.origin, 1), res.uid
            )
            self.by_origin[v.origin] = f
            out.findings.append(f)
        self.offset += res.runs

    def _check_stop(self, res):
        kinds = {f.violation.kind for f in self.out.findings}
        if self.stop_on_first and self.out.findings:
            self.finished, self.stopped_by = True, "found"
        elif self.want and self.want <= kinds:
            self.finished, self.stopped_by = True, "found"
        elif res.exhausted:
            self.finished, self.stopped_by = True, "exhausted"


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _on_sigterm():
    """SIGTERM behaves like SIGINT while a campaign runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def _restore_sigterm(old):
    if old is not None:
        signal.signal(signal.SIGTERM, old)
