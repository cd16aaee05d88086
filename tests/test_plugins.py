"""Scenarios from installed packages: found through the entry point group blkrace.scenarios.

tests/plugin_pkg is laid out as an installed distribution (a package and its
.dist-info with entry_points.txt); putting it on the path is installing it.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from blkrace.engine.token import decode
from blkrace.scenarios import registry
from blkrace.scenarios.loader import entry_point_scenarios

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin_pkg"


def run(*args, path=PLUGIN_DIR):
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=str(path))
    return subprocess.run(
        [sys.executable, "-m", "blkrace", *args], capture_output=True, text=True, env=env, timeout=600
    )


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    yield
    for name in [m for m in sys.modules if m.startswith("blkrace_example_plugin")]:
        del sys.modules[name]


def test_the_plugin_is_found_and_broken_entry_points_are_named(installed):
    found, errors = registry.plugins()
    assert [s.name for s in found] == ["quiesce-insert-null"]
    s = found[0]
    assert s.origin == "entry point quiesce-insert-null of blkrace-example-plugin"
    assert [Path(f).name for f in s.source_files] == ["__init__.py", "quiesce.py", "shadow.py"]
    assert len(errors) == 2
    assert "entry point 'not-importable'" in errors[0] and "ModuleNotFoundError" in errors[0]
    assert "scenario 'budget-rerun' is already defined; ignored" in errors[1]
    assert registry.resolve("quiesce-insert-null").origin == s.origin
    assert registry.resolve("budget-rerun") is registry.SCENARIOS["budget-rerun"]


def test_without_the_package_there_is_no_plugin():
    found, _ = entry_point_scenarios()
    assert "quiesce-insert-null" not in [s.name for s in found]
    with pytest.raises(KeyError, match="unknown scenario 'quiesce-insert-null'"):
        registry.resolve("quiesce-insert-null")


def test_list_shows_the_plugin_its_origin_limits_and_a_warning_per_broken_entry_point():
    proc = run("list")
    assert proc.returncode == 0, proc.stderr
    for word in ("quiesce-insert-null", "from entry point quiesce-insert-null of", "max_delay_ns=1000000"):
        assert word in proc.stdout
    warnings = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(warnings) == 2 and all(w.startswith("blkrace: warning: ") for w in warnings)


def test_check_finds_the_plugins_race_and_its_token_replays():
    proc = run("check", "quiesce-insert-null", "--variant", "buggy", "--strategy", "random", "--json")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)["results"][0]
    assert out["expectation_held"] and {v["kind"] for v in out["violations"]} == {"stall"}
    assert "hctx0->dispatch" in out["violations"][0]["message"]
    token = out["violations"][0]["token"]
    assert decode(token).scenario == "quiesce-insert-null"
    assert decode(token).fingerprint != registry.model_fingerprint()  # it covers the package's sources
    replayed = run("replay", token, "--json")
    assert replayed.returncode == 1, replayed.stderr
    assert json.loads(replayed.stdout)["trace"] == out["violations"][0]["trace"]
    fixed = run("check", "quiesce-insert-null", "--variant", "fixed", "--schedules", "200")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    # Uninstalled, the token names a scenario this blkrace does not have: one line, exit 2.
    gone = run("replay", token, path="")
    assert gone.returncode == 2 and "quiesce-insert-null" in gone.stderr


def test_the_fingerprint_covers_every_file_of_the_package(tmp_path):
    copy = tmp_path / "site"
    shutil.copytree(PLUGIN_DIR, copy)
    proc = run("check", "quiesce-insert-null", "--variant", "buggy", "-s", "random", "--json", path=copy)
    token = json.loads(proc.stdout)["results"][0]["violations"][0]["token"]
    assert run("replay", token, path=copy).returncode == 1
    init = copy / "blkrace_example_plugin" / "__init__.py"
    init.write_text(init.read_text() + "# edited\n")
    edited = run("replay", token, path=copy)
    assert edited.returncode == 2 and "another version of the model or the scenario file" in edited.stderr


@pytest.mark.parametrize(
    "text, needle",
    [
        ("x = (\n", "does not load: SyntaxError: '(' was never closed"),
        ("import blkrace_no_such_module\n", "does not load: ModuleNotFoundError: No module named"),
        ("X = 1\n", "defines no SCENARIO"),
        ("SCENARIO = 42\n", "42 is not a Scenario"),
    ],
)
def test_a_bad_scenario_file_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, text, needle):
    from blkrace import cli

    (tmp_path / "race.py").write_text(text)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["check", "./race.py"])
    assert exit_info.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("blkrace: error: scenario file './race.py'") and needle in err[0]
