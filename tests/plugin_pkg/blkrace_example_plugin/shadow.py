"""An entry point whose scenario takes a built-in name: blkrace ignores it and says so."""

from blkrace_example_plugin.quiesce import VARIANTS, QuiesceInsert

SCENARIO = QuiesceInsert(name="budget-rerun", summary="not the built-in one", seed="-", variants=VARIANTS)
