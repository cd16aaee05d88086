"""The pytest plugin: a scenario repository's own tests, run by pytest with blkrace installed."""

import subprocess
import sys

EXAMPLE = """
from blkrace.scenarios.registry import get


def test_fixed_is_clean(blkrace_check):
    run = blkrace_check("budget-rerun", "fixed", schedules=40)
    assert run.campaign.schedules == 40 and run.reports == []


def test_buggy_finds_its_declared_stall(blkrace_check):
    run = blkrace_check(get("budget-rerun"), "buggy", shrink=False)
    assert run.found_kinds == ["stall"]


def test_buggy_said_to_be_clean(blkrace_check):
    blkrace_check("budget-rerun", "buggy", expect=(), shrink=False)


def test_fixed_said_to_stall(blkrace_check):
    blkrace_check("budget-rerun", "fixed", expect={"stall"}, schedules=30)


def test_unknown_scenario(blkrace_check):
    blkrace_check("no-such-scenario")
"""


def test_the_fixture_passes_and_fails_with_the_report(pytester):
    pytester.makepyfile(test_example=EXAMPLE)
    html_dir = pytester.path / "reports"
    result = pytester.runpytest("-p", "blkrace", f"--blkrace-html={html_dir}")
    result.assert_outcomes(passed=2, failed=3)
    out = result.stdout.str()
    # A found race fails the test with the report the command line prints.
    result.stdout.fnmatch_lines(
        [
            "*blkrace: budget-rerun --variant buggy: expected no violation, found stall in * schedules (pct, seed 0)",
        ]
    )
    assert "Call Trace:" in out and "wait_for_completion" in out and "blkrace replay br1." in out
    assert "expected stall, found no violation in 30 schedules" in out
    assert "unknown scenario 'no-such-scenario' (valid: budget-rerun" in out
    # No Python traceback of the plugin's own code: the failure is the report.
    assert "pytest_plugin.py" not in out
    pages = sorted(p.name for p in html_dir.iterdir())
    assert pages == [
        "test_example.py_test_buggy_said_to_be_clean-1.html",
        "test_example.py_test_fixed_said_to_stall-1.html",
    ]
    assert "never dispatched" in (html_dir / pages[0]).read_text()


def test_p_no_blkrace_turns_it_off(pytester):
    pytester.makepyfile(test_example=EXAMPLE)
    result = pytester.runpytest("-p", "no:blkrace", "-k", "fixed_is_clean")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'blkrace_check' not found*"])


def test_loading_the_plugin_imports_nothing_of_blkrace():
    code = (
        "import sys, blkrace.pytest_plugin; "
        "print(sorted(m for m in sys.modules if m.startswith('blkrace') and m != 'blkrace.pytest_plugin'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['blkrace']"
