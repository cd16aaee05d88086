"""docs/WRITING_A_SCENARIO.md: its one Python block runs as a scenario file.

The block is extracted as it stands in the tutorial and run through the
command line (``blkrace check ./my_race.py``), as a reader would.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from blkrace.engine.token import Schedule, decode, encode

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "WRITING_A_SCENARIO.md"


def tutorial_block():
    blocks = re.findall(r"^```python\n(.*?)^```$", TUTORIAL.read_text(), flags=re.S | re.M)
    assert len(blocks) == 1, "the tutorial has exactly one python block: its complete scenario"
    return blocks[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tutorial")
    (d / "my_race.py").write_text(tutorial_block())
    return d


def run(workdir, *args, hashseed="0"):
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    return subprocess.run(
        [sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env, cwd=workdir, timeout=600
    )


def one_line_error(proc):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def buggy(workdir):
    proc = run(workdir, "check", "./my_race.py", "--variant", "buggy", "--json", hashseed="3")
    assert proc.returncode == 1, proc.stderr
    return json.loads(proc.stdout)["results"][0]


def test_the_buggy_variant_strands_a_request_on_hctx_dispatch(buggy):
    assert buggy["scenario"] == "stopped-queue-insert" and buggy["expectation_held"]
    v = buggy["violations"][0]
    assert {x["kind"] for x in buggy["violations"]} == {"stall"}
    assert "on hctx0->dispatch, never dispatched again" in v["message"]
    # The window of the commit message: the hctx is seen stopped, then started and run, then the insert.
    steps = [s for s in v["trace"] if s["kind"] == "step"]

    def frames(step):
        return step["stack"]  # function names, outermost first

    def first(function, task=None):
        return next(s["step"] for s in steps if function in frames(s) and task in (None, s["task"]))

    stranded = v["message"].split(" from ")[1].split()[0]  # "bio:fio-N#0 from fio-N never completed: ..."
    stopped = first("blk_mq_stop_hw_queue")
    seen = first("__blk_mq_try_issue_directly", stranded)
    started = next(s["step"] for s in steps if "blk_mq_start_stopped_hw_queue" in frames(s) and s["step"] > seen)
    inserted = first("blk_mq_request_bypass_insert", stranded)
    assert stopped < seen < started < inserted


def test_its_token_replays_in_another_process_and_names_the_file(workdir, buggy):
    token = buggy["violations"][0]["token"]
    assert decode(token).scenario == "./my_race.py"
    again = run(workdir, "replay", token, "--json", hashseed="11")
    assert again.returncode == 1, again.stderr
    out = json.loads(again.stdout)
    assert [v["message"] for v in out["violations"]] == [v["message"] for v in buggy["violations"]]
    assert out["trace"] == buggy["violations"][0]["trace"]


def test_every_variant_holds_its_declared_outcome(workdir):
    proc = run(workdir, "check", "./my_race.py", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    found = {r["variant"]: sorted({v["kind"] for v in r["violations"]}) for r in out["results"]}
    assert found == {"buggy": ["stall"], "fixed": [], "buggy-kicked": ["latency"], "fixed-kicked": []}


def test_a_token_of_an_edited_scenario_file_is_refused(workdir, buggy, tmp_path):
    token = buggy["violations"][0]["token"]
    (tmp_path / "my_race.py").write_text(tutorial_block().replace("latency_us=100", "latency_us=101"))
    assert "another version of the model or the scenario file" in one_line_error(run(tmp_path, "replay", token))
    (tmp_path / "my_race.py").write_text(tutorial_block())
    assert run(tmp_path, "replay", token).returncode == 1  # the same text again: accepted


def test_a_token_replays_from_elsewhere_with_scenario_file(workdir, buggy, tmp_path):
    token = buggy["violations"][0]["token"]
    # The token names ./my_race.py: from another directory that path is not there.
    missing = one_line_error(run(tmp_path, "replay", token))
    assert "does not exist" in missing and "--scenario-file" in missing
    moved = tmp_path / "elsewhere" / "my_race.py"  # the fingerprint covers its name and bytes
    moved.parent.mkdir()
    moved.write_text(tutorial_block())
    again = run(tmp_path, "replay", token, "--scenario-file", str(moved), "--json")
    assert again.returncode == 1, again.stderr
    assert json.loads(again.stdout)["trace"] == buggy["violations"][0]["trace"]
    # The fingerprint still decides: another text at the new place is refused.
    moved.write_text(tutorial_block().replace("latency_us=100", "latency_us=101"))
    refused = one_line_error(run(tmp_path, "replay", token, "--scenario-file", str(moved)))
    assert "another version of the model or the scenario file" in refused
    # A built-in scenario's token has no file to point at.
    builtin = encode(Schedule("budget-rerun", "buggy", "", decode(token).fingerprint, (0,)))
    assert "--scenario-file does not apply" in one_line_error(
        run(tmp_path, "replay", builtin, "--scenario-file", str(moved))
    )


def test_parameters_are_checked_recorded_in_the_token_and_replayed(workdir):
    proc = run(workdir, "check", "./my_race.py", "--variant", "buggy", "--param", "nr_readers=4", "--json")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)["results"][0]
    assert out["params"] == {"nr_readers": "4"}
    token = out["violations"][0]["token"]
    sched = decode(token)
    assert sched.params == "p.nr_readers=4,preempt=full"
    assert "fio-3" in json.dumps(out["violations"][0]["trace"])  # the fourth reader exists
    replayed = json.loads(run(workdir, "replay", token, "--json").stdout)
    assert replayed["trace"] == out["violations"][0]["trace"]
    # Without the parameter the same choices build another machine: refused or different, never silent.
    bare = encode(Schedule(sched.scenario, sched.variant, "preempt=full", sched.fingerprint, sched.choices))
    other = run(workdir, "replay", bare, "--json")
    assert other.returncode == 2 or json.loads(other.stdout)["trace"] != out["violations"][0]["trace"]
    odd = encode(Schedule(sched.scenario, sched.variant, "p.nr_reader=4", sched.fingerprint, sched.choices))
    assert "unknown parameter 'nr_reader'" in one_line_error(run(workdir, "replay", odd))


@pytest.mark.parametrize(
    "args, needle",
    [
        (("--param", "nr_cpu=8"), "unknown parameter 'nr_cpu' of stopped-queue-insert (valid: nr_cpus"),
        (("--param", "nr_cpus=many"), "parameter nr_cpus takes an integer, not 'many'"),
        (("--param", "nr_cpus"), "--param takes NAME=VALUE"),
    ],
)
def test_bad_parameters_are_one_line_and_exit_2(workdir, args, needle):
    assert needle in one_line_error(run(workdir, "check", "./my_race.py", "--variant", "buggy", *args))


def test_list_shows_the_file_its_parameters_and_variants(workdir):
    proc = run(workdir, "list", "./my_race.py")
    assert proc.returncode == 0, proc.stderr
    for word in ("stopped-queue-insert", "from file ./my_race.py", "--param nr_readers=3", "buggy-kicked"):
        assert word in proc.stdout
