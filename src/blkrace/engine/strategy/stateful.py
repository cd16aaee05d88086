"""Stateful DFS: depth-first search that does not explore a state's future twice.

DFS (``dfs.py``) with a visited set, as SPIN keeps one: at every choice point
a run meets for the first time, the state is fingerprinted
(``engine/state.py``); if an earlier run reached the same state with at least
as much of the preemption bound left, its future has been explored (DFS
finishes a node's subtree before it leaves the node, and every other path to
the same state lies in a later subtree), and the run is abandoned there.
Runs cannot cycle: the step count is part of the state.

What "at least as much left" means.  A state's fingerprint leaves out which
task ran last, because that only decides what counts as a preemption: the
visited set keeps, per state, the fewest preemptions it was reached with
after each last task.  A run that reaches it after the same last task with no
fewer preemptions is abandoned; after another last task it needs one more,
since only its first switch can be counted differently (choosing the task the
earlier run had last is a preemption for one and not for the other).

Without a bound DFS keeps sleep sets, and a state's future was explored only
outside the sleep set it was entered with: a run is abandoned only when it
enters the state with a sleep set that contains an earlier one (Godefroid,
Holzmann and Pirottin, "State-space caching revisited", FMSD 1995).  Sleep
sets name tasks by their rank among the live ones, as the fingerprint does.

The claim when the search ends is the one DFS makes (every schedule within
the bound), with the fingerprint's one abstraction: the counters the engine
keeps only to cut a run do not tell states apart (docs/DESIGN.md).  A model
whose state the walk cannot write down (``NotFingerprintable``) is searched
statelessly from that point, and ``stateless_reason`` says why.
"""

from __future__ import annotations

from blkrace.engine.execution import PRUNE
from blkrace.engine.state import NotFingerprintable, fingerprint, live_rank
from blkrace.engine.strategy.dfs import DFS


class StatefulDFS(DFS):
    name = "sdfs"

    def __init__(self, preemption_bound=2):
        super().__init__(preemption_bound)
        # fingerprint -> {last task's live rank: fewest preemptions} under a
        # bound; fingerprint -> [sleep sets (live ranks)] without one.
        self.visited = {}
        self.revisits = 0  # runs abandoned at a state whose future was explored
        self.stateless_reason = None

    @property
    def states(self):
        """Distinct states whose future the search has explored or is exploring."""
        return len(self.visited)

    def pick(self, options, can_advance):
        # Only where the run grows the tree: a replayed prefix's states are
        # on record already.  And only at a real choice: a state with one
        # option reaches the next choice point in the same state either way.
        if self._depth >= len(self.path) and len(options) + can_advance > 1 and self._seen():
            return PRUNE
        return super().pick(options, can_advance)

    def _seen(self):
        """Record the state the run is in; True if its future was explored."""
        if self.stateless_reason is not None:
            return False
        ex = self._execution
        try:
            fp = fingerprint(ex)
        except NotFingerprintable as exc:
            self.stateless_reason = str(exc)
            return False
        if self.bound is None:
            return self._seen_sleep(fp, frozenset(live_rank(ex, ex.tasks[tid]) for tid in self._sleep))
        return self._seen_entry(fp, live_rank(ex, ex.last), self._preempt)

    def _seen_sleep(self, fp, sleep):
        """Without a bound: explored if entered before with a sleep set inside this one."""
        entry = self.visited.get(fp)
        if entry is None:
            self.visited[fp] = [sleep]
            return False
        if any(earlier <= sleep for earlier in entry):
            self.revisits += 1
            return True
        entry.append(sleep)
        return False

    def _seen_entry(self, fp, last, used):
        """Under a bound: explored if reached before after the same last task
        with no more preemptions used, or after any with one fewer."""
        entry = self.visited.get(fp)
        if entry is None:
            self.visited[fp] = {last: used}
            return False
        same = entry.get(last)
        if (same is not None and used >= same) or used >= min(entry.values()) + 1:
            self.revisits += 1
            return True
        if same is None or used < same:
            entry[last] = used
        return False
