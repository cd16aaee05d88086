"""Execution: one run of a model under one strategy.

The loop (``run``) is the hot path.  Each turn it asks which tasks may move,
lets the strategy pick one of them or "advance the clock", sends into the
chosen coroutine and files the trap it yields.  Nothing here knows the kernel.

A run ends when nothing can move (no eligible task, no timer), when a
violation stops it, or at the step bound (``livelock``).  Then the engine
classifies blocked tasks (``deadlock`` if the wait-for graph has a cycle,
``stall`` otherwise) and the model's checkers look at what is left undone.

Two switches the model sets while it builds (both about what a CPU is):

* ``set_preemptive(False)``: a lane is a non-preemptible CPU.  A level-0 task
  that has run keeps its lane until it parks (blocks, sleeps, exits) or gives
  it up (``lane_release``, the model's cond_resched()); other level-0 tasks of
  that lane wait, higher levels (interrupts) still come in.
* time passes while tasks run: when no pending timer can be reached because
  runnable tasks keep running, every ``spin_steps`` steps the clock moves on
  by ``max_delay_ns`` (never past a waiting task's bound, never past a timer);
  a timer in reach that the strategy keeps passing over fires after
  ``max_starve_steps`` steps, as a starved task would run.  Without this a
  CPU spinning in a retry loop would stop virtual time, and no timeout,
  watchdog or hung-task check could ever see the spin.

And one rule for spinning runs: once a task has been passed over for
``max_starve_steps`` steps, the run is spinning, and from then on the engine
schedules it fairly itself (least recently run first, the clock included; no
more choices).  A lockup, hang or step-bound livelock a run shows after that
point is one of a fair schedule, as in fair stateless model checking
(Musuvathi and Qadeer, PLDI 2008), not an artefact of a strategy that keeps
one CPU waiting while another spins.
"""

from __future__ import annotations

from bisect import insort
from operator import attrgetter

from blkrace.engine.clock import NSEC_PER_MSEC, NSEC_PER_SEC, TimerHeap
from blkrace.engine.task import BLOCKED, DONE, RUNNABLE, SLEEPING, Task
from blkrace.engine.trace import TraceStep, coroutine_stack, frames_of_traceback, running_stack
from blkrace.engine.traps import BLOCK, CHOOSE, KIND_LETTER, SLEEP, STEP, TIMED_OUT, WRITE
from blkrace.engine.violations import StopRun, Violation

_by_tid = attrgetter("tid")
_by_ran_at = attrgetter("ran_at_step")

_GONE = object()  # no trap to file: the task ended (or has not been sent to yet)

# What a strategy's pick() may return besides an index: abandon this run
# (a sleep-set-blocked path that can only repeat an explored one).
PRUNE = -1


class ModelError(Exception):
    """The model did something the engine cannot run (an unknown trap...)."""


class ScheduleMismatch(Exception):
    """A strategy cannot go on with this run (a token that does not fit the model)."""


class RunResult:
    __slots__ = ("violations", "end_reason", "steps", "choices", "time_ns", "trace", "blocked", "cut")

    def __init__(self, violations, end_reason, steps, choices, time_ns, trace, blocked, cut=None):
        self.violations = violations
        self.end_reason = end_reason  # "quiescent", "stopped", "livelock", "pruned"
        self.steps = steps
        self.choices = choices
        self.time_ns = time_ns
        self.trace = trace
        # [(task name, lane, what it waits for, frames, state letter)] at the end: blocked
        # tasks ("D"), and runnable ones a held non-preemptible lane keeps off their CPU ("R")
        self.blocked = blocked
        # Why the engine, not the strategy, decided part of this run (None: it
        # did not): "step bound", "starvation" (fair from a rescue on),
        # "timer starvation" (a timer passed over too long fired by itself).
        # A search that met a cut run has not exhausted its space.
        self.cut = cut


