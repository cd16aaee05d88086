"""Exhaustive depth-first search with sleep sets and a preemption bound.

Stateless DFS: every run replays the path of choices from the root, then
extends it; at the end of a run it backtracks to the deepest choice point with
an option left.  The space is exhausted when the path empties.

Sleep sets (Godefroid, "Partial-Order Methods for the Verification of
Concurrent Systems", LNCS 1032, 1996): after exploring option t at a node, t
goes to sleep in the sibling subtrees and stays asleep until a step dependent
with t's pending access runs.  Two accesses are dependent when they touch the
same object and are not both reads; the clock and an undeclared access
(a task resuming from a block or sleep whose wait declared no ``resume``)
are dependent with everything.
A run whose every option is asleep can only repeat an explored one: it is
abandoned ("pruned") and not counted as a schedule.

Preemption bounding (Musuvathi and Qadeer, "Iterative Context Bounding for
Systematic Testing of Multithreaded Programs", PLDI 2007): choosing anything
but the previous task while it could still run, the clock included, is a
preemption; runs with more than ``preemption_bound`` are not explored.
Combining the two misses schedules that the bound alone would reach (Coons
et al., OOPSLA 2013): under a bound, sleep sets are therefore off.
"""

from __future__ import annotations

from blkrace.engine.execution import PRUNE, ScheduleMismatch
from blkrace.engine.traps import READ

_CLOCK = -1


class _Node:
    __slots__ = ("data", "options", "chosen", "done", "sleep", "preempt", "prev")

    def __init__(self, data, options, sleep, preempt, prev):
        self.data = data  # True for a choose(n) node
        self.options = options  # sched: [(tid, key)]; data: n
        self.chosen = None
        self.done = []  # options explored before ``chosen``
        self.sleep = sleep  # {tid: key} entering this node
        self.preempt = preempt  # preemptions before this node
        self.prev = prev  # tid of the previous task if it could run here, else None


def backtrack(path, next_choice, floor=0):
    """Move the deepest node with an option left on to it, popping exhausted
    nodes; False once the whole tree is explored.  ``next_choice(node)`` gives
    a scheduling node's next option (None: none left); a data node's options
    are simply its indexes.  The first ``floor`` nodes are fixed (a subtree of
    a split search, see engine/split.py): the tree below them is the whole tree."""
    while len(path) > floor:
        node = path[-1]
        node.done.append(node.chosen)
        if node.data:
            if node.chosen + 1 < node.options:
                node.chosen += 1
                return True
        else:
            choice = next_choice(node)
            if choice is not None:
                node.chosen = choice
                return True
        path.pop()
    return False


def independent(a, b):
    return a is not None and b is not None and (a[0] != b[0] or (a[1] == READ and b[1] == READ))


class AccessKeys:
    """What DFS and DPOR both need of a step: its dependency key, and whether
    choosing it is a preemption.  Objects get small ids in the order a run
    meets them (``self._oids``, ``self._keep``, reset by ``start_run``)."""

    def _key(self, task):
        msg = task.pending
        if msg is None or msg[1] is None:
            return None
        ex = self._execution
        if not ex.preemptive and not task.level and ex.lane_holder(task.lane) is None:
            # Its next step also takes a non-preemptible CPU, which every
            # other task of that CPU then waits for: dependent with all.
            return None
        return self._oid_key(msg[1], msg[2])

    def _oid_key(self, obj, kind):
        oid = self._oids.get(id(obj))
        if oid is None:
            oid = self._oids[id(obj)] = len(self._oids)
            self._keep.append(obj)  # keep alive: id() must not be reused in this run
        return (oid, kind)

    def _is_preemption(self, node, tid):
        return 1 if node.prev is not None and tid != node.prev else 0

    def _explored_key(self, node, i):
        """(task, key) of option ``i`` as it was explored (DPOR: what it really touched)."""
        return node.options[i]

    def _child_sleep(self, node):
        """The sleep set below ``node``'s chosen option: what was asleep at
        ``node`` and the options explored before it, minus whatever the chosen
        step is dependent with."""
        tid, key = node.options[node.chosen]
        if key is None or self.bound is not None:
            # Under a bound a sleeping task's subtree was explored only as far
            # as the bound let it: sleep sets would lose runs the bound allows
            # (the buggy dining philosophers were "exhausted" clean at bound 2;
            # Coons et al., OOPSLA 2013).
            return {}
        sleep = {u: k for u, k in node.sleep.items() if independent(k, key)}
        for i in node.done:
            u, k = self._explored_key(node, i)
            if u != _CLOCK and independent(k, key):
                sleep[u] = k
        return sleep


