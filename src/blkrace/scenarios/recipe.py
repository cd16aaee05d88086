"""Build recipes: a run's model named by plain data, rebuilt in any worker process.

A parallel or distributed campaign ships units of work to other processes;
a build callable (a closure over scenario objects) does not travel, a dict
does.  ``recipe_of`` writes the dict (the scenario's name or file reference,
the variant, lockdep, the preemption model, the scenario parameters, and the
fingerprint of the model), ``build_of`` (a module-level function, so it
pickles by reference) turns it back into the engine's build callable inside
the worker, loading a scenario file again there, and refuses a worker whose
model is not the one the campaign started with (a cluster node with another
blkrace installed, or a scenario file edited since).
"""

from __future__ import annotations

from blkrace.scenarios import registry
from blkrace.scenarios.loader import LoadError


class RecipeError(Exception):
    """A recipe this process cannot build."""


def recipe_of(scenario, variant, *, lockdep=True, preempt=None, params=None, memory_model=None):
    """The recipe of ``scenario.builder(variant, lockdep=..., preempt=..., params=..., memory_model=...)``."""
    return {
        "scenario": scenario.token_ref,
        "variant": variant.name,
        "lockdep": bool(lockdep),
        "preempt": preempt,
        "params": dict(params or {}),
        "memory_model": memory_model or scenario.memory_model_of(variant),
        "model": registry.fingerprint_of(scenario).hex(),
    }


def build_of(recipe):
    """The build callable a recipe names, in this process."""
    ref = recipe.get("scenario")
    try:
        scenario = registry.resolve(ref)
        variant = scenario.variants[recipe["variant"]]
    except (KeyError, LoadError) as exc:
        raise RecipeError(f"this worker cannot build {ref}/{recipe.get('variant')}: {exc}") from None
    model = recipe.get("model")
    mine = registry.fingerprint_of(scenario).hex()
    if model is not None and model != mine:
        raise RecipeError(f"this worker runs another model of {ref} (fingerprint {mine}, the campaign's is {model})")
    return scenario.builder(
        variant,
        lockdep=recipe.get("lockdep", True),
        preempt=recipe.get("preempt"),
        params=recipe.get("params") or None,
        memory_model=recipe.get("memory_model"),
    )
