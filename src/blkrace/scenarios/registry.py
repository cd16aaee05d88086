"""Every scenario, by name, and the fingerprint of the model that runs them."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from blkrace.scenarios import (
    blkcg_percpu_alloc,
    budget_rerun,
    hctx_drain,
    ipi_flush,
    nvme_mpath_freeze,
    quiesce_order,
)

SCENARIOS = {
    s.name: s
    for s in (
        budget_rerun.SCENARIO,
        hctx_drain.SCENARIO,
        ipi_flush.SCENARIO,
        nvme_mpath_freeze.SCENARIO,
        blkcg_percpu_alloc.SCENARIO,
        quiesce_order.SCENARIO,
    )
}

_MODEL_DIRS = ("engine", "kernel", "block", "drivers", "scenarios")


def get(name):
    """The scenario called ``name``; KeyError with the valid names otherwise."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r} (valid: {', '.join(SCENARIOS)})") from None


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
