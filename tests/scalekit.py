"""Build recipes for the engine's textbook models (tests/enginekit.py), as a worker process rebuilds them."""

from __future__ import annotations

import enginekit


def build_enginekit(recipe):
    """``{"model": "build_abba"}`` or ``{"model": "build_writers", "args": [a, b, same_object]}``."""
    fn = getattr(enginekit, recipe["model"])
    return fn(*recipe["args"]) if "args" in recipe else fn
