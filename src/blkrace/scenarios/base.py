"""What a scenario is: a model to build into a run, and variants with expectations.

A scenario builds the machine (CPUs, devices, tasks) into a fresh execution
for every run and adds checkers that look at the model state at the end.
Nothing in a scenario states its answer: a race must come out of the
modelled kernel code paths.  A variant is a set of patch toggles plus the
violation kinds the scenario's authors expect under it (none = clean).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    name: str
    patches: frozenset
    expect: frozenset  # violation kinds expected; empty means "clean within bounds"
    summary: str
    allowed: frozenset = frozenset()  # kinds that may also show up (a rarer window)
    preempt: bool | None = None  # the kernel's preemption model; None: the scenario's
    memory_model: str | None = None  # "sc" or "lkmm" (kernel.memory); None: the scenario's


@dataclass
class Scenario:
    name: str
    summary: str  # one line, for `blkrace list`
    seed: str  # the source document
    variants: dict = field(default_factory=dict)
    default_schedules: int = 2000
    max_steps: int = 20_000
    preempt: bool = True  # CONFIG_PREEMPT (True) or CONFIG_PREEMPT_NONE (False), unless a variant says
    memory_model: str = "sc"  # the memory model of its runs, unless a variant says

    def preempt_of(self, variant):
        return self.preempt if variant.preempt is None else variant.preempt

    def memory_model_of(self, variant):
        return self.memory_model if variant.memory_model is None else variant.memory_model

    def build(self, execution, variant):  # pragma: no cover - abstract
        raise NotImplementedError

    def builder(self, variant, lockdep=True, preempt=None, memory_model=None):
        """The engine's build callable for one variant.  ``lockdep=False`` turns
        lockdep off for speed (a scenario's ``k.lockdep`` comes out None);
        ``preempt`` overrides the variant's preemption model, ``memory_model``
        its memory model."""
        preemptive = self.preempt_of(variant) if preempt is None else preempt
        mm = self.memory_model_of(variant) if memory_model is None else memory_model

        def build(execution):
            if not lockdep:
                execution.shared["lockdep"] = None
            execution.shared["memory_model"] = mm
            execution.set_preemptive(preemptive)
            self.build(execution, variant)

        return build
