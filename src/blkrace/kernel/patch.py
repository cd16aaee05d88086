"""Patches as named toggles: each switches exactly the hunks of one commit.

A patch is declared next to its hunks, as a module-level constant::

    BUDGET_RERUN = Patch("blk-mq-rerun-on-budget-contention", "a0823421a4d7",
                         "blk-mq: Rerun dispatching in the case of budget contention")

and model code tests it where the commit changed the code::

    if k.patched(BUDGET_RERUN):
        await blk_mq_delay_run_hw_queues(q, BLK_MQ_BUDGET_DELAY)

A scenario names its variants as sets of patch names.
"""

from __future__ import annotations

from dataclasses import dataclass

REGISTRY = {}


@dataclass(frozen=True)
class Patch:
    name: str
    commit: str  # upstream hash, or "" for a patch that was posted but never merged
    subject: str

    def __post_init__(self):
        other = REGISTRY.get(self.name)
        if other is not None and other != self:
            raise ValueError(f"two patches named {self.name!r}")
        REGISTRY[self.name] = self


# model: the patch toggles declared in the model
def known_patches():
    return dict(sorted(REGISTRY.items()))
