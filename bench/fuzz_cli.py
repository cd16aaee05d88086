"""Fuzz the command line and the token decoder; print what happened.

    python bench/fuzz_cli.py                   # 500 command lines, 70,000 decoder inputs, seed 0
    python bench/fuzz_cli.py --lines 2000 --tokens 200000 --seed 7

Command lines are mutations of valid ones (values swapped for junk: floats,
huge or empty strings, markup, unknown options, cut or joined tokens), run
in this process through the console entry point.  Counted: exit statuses,
tracebacks (any exception escaping the entry point), bad-input messages that
are not exactly one line, and the longest such line.  Decoder inputs are
mutations of real tokens and crafted bodies; counted: accepted, refused with
TokenError, anything else, and the slowest decode.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import random
import sys
import time
import zlib
from collections import Counter

from blkrace import cli
from blkrace.engine.token import PREFIX, Schedule, TokenError, decode, encode
from blkrace.scenarios.registry import model_fingerprint

JUNK = [
    "1.0",
    "1.5",
    "-1",
    "0",
    "1e3",
    "0x10",
    "",
    " ",
    "٣",
    "x" * 100_000,
    "[bold red]x[/bold red]",
    "--",
    "-",
    "--all",
    "none",
    "full",
    "br1.",
    "nvme-mpath-freeze",
    "ünïcödé",
    "\t\n",
    "%s%n",
    "$(echo)",
    "-n",
    "--json",
]
OPTIONS = [
    "--variant",
    "--strategy",
    "--schedules",
    "-n",
    "--seed",
    "--max-steps",
    "--preemption-bound",
    "--depth",
    "--preempt",
    "--trace",
    "--frobnicate",
    "-v",
    "-s",
    "--json",
    "--all",
    "--help",
]


def base_lines(token):
    return [
        ["check", "budget-rerun", "--variant", "buggy", "-n", "2", "--json", "--trace", "none"],
        ["check", "budget-rerun", "--variant", "fixed", "-n", "2", "--seed", "3"],
        ["check", "hctx-drain", "--variant", "buggy", "-n", "2", "--strategy", "random", "--no-shrink"],
        ["check", "ipi-flush", "--variant", "fixed", "-n", "2", "--preempt", "none", "--depth", "2"],
        ["check", "budget-rerun", "--variant", "fixed", "-n", "2", "--strategy", "dfs", "--preemption-bound", "1"],
        ["replay", token, "--trace", "none"],
        ["replay", token, "--variant", "fixed", "--json", "--trace", "none"],
        ["list"],
    ]


def mutate(rng, line, token):
    line = list(line)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        i = rng.randrange(len(line)) if line else 0
        if op == 0 and line:  # a value becomes junk
            line[i] = rng.choice(JUNK)
        elif op == 1:  # an option, maybe without its value
            line.insert(i, rng.choice(OPTIONS))
        elif op == 2 and len(line) > 1:  # drop an argument
            del line[i]
        elif op == 3:  # a cut, extended or joined token
            variants = [
                token[: rng.randrange(len(token))],
                token + "hello_world_1234",
                token + "\n" + token,
                token[::-1],
            ]
            line.insert(i, rng.choice(variants))
        elif op == 4 and line:  # a long argument
            line[i] = line[i] * rng.randint(2, 2000)
        elif op == 5:  # an unknown command
            line[0] = rng.choice(["chek", "", "--version", "replay", "check", "list", "LIST"])
        else:  # an option value out of range
            line += [rng.choice(["-n", "--max-steps", "--depth", "--seed"]), rng.choice(["0", "-5", "1.0", "9" * 30])]
    # Never explore for long: a count that survived keeps its bound.
    if "-n" not in line and "--schedules" not in line and line and line[0] == "check":
        line += ["-n", "2"]
    if "--all" in line:
        line += ["-n", "1"]
    return line


def run_line(argv):
    out, err = io.StringIO(), io.StringIO()
    traceback = None
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException as exc:  # noqa: BLE001 - a traceback is what we count
            traceback = f"{type(exc).__name__}: {exc}"
    return code, out.getvalue(), err.getvalue(), traceback


def fuzz_lines(rng, count, token):
    codes = Counter()
    tracebacks = []
    bad_messages = []
    longest = 0
    bases = base_lines(token)
    for _ in range(count):
        argv = mutate(rng, rng.choice(bases), token)
        code, _, err, tb = run_line(argv)
        if tb:
            tracebacks.append((argv, tb))
            continue
        codes[code] += 1
        if code == 2:
            lines = [x for x in err.splitlines() if x.strip()]
            if len(lines) != 1 or not lines[0].startswith("blkrace: error:"):
                bad_messages.append((argv, err[:300]))
            else:
                longest = max(longest, len(lines[0]))
        if "Traceback" in err:
            tracebacks.append((argv, err[:300]))
    return codes, tracebacks, bad_messages, longest


def token_inputs(rng, count, tokens):
    fp = model_fingerprint()
    for n in range(count):
        kind = n % 6
        token = rng.choice(tokens)
        if kind == 0:  # a character changed
            i = rng.randrange(len(PREFIX), len(token))
            yield token[:i] + rng.choice("AZaz09-_.=+/ \n") + token[i + 1 :]
        elif kind == 1:  # cut or extended
            yield token[: rng.randrange(len(token) + 1)] + rng.choice(
                ["", "A", "AAAA", "hello_world_1234", "\n" + token]
            )
        elif kind == 2:  # random base64url
            yield PREFIX + "".join(rng.choice("ABCxyz019-_") for _ in range(rng.randrange(200)))
        elif kind == 3:  # a crafted raw or compressed body
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            flag = rng.choice([b"r", b"z"])
            if flag == b"z":
                body = zlib.compress(body)
            yield PREFIX + base64.urlsafe_b64encode(flag + body).decode().rstrip("=")
        elif kind == 4:  # a valid token of random content
            sched = Schedule(
                "budget-rerun", "buggy", "", fp, tuple(rng.randrange(50) for _ in range(rng.randrange(300)))
            )
            yield encode(sched)
        else:  # arbitrary text
            yield "".join(chr(rng.randrange(32, 0x2FF)) for _ in range(rng.randrange(60)))


def fuzz_tokens(rng, count, tokens):
    accepted = refused = 0
    other = []
    slowest = 0.0
    for text in token_inputs(rng, count, tokens):
        start = time.perf_counter()
        try:
            decode(text)
            accepted += 1
        except TokenError:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - counted
            other.append((text[:80], f"{type(exc).__name__}: {exc}"))
        slowest = max(slowest, time.perf_counter() - start)
    # The bomb: 30 million one-byte choices in about 30 KB.
    bomb = bytes([1, 0, 0, 0]) + model_fingerprint() + b"\x80\x8e\xce\x0e" + b"\x01" * 30_000_000
    text = PREFIX + base64.urlsafe_b64encode(b"z" + zlib.compress(bomb, 9)).decode().rstrip("=")
    start = time.perf_counter()
    try:
        decode(text)
        bomb_result = "accepted"
    except TokenError as exc:
        bomb_result = f"refused ({exc})"
    bomb_s = time.perf_counter() - start
    return accepted, refused, other, slowest, (len(text), bomb_result, bomb_s)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--tokens", type=int, default=70_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    code, out, _, _ = run_line(["check", "budget-rerun", "--variant", "buggy", "--json", "--trace", "none"])
    import json

    token = json.loads(out)["results"][0]["violations"][0]["token"]
    start = time.perf_counter()
    codes, tracebacks, bad_messages, longest = fuzz_lines(rng, args.lines, token)
    lines_s = time.perf_counter() - start
    print(f"command lines: {args.lines} in {lines_s:.1f} s (seed {args.seed})")
    print(f"  exit statuses: {dict(sorted(codes.items(), key=lambda kv: str(kv[0])))}")
    print(f"  tracebacks: {len(tracebacks)}")
    for argv, tb in tracebacks[:5]:
        print(f"    {[a[:40] for a in argv]}: {tb[:200]}")
    print(f"  bad-input messages not exactly one 'blkrace: error:' line: {len(bad_messages)}")
    for argv, err in bad_messages[:5]:
        print(f"    {[a[:40] for a in argv]}: {err[:200]!r}")
    print(f"  longest bad-input line: {longest} characters")
    start = time.perf_counter()
    accepted, refused, other, slowest, bomb = fuzz_tokens(rng, args.tokens, [token])
    print(f"token decoder: {args.tokens} inputs in {time.perf_counter() - start:.1f} s")
    print(f"  accepted {accepted}, refused with TokenError {refused}, other exceptions {len(other)}")
    for text, exc in other[:5]:
        print(f"    {text!r}: {exc}")
    print(f"  slowest decode: {slowest * 1000:.2f} ms")
    print(f"  a {bomb[0]:,}-character token inflating to 30,000,000 choices: {bomb[1]} in {bomb[2] * 1000:.1f} ms")
    sys.exit(1 if tracebacks or bad_messages or other else 0)


if __name__ == "__main__":
    main()
