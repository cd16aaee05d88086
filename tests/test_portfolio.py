"""The portfolio and the plan: members, units, and a campaign's result naming who found what."""

from math import comb

import pytest

from blkrace.engine import portfolio as pf
from blkrace.engine.campaign import explore
from blkrace.engine.parallel import run_campaign
from blkrace.engine.strategy import make_strategy
from scalekit import build_enginekit


def test_plan_spends_the_budget_exactly_in_growing_rounds():
    members = pf.portfolio(0)
    for budget in (1, 7, 40, 1000, 12345):
        units = pf.plan(members, budget)
        assert sum(u.count for u in units) == budget
        assert [u.uid for u in units] == list(range(len(units)))
        # every member's units cover its own indices contiguously from 0
        for m in range(len(members)):
            mine = [u for u in units if u.member == m]
            assert [u.first for u in mine] == [sum(x.count for x in mine[:i]) for i in range(len(mine))]
    sizes = [u.count for u in pf.plan(members, 100_000) if u.member == 0]
    assert sizes[:7] == [8, 16, 32, 64, 128, 256, 512] and max(sizes) == pf.MAX_UNIT


def test_default_portfolio_has_pct_depths_random_and_a_systematic_search():
    members = pf.portfolio(5)
    names = [(m.name, m.options.get("depth")) for m in members if not m.systematic]
    assert ("random", None) in names and ("pct", 3) in names and ("pct", 2) in names
    assert members[0].name == "pct" and members[0].seed == 5  # the runs of --strategy pct --seed 5
    assert len({m.seed for m in members if not m.systematic}) == len(names)
    (systematic,) = [m for m in members if m.systematic]
    assert systematic.name == "dpor"


def test_dpor_joins_the_portfolio_when_the_engine_has_it(monkeypatch):
    monkeypatch.setattr(pf, "STRATEGIES", (*pf.STRATEGIES, "dpor"))
    (systematic,) = [m for m in pf.portfolio(0, preemption_bound=3) if m.systematic]
    assert systematic.name == "dpor" and systematic.label == "dpor-pb3"


def test_the_finding_names_the_member_that_found_it():
    res = run_campaign(build_enginekit, {"model": "build_abba"}, pf.portfolio(0), 400, stop_on_first=False)
    assert res.findings and res.strategy == "portfolio"
    labels = {m.label for m in pf.portfolio(0)}
    for f in res.findings:
        assert f.strategy in labels and f.count >= 1
    assert set(res.members) == labels
    assert sum(s["runs"] for s in res.members.values()) == res.runs


@pytest.mark.parametrize("a,b", [(3, 3), (4, 3), (5, 4)])
def test_a_dfs_chain_cut_into_units_explores_what_one_dfs_explores(a, b):
    # The frontier handed from unit to unit: the same schedules, the space exhausted once.
    alone = explore(
        build_enginekit({"model": "build_writers", "args": [a, b]}),
        make_strategy("dfs", preemption_bound=None),
        10_000,
        stop_on_first=False,
    )
    m = pf.member("dfs", preemption_bound=None)
    res = run_campaign(build_enginekit, {"model": "build_writers", "args": [a, b]}, [m], 10_000, stop_on_first=False)
    assert res.exhausted and alone.exhausted
    assert res.schedules == alone.schedules == comb(a + b, a)
    assert res.units > 1