class DFS(AccessKeys):
    name = "dfs"

    def __init__(self, preemption_bound=2):
        self.bound = preemption_bound
        self.path = []
        self.exhausted = False
        self.pruned = 0

    # ------------------------------------------------------------ protocol

    def start_run(self, execution, index):
        if self.exhausted:
            return False
        self._execution = execution
        self._depth = 0
        self._sleep = {}
        self._preempt = 0
        self._oids = {}
        self._keep = []
        self._node = None  # the node the running step was chosen at
        self._before = None  # the options offered there (tids), to see whom the step disabled
        return True

    def pick(self, options, can_advance):
        opts = [(t.tid, self._key(t)) for t in options]
        if can_advance:
            opts.append((_CLOCK, None))
        if self._before is not None:
            self._disabled([o[0] for o in opts])
        if self._depth < len(self.path):
            node = self.path[self._depth]
            if node.data or [o[0] for o in node.options] != [o[0] for o in opts]:
                raise ScheduleMismatch("the model is not deterministic: a replayed DFS prefix offered other options")
        else:
            last = self._execution.last
            prev = last.tid if last is not None and any(o[0] == last.tid for o in opts) else None
            node = _Node(False, opts, self._sleep, self._preempt, prev)
            choice = self._first_allowed(node)
            if choice is None:
                return PRUNE
            node.chosen = choice
            self.path.append(node)
        self._depth += 1
        self._node = node
        self._before = [o[0] for o in opts]
        tid, key = node.options[node.chosen]
        self._sleep = self._child_sleep(node)
        self._preempt = node.preempt + self._is_preemption(node, tid)
        return node.chosen

    def forced(self, task):
        """A step with no alternative; True when it is asleep (prune the run)."""
        if self._before is not None:
            self._disabled([task.tid])
        self._node = None
        if self._sleep:
            if task.tid in self._sleep:
                return True
            key = self._key(task)
            self._sleep = {u: k for u, k in self._sleep.items() if independent(k, key)}
        return False

    def touched(self, task, accesses):
        """The step just run also accessed these (Execution.touch()): a task
        asleep on one of them wakes, and the option is no longer put to sleep
        in its siblings (its key did not say all it does)."""
        keys = [self._oid_key(obj, kind) for obj, kind in accesses]
        if self._sleep:
            self._sleep = {u: k for u, k in self._sleep.items() if all(independent(k, t) for t in keys)}
        node = self._node
        if node is not None and node.options[node.chosen][0] == task.tid:
            node.options[node.chosen] = (task.tid, None)

    def choose(self, n):
        if self._depth < len(self.path):
            node = self.path[self._depth]
            if not node.data or node.options != n:
                raise ScheduleMismatch("the model is not deterministic: a replayed DFS prefix made another data choice")
        else:
            node = _Node(True, n, self._sleep, self._preempt, None)
            node.chosen = 0
            self.path.append(node)
        self._depth += 1
        return node.chosen

    def end_run(self, result):
        if self._before is not None:
            ex = self._execution
            self._disabled([t.tid for t in ex.runnable if ex.eligible(t)])
        if result.end_reason == "pruned":
            self.pruned += 1
        if not backtrack(self.path, self._first_allowed):
            self.exhausted = True

    # ------------------------------------------------------------- helpers

    def _disabled(self, now):
        """After the step chosen at ``self._node``: if it took the CPU from
        another task (preempt_disable, irqs off, a non-preemptible lane), its
        key did not say so: dependent with every step, as in dpor.py."""
        node, before = self._node, self._before
        self._before = None
        tid = node.options[node.chosen][0]
        if any(a != tid and a != _CLOCK and a not in now for a in before):
            node.options[node.chosen] = (tid, None)
            self._sleep = {}

    def _first_allowed(self, node):
        for i, (tid, _key) in enumerate(node.options):
            if i in node.done or tid in node.sleep:
                continue
            if self.bound is not None and node.preempt + self._is_preemption(node, tid) > self.bound:
                continue
            return i
        return None
