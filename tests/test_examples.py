"""docs/EXAMPLE.md (and the README's marked excerpts) are what the commands print."""

import pytest

import examples


def test_the_documented_examples_are_what_blkrace_prints():
    problems = examples.check()
    assert not problems, "\n".join(problems) + "\nregenerate with: python tests/examples.py --write"


def test_the_checker_catches_a_changed_line_and_forgives_timings_and_tokens():
    name = "budget-rerun-buggy"
    head = examples.command_line(examples.EXAMPLES[name][1])
    output = ["", "stall ──", "x: found at schedule 74 (pct, seed 0) after 0.13 s", "  blkrace replay br1.abc-_Z"]
    same = [head, "", "stall ──", "x: found at schedule 74 (pct, seed 0) after 9.99 s", "  blkrace replay br1.QQ"]
    assert examples.check_exact(name, same, output) is None
    changed = [head, "", "stall ──", "x: found at schedule 75 (pct, seed 0) after 0.13 s", "  blkrace replay br1.QQ"]
    assert "schedule 75" in examples.check_exact(name, changed, output)
    assert examples.check_exact(name, same[:-1], output)
    assert examples.check_excerpt(name, ["stall ──", "...", "  blkrace replay br1.…"], output) is None
    assert examples.check_excerpt(name, ["  blkrace replay br1.…", "stall ──"], output)  # order matters


def test_blocks_are_read_from_markers():
    text = "prose\n<!-- example: a -->\n    $ blkrace x\n\n    out\n<!-- /example -->\nmore"
    assert examples.blocks(text) == {"a": ["$ blkrace x", "", "out"]}


@pytest.mark.parametrize("line", ["took 12.34 s", "br1.enjaY-RJ_k"])
def test_only_timings_and_tokens_are_masked(line):
    assert examples.masked(line) != line
    assert examples.masked("step 116-117 20.200 (blkrace/kernel/sched.py:217)") == (
        "step 116-117 20.200 (blkrace/kernel/sched.py:217)"
    )
