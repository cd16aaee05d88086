"""One DPOR search split into subtrees that run at once (``--strategy dpor --jobs N``, ``--dask``).

A DPOR search is a tree of choices explored depth first.  Run alone it is one
chain of units (engine/parallel.py), each continuing from the frontier the
one before it handed back: one core.  Split, it is explored as the
subtrees below the options the search has still to try:

1. The first unit explores ``SEED_RUNS`` runs of the whole tree, as a search
   run alone would.  Its path (the nodes from the root to where it stopped,
   each with the options races asked for) becomes the *top*.
2. Every option of the top still to try becomes an *item*: a copy of the top
   down to that node, the option chosen there, and a floor under which the
   item's DPOR never backtracks (``DPOR.floor``).  An item explores its
   subtree in units of ``UNIT_RUNS`` runs, each continuing the one before.
3. A race found in a subtree may ask for an option at a node of the top
   (above the floor).  The item hands the request back (``DPOR.forwarded``)
   instead of exploring it; the coordinator applies it to the top as the
   search run alone would have (an option already asked for there is not
   asked again) and makes a new item of each new option.
4. The space is exhausted when the first unit and every item are, and no run
   was cut.

This is source-DPOR with the order in which backtrack points are explored
changed, which the algorithm allows: every race still gets a reversal at the
node before its first event.  Under a preemption bound the extra points of
bounded POR that a request to the top implies are asked for by the item,
which has the run's events, for every initial the coordinator might pick.

Determinism.  Units are numbered when they are made, and they are made only
while results are merged, in number order, whatever order they come back
in: the same search gives the same units, the same findings, the same
schedule numbers and the same tokens with one worker or many.  A unit's
budget is fixed when it is made, from the budget no unit has been given yet.

Not split: a search with sleep sets (no preemption bound) would put to sleep
in an item's subtree options that another item has not finished; with a
store (``--store``) the search runs as one chain, as before.
"""

from __future__ import annotations

import copy
import time

from blkrace.engine.parallel import (
    CampaignError,
    PortfolioResult,
    Work,
    _Dask,
    _Inline,
    _Merger,
    _on_sigterm,
    _Processes,
    _restore_sigterm,
)
from blkrace.engine.portfolio import Member

SEED_RUNS = 64  # runs of the whole tree before it is split
UNIT_RUNS = 256  # runs of a subtree per unit


def splittable(member):
    """A DPOR member under a preemption bound (see the module docstring)."""
    return member.name == "dpor" and member.options.get("preemption_bound") is not None


class _Top:
    """The top of the search tree and what is still to try there."""

    def __init__(self, path, bound):
        self.path = path
        self.bound = bound

    def allowed(self, node, index):
        if node.data:
            return True
        prev = node.prev
        preempt = node.preempt + (1 if prev is not None and node.actors[index] != prev else 0)
        return self.bound is None or preempt <= self.bound

    def pending(self):
        """(node index, option) of every option still to try, in path order."""
        items = []
        last = len(self.path) - 1
        for i, node in enumerate(self.path):
            if node.data:
                first = node.chosen if i == last else node.chosen + 1
                items.extend((i, v) for v in range(first, node.options))
                continue
            options = [node.chosen] if i == last else []
            for actor in node.backtrack:
                idx = node.actors.index(actor)
                if idx != node.chosen and idx not in node.done and self.allowed(node, idx):
                    options.append(idx)
            items.extend((i, idx) for idx in options)
        return items

    def request(self, kind, i, what):
        """Apply one forwarded request; the new options it makes (node index, option)."""
        node = self.path[i]
        if kind == "ask":
            actors = [what] if what in node.actors else []
        else:  # "initials": as DPOR._add_backtrack() decides under a bound: every usable one
            usable = [a for a in what if a in node.actors]
            actors = usable or list(node.actors)  # no usable initial: DPOR's fallback, every option
        new = []
        for a in actors:
            if a in node.backtrack:
                continue
            node.backtrack.append(a)
            idx = node.actors.index(a)
            if self.allowed(node, idx):
                new.append((i, idx))
        return new

    def item_state(self, i, option):
        """The carried state of a new item: the top down to node ``i``, ``option`` chosen there."""
        path = copy.deepcopy(self.path[: i + 1])
        node = path[i]
        node.chosen = option
        node.done = []
        if not node.data:
            node.backtrack = [node.actors[option]]
        return {
            "bound": self.bound,
            "path": path,
            "exhausted": False,
            "pruned": 0,
            "races": 0,
            "fallbacks": 0,
            "floor": i + 1,
            "forwarded": [],
        }


