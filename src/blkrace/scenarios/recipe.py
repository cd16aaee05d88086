"""Build recipes: a run's model named by plain data, rebuilt in any worker process.

A parallel or distributed campaign ships units of work to other processes;
a build callable (a closure over scenario objects) does not travel, a dict
does.  ``recipe_of`` writes the dict, ``build_of`` (a module-level function,
so it pickles by reference) turns it back into the engine's build callable
inside the worker, and refuses a worker whose model is not the one the
campaign started with (a cluster node with another blkrace installed).
"""

from __future__ import annotations

from blkrace.scenarios.registry import get, model_fingerprint


class RecipeError(Exception):
    """A recipe this process cannot build."""


def recipe_of(scenario, variant, *, lockdep=True, preempt=None):
    """The recipe of ``scenario.builder(variant, lockdep=..., preempt=...)``."""
    return {
        "scenario": scenario.name,
        "variant": variant.name,
        "lockdep": bool(lockdep),
        "preempt": preempt,
        "model": model_fingerprint().hex(),
    }


def build_of(recipe):
    """The build callable a recipe names, in this process."""
    model = recipe.get("model")
    if model is not None and model != model_fingerprint().hex():
        raise RecipeError(
            f"this worker runs another model (fingerprint {model_fingerprint().hex()}, the campaign's is {model})"
        )
    try:
        scenario = get(recipe["scenario"])
        variant = scenario.variants[recipe["variant"]]
    except KeyError as exc:
        raise RecipeError(f"this worker cannot build {recipe.get('scenario')}/{recipe.get('variant')}: {exc}") from None
    return scenario.builder(variant, lockdep=recipe.get("lockdep", True), preempt=recipe.get("preempt"))
