"""The JSON documents of `check --json` and `replay --json` (docs/JSON.md, docs/blkrace.schema.json).

One shape whatever the number of variants: a top-level object with
``schema_version``, the command, the exit status and ``ok``, and for a check
one entry per variant under ``results``.  Counting conventions: ``schedule``
numbers runs from 1, as the text report does ("found at schedule 74");
``step`` numbers a run's steps from 1; ``cpu`` is the kernel's CPU number.
Bump SCHEMA_VERSION on any change that removes or renames a field or changes
its meaning; adding a field is not a change of version.
"""

from __future__ import annotations

SCHEMA_VERSION = 1


def check_document(results, *, exit_status, interrupted, skipped=()):
    """``results``: each variant's object; ``skipped``: (scenario, variant) never started."""
    return {
        "schema_version": SCHEMA_VERSION,
        "command": "check",
        "exit_status": exit_status,
        "ok": exit_status == 0 and not interrupted,
        "interrupted": interrupted,
        "results": list(results),
        "skipped": [{"scenario": s, "variant": v} for s, v in skipped],
    }


def replay_document(fields, *, exit_status):
    doc = {"schema_version": SCHEMA_VERSION, "command": "replay", "exit_status": exit_status, "ok": exit_status == 0}
    doc.update(fields)
    return doc


def trace_of(result, mode):
    """The JSON trace of a replayed run: every step, unless ``--trace none``."""
    if result is None or mode == "none":
        return []
    return [s.as_dict() for s in result.trace]