class Execution:
    """The state of one run: tasks, clock, choices, violations."""

    # What run() touches every step lives in slots (a slot is a fixed offset
    # in the object; the rest goes to the instance's dictionary, where the
    # layers above may keep their own attributes).
    __slots__ = ("_stopped", "_excl", "_opts", "steps", "current", "last", "now", "__dict__")

    def __init__(
        self,
        strategy,
        *,
        max_steps=50_000,
        hung_task_ns=120 * NSEC_PER_SEC,
        max_delay_ns=20 * NSEC_PER_MSEC,
        max_starve_steps=2000,
        traced=False,
        shared=None,
        spin_steps=20,
    ):
        if spin_steps is not None and spin_steps < 1:
            raise ValueError("spin_steps must be at least 1 (or None: time never passes by itself)")
        self.strategy = strategy
        # What a step accesses besides the object it declared (touch()), for
        # a strategy that analyses dependencies (it has ``touched``); None
        # when nobody listens, so that touch() costs nothing then.
        self.touched = [] if hasattr(strategy, "touched") else None
        # State that outlives one run: what a campaign's runs have in common
        # (lockdep's dependency graph lives across a boot, so across runs).
        self.shared = shared if shared is not None else {}
        # Bounded unfairness: the clock may not pass a runnable task by more
        # than max_delay_ns (a task "interrupted for a long time" is at most
        # that long), nor pass a runnable task of a level above 0 (an
        # interrupt handler) at all.  None lifts the bound for level-0 tasks.
        self.max_delay_ns = max_delay_ns
        # The same bound in steps: a task that could run is not passed over for
        # more than max_starve_steps steps (a spinning task does not starve
        # the one it waits for; a livelock is then a real one).
        self.max_starve_steps = max_starve_steps
        self.max_steps = max_steps
        # Time passes while tasks run: see the module docstring.  None: never.
        self.spin_steps = spin_steps
        self._moved_at = 0  # the step of the last clock move
        self._spin_check_at = spin_steps or 0  # when to look again whether time passes
        self._fair = False  # set once the run spins (a starvation rescue): see run()
        self.cut = None  # why the engine cut the explored space in this run: see RunResult.cut
        self.clock_moves = 0  # clock events (chosen or not): how a strategy sees the ones it did not choose
        self.preemptive = True
        self._holders = {}  # lane -> [task, since_ns]: who has a non-preemptible lane
        self.hung_task_ns = hung_task_ns
        self.traced = traced
        self.now = 0
        # The part of ``now`` that passed while no task could run (every CPU
        # waited for a timer): time no unfairness of the explorer and no
        # spinning put there.  A latency check measures in it (docs/DESIGN.md).
        self.idle_ns = 0
        self.tasks = []
        self.runnable = []  # RUNNABLE tasks, sorted by tid
        self.timers = TimerHeap()
        self.choices = []  # every real choice: tid + 1 (0 = advance the clock), or a data index
        self.steps = 0
        self.current = None
        self.last = None  # the task that ran the previous step
        self.violations = []
        self.checkers = []  # callables(execution) -> iterable of Violation, at a quiescent end
        self.trace = []
        self._stopped = False
        self._end_reason = None
        self.wake_hook = None  # the layer above may re-place a task as it wakes (select_task_rq)
        self._lanes = {}  # lane -> [(task, excl_level)], top last
        self._lane_since = {}  # lane -> the step its exclusion stack last became non-empty
        self._excl = 0  # number of exclusion entries over all lanes
        # run()'s options while lanes exclude (the eligible runnable tasks), or
        # None once they may have changed: every change to the run queue, a
        # lane's exclusions, a holder or a task's lane sets it back to None.
        # Most steps change none of these, and recomputing the options was a
        # fifth of the engine's time in a scenario with non-preemptible CPUs.
        self._opts = None

    # ------------------------------------------------------------------ tasks

    def spawn(self, coro, name, *, lane=None, level=0, data=None):
        """Create a task and run it to its first trap, as part of the current step.

        Code before a task's first ``await`` therefore runs atomically with its
        spawner: model tasks await before touching shared state.  It runs even
        where another task's exclusion keeps the new task off its lane, so it
        may not take an exclusion itself there (lane_push() refuses).
        """
        task = Task(self, len(self.tasks), name, coro, lane, level, data)
        self.tasks.append(task)
        if self.traced:
            self._record("spawn", task, None, f"spawn {name}")
        prev = self.current
        self._drive(task, None)
        self.current = prev
        return task

    def lane_push(self, lane, task, excl):
        """While in place, tasks of ``lane`` at ``level <= excl`` other than ``task`` wait.

        The kernel layer builds preempt_disable and interrupt entry on this:
        a hardirq handler pushes itself with the highest level, a task that
        disables preemption pushes itself at the task level.
        """
        if not task.steps and not self.eligible(task):
            # Code before a task's first trap runs inside its spawner's step
            # (spawn()), even where its CPU is held by another task's
            # exclusion: taking an exclusion there would hold the CPU against
            # a task that already holds it (two readers spawned on a CPU with
            # preemption off each waited for the other: a false stall).
            holders = ", ".join(t.name for t in self.excluders(task))
            raise ModelError(
                f"{task.name} takes an exclusion on lane {lane} before its first step, while "
                f"{holders} keeps it off that lane: await a step first (see Execution.spawn)"
            )
        stack = self._lanes.setdefault(lane, [])
        if not stack:
            self._lane_since[lane] = self.steps
        stack.append((task, excl))
        self._excl += 1
        self._opts = None

    def lane_pop(self, lane, task):
        stack = self._lanes[lane]
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][0] is task:
                del stack[i]
                self._excl -= 1
                self._opts = None
                if not stack:
                    self._lane_freed(lane, self._lane_since.get(lane, self.steps))
                return
        raise ModelError(f"lane_pop: {task.name} holds no exclusion on lane {lane}")

    def move(self, task, lane):
        """Move a task to another lane (a task migrating to another CPU)."""
        for stack in self._lanes.values():
            for owner, _ in stack:
                if owner is task:
                    raise ModelError(f"{task.name} cannot leave lane {task.lane} while it excludes others there")
        self.lane_release(task)
        task.lane = lane
        self._opts = None
        if self.traced:
            self._record("event", task, None, f"{task.name} migrates to cpu{lane}")

    def discard(self, task, why):
        """End a task that will never run again (an interrupt pending on a CPU that died)."""
        if task.state is DONE:
            return
        if task.state is BLOCKED and task.blocked_on is not None and task in task.blocked_on.waiters:
            task.blocked_on.waiters.remove(task)
        if task.timer is not None:
            self.timers.cancel(task.timer)
            task.timer = None
        task.coro.close()
        if self.traced:
            self._record("event", task, None, why)
        self._exit(task)

    def lane_owner(self, lane):
        stack = self._lanes.get(lane)
        return stack[-1][0] if stack else None

    # ----------------------------------------------- non-preemptible lanes

    def set_preemptive(self, preemptive):
        """Choose the CPU model before the run starts (see the module docstring)."""
        if self.steps:
            raise ModelError("set_preemptive() after the run has started")
        self.preemptive = preemptive

    def set_limits(self, *, max_delay_ns, max_starve_steps, spin_steps):
        """Set the unfairness bounds before the run starts (a scenario's
        declared limits: see __init__ for what each bounds)."""
        if self.steps:
            raise ModelError("set_limits() after the run has started")
        if spin_steps is not None and spin_steps < 1:
            raise ValueError("spin_steps must be at least 1 (or None: time never passes by itself)")
        self.max_delay_ns = max_delay_ns
        self.max_starve_steps = max_starve_steps
        self.spin_steps = spin_steps
        self._spin_check_at = spin_steps or 0

    def lane_holder(self, lane):
        """(task, since_ns) of the task that has had non-preemptible ``lane``
        since ``since_ns`` without giving it up, or None."""
        held = self._holders.get(lane)
        return (held[0], held[1]) if held is not None else None

    def lane_release(self, task):
        """``task`` gives its lane up (it parks, or offers to: cond_resched())."""
        held = self._holders.get(task.lane)
        if held is not None and held[0] is task:
            del self._holders[task.lane]
            self._excl -= 1
            self._opts = None
            self._lane_freed(task.lane, held[2])

    def _lane_freed(self, lane, since_step):
        """Tasks that waited for ``lane`` (held since ``since_step``) may run
        from now: the steps they could not run are not steps the scheduler
        passed them over, so their starvation clock skips the hold (it is
        paused, not restarted: a task that keeps losing between short holds
        still starves)."""
        steps = self.steps
        for t in self.runnable:
            if t.lane == lane and t.ran_at_step < steps:
                t.ran_at_step += steps - max(since_step, t.ran_at_step)

    def _lane_take(self, task):
        lane = task.lane
        if lane is not None and lane not in self._holders:
            self._holders[lane] = [task, self.now, self.steps]
            self._excl += 1
            self._opts = None

    def eligible(self, task):
        """May ``task`` run now?  Not while another task of its lane holds an
        exclusion at or above its level (every entry counts: interrupts off
        under preemption off still keeps interrupts out)."""
        if not task.level and self._holders:
            held = self._holders.get(task.lane)
            if held is not None and held[0] is not task:
                return False
        stack = self._lanes.get(task.lane)
        if not stack:
            return True
        level = task.level
        for owner, excl in stack:
            if owner is not task and level <= excl:
                return False
        return True

    def excluders(self, task):
        """The tasks whose exclusion (or non-preemptible CPU) keeps ``task``
        off its lane now: empty when eligible(task)."""
        out = []
        if not task.level and self._holders:
            held = self._holders.get(task.lane)
            if held is not None and held[0] is not task:
                out.append(held[0])
        for owner, excl in self._lanes.get(task.lane, ()):
            if owner is not task and task.level <= excl and owner not in out:
                out.append(owner)
        return out

    def exclusion_owners(self):
        """The tids of the tasks that hold a lane exclusion or a non-preemptible lane."""
        if not self._excl:
            return frozenset()
        owners = {held[0].tid for held in self._holders.values()}
        for stack in self._lanes.values():
            owners.update(owner.tid for owner, _ in stack)
        return frozenset(owners)

    # ----------------------------------------------------------------- timers

    def add_timer(self, delay_ns, fn, *args, name=None, daemon=False):
        """Call ``fn(*args)`` when the clock reaches now + ``delay_ns``.  A
        ``daemon`` timer does not keep the run going (see TimerHeap)."""
        return self.timers.add(self.now + delay_ns, fn, args, name or getattr(fn, "__name__", "timer"), daemon)

    def cancel_timer(self, timer):
        return self.timers.cancel(timer)

    # ------------------------------------------------------------- violations

    def report(self, violation):
        """Record a violation and go on (WARN_ON)."""
        violation.step = self.steps
        violation.time_ns = self.now
        self.violations.append(violation)
        if self.traced:
            self._record("event", self.current, None, f"{violation.kind}: {violation.message}")

    def stop(self, violation):
        """Record a violation and end the run after the current step (BUG_ON)."""
        self.report(violation)
        self._stopped = True
        self._end_reason = "stopped"

    def event(self, text):
        """A line for the timeline (a cpuhp state, a stop_machine stage...); traced runs only."""
        if self.traced:
            self._record("event", self.current, None, text)

    # ------------------------------------------------------------------- loop

    def touch(self, obj, kind=WRITE):
        """The running step also accesses ``obj``, with no scheduling point of its own.

        For kernel code that touches a second object atomically with the
        access the step declared (under the same lock, with interrupts off, or
        in the bookkeeping schedule() does before a task sleeps): the
        systematic strategies count the step as dependent with every step
        accessing ``obj`` too.  Random walk and PCT ignore it."""
        touched = self.touched
        if touched is not None and self.current is not None:
            touched.append((obj, kind))

    def run(self):
        # The engine's hot path: bench/bench_engine.py measures one step of it
        # against a minimal seeded coroutine scheduler.  Every step costs a
        # few dozen bytecodes besides the model's own code, so:
        # - what the loop reads each step is bound to a local first (a local
        #   is one LOAD_FAST; an attribute is a lookup);
        # - the step counter lives in the local ``steps`` and is stored to
        #   ``self.steps`` as soon as it moves, before any strategy, timer or
        #   model code can read it (only this loop changes it);
        # - tests that are almost always false come first in a conjunction
        #   (all of them read state, none has a side effect, so the order
        #   does not change what the loop does).
        strategy = self.strategy
        pick = strategy.pick
        forced = getattr(strategy, "forced", None)
        choices = self.choices
        max_steps = self.max_steps
        max_starve = self.max_starve_steps
        timers = self.timers
        runnable = self.runnable
        holders = self._holders
        eligible = self._eligible_options
        clock_may_pass = self._clock_may_pass
        traced = self.traced
        spin_steps = self.spin_steps
        preemptive = self.preemptive
        slow_path = traced or not preemptive
        fair = self._fair
        touched = self.touched
        steps = self.steps
        while not self._stopped:
            if self._excl:
                opts = self._opts  # see __init__
                if opts is None:
                    opts = self._opts = eligible()
            else:
                opts = runnable
            n = len(opts)
            if not timers.active:
                can_advance = False  # no timer at all (timers.live <= timers.active)
            elif n == 0:
                can_advance = timers.live > 0
            else:
                can_advance = clock_may_pass(opts)
                if spin_steps is not None and steps >= self._spin_check_at:
                    if self._time_passes(opts):
                        continue
                    self._spin_check_at = steps + spin_steps
            if steps >= max_steps:
                if n or can_advance:
                    self._livelock()
                break
            self.steps = steps = steps + 1
            if not steps & 63 and n > 1 and max_starve is not None:
                starving = self._starving(opts)
                if starving is not None:
                    opts, n, can_advance = [starving], 1, False
                    if not fair:
                        fair = self._fair = True
                        self.cut = self.cut or "starvation"
                        self.event(
                            f"{starving.name} passed over for {self.max_starve_steps} steps: "
                            "the run spins; from here on the scheduler is fair"
                        )
            if fair and n:
                # A spinning run goes on under a fair scheduler (least recently
                # run first, the clock included): a livelock or lockup it then
                # shows is one of a fair schedule, not of a starved CPU.
                task = min(opts, key=_by_ran_at)
                if can_advance and self._moved_at < task.ran_at_step:
                    self._advance()
                    continue
            elif n > 1 or (n == 1 and can_advance):
                i = pick(opts, can_advance)
                if i >= n or i < 0:  # one test on the common path: a task was picked
                    if i == n:
                        choices.append(0)
                        self._advance()
                        continue
                    if i == PRUNE:
                        self._end_reason = "pruned"
                        break
                task = opts[i]
                choices.append(task.tid + 1)
            elif n == 1:
                task = opts[0]
                if forced is not None and forced(task):
                    self._end_reason = "pruned"
                    break
            else:
                if not can_advance:
                    self.steps = steps - 1
                    break
                before = self.now
                self._advance()
                self.idle_ns += self.now - before  # nobody could run: this time had to pass
                continue
            if slow_path:  # traced, or a non-preemptible CPU model: one test when neither
                if traced:
                    self._record_step(task)
                if not preemptive and not task.level and task.lane not in holders:
                    self._lane_take(task)  # it has the CPU until it parks or gives it up
            value = task.send_value
            if value is not None:
                task.send_value = None
            task.steps += 1
            # _drive() inlined for the common case (the task declares its next
            # access and stays runnable, or blocks); every other outcome goes
            # the slow way.
            self.current = task
            try:
                msg = task.coro.send(value)
            except ScheduleMismatch:
                raise
            except StopIteration:
                self._exit(task)
            except StopRun as stop:
                self._exit(task)
                self.stop(stop.violation)
            except Exception as exc:  # noqa: BLE001 - any model exception is a finding
                self._exit(task)
                self._model_error(task, exc)
            else:
                if msg.__class__ is tuple and msg[0] == STEP and task.state is RUNNABLE:
                    task.pending = msg
                    if traced:
                        task.park_site = coroutine_stack(task.coro)
                elif msg.__class__ is tuple and msg[0] == BLOCK and not traced:
                    # _file()'s BLOCK case and _sleep_task() inlined, in the
                    # same order (a contended lock's slow path: a quarter of
                    # the steps of bench_engine's microbenchmark); keep the
                    # three in step.
                    if self._holders:
                        self.lane_release(task)
                    if task.state is RUNNABLE:
                        runnable.remove(task)
                        self._opts = None
                    task.state = BLOCKED
                    task.pending = None
                    waitq = msg[1]
                    waitq.waiters.append(task)
                    task.blocked_on = waitq
                    task.blocked_since = self.now
                    task.hung_check = msg[3]
                    task.resume = msg[4]
                    if msg[2] is not None:
                        task.timer = timers.add(self.now + msg[2], self._block_timeout, (task,), "block timeout")
                elif msg.__class__ is tuple and msg[0] == CHOOSE:
                    self._drive(task, None, msg)
                else:
                    self._file(task, msg)
            task.ready_at = self.now
            task.ran_at_step = steps
            self.last = task
            if touched:
                self.strategy.touched(task, touched)
                touched.clear()
        self.current = None
        return self._finish()

    def _starving(self, opts):
        """The task passed over longest, if it has waited beyond max_starve_steps."""
        oldest = min(opts, key=_by_ran_at)
        if self.steps - oldest.ran_at_step > self.max_starve_steps:
            return oldest
        return None

    def _clock_may_pass(self, opts):
        """May the clock jump to the next timer with ``opts`` still waiting to run?"""
        # Called every step while a timer is pending (run() calls it only
        # then, so the heap is not empty): the heap's top is read here and
        # next_deadline() is left for when it is a cancelled timer.
        top = self.timers.heap[0]
        deadline = top[0] if top[2].active else self.timers.next_deadline()
        if deadline <= self.now:
            return True
        max_delay = self.max_delay_ns
        if max_delay is None:
            for t in opts:
                if t.level:
                    return False
            return True
        limit = deadline - max_delay
        for t in opts:
            if t.level or t.ready_at < limit:
                return False
        return True

    def _time_passes(self, opts):
        """Time passes while runnable tasks keep running (see the module
        docstring): move the clock as far as the longest-waiting task's
        bound allows, short of the next timer; a daemon timer in reach fires
        (a watchdog only observes, so firing it takes no choice away from
        the explorer).  Returns whether the clock moved."""
        if self.max_delay_ns is None:
            return False
        self._spin_check_at = self.steps + self.spin_steps
        oldest = self.now
        for t in opts:
            if t.level:
                return False  # an interrupt handler is never passed
            if t.ready_at < oldest:
                oldest = t.ready_at
        limit = oldest + self.max_delay_ns
        timer = self.timers.next_timer()
        if timer.deadline <= limit:
            # A timer in reach fires when the explorer says, but the clock is
            # not passed over longer than a task would be (max_starve_steps):
            # a spinning task cannot stop time.  A daemon only observes, so
            # it fires at once.
            if timer.daemon:
                self._fire_daemons(timer.deadline)
                return True
            if self.max_starve_steps is None or self.steps - self._moved_at <= self.max_starve_steps:
                return False
            self.cut = self.cut or "timer starvation"
            self._advance()
            return True
        if limit <= self.now:
            return False
        self.now = limit
        self._moved_at = self.steps
        self.clock_moves += 1
        if self.traced:
            self._record("timer", None, None, "time passes")
        self._check_hung()
        return True

    def _fire_daemons(self, deadline):
        """Move the clock to ``deadline`` and fire the daemon timers due then,
        in order, up to the first ordinary one (whose firing stays a choice)."""
        timers = self.timers
        self.now = deadline
        self._moved_at = self.steps
        self.clock_moves += 1
        prev = self.current
        while not self._stopped:
            timer = timers.next_timer()
            if timer is None or timer.deadline > self.now or not timer.daemon:
                break
            timers.pop_due(self.now, timers.seq)
            if self.traced:
                self._record("timer", None, None, f"timer {timer.name} fires")
            self._fire(timer)
        self.current = prev
        if not self._stopped:
            self._check_hung()

    def _eligible_options(self):
        """The runnable tasks that may run now: eligible() over the run queue in one call."""
        holders = self._holders
        lanes = self._lanes
        out = []
        for t in self.runnable:
            lane = t.lane
            if holders and not t.level:
                held = holders.get(lane)
                if held is not None and held[0] is not t:
                    continue
            stack = lanes.get(lane)
            if stack:
                level = t.level
                for owner, excl in stack:
                    if owner is not t and level <= excl:
                        break
                else:
                    out.append(t)
                continue
            out.append(t)
        return out

    def _drive(self, task, value, msg=_GONE):
        """Send ``value`` into ``task`` and file the trap it yields next
        (``msg``: the trap it has already yielded, to file without a send)."""
        self.current = task
        coro = task.coro
        try:
            if msg is _GONE:
                msg = coro.send(value)
            while msg.__class__ is tuple and msg[0] == CHOOSE:
                msg = coro.send(self._choose(task, msg))
        except StopIteration:
            self._exit(task)
            return
        except StopRun as stop:
            self._exit(task)
            self.stop(stop.violation)
            return
        except ScheduleMismatch:
            raise
        except Exception as exc:  # noqa: BLE001 - any model exception is a finding
            self._exit(task)
            self._model_error(task, exc)
            return
        self._file(task, msg)

    def _file(self, task, msg):
        """File the trap ``msg`` that ``task`` has just yielded."""
        coro = task.coro
        if msg.__class__ is not tuple:
            self._exit(task)
            coro.close()
            self._model_error(
                task,
                ModelError(
                    f"task {task.name} awaited {msg!r}, which is not a blkrace trap "
                    "(a coroutine written for asyncio or another framework?)"
                ),
            )
            return
        tag = msg[0]
        if tag == STEP:
            task.pending = msg
            if task.state is not RUNNABLE:
                task.state = RUNNABLE
                insort(self.runnable, task, key=_by_tid)
                self._opts = None
        elif tag == BLOCK:
            waitq, timeout, hung_check = msg[1], msg[2], msg[3]
            self._sleep_task(task, BLOCKED)
            waitq.waiters.append(task)
            task.blocked_on = waitq
            task.blocked_since = self.now
            task.hung_check = hung_check
            task.resume = msg[4]
            if timeout is not None:
                task.timer = self.timers.add(self.now + timeout, self._block_timeout, (task,), "block timeout")
        elif tag == SLEEP:
            self._sleep_task(task, SLEEPING)
            task.resume = msg[2]
            task.timer = self.timers.add(self.now + msg[1], self._unblock, (task, None), "sleep")
        else:
            self._exit(task)
            self._model_error(task, ModelError(f"task {task.name} yielded an unknown trap {msg!r}"))
            return
        if self.traced:
            task.park_site = coroutine_stack(coro)
            if tag == BLOCK:
                self._record("block", task, None, f"sleeps on {msg[1].name}")

    def _choose(self, task, msg):
        n = msg[1]
        value = self.strategy.choose(n)
        if not 0 <= value < n:
            raise ModelError(f"strategy chose {value} of {n}")
        self.choices.append(value)
        if self.traced:
            self._record("choose", task, None, f"choose {msg[2] or 'value'} = {value} of {n}")
        return value

    def _sleep_task(self, task, state):
        if self._holders:
            self.lane_release(task)
        if task.state is RUNNABLE:
            self.runnable.remove(task)
            self._opts = None
        task.state = state
        task.pending = None

    def _unblock(self, task, value):
        state = task.state
        if state is DONE or state is RUNNABLE:
            return
        if task.timer is not None:
            self.timers.cancel(task.timer)
            task.timer = None
        task.state = RUNNABLE
        task.ready_at = self.now
        task.ran_at_step = self.steps
        task.send_value = value
        task.blocked_on = None
        resume = task.resume
        if resume is None:
            task.pending = None  # what the code after the wake touches is not declared
        else:
            task.pending = (STEP, resume[0], resume[1], True)  # declared by the block (traps.block)
            task.resume = None
        if self.wake_hook is not None:
            self.wake_hook(task)
        runnable = self.runnable
        if runnable and runnable[-1].tid > task.tid:
            insort(runnable, task, key=_by_tid)
        else:
            runnable.append(task)  # the same place insort would find: cheaper
        self._opts = None

    def _block_timeout(self, task):
        task.timer = None
        waitq = task.blocked_on
        if waitq is not None and task in waitq.waiters:
            waitq.waiters.remove(task)
        self._unblock(task, TIMED_OUT)

    def _exit(self, task):
        if self._holders:
            self.lane_release(task)
        if task.state is RUNNABLE:
            self.runnable.remove(task)
            self._opts = None
        task.state = DONE
        task.pending = None
        for stack in self._lanes.values():
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] is task:
                    del stack[i]
                    self._excl -= 1
                    self._opts = None
        if self.traced:
            self._record("exit", task, None, "exits")

    def _advance(self):
        """Jump the clock to the next timer and fire every timer due then."""
        timers = self.timers
        deadline = timers.next_deadline()
        if deadline > self.now:
            self.now = deadline
        self._moved_at = self.steps
        self.clock_moves += 1
        self._spin_check_at = self.steps + (self.spin_steps or 0)
        if self.traced:
            self._record("timer", None, None, "clock advances")
        max_seq = timers.seq
        prev = self.current
        while not self._stopped:
            timer = timers.pop_due(self.now, max_seq)
            if timer is None:
                break
            if self.traced and timer.fn is not self._unblock and timer.fn is not self._block_timeout:
                self._record("timer", None, None, f"timer {timer.name} fires")
            self._fire(timer)
        self.current = prev
        if not self._stopped:
            self._check_hung()

    def _fire(self, timer):
        """Run one due timer's function outside any task; a BUG_ON in it stops the run."""
        self.current = None
        try:
            timer.fn(*timer.args)
        except StopRun as stop:
            self.stop(stop.violation)
        except Exception as exc:  # noqa: BLE001
            self._model_error(None, exc, where=f"timer {timer.name}")

    def _check_hung(self):
        limit = self.now - self.hung_task_ns
        for task in self.tasks:
            if task.state is BLOCKED and task.hung_check and not task.blocked_on.idle and task.blocked_since < limit:
                secs = self.hung_task_ns // NSEC_PER_SEC
                self.stop(
                    Violation(
                        "hung_task",
                        f"INFO: task {task.name} blocked for more than {secs} seconds "
                        f"(waiting on {task.blocked_on.name})",
                        origin=f"hung_task:{_blocked_site(task)}",
                        detail=self._backtrace_lines(task),
                    )
                )
                return

    def _livelock(self):
        running = [t.name for t in self.runnable]
        self.stop(
            Violation(
                "livelock",
                f"step bound {self.max_steps} reached while tasks keep running: {', '.join(running) or 'timers only'}",
                origin="livelock",
            )
        )
        self._end_reason = "livelock"
        self.cut = self.cut or "step bound"

    def _model_error(self, task, exc, where=None):
        frames = frames_of_traceback(exc.__traceback__)
        site = frames[-1] if frames else None
        loc = f" at {site.function} ({site.short_file()}:{site.lineno})" if site else ""
        who = where or (f"task {task.name}" if task else "model")
        message = f"{type(exc).__name__}: {exc} in {who}{loc}"
        origin = f"model_error:{type(exc).__name__}:{site.filename if site else ''}:{site.lineno if site else 0}"
        detail = ["Call Trace:"] + [
            f" {f.function}+{f.offset}  ({f.short_file()}:{f.lineno})" for f in reversed(frames)
        ]
        self.stop(Violation("model_error", message, origin=origin, detail=detail))

    # ------------------------------------------------------------ end of run

    def _finish(self):
        if self._end_reason is None:
            self._end_reason = "quiescent"
            # The model's own checks first: they say what was left undone in
            # the model's terms; then the engine's view of who waits forever.
            for checker in self.checkers:
                try:
                    for v in checker(self):
                        self.report(v)
                except StopRun as stop:
                    self.report(stop.violation)
                except Exception as exc:  # noqa: BLE001
                    self._model_error(None, exc, where="end-of-run checker")
            self._classify_blocked()
        blocked = [
            (t.name, t.lane, t.blocked_on.name if t.blocked_on else "", coroutine_stack(t.coro), "D")
            for t in self.tasks
            if t.state is BLOCKED and not t.blocked_on.idle
        ]
        for t in self.runnable:
            held = self._holders.get(t.lane)
            if held is not None and held[0] is not t and not t.level:
                blocked.append((t.name, t.lane, f"cpu{t.lane}, held by {held[0].name}", coroutine_stack(t.coro), "R"))
        return RunResult(
            self.violations, self._end_reason, self.steps, self.choices, self.now, self.trace, blocked, self.cut
        )

    def wait_for_edges(self):
        """Edges task -> [tasks it waits for], for every blocked task."""
        edges = {}
        for task in self.tasks:
            if task.state is BLOCKED and task.blocked_on is not None:
                holders = task.blocked_on.holders
                edges[task] = list(holders()) if holders else []
        return edges

    def _classify_blocked(self):
        for task in self.runnable:
            # Runnable but never eligible: another task holds its lane forever.
            holders = [o.name for o, excl in self._lanes.get(task.lane, ()) if o is not task and task.level <= excl]
            self.report(
                Violation(
                    "stall",
                    f"task {task.name} can never run: its cpu{task.lane} is held by {', '.join(holders) or '?'}",
                    origin=f"stall:lane-held:{task.name}",
                    detail=self._backtrace_lines(task),
                )
            )
        stuck = [t for t in self.tasks if t.state is BLOCKED and not t.blocked_on.idle]
        if not stuck:
            return
        edges = self.wait_for_edges()
        cycle = find_cycle(stuck, edges)
        if cycle:
            names = " -> ".join(f"{t.name} [{t.blocked_on.name}]" for t in cycle)
            detail = ["wait-for cycle:"] + [
                f"  {t.name} waits on {t.blocked_on.name}, held by {cycle[(i + 1) % len(cycle)].name}"
                for i, t in enumerate(cycle)
            ]
            for t in cycle:
                detail += [f"task {t.name} (cpu {t.lane}) blocked on {t.blocked_on.name}:"]
                detail += self._backtrace_lines(t)
            self.report(
                Violation(
                    "deadlock",
                    f"wait-for cycle: {names}",
                    origin="deadlock:" + "|".join(sorted(_blocked_site(t) for t in cycle)),
                    detail=detail,
                )
            )
            return
        first = stuck[0]
        site = _blocked_site(first)
        detail = []
        for t in stuck:
            detail += [f"task {t.name} (cpu {t.lane}) blocked on {t.blocked_on.name}:"]
            detail += self._backtrace_lines(t)
        self.report(
            Violation(
                "stall",
                f"nothing can move, and {len(stuck)} task(s) wait forever: {first.name} in {site} "
                f"on {first.blocked_on.name}",
                origin="stall:" + "|".join(sorted({_blocked_site(t) for t in stuck})),
                detail=detail,
            )
        )

    def backtrace(self, task):
        """A task's model stack as kernel-style "Call Trace:" lines."""
        return self._backtrace_lines(task)

    def blocked_site(self, task):
        """Where a task is parked or spinning, as code: stable across runs."""
        return _blocked_site(task)

    def _backtrace_lines(self, task):
        return ["Call Trace:", " __schedule"] + [
            f" {f.function}+{f.offset}  ({f.short_file()}:{f.lineno})" for f in reversed(coroutine_stack(task.coro))
        ]

    # ---------------------------------------------------------------- tracing

    def _record_step(self, task):
        stack = task.park_site or ()
        site = stack[-1] if stack else None
        msg = task.pending
        if msg is not None and len(msg) > 3:
            what = "wakes up"  # a resumed step (its declared access is the wait's own)
        elif msg is not None:
            obj = msg[1]
            what = f"{KIND_LETTER.get(msg[2], '?')} {_label(obj)}" if obj is not None else ""
        elif task.steps == 0:
            what = "starts"
        else:
            what = "wakes up"
        self.trace.append(
            TraceStep(
                self.steps,
                self.now,
                "step",
                task.name,
                task.tid,
                task.lane,
                site.function if site else "",
                site.lineno if site else 0,
                what,
                tuple(stack),
            )
        )

    def _record(self, kind, task, site, what):
        stack = ()
        if task is not None and site is None:
            if task is self.current and task.coro.cr_running:
                # An event from the running task's own code: its frames are on the Python
                # stack (cr_await is empty while it runs), so walk them for the full trace.
                stack = tuple(running_stack(task))
            elif task is self.current and task.coro.cr_frame is not None:
                stack = tuple(coroutine_stack(task.coro))
            else:
                stack = tuple(task.park_site or ())
            site = stack[-1] if stack else None
        self.trace.append(
            TraceStep(
                self.steps,
                self.now,
                kind,
                task.name if task else "",
                task.tid if task else -1,
                task.lane if task else None,
                site.function if site else "",
                site.lineno if site else 0,
                what,
                stack,
            )
        )


def _blocked_site(task):
    """Where a task blocks, as code (stable across runs): its two innermost model frames."""
    frames = coroutine_stack(task.coro)
    return "<-".join(f.function for f in reversed(frames[-2:])) or task.blocked_on.name


def _label(obj):
    name = getattr(obj, "name", None)
    if isinstance(name, str):
        return name
    comm = getattr(obj, "comm", None)
    return comm if isinstance(comm, str) else type(obj).__name__


def find_cycle(starts, edges):
    """A cycle in the wait-for graph reachable from ``starts``, as a list of tasks."""
    state = {}
    path = []

    def visit(task):
        state[task] = 1
        path.append(task)
        for nxt in edges.get(task, ()):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :]
            if nxt not in state and nxt in edges:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[task] = 2
        return None

    for task in starts:
        if task not in state:
            cycle = visit(task)
            if cycle:
                return cycle
    return None
