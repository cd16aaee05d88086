"""The run loop's shortcuts (engine/execution.py) change nothing a strategy sees.

The loop keeps the eligible options of the last step until the run queue, a
lane's exclusions, a lane holder or a task's lane changes (``Execution._opts``).
Here a strategy wrapper checks, at every step of real scenarios, that the
options it is offered are exactly the runnable tasks ``Execution.eligible()``
accepts, in run-queue order: a missed invalidation shows as a stale list.
"""

import pytest

from blkrace.engine.campaign import explore
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.registry import get


class Checking:
    """Wraps a strategy; compares the options of every pick with eligible()."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.checked = 0
        self.ex = None

    def start_run(self, execution, index):
        self.ex = execution
        return self.inner.start_run(execution, index)

    def pick(self, options, can_advance):
        ex = self.ex
        expected = [t for t in ex.runnable if ex.eligible(t)]
        assert [t.tid for t in options] == [t.tid for t in expected], f"step {ex.steps}"
        self.checked += 1
        return self.inner.pick(options, can_advance)

    def choose(self, n):
        return self.inner.choose(n)

    def end_run(self, result):
        self.inner.end_run(result)


@pytest.mark.parametrize(
    ("scenario", "variant", "strategy"),
    [
        ("nvme-mpath-freeze", "fixed", "pct"),  # non-preemptible CPUs: lane holders
        ("budget-rerun", "fixed", "random"),
        ("hctx-drain", "fixed", "random"),  # CPU hotplug: tasks move, interrupts nest
        ("ipi-flush", "buggy", "pct"),
    ],
)
def test_cached_options_are_the_eligible_runnable_tasks(scenario, variant, strategy):
    sc = get(scenario)
    v = sc.variants[variant]
    checking = Checking(make_strategy(strategy, 3))
    explore(sc.builder(v), checking, 25, stop_on_first=False, max_steps=sc.max_steps)
    assert checking.checked > 1000
