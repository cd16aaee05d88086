"""The command line contract: outputs, exit statuses, one-line errors, determinism."""

import json
import os
import subprocess
import sys

import pytest

from blkrace import cli
from blkrace.engine.token import Schedule, decode, encode
from blkrace.scenarios.registry import model_fingerprint


def run(*args, hashseed="0"):
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    return subprocess.run(
        [sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env, timeout=600
    )


def one_result(stdout):
    """The one variant's result of `check --json` (the document has one shape for any count)."""
    doc = json.loads(stdout)
    assert doc["schema_version"] == 1 and doc["command"] == "check" and len(doc["results"]) == 1
    return doc["results"][0]


@pytest.fixture(scope="module")
def buggy_json():
    proc = run("check", "budget-rerun", "--variant", "buggy", "--json", hashseed="1")
    assert proc.returncode == 1, proc.stderr
    return one_result(proc.stdout)


def test_list_names_every_variant():
    proc = run("list")
    assert proc.returncode == 0
    for word in ("budget-rerun", "buggy", "fixed", "blk-mq-rerun-on-budget-contention"):
        assert word in proc.stdout


def test_check_buggy_reports_stall_with_token(buggy_json):
    out = buggy_json
    assert out["scenario"] == "budget-rerun" and out["variant"] == "buggy"
    assert out["strategy"] == "portfolio" and out["schedules"] >= 1
    kinds = [v["kind"] for v in out["violations"]]
    assert "stall" in kinds
    v = out["violations"][0]
    assert v["token"].startswith("br1.")
    step = v["trace"][0]
    for key in ("step", "time_ns", "task", "cpu", "operation"):
        assert key in step


def test_text_report_has_timeline_backtrace_and_replay_command():
    proc = run("check", "budget-rerun", "--variant", "buggy")
    assert proc.returncode == 1
    out = proc.stdout
    assert "CPU0" in out and "CPU3" in out
    assert "Call Trace:" in out and "wait_for_completion" in out
    assert "blkrace replay br1." in out


def test_replay_in_another_process_gives_the_identical_trace(buggy_json):
    v = buggy_json["violations"][0]
    proc = run("replay", v["token"], "--json", hashseed="12345")
    assert proc.returncode == 1, proc.stderr
    replayed = json.loads(proc.stdout)
    assert replayed["trace"] == v["trace"]
    # The check's findings of that same run (the portfolio may find others in other runs).
    same_run = [x["message"] for x in buggy_json["violations"] if x["token"] == v["token"]]
    assert set(same_run) <= {x["message"] for x in replayed["violations"]}


def test_check_fixed_is_clean():
    proc = run("check", "budget-rerun", "--variant", "fixed", "--schedules", "300", "--json")
    assert proc.returncode == 0, proc.stderr
    out = one_result(proc.stdout)
    assert out["violations"] == [] and out["schedules"] == 300


def test_check_all_holds():
    proc = run("check", "--all")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every scenario and variant" in proc.stdout


def _one_line_error(proc):
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("blkrace: error:")
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args,needle",
    [
        (("check", "no-such-scenario"), "valid: budget-rerun"),
        (("check", "budget-rerun", "--variant", "nope"), "valid: buggy, fixed"),
        (("check", "budget-rerun", "--strategy", "bogus"), "valid: portfolio, random, pct"),
        (("check", "budget-rerun", "--schedules", "x"), "--schedules"),
        (("check", "budget-rerun", "--frobnicate"), "--frobnicate"),
        (("check",), "--all"),
        (("check", "budget-rerun", "--preempt", "voluntary"), "valid: full, none"),
        (("check", "--all", "--preempt", "full"), "--preempt goes with a scenario"),
        (("replay", "not-a-token"), "not a blkrace schedule token"),
        (("check", "quiesce-order", "--prove", "0"), "positive number of seconds"),
        (("check", "quiesce-order", "--prove", "soon"), "not a number of seconds"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, needle):
    assert needle in _one_line_error(run(*args))


def test_truncated_token_is_refused(buggy_json):
    token = buggy_json["violations"][0]["token"]
    line = _one_line_error(run("replay", token[:-6]))
    assert "bad token" in line


def test_token_of_another_scenario_or_model_is_refused(buggy_json):
    sched = decode(buggy_json["violations"][0]["token"])
    other = encode(Schedule("other-scenario", sched.variant, "", sched.fingerprint, sched.choices))
    assert "other-scenario" in _one_line_error(run("replay", other))
    other_variant = encode(Schedule(sched.scenario, "nope", "", sched.fingerprint, sched.choices))
    assert "'nope'" in _one_line_error(run("replay", other_variant))
    stale = encode(Schedule(sched.scenario, sched.variant, "", b"\0" * 8, sched.choices))
    assert "another version of the model" in _one_line_error(run("replay", stale))
    assert sched.fingerprint == model_fingerprint()


def test_a_token_with_an_unknown_parameter_is_refused(buggy_json):
    sched = decode(buggy_json["violations"][0]["token"])
    assert sched.params == "preempt=full"
    odd = encode(Schedule(sched.scenario, sched.variant, "hz=250", sched.fingerprint, sched.choices))
    assert "unknown parameter 'hz=250'" in _one_line_error(run("replay", odd))


def test_the_soft_lockup_and_its_token_carry_the_preemption_model():
    # start-queues-in-teardown runs non-preemptible; a token found with
    # --preempt full replays preemptible, whatever the variant's own model.
    proc = run("check", "nvme-mpath-freeze", "--variant", "start-queues-in-teardown", "--json")
    assert proc.returncode == 1, proc.stderr
    out = one_result(proc.stdout)
    assert out["preempt"] == "none" and out["expectation_held"]
    v = out["violations"][0]
    assert v["kind"] == "soft_lockup" and v["message"].startswith("BUG: soft lockup - CPU#")
    assert decode(v["token"]).params == "preempt=none"
    again = json.loads(run("replay", v["token"], "--json").stdout)
    assert [x["message"] for x in again["violations"]][0] == v["message"]
    proc = run("check", "nvme-mpath-freeze", "--variant", "buggy", "--preempt", "full", "--json")
    out = one_result(proc.stdout)
    assert out["preempt"] == "full" and "deadlock" in {x["kind"] for x in out["violations"]}
    token = next(x["token"] for x in out["violations"] if x["kind"] == "deadlock")
    replayed = run("replay", token, "--json")
    assert replayed.returncode == 1, replayed.stderr  # it replays (a mismatch would be 2) and finds
    again = json.loads(replayed.stdout)
    assert again["preempt"] == "full" and "deadlock" in {x["kind"] for x in again["violations"]}


def test_token_that_does_not_fit_the_model_is_refused(buggy_json):
    sched = decode(buggy_json["violations"][0]["token"])
    mangled = encode(Schedule(sched.scenario, sched.variant, "", sched.fingerprint, (999,) + sched.choices[1:]))
    assert "does not replay" in _one_line_error(run("replay", mangled))


def test_model_error_is_one_line_exit_3_and_keeps_findings(monkeypatch, capsys):
    from blkrace.engine import access
    from blkrace.scenarios import registry
    from blkrace.scenarios.base import Scenario, Variant

    class Broken(Scenario):
        def build(self, execution, variant):
            async def oops():
                await access(None)
                raise RuntimeError("model bug")

            execution.spawn(oops(), "oops", lane=0)

    broken = Broken("broken", "raises", "-", {"v": Variant("v", frozenset(), frozenset(), "raises")})
    monkeypatch.setitem(registry.SCENARIOS, "broken", broken)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["check", "broken", "--variant", "v", "--schedules", "3"])
    assert exit_info.value.code == 3
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err) == 1 and "RuntimeError: model bug" in err[0]
    assert "Traceback" not in captured.err
    assert "blkrace replay br1." in captured.out  # the finding is kept, with its token


def test_no_lockdep_finds_the_deadlock_without_the_report_and_its_token_replays():
    proc = run("check", "blkcg-percpu-alloc", "--variant", "buggy", "--no-lockdep", "--json")
    assert proc.returncode == 1, proc.stderr
    out = one_result(proc.stdout)
    kinds = {v["kind"] for v in out["violations"]}
    assert "deadlock" in kinds and "lockdep" not in kinds
    token = next(v["token"] for v in out["violations"] if v["kind"] == "deadlock")
    replayed = run("replay", token, "--json")
    assert replayed.returncode == 1
    assert "deadlock" in {v["kind"] for v in json.loads(replayed.stdout)["violations"]}
