"""Campaigns of a scenario variant at scale: the portfolio, worker processes, Dask, the store.

The layer above the scenarios that ties them to ``engine/parallel.py``: it
turns a variant into a build recipe (``scenarios/recipe.py``), chooses the
members (one strategy, or the default portfolio), opens the variant's
campaign in a store, and runs it.  The command line only passes options.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from blkrace.engine.campaign import explore
from blkrace.engine.parallel import CampaignError, run_campaign
from blkrace.engine.portfolio import PORTFOLIO, member, portfolio
from blkrace.engine.split import run_split, splittable
from blkrace.engine.store import CampaignStore, StoreError
from blkrace.engine.strategy import DPOR
from blkrace.scenarios.recipe import RecipeError, build_of, recipe_of

__all__ = [
    "PORTFOLIO",
    "Proof",
    "ScaleError",
    "default_jobs",
    "findings_report",
    "open_store",
    "prove_bounded",
    "run_scaled",
]


class ScaleError(Exception):
    """Bad input for a campaign (a store, a cluster, a worker): one line for the user."""


def default_jobs():
    """This machine's cores (those this process may run on)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def members_of(strategy_name, seed, *, depth=3, preemption_bound=2):
    if strategy_name == PORTFOLIO:
        return portfolio(seed, preemption_bound=preemption_bound)
    return [member(strategy_name, seed, depth=depth, preemption_bound=preemption_bound)]


def open_store(path):
    try:
        return CampaignStore(path)
    except StoreError as exc:
        raise ScaleError(str(exc)) from None


def _recipe(scenario, variant, options):
    preempt = options.get("preempt")
    preemptive = scenario.preempt_of(variant) if preempt is None else preempt
    return recipe_of(
        scenario,
        variant,
        lockdep=options.get("lockdep", True),
        preempt=preemptive,
        params=options.get("params") or {},
        memory_model=options.get("memory_model"),
    )


@dataclass
class ProofStep:
    """One bound of a proof: DPOR's search at preemption bound ``bound``."""

    bound: int
    schedules: int
    elapsed_s: float
    exhausted: bool  # every run within the bound explored, none cut by the engine
    cut: int  # runs the engine cut (step bound, fairness): then never exhausted
    findings: list = field(default_factory=list)  # engine Findings (a proof that failed)
    stored: bool = False  # taken from the campaign store (--resume), not searched again

    def as_json(self):
        return {
            "bound": self.bound,
            "schedules": self.schedules,
            "elapsed_s": round(self.elapsed_s, 4),
            "exhausted": self.exhausted,
            "cut": self.cut,
            "found": sorted({f.violation.kind for f in self.findings}),
            "stored": self.stored,
        }


@dataclass
class Proof:
    """Bounded verification of one variant: bounds 0, 1, 2, ... in turn."""

    seconds: float  # the time it was given
    max_bound: int  # the highest bound it was to try
    steps: list = field(default_factory=list)
    interrupted: bool = False

    @property
    def bound(self):
        """The largest preemption bound whose space was exhausted without a
        finding (every lower one too: each is a subset), or None."""
        best = None
        for step in self.steps:
            if not step.exhausted or step.findings:
                break
            best = step.bound
        return best

    @property
    def findings(self):
        return [f for step in self.steps for f in step.findings]

    def verdict(self):
        """A few words for a summary table: "bound k", "none", or "no: found at bound k"."""
        last = self.steps[-1] if self.steps else None
        if last is not None and last.findings:
            return f"no: found at bound {last.bound}"
        return "none" if self.bound is None else f"bound {self.bound}"

    def as_json(self):
        return {
            "seconds": self.seconds,
            "max_bound": self.max_bound,
            "bound": self.bound,
            "bounds": [step.as_json() for step in self.steps],
            "interrupted": self.interrupted,
        }


