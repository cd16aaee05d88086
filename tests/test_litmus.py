"""Litmus tests through the kernel's memory model, against LKMM's verdicts.

tests/litmus/ holds this project's own tests; expected.tsv gives, for each,
the verdict and execution counts herd7 with tools/memory-model's
linux-kernel.cat gives (`herd7 -conf linux-kernel.cfg FILE`), recorded when
the test was written.  The pairs that differ by one barrier (SB+pos and
SB+mbs, MP+po+po and MP+wmb+rmb, ...) show each primitive's ordering: take
the fence away and a Never becomes Sometimes.
"""

import csv
import pathlib

import pytest

from blkrace.cli import main
from blkrace.litmus import LitmusError, check, check_text, format_verdict

HERE = pathlib.Path(__file__).parent / "litmus"
EXPECTED = {row["name"]: row for row in csv.DictReader(open(HERE / "expected.tsv"), delimiter="\t")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verdict_agrees_with_lkmm(name):
    v = check(HERE / f"{name}.litmus")
    row = EXPECTED[name]
    assert (v.observation, v.pos, v.neg) == (row["expected"], int(row["pos"]), int(row["neg"]))


def test_every_file_has_an_expected_verdict():
    assert sorted(p.stem for p in HERE.glob("*.litmus")) == sorted(EXPECTED)


# A fence taken away makes a Never a Sometimes: each primitive's ordering.
PAIRS = [
    ("SB+mbs", "SB+pos"),
    ("SB+storembs", "SB+pos"),
    ("SB+xchgs", "SB+xchg_relaxeds"),
    ("SB+addreturns", "SB+adds"),
    ("SB+adds-mbafteratomic", "SB+adds"),
    ("SB+cmpxchgs", "SB+cmpxchg-fails"),
    ("SB+mbafterspinlocks", "SB+releaseacquires"),
    ("MP+wmb+rmb", "MP+po+rmb"),
    ("MP+wmb+rmb", "MP+wmb+po"),
    ("MP+release+acquire", "MP+release+po"),
    ("MP+release+acquire", "MP+po+acquire"),
    ("MP+assign+deref", "MP+po+deref"),
    ("MP+wmb+addr", "MP+po+po"),
    ("MP+setrelease+readacquire", "MP+inc+acquire"),
    ("MP+beforeatomic+po", "MP+inc+acquire"),
    ("MP+xchgrelease+xchgacquire", "MP+xchgrelaxeds"),
    ("MP+locks", "MP+lock+po"),
    ("MP+unlocklock+rmb", "MP+po+rmb"),
    ("LB+mbs", "LB+pos"),
    ("LB+ctrls", "LB+data+po"),
    ("LB+ctrls", "LB+ctrl+po"),
    ("LB+acquire+release", "LB+po+release"),
    ("WRC+release+acquire", "WRC+release+po"),
    ("WRC+mb+rmb", "WRC+wmb+rmb"),
    ("IRIW+mbs", "IRIW+rmbs"),
    ("ISA2+release+acqrel+acquire", "ISA2+release+po+mb"),
    ("R+mb+mb", "R+mb+po"),
    ("S+wmb+data", "S+wmb+po"),
    ("2+2W+mbs", "2+2W+wmbs"),
    ("Z6.0+mb+mb+mb", "Z6.0+po+po+mb"),
    ("hctx-inactive+acquire+mb", "hctx-inactive+acquire"),
]


@pytest.mark.parametrize(("fenced", "unfenced"), PAIRS)
def test_taking_the_ordering_away_allows_the_outcome(fenced, unfenced):
    assert check(HERE / f"{fenced}.litmus").observation == "Never"
    assert check(HERE / f"{unfenced}.litmus").observation == "Sometimes"


def test_sc_allows_only_interleavings():
    assert check(HERE / "SB+pos.litmus", model="sc").observation == "Never"
    assert check(HERE / "LB+pos.litmus", model="sc").observation == "Never"
    assert check(HERE / "MP+po+po.litmus", model="sc").observation == "Never"


def test_witness_shows_the_stale_read():
    v = check(HERE / "SB+pos.litmus")
    text = format_verdict(v)
    assert "Observation SB+pos Sometimes 1 3" in text
    assert "(stale: P0's store x = 1 not yet visible)" in text or "(stale: P1's store y = 1 not yet visible)" in text


def test_load_buffering_issues_a_store_early():
    text = format_verdict(check(HERE / "LB+pos.litmus"))
    assert "issued before the po-earlier load" in text


UNSUPPORTED = [
    ("while (READ_ONCE(*x) == 0) ;", "'while'"),
    ("synchronize_rcu();", None),
    ("*x = 1;", "plain access to 'x'"),
]


@pytest.mark.parametrize(("stmt", "what"), UNSUPPORTED)
def test_unsupported_construct_is_a_clear_error(stmt, what):
    p1 = "P1(int *x)\n{\n\tint r0;\n\tr0 = READ_ONCE(*x);\n}\n"
    text = f"C T\n{{}}\nP0(int *x)\n{{\n\t{stmt}\n}}\n{p1}exists (1:r0=1)\n"
    with pytest.raises(LitmusError) as exc:
        check_text(text, path="t.litmus")
    assert str(exc.value).startswith("t.litmus:5: unsupported construct")
    if what:
        assert what in str(exc.value)


def test_cli_verdicts_and_exit_status(capsys, tmp_path):
    bad = tmp_path / "bad.litmus"
    bad.write_text("C bad\n{}\nP0(int *x)\n{\n\tsynchronize_rcu();\n}\nexists (x=1)\n")
    with pytest.raises(SystemExit) as exc:
        main(["litmus", str(HERE / "SB+pos.litmus"), str(bad), str(HERE / "SB+mbs.litmus")])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert "Observation SB+pos Sometimes 1 3" in out and "Observation SB+mbs Never 0 3" in out
    assert err.strip() == f"blkrace: error: {bad}:5: unsupported construct 'synchronize_rcu'"
    with pytest.raises(SystemExit) as exc:
        main(["litmus", "--memory-model", "tso", str(HERE / "SB+pos.litmus")])
    assert exc.value.code == 2
