"""A portfolio of strategies, and the plan that cuts a campaign into units of work.

No single strategy sees every race: PCT's change points keep one task
descheduled across a long window of the others, which a uniform random walk
almost never does, while a random walk reaches quickly what a fixed priority
order skips; a systematic search (DPOR, or DFS with sleep sets, within a
preemption bound) finishes small spaces that sampling only visits.  The
portfolio runs several side by side and names, for every finding, the member
that found it.

A campaign is a list of **units**: runs ``first .. first + count - 1`` of one
member.  The list (the plan) depends only on the members and the budget,
never on how many workers run it, so a campaign finds the same things for the
same seed on one process, N processes or a cluster: each unit starts from
fresh strategy and campaign state, and results are merged in plan order.

- A sampling member (PCT, random walk) seeds every run from its own index,
  so its units are independent: any worker can run any of them.
- A systematic member (one with an ``exhausted`` attribute: DFS, DPOR) keeps
  its search frontier from run to run, so its units form a chain: unit r+1
  starts from the frontier unit r handed back (the strategy's public
  attributes, or ``get_state()``/``set_state()`` when it has them), and the
  chain ends when the space is exhausted.

Units grow geometrically (8, 16, 32, ... runs, up to 512) round by round,
every member getting one unit per round: the first finding of any member
comes early, and later units are coarse enough (a second or more) to be worth
shipping to a process or a cluster node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from blkrace.engine.strategy import STRATEGIES, make_strategy

PORTFOLIO = "portfolio"
FIRST_UNIT = 8
MAX_UNIT = 512


@dataclass(frozen=True)
class Member:
    """One strategy of a campaign: ``name`` for make_strategy, with its options and seed."""

    label: str  # how reports name it: "pct-d3", "random", "dfs-pb2"
    name: str
    seed: int = 0
    options: dict = field(default_factory=dict, hash=False, compare=False)
    systematic: bool = False

    def make(self):
        return make_strategy(self.name, self.seed, **self.options)

    def as_dict(self):
        return {
            "label": self.label,
            "name": self.name,
            "seed": self.seed,
            "options": dict(self.options),
            "systematic": self.systematic,
        }

    @classmethod
    def from_dict(cls, d):
        return cls(d["label"], d["name"], d["seed"], dict(d["options"]), d["systematic"])


def _is_systematic(name, options):
    return hasattr(make_strategy(name, 0, **options), "exhausted")


def member(name, seed=0, *, depth=3, preemption_bound=2):
    """A campaign of one strategy (``--strategy pct`` and the like)."""
    options = {"depth": depth, "preemption_bound": preemption_bound}
    pb = "" if preemption_bound is None else f"-pb{preemption_bound}"
    label = {"pct": f"pct-d{depth}", "dfs": f"dfs{pb}", "sdfs": f"sdfs{pb}", "dpor": f"dpor{pb}"}
    return Member(label.get(name, name), name, seed, options, _is_systematic(name, options))


def portfolio(seed=0, *, preemption_bound=2):
    """The default members: PCT at depths 3 and 2, a random walk, PCT at depth 5, and a
    systematic search (DPOR when this engine has it, else DFS with sleep sets).

    The first member runs with the campaign's own seed, so its runs are those of
    ``--strategy pct --seed S``; the others get seeds derived from it.
    """
    sampling = [("pct", {"depth": 3}, "pct-d3"), ("random", {}, "random"), ("pct", {"depth": 2}, "pct-d2")]
    sampling.append(("pct", {"depth": 5}, "pct-d5"))
    systematic = "dpor" if "dpor" in STRATEGIES else "dfs"
    members = []
    for i, (name, opts, label) in enumerate(sampling):
        members.append(Member(label, name, seed + 1_000_003 * i, {"preemption_bound": preemption_bound, **opts}))
    opts = {"preemption_bound": preemption_bound, "depth": 3}
    members.append(Member(f"{systematic}-pb{preemption_bound}", systematic, seed, opts, True))
    return members


@dataclass(frozen=True)
class Unit:
    uid: int  # position in the plan; results merge in this order
    member: int  # index into the campaign's members
    round: int
    first: int  # the member's own index of the unit's first run
    count: int


def plan(members, budget, *, first_unit=FIRST_UNIT, max_unit=MAX_UNIT):
    """Every unit of a campaign of ``budget`` runs, in merge order.

    A round gives every member one unit; the unit size doubles each round up
    to ``max_unit``.  The last round is cut to the budget (in member order).
    """
    units = []
    nexts = [0] * len(members)
    left = budget
    rnd = 0
    while left > 0:
        size = min(first_unit << min(rnd, 30), max_unit)
        for m in range(len(members)):
            count = min(size, left)
            if count <= 0:
                break
            units.append(Unit(len(units), m, rnd, nexts[m], count))
            nexts[m] += count
            left -= count
        rnd += 1
    return units


def strategy_state(strategy):
    """What a systematic strategy carries from one unit to the next (picklable).

    ``get_state()`` when the strategy has it; otherwise its public attributes
    (by convention the private ones are per-run scratch that ``start_run``
    resets, such as DFS's execution and object ids).
    """
    if hasattr(strategy, "get_state"):
        return strategy.get_state()
    return {k: v for k, v in vars(strategy).items() if not k.startswith("_")}


def restore_state(strategy, state):
    if hasattr(strategy, "set_state"):
        strategy.set_state(state)
    else:
        vars(strategy).update(state)
    return strategy