def prove_bounded(scenario, variant, *, seconds, max_bound, max_steps, options, progress=None):
    """Search ``variant`` exhaustively with DPOR at preemption bound 0, then
    1, 2, ... up to ``max_bound``, each in what is left of ``seconds``;
    stop at the first bound not exhausted in time, cut by the engine, or
    with a finding.  ``progress(bound, done)`` after each run.

    With ``jobs`` > 1 (or ``dask``) each bound's search is split across the
    workers (engine/split.py): the same runs and findings as one process.

    With a store (``options["store"]``) each finished bound is written to it
    as it ends; with ``resume`` the bounds it holds as exhausted without a
    finding are taken from it, not searched again (their space is the same:
    the campaign's recipe is pinned)."""
    recipe = _recipe(scenario, variant, options)
    stop = options.get("stop")
    jobs = options.get("jobs", 1)
    dask = options.get("dask")
    store = options.get("store")
    name = f"{scenario.token_ref}/{variant.name}"
    stored = {}
    if store is not None and options.get("resume", False):
        stored = {row["bound"]: row for row in store.proof_bounds(name)}
    proof = Proof(seconds, max_bound)
    deadline = time.monotonic() + seconds
    for bound in range(max_bound + 1):
        row = stored.get(bound)
        if row is not None and row["exhausted"] and not row["found"] and not row["cut"]:
            proof.steps.append(ProofStep(bound, row["schedules"], row["elapsed_s"], True, 0, [], stored=True))
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        tick = (lambda done, _found, b=bound: progress(b, done)) if progress is not None else None
        try:
            if jobs > 1 or dask:
                r = run_split(
                    build_of,
                    recipe,
                    member("dpor", 0, preemption_bound=bound),
                    10**12,
                    jobs=jobs,
                    dask=dask,
                    stop_on_first=True,
                    max_steps=max_steps,
                    progress=tick,
                    time_limit_s=left,
                    stop=stop,
                )
            else:
                build = build_of(recipe)
                r = explore(
                    stop.guard(build) if stop is not None else build,
                    DPOR(preemption_bound=bound),
                    10**12,
                    stop_on_first=True,
                    max_steps=max_steps,
                    progress=tick,
                    time_limit_s=left,
                )
        except (CampaignError, RecipeError) as exc:
            raise ScaleError(str(exc)) from None
        step = ProofStep(bound, r.schedules, r.elapsed_s, r.exhausted, r.cut, list(r.findings))
        proof.steps.append(step)
        if r.interrupted:
            proof.interrupted = True  # a bound cut short is not kept: a resumed proof searches it again
            break
        if store is not None:
            try:
                store.save_proof_bound(name, step)
            except StoreError as exc:
                raise ScaleError(str(exc)) from None
        if r.findings or not r.exhausted:
            break
    return proof


def run_scaled(
    scenario,
    variant,
    *,
    strategy_name,
    schedules,
    seed,
    stop_on_first,
    want,
    max_steps,
    progress,
    options,
    token_of=None,
):
    """One variant's campaign; ``options`` as the command line gathers them."""
    recipe = _recipe(scenario, variant, options)
    members = members_of(
        strategy_name, seed, depth=options.get("depth", 3), preemption_bound=options.get("preemption_bound", 2)
    )
    campaign = None
    store = options.get("store")
    try:
        if store is not None:
            settings = {
                "recipe": recipe,
                "members": [m.as_dict() for m in members],
                "schedules": schedules,
                "stop_on_first": stop_on_first,
                "want": sorted(want or ()),
                "max_steps": max_steps,
            }
            campaign = store.campaign(
                f"{scenario.token_ref}/{variant.name}", settings, resume=options.get("resume", False), token_of=token_of
            )
        jobs = options.get("jobs", 1)
        if campaign is None and len(members) == 1 and splittable(members[0]) and (jobs > 1 or options.get("dask")):
            # One DPOR search over every worker: its subtrees (engine/split.py).
            return run_split(
                build_of,
                recipe,
                members[0],
                schedules,
                jobs=jobs,
                dask=options.get("dask"),
                stop_on_first=stop_on_first,
                want=want,
                max_steps=max_steps,
                progress=progress,
                stop=options.get("stop"),
                strategy_name=strategy_name,
            )
        return run_campaign(
            build_of,
            recipe,
            members,
            schedules,
            jobs=options.get("jobs", 1),
            dask=options.get("dask"),
            store=campaign,
            stop_on_first=stop_on_first,
            want=want,
            max_steps=max_steps,
            progress=progress,
            strategy_name=strategy_name,
            stop=options.get("stop"),
        )
    except (CampaignError, StoreError, RecipeError) as exc:
        raise ScaleError(str(exc)) from None


def findings_report(path):
    """What a store holds: per campaign, the runs per strategy and the findings by signature."""
    if not Path(path).is_file():
        raise ScaleError(f"no campaign store at {path}")
    store = open_store(path)
    try:
        out = []
        for name, params in store.campaigns():
            out.append(
                {
                    "campaign": name,
                    "schedules": params.get("schedules"),
                    "explored": store.explored(name),
                    "findings": store.findings(name),
                    "proof": store.proof_bounds(name),
                }
            )
        return out
    except Exception as exc:  # noqa: BLE001 - a damaged file is bad input, named in one line
        raise ScaleError(f"{path}: cannot read the campaign store ({type(exc).__name__}: {exc})") from None
    finally:
        store.close()
