"""`check --prove SECONDS`: bounded verification after the sampling campaign.

The proof is DPOR at preemption bound 0, 1, ... up to --preemption-bound; its
verdict must be what DPOR itself says of each bound (the same schedules, the
same exhausted flag), a finding of it must be reported like any other (with a
token that replays it), and a variant whose campaign found something is not
proved at all.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from blkrace.engine.campaign import explore, replay
from blkrace.engine.strategy import DPOR
from blkrace.engine.token import decode
from blkrace.scenarios.registry import SCENARIOS
from schema_subset import errors

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "blkrace.schema.json").read_text())


def run(*args):
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(
        [sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env, timeout=600
    )


def check_json(*args):
    proc = run("check", *args, "--json")
    doc = json.loads(proc.stdout)
    assert errors(doc, SCHEMA) == [], errors(doc, SCHEMA)
    assert doc["exit_status"] == proc.returncode
    return doc["results"][0]


def dpor_schedules(scenario, variant, bound):
    s = SCENARIOS[scenario]
    v = s.variants[variant]
    r = explore(s.builder(v), DPOR(preemption_bound=bound), 10**9, stop_on_first=False, max_steps=s.max_steps_of(v))
    return r.schedules, r.exhausted


def test_a_proof_is_dpor_bound_by_bound_up_to_the_preemption_bound():
    # Generous time: the verdict is the bound, not the clock (bounds 0-2 take about a second).
    out = check_json("quiesce-order", "--variant", "buggy-sc", "--prove", "600", "--jobs", "1")
    proof = out["proof"]
    assert out["expectation_held"] is True and out["violations"] == []
    assert proof["max_bound"] == 2 and proof["bound"] == 2 and not proof["interrupted"]
    assert [b["bound"] for b in proof["bounds"]] == [0, 1, 2]
    for b in proof["bounds"]:
        assert (b["schedules"], b["exhausted"]) == dpor_schedules("quiesce-order", "buggy-sc", b["bound"])
        assert b["cut"] == 0 and b["found"] == []


def test_the_text_report_says_what_was_proved_and_the_all_table_has_the_bound():
    proc = run("check", "quiesce-order", "--prove", "600", "--preemption-bound", "1", "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "proved within preemption bound 1" in text
    assert "every interleaving of dependent steps up to that bound" in text
    assert "bound 1 was the highest asked for" in text
    assert "proved: bound 1" in text  # buggy-sc, in the summary
    assert "proved: -" in text  # buggy: its campaign found the stall, nothing to prove


def test_a_proof_that_finds_a_violation_reports_it_with_a_token():
    # One sampled schedule misses the stall; the proof's DPOR search finds it.
    out = check_json("quiesce-order", "--variant", "buggy", "-n", "1", "--prove", "600", "--jobs", "1")
    proof = out["proof"]
    last = proof["bounds"][-1]
    assert last["found"] == ["stall"] and not last["exhausted"]
    assert proof["bound"] == (last["bound"] - 1 if last["bound"] else None)
    assert out["expectation_held"] is True
    v = out["violations"][0]
    assert v["kind"] == "stall" and v["found_by"] == f"dpor-pb{last['bound']}, proving"
    s = SCENARIOS["quiesce-order"]
    sched = decode(v["token"])
    result, _, _ = replay(s.builder(s.variants["buggy"]), sched.choices, max_steps=s.max_steps)
    assert "stall" in {x.kind for x in result.violations}


def test_a_variant_that_showed_something_is_not_proved():
    out = check_json("quiesce-order", "--variant", "buggy", "--prove", "600")
    assert out["violations"] and out["proof"] is None
    out = check_json("quiesce-order", "--variant", "buggy", "-n", "5")
    assert out["proof"] is None  # not asked for


def test_the_html_report_has_the_proved_column(tmp_path):
    page = tmp_path / "check.html"
    proc = run(
        "check", "quiesce-order", "--prove", "600", "--preemption-bound", "1", "--jobs", "1", "--html", str(page)
    )
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    start = text.index('id="blkrace-data">') + len('id="blkrace-data">')
    data = json.loads(text[start : text.index("</script>", start)])
    proved = {s["variant"]: s["proved"] for s in data["summary"]}
    assert proved == {"buggy": "-", "fixed": "bound 1", "buggy-sc": "bound 1"}


def test_a_proof_is_kept_in_the_store_and_resumed_from_it(tmp_path):
    db = str(tmp_path / "proof.db")
    args = ("quiesce-order", "--variant", "buggy-sc", "--prove", "600", "--jobs", "1", "--store", db)
    first = check_json(*args)["proof"]
    assert first["bound"] == 2 and not any(b["stored"] for b in first["bounds"])
    # `blkrace findings` lists each bound the proof finished.
    proc = run("findings", db)
    assert proc.returncode == 0, proc.stderr
    assert "proof (DPOR, check --prove):" in proc.stdout
    for b in first["bounds"]:
        assert f"bound {b['bound']}: {b['schedules']} schedules in" in proc.stdout
    listed = json.loads(run("findings", db, "--json").stdout)["campaigns"][0]["proof"]
    assert [(b["bound"], b["schedules"], b["exhausted"]) for b in listed] == [
        (b["bound"], b["schedules"], b["exhausted"]) for b in first["bounds"]
    ]
    # Resumed, the exhausted bounds come from the store, not from a new search.
    again = check_json(*args, "--resume")["proof"]
    assert again["bound"] == 2 and all(b["stored"] for b in again["bounds"])
    assert [b["schedules"] for b in again["bounds"]] == [b["schedules"] for b in first["bounds"]]


def test_a_bound_not_exhausted_is_searched_again_on_resume(tmp_path):
    db = str(tmp_path / "proof.db")
    # Bound 0 of hctx-drain's fixed-recheck does not finish in a second.
    args = ("hctx-drain", "--variant", "fixed-recheck", "-n", "10", "--jobs", "1", "--store", db)
    first = check_json(*args, "--prove", "1")["proof"]
    assert first["bound"] is None and first["bounds"][-1]["exhausted"] is False
    again = check_json(*args, "--prove", "1", "--resume")["proof"]
    assert again["bounds"][0]["stored"] is False
