"""blkrace as a pytest plugin: a scenario repository tests itself with ``pytest``.

Installed with blkrace (entry point group ``pytest11``, name ``blkrace``), it
gives every test the ``blkrace_check`` fixture::

    def test_my_race(blkrace_check):
        blkrace_check("budget-rerun")                     # every variant against its declared outcome
        run = blkrace_check(MY_SCENARIO, "fixed", schedules=500, seed=3)
        assert run.campaign.schedules == 500

A scenario is a ``Scenario`` object or a name of the registry; a variant is
a name, a ``Variant`` object, or None for all of them.  The check explores
like ``blkrace check`` (PCT by default, stopping once every expected kind is
found, findings shrunk) and fails the test with the same report, timeline
and backtraces and the token to replay, when a variant's outcome is not the
expected one (its declared one, or ``expect=``).  ``--blkrace-html DIR``
also writes each failing check as an HTML report into DIR.

``-p no:blkrace`` turns the plugin off.  Nothing of blkrace is imported until
a test uses the fixture, so the plugin costs other test runs nothing.
"""

from __future__ import annotations

import re

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("blkrace")
    group.addoption(
        "--blkrace-html",
        metavar="DIR",
        default=None,
        help="write an HTML report of each failing blkrace_check into DIR",
    )


@pytest.fixture
def blkrace_check(request):
    """Run a scenario's variants; fail the test with the rendered report unless each outcome is the expected one.

    ``blkrace_check(scenario, variant=None, *, schedules=None, seed=0, strategy="pct",
    expect=None, allowed=None, shrink=True, lockdep=True, preempt=None, max_steps=None,
    depth=3, preemption_bound=2)`` returns the variant's run (or the list of runs when
    ``variant`` is None): ``.reports`` holds ``(finding, replayed run, token)`` and
    ``.campaign`` the exploration.  ``expect`` (violation kinds; empty for "clean")
    overrides the variant's declared outcome, ``allowed`` the kinds that may also show.
    """
    html_dir = request.config.getoption("blkrace_html")
    return _Checker(request.node.nodeid, html_dir)


class _Checker:
    def __init__(self, nodeid, html_dir):
        self.nodeid = nodeid
        self.html_dir = html_dir
        self.calls = 0

    def __call__(
        self,
        scenario,
        variant=None,
        *,
        schedules=None,
        seed=0,
        strategy="pct",
        expect=None,
        allowed=None,
        shrink=True,
        lockdep=True,
        preempt=None,
        max_steps=None,
        depth=3,
        preemption_bound=2,
    ):
        import dataclasses

        from blkrace import cli
        from blkrace.scenarios.registry import get

        if isinstance(scenario, str):
            try:
                scenario = get(scenario)
            except KeyError as exc:
                pytest.fail(f"blkrace_check: {exc.args[0]}", pytrace=False)
        if variant is None:
            variants = list(scenario.variants.values())
        elif isinstance(variant, str):
            if variant not in scenario.variants:
                pytest.fail(
                    f"blkrace_check: unknown variant {variant!r} of {scenario.name} "
                    f"(valid: {', '.join(scenario.variants)})",
                    pytrace=False,
                )
            variants = [scenario.variants[variant]]
        else:
            variants = [variant]
        if preempt is not None and preempt not in cli.PREEMPT_MODELS:
            pytest.fail(f"blkrace_check: preempt must be one of {', '.join(cli.PREEMPT_MODELS)}", pytrace=False)
        options = {
            "max_steps": max_steps,
            "preemption_bound": preemption_bound,
            "depth": depth,
            "lockdep": lockdep,
            "preempt": None if preempt is None else cli.PREEMPT_MODELS[preempt],
        }
        runs, failed = [], []
        for v in variants:
            if expect is not None or allowed is not None:
                v = dataclasses.replace(
                    v,
                    expect=frozenset(v.expect if expect is None else expect),
                    allowed=frozenset(v.allowed if allowed is None else allowed),
                )
            try:
                run = cli.run_variant(
                    scenario,
                    v,
                    strategy_name=strategy,
                    schedules=schedules or scenario.default_schedules,
                    seed=seed,
                    stop_on_first=True,
                    do_shrink=shrink,
                    progress=None,
                    options=options,
                )
            except cli.BadInput as exc:
                pytest.fail(f"blkrace_check: {exc}", pytrace=False)
            runs.append(run)
            model_error = any(f.violation.kind == "model_error" for f, _, _ in run.reports)
            if model_error or not run.expectation_held:
                failed.append(run)
        if failed:
            pytest.fail(self._failure(failed), pytrace=False)
        return runs[0] if variant is not None else runs

    def _failure(self, failed):
        import io

        from rich.console import Console

        from blkrace import cli

        out = io.StringIO()
        console = Console(file=out, width=160, color_system=None, highlight=False, soft_wrap=False)
        heads = []
        for run in failed:
            expected = ", ".join(sorted(run.expect)) or "no violation"
            found = ", ".join(run.found_kinds) or "no violation"
            heads.append(
                f"blkrace: {run.scenario} --variant {run.variant}: expected {expected}, found {found} "
                f"in {run.campaign.schedules} schedules ({run.strategy}, seed {run.seed})"
            )
            cli._print_variant_report(console, run)
        page = self._write_html(failed)
        if page:
            heads.append(f"blkrace: HTML report: {page}")
        return "\n".join(heads) + "\n" + out.getvalue()

    def _write_html(self, failed):
        if not self.html_dir:
            return None
        import os

        from blkrace.report import html

        self.calls += 1
        os.makedirs(self.html_dir, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.nodeid).strip("_") or "blkrace"
        path = os.path.join(self.html_dir, f"{stem}-{self.calls}.html")
        command = "pytest " + self.nodeid
        try:
            html.write(path, html.check_page(failed, command))
        except html.PageWriteError as exc:
            return f"not written: {exc}"
        return path
