"""Reports people read: width, trace window, progress, JSON schema, interrupts, bad input."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blkrace import cli
from blkrace.engine.token import decode
from blkrace.report.progress import CheckProgress
from blkrace.report.text import piped_width, timeline_layout
from blkrace.report.window import WHOLE_ROWS, window
from schema_subset import errors

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "blkrace.schema.json").read_text())


def run(*args, columns=None, timeout=600):
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("COLUMNS", None)
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def one_line_error(proc):
    assert proc.returncode == 2, (proc.returncode, proc.stderr[:300])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("blkrace: error:"), proc.stderr[:500]
    return lines[0]


# ---- the terminal report fits its width --------------------------------------------------------


@pytest.fixture(scope="module")
def buggy_token():
    proc = run("check", "budget-rerun", "--variant", "buggy", "--json", "--trace", "none")
    assert proc.returncode == 1
    return json.loads(proc.stdout)["results"][0]["violations"][0]["token"]


@pytest.mark.parametrize("columns", [80, 120])
def test_the_report_fits_the_width_but_for_the_token(columns):
    proc = run("check", "budget-rerun", "--variant", "buggy", columns=columns)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    wide = [line for line in lines if len(line) > columns]
    assert all("blkrace replay br1." in line for line in wide), wide
    assert any(line.startswith("Timeline") for line in lines)
    assert "Call Trace:" in proc.stdout and "wait_for_completion" in proc.stdout
    if columns == 120:  # a column per CPU
        assert all(f"CPU{n}" in proc.stdout.split("Timeline", 1)[1].splitlines()[1] for n in range(4))
    else:  # one row per line, with its CPU
        assert "CPU  [task] what" in proc.stdout


def test_the_layout_is_chosen_by_width():
    assert timeline_layout(80, 4) == ("list", 0)
    assert timeline_layout(120, 4)[0] == "columns"
    assert timeline_layout(80, 2)[0] == "columns"
    assert timeline_layout(300, 4) == ("columns", 34)


def test_piped_output_follows_columns_or_a_default():
    assert piped_width({}) == 100
    assert piped_width({"COLUMNS": "132"}) == 132
    assert piped_width({"COLUMNS": "x"}) == 100
    assert piped_width({"COLUMNS": "5"}) == 100


def test_list_is_readable_at_80_columns():
    proc = run("list", columns=80)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    # variant names are never broken
    for name in ("unchecked-sender-2014-check", "start-queues-in-teardown", "fixed-without-stacking"):
        assert f"  {name}" in lines


def test_a_lockup_report_is_a_window_of_its_long_run():
    proc = run("check", "nvme-mpath-freeze", "--variant", "start-queues-in-teardown", columns=100)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) < 300, len(lines)
    assert "BUG: soft lockup - CPU#" in proc.stdout
    assert "rows not shown" in proc.stdout and "--trace full shows all" in proc.stdout
    assert "Blocked tasks at the end of the run:" in proc.stdout


def test_trace_modes(buggy_token):
    window_out = run("replay", buggy_token, columns=100).stdout
    full_out = run("replay", buggy_token, "--trace", "full", columns=100).stdout
    none_out = run("replay", buggy_token, "--trace", "none", columns=100).stdout
    assert "Timeline (the end of the run" in window_out
    assert len(full_out.splitlines()) > len(window_out.splitlines()) > len(none_out.splitlines())
    assert "Timeline" not in none_out and "Call Trace:" in none_out
    assert "valid: window, full, none" in one_line_error(run("replay", buggy_token, "--trace", "some"))


def test_the_window_keeps_the_end_and_each_cpu():
    rows = [{"lane": i % 3 if i < 500 else 0, "task": f"t{i % 3}", "kind": "step"} for i in range(1000)]
    rows[10]["kind"] = "event"
    shown = window(rows, blocked=[("t1", 1, "wq", (), "D")])
    assert shown == sorted(shown) and len(shown) < 80
    assert 999 in shown and 10 in shown
    assert any(rows[i]["lane"] == 2 for i in shown)  # the last steps of a CPU idle for a while
    assert len(window(rows[:WHOLE_ROWS], ())) == WHOLE_ROWS


# ---- messages are never markup -----------------------------------------------------------------


def _bracket_scenario(monkeypatch):
    from blkrace.engine import access
    from blkrace.engine.violations import StopRun, Violation
    from blkrace.scenarios import registry
    from blkrace.scenarios.base import Scenario, Variant

    class Brackets(Scenario):
        def build(self, execution, variant):
            async def task():
                await access(None)
                raise StopRun(Violation("bug", "BUG: stuck [fio-0:1] -> kworker [nvme0n1->srcu] [bold]x[/bold]"))

            execution.spawn(task(), "fio-0", lane=0)

    variants = {
        "a": Variant("a", frozenset(), frozenset({"bug"}), "[red]a[/red]"),
        "b": Variant("b", frozenset(), frozenset({"bug"}), "b"),
    }
    scenario = Brackets("brackets", "[x] in brackets", "-", variants)
    monkeypatch.setitem(registry.SCENARIOS, "brackets", scenario)


def test_messages_in_square_brackets_are_printed_as_they_are(monkeypatch, capsys):
    _bracket_scenario(monkeypatch)
    for args in (["check", "--all", "-n", "3"], ["check", "brackets", "-n", "3"], ["list"]):
        with pytest.raises(SystemExit):
            cli.main(args)
        out = capsys.readouterr().out
        if args[0] == "list":
            assert "[x] in brackets" in out and "[red]a[/red]" in out
        else:
            assert "BUG: stuck [fio-0:1] -> kworker [nvme0n1->srcu] [bold]x[/bold]" in out


# ---- JSON: one versioned shape, checked against docs/blkrace.schema.json -----------------------


def test_the_schema_validator_rejects_what_it_should():
    good = {
        "schema_version": 1,
        "command": "check",
        "exit_status": 0,
        "ok": True,
        "interrupted": False,
        "results": [],
        "skipped": [],
    }
    assert errors(good, SCHEMA) == []
    assert errors(dict(good, schema_version=2), SCHEMA)
    assert errors(dict(good, ok=1), SCHEMA)
    assert errors({k: v for k, v in good.items() if k != "results"}, SCHEMA)
    assert errors(dict(good, results=[{"scenario": "x"}]), SCHEMA)
    assert errors(dict(good, exit_status=7), SCHEMA)


def test_check_json_of_one_and_of_several_variants_follows_the_schema():
    one = run("check", "budget-rerun", "--variant", "buggy", "--json")
    several = run("check", "budget-rerun", "-n", "50", "--json")
    for proc, count in ((one, 1), (several, 2)):
        doc = json.loads(proc.stdout)
        assert errors(doc, SCHEMA) == []
        assert doc["exit_status"] == proc.returncode and len(doc["results"]) == count
    v = json.loads(one.stdout)["results"][0]["violations"][0]
    # numbered from 1, as the text report numbers it
    text = run("check", "budget-rerun", "--variant", "buggy").stdout
    assert f"found at schedule {v['schedule']} " in text
    assert next(s for s in v["trace"] if s["kind"] == "step")["step"] == 1  # spawns before it are at 0


def test_replay_json_follows_the_schema(buggy_token):
    proc = run("replay", buggy_token, "--json")
    doc = json.loads(proc.stdout)
    assert errors(doc, SCHEMA) == [] and doc["command"] == "replay" and doc["exit_status"] == 1
    none = json.loads(run("replay", buggy_token, "--json", "--trace", "none").stdout)
    assert none["trace"] == [] and none["violations"] == doc["violations"]


# ---- interrupts: SIGINT and SIGTERM, nothing lost, nothing claimed ------------------------------


def _interrupt(sig, args, after_s):
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "blkrace", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    time.sleep(after_s)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


@pytest.mark.parametrize("sig,after_s", [(signal.SIGTERM, 3.0), (signal.SIGINT, 2.0), (signal.SIGTERM, 8.0)])
def test_an_interrupted_check_reports_what_it_found_and_claims_nothing(sig, after_s):
    code, out, err = _interrupt(sig, ["check", "--all", "--json"], after_s)
    assert code == 130, err
    assert "never awaited" not in err and "Traceback" not in err
    if after_s >= 8:  # piped, progress comes every 3 s
        assert " schedules, " in err and err.startswith("blkrace: "), err
    if not out:  # the signal came before the model was imported
        return
    doc = json.loads(out)
    assert errors(doc, SCHEMA) == []
    assert doc["interrupted"] is True and doc["ok"] is False and doc["exit_status"] == 130
    assert doc["skipped"]
    for r in doc["results"]:
        if r["interrupted"]:
            assert r["expectation_held"] is None
        for v in r["violations"]:
            decode(v["token"])


def test_an_interrupted_text_check_says_so():
    code, out, err = _interrupt(signal.SIGTERM, ["check", "--all"], 3.0)
    assert code == 130 and "never awaited" not in err
    assert "variants not run" in out


# ---- progress when piped -----------------------------------------------------------------------


def test_piped_progress_writes_a_line_every_few_seconds():
    now = [0.0]
    stream = io.StringIO()
    progress = CheckProgress(stream=stream, interval_s=3.0, clock=lambda: now[0])
    label = progress.add("budget-rerun fixed", 40)
    for done in range(1, 41):
        now[0] = done * 0.25  # a run every quarter second
        progress.update(label, done, found=0 if done < 20 else 1)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "blkrace: budget-rerun fixed: 12/40 schedules, 0 findings, 3.0 s",
        "blkrace: budget-rerun fixed: 24/40 schedules, 1 finding, 6.0 s",
        "blkrace: budget-rerun fixed: 36/40 schedules, 1 finding, 9.0 s",
    ]
    quiet = CheckProgress(enabled=False, stream=io.StringIO(), clock=lambda: now[0])
    quiet.add("x", 1)
    now[0] += 100
    quiet.update("x", 1)
    assert quiet.stream.getvalue() == ""


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("check", "x" * 100_000),
        ("check", "budget-rerun", "--variant", "v" * 100_000),
        ("check", "budget-rerun", "--strategy", "s" * 100_000),
        ("check", "budget-rerun", "--seed", "9" * 100_000),
        ("replay", "br1." + "A" * 100_000),
        ("replay", "q" * 100_000),
    ],
)
def test_long_arguments_are_shortened_in_messages(args):
    line = one_line_error(run(*args))
    assert len(line) < 300, len(line)


@pytest.mark.parametrize("value", ["1.0", "1.5", "1e3", "0x10", " ", "one"])
def test_integer_options_take_whole_numbers_only(value):
    line = one_line_error(run("check", "budget-rerun", "--variant", "fixed", "--seed", value, "-n", "1"))
    assert "Invalid value for '--seed':" in line and "is not a whole number" in line


def test_integer_options_keep_their_minimum():
    assert "'-n': 0 is below the minimum, 1" in one_line_error(run("check", "budget-rerun", "-n", "0"))
    line = one_line_error(run("replay", "br1.AAAA", "--max-steps", "3"))
    assert "'--max-steps': 3 is below the minimum, 10" in line


@pytest.mark.parametrize("suffix", ["hello_world_1234", "\nTOKEN", "AAAA"])
def test_a_token_with_anything_after_it_is_bad_input(buggy_token, suffix):
    line = one_line_error(run("replay", buggy_token + suffix.replace("TOKEN", buggy_token)))
    assert "bad token" in line
