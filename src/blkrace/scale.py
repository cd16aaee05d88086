"""Campaigns of a scenario variant at scale: the portfolio, worker processes, Dask, the store.

The layer above the scenarios that ties them to ``engine/parallel.py``: it
turns a variant into a build recipe (``scenarios/recipe.py``), chooses the
members (one strategy, or the default portfolio), opens the variant's
campaign in a store, and runs it.  The command line only passes options.
"""

from __future__ import annotations

import os
from pathlib import Path

from blkrace.engine.parallel import CampaignError, run_campaign
from blkrace.engine.portfolio import PORTFOLIO, member, portfolio
from blkrace.engine.split import run_split, splittable
from blkrace.engine.store import CampaignStore, StoreError
from blkrace.scenarios.recipe import RecipeError, build_of, recipe_of

__all__ = ["PORTFOLIO", "ScaleError", "default_jobs", "findings_report", "open_store", "run_scaled"]


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
    preempt = options.get("preempt")
    preemptive = scenario.preempt_of(variant) if preempt is None else preempt
    params = options.get("params") or {}
    recipe = recipe_of(
        scenario,
        variant,
        lockdep=options.get("lockdep", True),
        preempt=preemptive,
        params=params,
        memory_model=options.get("memory_model"),
    )
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
                }
            )
        return out
    except Exception as exc:  # noqa: BLE001 - a damaged file is bad input, named in one line
        raise ScaleError(f"{path}: cannot read the campaign store ({type(exc).__name__}: {exc})") from None
    finally:
        store.close()