def run_split(
    make_build,
    recipe,
    member,
    budget,
    *,
    jobs=1,
    dask=None,
    stop_on_first=True,
    want=None,
    max_steps=50_000,
    progress=None,
    time_limit_s=None,
    stop=None,
    strategy_name=None,
):
    """A DPOR campaign of ``budget`` runs, its tree split across ``jobs`` workers (or a Dask cluster).

    ``strategy_name``: how the result names the strategy (the member's label by default)."""
    if not splittable(member):
        raise CampaignError(f"{member.label} cannot be split: only DPOR under a preemption bound")
    want = frozenset(want) if want else None
    label = member.label
    out = PortfolioResult(strategy=strategy_name or label, jobs=jobs)
    out.members[label] = {"runs": 0, "pruned": 0, "exhausted": False}
    out.bound = member.options.get("preemption_bound")
    campaign_start = time.time()
    perf_start = time.perf_counter()
    check = stop.check if stop is not None else None
    wrap = stop.guard if stop is not None else None
    runs_done = [0]

    def on_run(n):
        runs_done[0] += n
        if progress is not None:
            progress(runs_done[0], len(out.findings))

    if dask is not None:
        executor = _Dask(dask, check, preload=[make_build.__module__])
    elif jobs > 1:
        executor = _Processes(jobs, preload=[make_build.__module__], check=check)
    else:
        executor = _Inline(on_run, wrap)
    out.backend = executor.name
    md = member.as_dict()
    units = []  # uid -> carried state (None: the first unit)
    counts = []  # uid -> runs it may do
    given = [0]  # runs given to units so far
    refused = [False]  # a unit the budget left no runs for: the space is not all explored

    def make_unit(state, count):
        count = min(count, budget - given[0])
        if count <= 0:
            refused[0] = True
            return False
        given[0] += count
        units.append(state)
        counts.append(count)
        return True

    make_unit(None, SEED_RUNS)
    top = None
    results = {}
    inflight = set()
    next_submit = 0
    next_merge = 0
    # Findings are folded as the portfolio's merger folds a unit (first per
    # signature, counts, schedule numbers); the stop rules are the split's own.
    merger = _Merger(out, (), [member], campaign_start, stop_on_first, want, None, set())
    stopped = False
    old_term = _on_sigterm() if stop is None else None
    try:
        while next_merge < len(units) and not stopped:
            if time_limit_s is not None and time.perf_counter() - perf_start > time_limit_s:
                break
            while next_submit < len(units) and len(inflight) < executor.capacity:
                work = Work(
                    make_build,
                    recipe,
                    md,
                    next_submit,
                    0,
                    counts[next_submit],
                    units[next_submit],
                    stop_on_first,
                    want,
                    max_steps,
                )
                inflight.add(next_submit)
                executor.submit(work)
                next_submit += 1
            res = executor.next_done()
            inflight.discard(res.uid)
            if res.error:
                raise CampaignError(res.error)
            results[res.uid] = res
            if not isinstance(executor, _Inline):
                on_run(res.runs)
            if res.interrupted:
                raise KeyboardInterrupt
            while next_merge in results and not stopped:
                res = results.pop(next_merge)
                units[next_merge] = None  # the carried path is not needed any more
                merger._merge(res)
                stopped = _stopped(out, stop_on_first, want)
                state = res.state or {}
                forwarded = state.get("forwarded", [])
                state["forwarded"] = []
                if next_merge == 0:
                    if not res.exhausted:
                        top = _Top(copy.deepcopy(state["path"]), out.bound)
                        for i, option in top.pending():
                            make_unit(top.item_state(i, option), UNIT_RUNS)
                else:
                    if not res.exhausted:
                        make_unit(state, UNIT_RUNS)
                    for kind, i, what in forwarded:
                        for j, option in top.request(kind, i, what):
                            make_unit(top.item_state(j, option), UNIT_RUNS)
                next_merge += 1
        finished = next_merge == len(units) and not refused[0]
    except KeyboardInterrupt:
        out.interrupted = True
        finished = False
        for uid in sorted(results):
            merger._merge(results[uid])
    finally:
        executor.stop()
        _restore_sigterm(old_term)
    # Every unit merged, none left to make, none stopped early: every subtree is done.
    out.exhausted = finished and not stopped and not out.interrupted and out.cut == 0
    out.members[label]["exhausted"] = out.exhausted
    out.elapsed_s = time.perf_counter() - perf_start
    return out


def _stopped(out, stop_on_first, want):
    """A stop rule of the campaign (the first finding, every wanted kind) holds."""
    if stop_on_first and out.findings:
        return True
    return bool(want and want <= {f.violation.kind for f in out.findings})


__all__ = ["SEED_RUNS", "UNIT_RUNS", "Member", "run_split", "splittable"]
