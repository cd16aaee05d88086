"""What the engine costs, and how fast the seed race is found.

Prints, for this machine:
  1. steps per second of the engine on a microbenchmark (tasks contending on a
     lock built on a wait queue), next to a minimal seeded coroutine scheduler
     doing the same lock/unlock and a bare coro.send loop, and the ratio of
     the two costs per step, warm (both loops specialized by CPython, as in a
     campaign's runs after its first few) and cold (their first calls);
  2. steps and schedules per second on the budget-rerun scenario;
  3. schedules and seconds to the first violation of budget-rerun --variant
     buggy for each strategy, median over 20 seeds.

Run:  python bench/bench_engine.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import types

from blkrace.engine import SYNC, WRITE, WaitQueue, access
from blkrace.engine.campaign import explore, run_once
from blkrace.engine.strategy import make_strategy
from blkrace.scenarios.registry import get


# ------------------------------------------------------------ the engine's lock
class Lock:
    def __init__(self, name):
        self.name = name
        self.owner = None
        self.wq = WaitQueue(name, holders=lambda: [self.owner] if self.owner else [])


async def lock(ex, lk):
    await access(lk, SYNC)
    while lk.owner is not None:
        await lk.wq.park()
    lk.owner = ex.current


async def unlock(lk):
    await access(lk, SYNC)
    lk.owner = None
    lk.wq.wake_one()


def build_contention(tasks, iterations):
    def build(ex):
        lk = Lock("L")
        cell = types.SimpleNamespace(name="x", value=0)

        async def worker():
            for _ in range(iterations):
                await lock(ex, lk)
                await access(cell, WRITE)
                cell.value += 1
                await unlock(lk)

        for i in range(tasks):
            ex.spawn(worker(), f"w{i}", lane=i)

    return build


# ------------------------------------------------ a minimal seeded scheduler
@types.coroutine
def _yield(msg):
    return (yield msg)


def minimal_scheduler(tasks, iterations, seed=0):
    """The least a seeded coroutine scheduler can do for the same workload
    (the same async lock/unlock helpers, a seeded pick, a wait list): the
    baseline the engine's bookkeeping is measured against."""
    rng = random.Random(seed)
    owner = [None]
    waiters = []
    runnable = list(range(tasks))

    async def mlock(i):
        await _yield(0)
        while owner[0] is not None:
            await _yield(1)
        owner[0] = i

    async def munlock():
        await _yield(0)
        owner[0] = None
        if waiters:
            runnable.append(waiters.pop(0))

    async def worker(i):
        for _ in range(iterations):
            await mlock(i)
            await _yield(0)
            await munlock()

    coros = {i: worker(i) for i in range(tasks)}
    steps = 0
    while runnable:
        i = runnable.pop(int(rng.random() * len(runnable)))
        steps += 1
        try:
            msg = coros[i].send(None)
        except StopIteration:
            continue
        if msg == 1:
            waiters.append(i)
        else:
            runnable.append(i)
    return steps


def bare_send(n):
    async def loop():
        for _ in range(n):
            await _yield(0)

    c = loop()
    try:
        while True:
            c.send(None)
    except StopIteration:
        pass
    return n


def timed(fn, repeat):
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        steps = fn()
        samples.append((time.perf_counter() - t, steps))
    return samples


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and seeds")
    args = ap.parse_args()
    repeat = 3 if args.quick else 7
    seeds = 5 if args.quick else 20

    print("== 1. engine microbenchmark: 4 tasks x 5000 lock/write/unlock, random strategy")
    build = build_contention(4, 5000)

    def engine_run():
        result, _ = run_once(build, make_strategy("random", 1), 0, max_steps=10**7)
        return result.steps

    def pairs(n):
        """Time the engine and the minimal scheduler in alternation, ``n``
        times: a machine busy with other work slows both sides of a pair
        alike, and the ratio is the median of the pairs'."""
        engine_s, base_s, ratios = [], [], []
        for _ in range(n):
            (te, ne), (tb, nb) = timed(engine_run, 1)[0], timed(lambda: minimal_scheduler(4, 5000), 1)[0]
            engine_s.append(ne / te)
            base_s.append(nb / tb)
            ratios.append((te / ne) / (tb / nb))
        return statistics.median(engine_s), statistics.median(base_s), ratios

    # CPython 3.11 specializes a function's bytecode (its attribute and
    # global lookups) only from about its 8th call on, never in the middle
    # of a call.  A campaign calls Execution.run() once per schedule, so all
    # but its first few schedules run the specialized loop, while one long
    # run of a fresh process runs the generic one.  Both are shown: "cold",
    # the first calls of either loop; "warm", after both were first called
    # ten times on a small workload.
    cold = pairs(min(repeat, 3))[2]
    small = build_contention(4, 10)
    for i in range(10):
        run_once(small, make_strategy("random", 1), i, max_steps=10**7)
        minimal_scheduler(4, 10, seed=i)
    engine_rate, base_rate, ratios = pairs(repeat)
    print(f"   engine:            {engine_rate:12,.0f} steps/s  ({1e9 / engine_rate:6.0f} ns/step, median of {repeat})")
    print(f"   minimal scheduler: {base_rate:12,.0f} steps/s  ({1e9 / base_rate:6.0f} ns/step)")
    s = timed(lambda: bare_send(200_000), repeat)
    send_rate = statistics.median(n / t for t, n in s)
    print(f"   bare coro.send:    {send_rate:12,.0f} sends/s  ({1e9 / send_rate:6.0f} ns/send)")
    print(
        f"   engine / minimal cost ratio: {statistics.median(ratios):.2f}x warm"
        f" (median of {repeat} pairs; min {min(ratios):.2f}x, max {max(ratios):.2f}x);"
        f" {statistics.median(cold):.2f}x cold (median of {len(cold)})"
    )

    print("== 2. budget-rerun --variant fixed: 500 schedules, pct")
    sc = get("budget-rerun")
    fixed = sc.builder(sc.variants["fixed"])
    rates, sched_rates = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        r = explore(fixed, make_strategy("pct", 0), 500, max_steps=sc.max_steps)
        dt = time.perf_counter() - t
        rates.append(r.steps / dt)
        sched_rates.append(r.schedules / dt)
    print(
        f"   {statistics.median(rates):,.0f} steps/s, "
        f"{statistics.median(sched_rates):,.0f} schedules/s (median of {repeat})"
    )

    print(f"== 3. budget-rerun --variant buggy: first violation, median over {seeds} seeds")
    buggy = sc.builder(sc.variants["buggy"])
    for name in ("pct", "random", "dfs"):
        counts, secs, misses = [], [], 0
        for seed in range(seeds):
            strategy = make_strategy(name, seed, preemption_bound=2)
            t = time.perf_counter()
            r = explore(buggy, strategy, 20_000, max_steps=sc.max_steps, time_limit_s=30)
            dt = time.perf_counter() - t
            if r.findings:
                counts.append(r.findings[0].schedule_index + 1)
                secs.append(r.findings[0].elapsed_s)
            else:
                misses += 1
            if name == "dfs":
                break  # DFS is deterministic: one run says it all
        if counts:
            print(
                f"   {name:6}: median {statistics.median(counts):8.0f} schedules, "
                f"{statistics.median(secs):7.3f} s to the stall"
                f" (max {max(secs):.3f} s; {misses} of {len(counts) + misses} runs found nothing)"
            )
        else:
            print(f"   {name:6}: nothing found within 20,000 schedules / 30 s")


if __name__ == "__main__":
    main()
