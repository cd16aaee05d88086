"""Dynamic partial-order reduction: source sets, sleep sets, a preemption bound.

Stateless search like :mod:`dfs` (every run replays a path of choices from
the root and extends it), but a node does not try every option: it tries the
options that some run showed must come first.  After each step the strategy
files the step as an *event* (who ran, what it declared) and looks for
*races*: an earlier event ``e`` of another task, dependent with the new
event ``e'`` and not ordered before it through any third event.  For each
race, some task that can start a run reversing the two (an "initial" of
``notdep(e).e'``) is added to the backtrack set of the node before ``e``
(source-DPOR, Abdulla, Aronis, Jonsson and Sagonas, "Optimal Dynamic Partial
Order Reduction", POPL 2014, Algorithm 1).  Sleep sets as in :mod:`dfs`.

What counts as dependent, from the engine's point of view only:

* two declared accesses to one object, not both reads (as in :mod:`dfs`);
* a step with no declared access (a task resuming from a block or sleep
  whose wait did not declare its re-check: traps.block's ``resume``) and a
  clock event (chosen advance, time passing, a daemon tick) are dependent
  with every step;
* a step that changes which *other* tasks may run (a lane exclusion taken or
  dropped without a declared access, a task discarded or moved, a
  non-preemptible CPU taken) counts as dependent with every step, and each
  task it took the CPU from is added to the node before it (disabling is a
  conflict);
* a step that makes a task runnable (a wake, a spawn) orders the woken
  task's next step after it (happens-before), as a wake does in the kernel;
  that pair is not a race.  The clock gets no such edge: it stands for
  every timer, and the step that armed one has not enabled the next to fire.

Data choices (``choose``) are branched exhaustively at their own nodes, as
in :mod:`dfs`.  Campaign-shared state (lockdep's graph) is only reported on,
never read to steer a run, so it does not change which runs exist.

Preemption bound (bounded POR, Coons, Musuvathi and McKinley, OOPSLA 2013):
options whose choice would exceed ``preemption_bound`` are not explored, and
a backtrack task asked for at the node before ``e`` is also asked for where
the task running ``e`` last took over (the start of its block), so that
bounded runs reversing the race are still reached.  Sleep sets are
used only without a bound: a task put to sleep after its subtree was explored
under the bound would hide runs the bound allows from the sibling (found by
the property test against plain DFS: two tasks, one read-modify-write, bound 0).

What the engine decides by itself cannot be reversed: a run the engine
schedules fairly after a starvation rescue, a timer fired because it was
passed over too long, a run cut at the step bound.  Such a run is marked
``cut`` (RunResult.cut) and a campaign that met one does not claim its space
exhausted.
"""

from __future__ import annotations

from blkrace.engine.execution import PRUNE, ScheduleMismatch
from blkrace.engine.strategy.dfs import AccessKeys, backtrack, independent
from blkrace.engine.traps import READ

_CLOCK = -1


class _Node:
    __slots__ = ("data", "options", "chosen", "done", "sleep", "preempt", "prev", "backtrack", "eff", "actors")

    def __init__(self, data, options, sleep, preempt, prev):
        self.data = data  # True for a choose(n) node
        self.options = options  # sched: [(actor, key)]; data: n
        self.actors = [o[0] for o in options] if not data else None
        self.chosen = None  # index into options (or the data value)
        self.done = []  # option indices explored before ``chosen``
        self.sleep = sleep  # {actor: key} entering this node
        self.preempt = preempt  # preemptions before this node
        self.prev = prev  # the previous task if it could run here, else None
        self.backtrack = []  # actors to explore here, in the order they were asked for
        self.eff = {}  # actor -> key its step really had (None: dependent with all)


