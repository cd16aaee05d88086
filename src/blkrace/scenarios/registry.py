"""Every scenario, by name, and the fingerprint of the model that runs them.

Built-in scenarios are listed here; a scenario file (``./my_race.py``) or an
installed package's entry point (group ``blkrace.scenarios``) is found by
``resolve`` (see ``scenarios/loader.py``).
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from blkrace.scenarios import (
    blkcg_percpu_alloc,
    budget_rerun,
    hctx_connect,
    hctx_drain,
    ipi_flush,
    nvme_mpath_freeze,
    quiesce_order,
    tag_wait_restart,
    tag_wait_shared,
)
from blkrace.scenarios.loader import LoadError, entry_point_scenarios, load_file, looks_like_file, sources_digest

SCENARIOS = {
    s.name: s
    for s in (
        budget_rerun.SCENARIO,
        hctx_drain.SCENARIO,
        hctx_connect.SCENARIO,
        ipi_flush.SCENARIO,
        nvme_mpath_freeze.SCENARIO,
        blkcg_percpu_alloc.SCENARIO,
        quiesce_order.SCENARIO,
        tag_wait_restart.SCENARIO,
        tag_wait_shared.SCENARIO,
    )
}

_MODEL_DIRS = ("engine", "kernel", "block", "drivers", "scenarios")


def get(name):
    """The scenario called ``name``; KeyError with the valid names otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r} (valid: {', '.join(SCENARIOS)})") from None


def plugins():
    """Scenarios of installed packages that do not shadow a built-in one,
    and one-line errors (a plugin that fails to load, or shadows a name)."""
    found, errors = entry_point_scenarios()
    out = []
    seen = set(SCENARIOS)
    for s in found:
        if s.name in seen:
            errors.append(f"{s.origin}: scenario {s.name!r} is already defined; ignored")
            continue
        seen.add(s.name)
        out.append(s)
    return out, errors


def all_scenarios():
    """Built-in scenarios, then those of installed packages; and the plugins' errors."""
    found, errors = plugins()
    return list(SCENARIOS.values()) + found, errors


def resolve(ref):
    """The scenario ``ref`` names: a built-in name, a file (``./x.py``,
    ``x.py::name``), or a scenario of an installed package.  KeyError (with
    what is valid) or LoadError (one line) otherwise."""
    if ref in SCENARIOS:
        return SCENARIOS[ref]
    if looks_like_file(ref):
        return load_file(ref)
    found, errors = plugins()
    for s in found:
        if s.name == ref:
            return s
    valid = ", ".join(list(SCENARIOS) + [s.name for s in found])
    hint = f"; {errors[0]}" if errors else ""
    raise KeyError(f"unknown scenario {ref!r} (valid: {valid}, or a scenario file ./NAME.py){hint}")


def fingerprint_of(scenario):
    """8 bytes naming the model a scenario runs: the model's fingerprint, and
    for a scenario from outside the package its own source files too."""
    if not scenario.source_files:
        return model_fingerprint()
    h = hashlib.sha256(model_fingerprint())
    h.update(scenario.source_digest or sources_digest(scenario.source_files))
    return h.digest()[:8]


__all__ = ["SCENARIOS", "LoadError", "all_scenarios", "fingerprint_of", "get", "model_fingerprint", "resolve"]


@cache
def model_fingerprint():
    """8 bytes naming this exact model: a hash of every model source file.

    A token made with another model is refused rather than replayed into a
    different trace.  The command line and the report are not part of it.
    """
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for sub in _MODEL_DIRS:
        for path in sorted((root / sub).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(b"\0")
            h.update(path.read_bytes())
    return h.digest()[:8]
