"""The latency check is sound: time the engine lets pass cannot fake a late bio.

Idle time (Execution.idle_ns) is the virtual time during which no task could
run.  The tutorial's scenario gives a fixed kernel (no read is ever late)
and a buggy one (a read stranded until a debugfs kick a second later).
"""

import functools
import sys
from dataclasses import replace

import pytest

from blkrace.engine import NSEC_PER_MSEC, READ, access, sleep
from blkrace.engine.campaign import explore, run_once
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios import latency
from blkrace.scenarios.loader import load_file
from enginekit import Cell
from test_tutorial import tutorial_block


def test_idle_time_is_the_time_nobody_could_run():
    def build(ex):
        async def sleeper():
            await access(None)
            await sleep(5 * NSEC_PER_MSEC)

        ex.spawn(sleeper(), "sleeper", lane=0)

    result, ex = run_once(build, make_strategy("random", 0))
    assert result.time_ns == ex.idle_ns == 5 * NSEC_PER_MSEC


def test_time_that_passes_while_a_task_spins_is_not_idle():
    def build(ex):
        cell = Cell("flag")

        async def sleeper():
            await access(cell, READ)
            await sleep(50 * NSEC_PER_MSEC)

        async def spinner():
            for _ in range(400):
                await access(cell, READ)

        ex.spawn(sleeper(), "sleeper", lane=0)
        ex.spawn(spinner(), "spinner", lane=1)

    for seed in range(5):
        result, ex = run_once(build, make_strategy("random", seed))
        assert result.time_ns == 50 * NSEC_PER_MSEC
        # 400 steps of spinning let about 20 ms pass every 20 steps: the sleep
        # is over before the spinner is, so little or none of it was idle.
        assert ex.idle_ns < 50 * NSEC_PER_MSEC


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory):
    path = tmp_path_factory.mktemp("latency") / "my_race.py"
    path.write_text(tutorial_block())
    return load_file(str(path))


def _with_clock(monkeypatch, scenario, clock):
    module = sys.modules[type(scenario).__module__]
    monkeypatch.setattr(module, "LatencyWatch", functools.partial(latency.LatencyWatch, clock=clock))


def test_plain_virtual_time_would_report_the_fixed_kernel_late(tutorial, monkeypatch):
    # Why the check measures idle time: under the default 20 ms unfairness
    # bound, a read of the fixed kernel "takes" 20 ms of virtual time.
    _with_clock(monkeypatch, tutorial, "virtual")
    found = explore(tutorial.builder(tutorial.variants["fixed-kicked"]), make_strategy("pct", 0), 2000)
    assert found.kinds() == ["latency"]
    assert "of virtual time" in found.findings[0].violation.message


@pytest.mark.parametrize(
    "limits",
    [{}, {"max_delay_ns": 200 * NSEC_PER_MSEC, "spin_steps": 1}],
    ids=["default-limits", "200ms-unfairness-time-passes-every-step"],
)
@pytest.mark.parametrize("strategy", ["pct", "random"])
def test_idle_time_never_reports_the_fixed_kernel_late(tutorial, limits, strategy):
    variant = replace(tutorial.variants["fixed-kicked"], limits=limits)
    found = explore(tutorial.builder(variant), make_strategy(strategy, 1), 1500)
    assert found.findings == [] and found.schedules == 1500


def test_idle_time_reports_the_stranded_read_late(tutorial):
    found = explore(tutorial.builder(tutorial.variants["buggy-kicked"]), make_strategy("pct", 0), 2000)
    assert found.kinds() == ["latency"]
    message = found.findings[0].violation.message
    assert message.startswith("bio:") and "of idle time (bound 10.000 ms" in message
    idle_ms = float(message.split(" took ")[1].split(" ms")[0])
    assert idle_ms > 500  # most of the second until the kick, not the engine's 20 ms


def test_an_unknown_latency_clock_is_refused():
    with pytest.raises(ValueError, match="unknown latency clock 'wall'"):
        latency.LatencyWatch(None, 1, clock="wall")