class DPOR(AccessKeys):
    name = "dpor"

    def __init__(self, preemption_bound=2):
        self.bound = preemption_bound
        self.path = []
        self.exhausted = False
        self.pruned = 0
        self.races = 0  # races that asked for a backtrack point
        self.fallbacks = 0  # races no initial could reverse: every option was added
        # A subtree of a split search (engine/split.py): the first ``floor``
        # nodes of the path are fixed, and what races ask of them is handed
        # back in ``forwarded`` instead of being explored here.
        self.floor = 0
        self.forwarded = []
        self._snaps = {}  # path index -> event state there (see _snapshot); this process only

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
        self._moves = execution.clock_moves
        self._pending = None  # (actor, key, node index, actors enabled before it)
        self._touches = None  # keys of what the pending step touched besides its declared access
        # The events before the node whose choice changed are those of the
        # previous run, whose races that run has already filed.  When that
        # node's snapshot of the event state is at hand (taken when the node
        # was reached in an earlier run of this process), the prefix is
        # replayed without filing its events again, and the state is restored
        # at the node; otherwise (the first run, or a path carried over from
        # another process) every event is filed and races are looked for from
        # that node on.
        self._fresh_at = len(self.path) - 1
        self._fresh = self._fresh_at < 0
        self._replay_to = self._fresh_at if self._fresh_at in self._snaps else 0
        if self._replay_to == 0:
            self._snaps = {}
            # The events of this run, as parallel lists.
            self._ev_actor = []
            self._ev_key = []
            self._ev_node = []  # path index of the node the event was chosen at, or None
            self._ev_vc = []  # vector clock: actor -> index of its latest event ordered before (or at) this one
            self._actor_vc = {}  # actor -> vector clock after its latest event (and the wakes since)
            self._enabler = {}  # actor -> the event that made it able to run
            self._frontier = {}  # actor -> its latest event
            self._last_global = None
            self._writes = {}  # oid -> latest writing event
            self._reads = {}  # oid -> reading events since that write (a tuple: snapshots share it)
            self._owners = frozenset()  # tasks holding a lane exclusion after the latest event
            self._excl_event = {}  # actor -> the event at which it took the exclusion it holds
            self._was_runnable = None  # the run queue after the latest event, while an exclusion is held
        return True

    def _snapshot(self, depth):
        """Keep the event state at path node ``depth`` for later runs that change its choice.

        Event lists are only ever appended to, and a vector clock is never
        changed once filed, so the lengths and shallow copies of the maps suffice."""
        self._snaps[depth] = (
            len(self._ev_actor),
            dict(self._actor_vc),
            dict(self._enabler),
            dict(self._frontier),
            self._last_global,
            dict(self._writes),
            dict(self._reads),
            self._pending,
            self._moves,
            self._owners,
            dict(self._excl_event),
            self._was_runnable,
        )

    def _restore(self, depth):
        """Back to the event state of node ``depth`` (the end of the replayed prefix)."""
        (n, actor_vc, enabler, frontier, last_global, writes, reads, pending, moves, owners, excl_event, runnable) = (
            self._snaps[depth]
        )
        for lst in (self._ev_actor, self._ev_key, self._ev_node, self._ev_vc):
            del lst[n:]
        self._actor_vc = dict(actor_vc)
        self._enabler = dict(enabler)
        self._frontier = dict(frontier)
        self._last_global = last_global
        self._writes = dict(writes)
        self._reads = dict(reads)
        self._pending = pending
        self._moves = moves
        self._owners = owners
        self._excl_event = dict(excl_event)
        self._was_runnable = runnable
        # Snapshots deeper than the node belong to the subtree just left.
        for d in [d for d in self._snaps if d > depth]:
            del self._snaps[d]
        node = self.path[depth]
        self._sleep = node.sleep
        self._preempt = node.preempt
        self._replay_to = 0

    def _replay(self, data, n):
        """A node of the replayed prefix: the choice made before, and nothing filed."""
        node = self.path[self._depth]
        if node.data is not data or (node.options != n if data else node.actors != n):
            raise ScheduleMismatch("the model is not deterministic: a replayed DPOR prefix offered other options")
        self._depth += 1
        return node.chosen

    def pick(self, options, can_advance):
        opts = [(t.tid, self._key(t)) for t in options]  # keys even when replaying: object ids in order
        if can_advance:
            opts.append((_CLOCK, None))
        if self._depth < self._replay_to:
            return self._replay(False, [o[0] for o in opts])
        if self._depth == self._replay_to and self._replay_to:
            self._restore(self._depth)
        else:
            self._observe([o[0] for o in opts])
            self._snapshot(self._depth)
        if self._depth >= self._fresh_at:
            self._fresh = True
        if self._depth < len(self.path):
            node = self.path[self._depth]
            if node.data or node.actors != [o[0] for o in opts]:
                raise ScheduleMismatch("the model is not deterministic: a replayed DPOR prefix offered other options")
        else:
            last = self._execution.last
            prev = last.tid if last is not None and any(o[0] == last.tid for o in opts) else None
            node = _Node(False, opts, self._sleep, self._preempt, prev)
            choice = self._first(node)
            if choice is None:
                return PRUNE
            node.chosen = choice
            node.backtrack.append(node.actors[choice])
            self.path.append(node)
        index = self._depth
        self._depth += 1
        actor, key = node.options[node.chosen]
        self._sleep = self._child_sleep(node)
        self._preempt = node.preempt + self._is_preemption(node, actor)
        self._pending = (actor, key, index, node.actors)
        return node.chosen

    def forced(self, task):
        """A step with no alternative; True when it is asleep (prune the run)."""
        key = self._key(task)
        if self._depth <= self._replay_to and self._replay_to:
            return False  # a replayed step: it was not asleep before either
        self._observe([task.tid])
        if self._sleep:
            if task.tid in self._sleep:
                self._pending = None
                return True
            self._sleep = {u: k for u, k in self._sleep.items() if independent(k, key)}
        self._pending = (task.tid, key, None, [task.tid])
        return False

    def touched(self, task, accesses):
        """The step just run also accessed these (Execution.touch()): filed
        after it as accesses of the same task at the same node."""
        # Keys first, even for a replayed step: object ids are handed out in
        # the order objects are met, and a replayed prefix must meet them in
        # the same order as the run that filed it (found by the property test).
        keys = [self._oid_key(obj, kind) for obj, kind in accesses]
        pending = self._pending
        if pending is None or pending[0] != task.tid:
            return  # a replayed step (its events are in the snapshot) or one the engine chose
        self._touches = keys
        if self._sleep:
            self._sleep = {u: k for u, k in self._sleep.items() if all(independent(k, t) for t in keys)}

    def choose(self, n):
        if self._depth < self._replay_to:
            return self._replay(True, n)
        if self._depth == self._replay_to and self._replay_to:
            self._restore(self._depth)
        else:
            self._snapshot(self._depth)
        if self._depth >= self._fresh_at:
            self._fresh = True  # the step making this choice is new
        if self._depth < len(self.path):
            node = self.path[self._depth]
            if not node.data or node.options != n:
                raise ScheduleMismatch(
                    "the model is not deterministic: a replayed DPOR prefix made another data choice"
                )
        else:
            node = _Node(True, n, self._sleep, self._preempt, None)
            node.chosen = 0
            self.path.append(node)
        self._depth += 1
        return node.chosen

    def end_run(self, result):
        ex = self._execution
        if self._pending is not None:
            if result.cut is not None:
                # The engine scheduled by itself after the pending step: what
                # it enabled or disabled is unknown, so it counts as global.
                actor, _key, node, enabled = self._pending
                self._pending = (actor, None, node, enabled)
                self._observe(list(self._pending[3]), unknown=True)
            else:
                now = [t.tid for t in ex.runnable if ex.eligible(t)]
                if ex.timers.live:
                    now.append(_CLOCK)
                self._observe(now)
        if result.end_reason == "pruned":
            self.pruned += 1
        if not backtrack(self.path, self._next, self.floor):
            self.exhausted = True

    # ------------------------------------------------------------- events

    def _observe(self, enabled_now, unknown=False):
        """File the step chosen last (now that its effects are visible) and
        any clock event the engine made since."""
        pending = self._pending
        ex = self._execution
        hidden = ex.clock_moves - self._moves
        self._moves = ex.clock_moves
        if pending is not None:
            actor, key, node_index, before = pending
            if actor == _CLOCK:
                hidden -= 1
            now = set(enabled_now)
            disabled = [a for a in before if a != actor and a not in now]
            if not unknown and any(a != _CLOCK for a in disabled):
                key = None  # it changed who may run: dependent with every step
            if key is None:
                self._sleep = {}
            # What the step touched besides its declared access is part of the
            # same event: the step and its touches are one atomic unit, and an
            # event ordered after the step is ordered after the touches too
            # (filed as events of their own, a later reader of the step's
            # declared object would not be: found by the property test).
            touches = self._touches
            self._touches = None
            index = self._add_event(actor, key, node_index, touches if key is not None else None)
            self._exclusions(actor, index)
            if node_index is not None:
                eff = self.path[node_index].eff
                if key is None or touches or actor not in eff:
                    # Once dependent with all (a touch counts so: it is not in
                    # the key a sleeping task is compared with), for every data choice below.
                    eff[actor] = None if touches else key
                if disabled and not unknown and self._fresh:
                    # Each task it took the CPU from could have run first.
                    for a in disabled:
                        self._add_backtrack(node_index, a, None)
            self._pending = None
            if hidden <= 0:
                seen = set(before)
                for a in enabled_now:
                    if a != actor and a != _CLOCK and a not in seen:
                        self._enabler[a] = index
                # Not the clock: it stands for every timer, so the step that
                # armed one timer has not enabled the one that fires next
                # (found by the property test: a sleep, and a timed wait).
        if hidden > 0:
            # The engine moved the clock by itself (nothing else could move,
            # or time passed while tasks ran): one global event.
            self._add_event(_CLOCK, None, None)
            self._sleep = {}

    def _exclusions(self, actor, index):
        """A lane exclusion taken while a task of its CPU could not run
        (blocked) disabled nobody then, so no race names it; but a task woken
        (or spawned) while it is held cannot run until it ends, and running
        that task before the exclusion needs its waker to run before the
        step that took it.  That is a race between the two steps: the node
        before the exclusion is asked for an initial of the waker's way
        there.  (The hole the property test found: t0 disables preemption
        while t1 of its CPU sleeps; t2 wakes t1, which reads after t0's
        section in every run DPOR made.)"""
        ex = self._execution
        owners = ex.exclusion_owners()
        if not owners and not self._owners:
            # No exclusion before or after this event (most events): nobody
            # can be woken onto a CPU held by another.  The run queue is
            # looked at again once an exclusion is taken; a task woken by
            # the very step that took it is woken by the holder, and cannot
            # run before that step.
            self._was_runnable = None
            return
        if actor in owners and actor not in self._owners:
            self._excl_event[actor] = index
        self._owners = owners
        runnable = frozenset(t.tid for t in ex.runnable)
        woken = runnable - self._was_runnable if self._was_runnable is not None else ()
        self._was_runnable = runnable
        if not woken or not owners or not self._fresh:
            return
        vc = self._ev_vc[index]
        for tid in woken:
            if tid == actor:
                continue
            for owner in ex.excluders(ex.tasks[tid]):
                took = self._excl_event.get(owner.tid)
                if took is not None and took < index and vc.get(owner.tid, -1) < took:
                    self._race(took, index, actor, vc)

    def _add_event(self, actor, key, node_index, touches=None):
        ev_vc = self._ev_vc
        ev_actor = self._ev_actor
        index = len(ev_actor)
        if key is None:
            # Dependent with everything before it: ordered after all of it.
            vc = dict(self._frontier)
            direct = list(self._frontier.values())
        else:
            accesses = (key, *touches) if touches else (key,)
            vc = dict(self._actor_vc.get(actor, ()))
            direct = []
            if self._last_global is not None:
                direct.append(self._last_global)
            for oid, kind in accesses:
                w = self._writes.get(oid)
                if w is not None and w not in direct:
                    direct.append(w)
                if kind != READ:
                    direct.extend(r for r in self._reads.get(oid, ()) if r not in direct)
            for d in direct:
                _join(vc, ev_vc[d])
        enabler = self._enabler.pop(actor, None)
        if enabler is not None:
            _join(vc, ev_vc[enabler])
        own = self._actor_vc.get(actor)
        if own is not None and key is None:
            _join(vc, own)
        vc[actor] = index
        # Races: a direct predecessor of another actor, not the one that
        # enabled this step, and not ordered before another direct one.
        if direct and self._fresh:
            preds = direct[:]
            if enabler is not None:
                preds.append(enabler)
            prog = self._frontier.get(actor)
            if prog is not None:
                preds.append(prog)
            for d in direct:
                if d == enabler or ev_actor[d] == actor:
                    continue
                a = ev_actor[d]
                if any(p != d and ev_vc[p].get(a, -1) >= d for p in preds):
                    continue
                if own is not None and own.get(a, -1) >= d:
                    continue
                self._race(d, index, actor, vc)
        ev_actor.append(actor)
        self._ev_key.append(key)
        self._ev_node.append(node_index)
        ev_vc.append(vc)
        self._actor_vc[actor] = vc
        self._frontier[actor] = index
        if key is None:
            self._last_global = index
        else:
            for oid, kind in accesses:
                if kind == READ:
                    self._reads[oid] = self._reads.get(oid, ()) + (index,)
                else:
                    self._writes[oid] = index
                    self._reads[oid] = ()
        return index

    def _race(self, e, j, actor, vc_j):
        """Event ``e`` races with the new event ``j`` (of ``actor``, clock
        ``vc_j``): ask the node before ``e`` for an initial of notdep(e).j."""
        node_index = self._ev_node[e]
        if node_index is None:
            return  # nothing else could run before e
        ev_vc = self._ev_vc
        ev_actor = self._ev_actor
        ae = ev_actor[e]
        # notdep(e): the events after e not ordered after it; its initials are
        # those with no predecessor among them (first event of each actor in
        # it, checked against the earliest member of every other actor).
        first = {}  # actor -> its earliest event in notdep(e)
        initials = []
        for k in range(e + 1, len(ev_actor)):
            vk = ev_vc[k]
            if vk.get(ae, -1) >= e:
                continue
            ak = ev_actor[k]
            if ak not in first:
                first[ak] = k
                if not any(vk.get(a, -1) >= f for a, f in first.items() if a != ak):
                    initials.append(ak)
        if not any(vc_j.get(a, -1) >= f for a, f in first.items()) and actor not in initials:
            initials.append(actor)
        self.races += 1
        self._add_backtrack(node_index, None, initials)

    def _add_backtrack(self, node_index, actor, initials):
        node = self.path[node_index]
        if initials is None:
            initials = [actor]
        if node_index < self.floor:
            # The split search's coordinator decides, against what every
            # subtree asked of this node; the bounded-POR extra points need
            # this run's events, so they are asked for here, for every
            # initial the coordinator might pick.
            self.forwarded.append(("initials", node_index, list(initials)))
            usable = [a for a in initials if a in node.actors] or node.actors
            for a in usable:
                self._extend(node_index, a)
            return
        usable = [a for a in initials if a in node.actors]
        if self.bound is not None and usable:
            # Under a bound one initial is not enough: the reversal it starts
            # may need more preemptions than another initial's, or than the
            # same one started where its block began (the property test found
            # both, at bounds 0 and 1).  Every initial is asked for, here and
            # (bounded POR's extra points) where its reversal may begin.
            for a in usable:
                self._ask(node_index, a)
            return
        if any(a in node.backtrack for a in initials):
            return
        if not usable:
            # No initial could run here (an ordering the events do not
            # show, most often a clock that could not move yet): every
            # option, as classic DPOR does.  Skipping the clock instead
            # loses runs (the property test finds a sleep and a timed wait).
            self.fallbacks += 1
            for a in node.actors:
                self._ask(node_index, a)
            return
        awake = [a for a in usable if a not in node.sleep]
        self._ask(node_index, (awake or usable)[0])

    def _ask(self, node_index, actor):
        node = self.path[node_index]
        if node_index < self.floor:
            self.forwarded.append(("ask", node_index, actor))
        elif actor not in node.backtrack:
            node.backtrack.append(actor)
        self._extend(node_index, actor)

    def _extend(self, node_index, actor):
        """Under a bound, ask for ``actor`` also where the task running at
        ``node_index`` last took over: the reversal may fit in the bound only
        if it starts there."""
        if self.bound is None or actor not in self.path[node_index].actors:
            return
        i = node_index
        ev_of = {n: k for k, n in enumerate(self._ev_node) if n is not None}
        k = ev_of.get(i)
        if k is None:
            return
        runner = self._ev_actor[k]
        while k > 0 and self._ev_actor[k - 1] == runner:
            k -= 1
        while k >= 0 and self._ev_node[k] is None:
            k -= 1
        if k < 0 or self._ev_node[k] == node_index:
            return
        if actor in self.path[self._ev_node[k]].actors:
            self._ask(self._ev_node[k], actor)

    # ------------------------------------------------------------- helpers

    def _allowed(self, node, i):
        actor = node.actors[i]
        if i in node.done or actor in node.sleep:
            return False
        return self.bound is None or node.preempt + self._is_preemption(node, actor) <= self.bound

    def _first(self, node):
        """The first option at a new node: the previous task (no preemption) if it may go on."""
        if node.prev is not None:
            i = node.actors.index(node.prev)
            if self._allowed(node, i):
                return i
        for i in range(len(node.options)):
            if self._allowed(node, i):
                return i
        return None

    def _next(self, node):
        for actor in node.backtrack:
            i = node.actors.index(actor)
            if self._allowed(node, i):
                return i
        return None

    def _explored_key(self, node, i):
        u = node.actors[i]
        return u, node.eff.get(u, node.options[i][1])


def _join(vc, other):
    for a, i in other.items():
        if vc.get(a, -1) < i:
            vc[a] = i
