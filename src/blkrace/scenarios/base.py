"""What a scenario is: a model to build into a run, and variants with expectations.

A scenario builds the machine (CPUs, devices, tasks) into a fresh execution
for every run and adds checkers that look at the model state at the end.
Nothing in a scenario states its answer: a race must come out of the
modelled kernel code paths.  A variant is a set of patch toggles plus the
violation kinds the scenario's authors expect under it (none = clean).

A scenario may declare parameters (``params``: name -> ``Param``); a
variant may fix some of them, and ``blkrace check --param k=v`` sets them
for one run.  ``build`` reads the resolved values as ``variant.params``.
A scenario also declares the engine limits it relies on (``max_delay_ns``,
``max_starve_steps``, ``spin_steps``, ``max_steps``, ``default_schedules``);
a variant may override them with ``limits``.  The limits travel with the
build callable (``builder``), so every run, replay and shrink of the
scenario uses them.  Scenarios outside this package are files or installed
packages: see ``scenarios/loader.py`` and docs/WRITING_A_SCENARIO.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from blkrace.engine.clock import NSEC_PER_MSEC

# The engine's own limits (engine/execution.py), which a scenario may change.
ENGINE_LIMITS = {"max_delay_ns": 20 * NSEC_PER_MSEC, "max_starve_steps": 2000, "spin_steps": 20}


class ParamError(ValueError):
    """A parameter that the scenario does not declare, or a value it does not take."""


@dataclass(frozen=True)
class Param:
    """One scenario parameter: its default (whose type, int, bool or str, is
    the parameter's) and a line of help for ``blkrace list``."""

    default: int | bool | str
    help: str = ""
    choices: tuple = ()  # the values allowed, when only some are

    def parse(self, name, text):
        """The value of ``text`` (a string from the command line or a token)."""
        kind = type(self.default)
        if kind is bool:
            if text in ("1", "true", "yes", "on", "y"):
                value = True
            elif text in ("0", "false", "no", "off", "n"):
                value = False
            else:
                raise ParamError(f"parameter {name} takes true or false, not {text!r}")
        elif kind is int:
            try:
                value = int(text, 0)
            except ValueError:
                raise ParamError(f"parameter {name} takes an integer, not {text!r}") from None
        else:
            value = text
        if self.choices and value not in self.choices:
            raise ParamError(f"parameter {name} takes one of {', '.join(map(str, self.choices))}, not {text!r}")
        return value

    def check(self, name, value):
        """``value`` as the parameter's type (a variant's fixed value, or a parsed one)."""
        if isinstance(value, str) and not isinstance(self.default, str):
            return self.parse(name, value)
        if type(value) is not type(self.default):
            raise ParamError(f"parameter {name} is a {type(self.default).__name__}, not {value!r}")
        if self.choices and value not in self.choices:
            raise ParamError(f"parameter {name} takes one of {', '.join(map(str, self.choices))}, not {value!r}")
        return value


def format_value(value):
    """A parameter value as the command line and the token write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Variant:
    name: str
    patches: frozenset
    expect: frozenset  # violation kinds expected; empty means "clean within bounds"
    summary: str
    allowed: frozenset = frozenset()  # kinds that may also show up (a rarer window)
    preempt: bool | None = None  # the kernel's preemption model; None: the scenario's
    # Parameter values this variant fixes; ``build`` sees every declared
    # parameter here, resolved (scenario default < variant < command line).
    params: dict = field(default_factory=dict, hash=False, compare=False)
    limits: dict = field(default_factory=dict, hash=False, compare=False)  # engine limits this variant changes
    schedules: int | None = None  # its own default number of schedules


@dataclass
class Scenario:
    name: str
    summary: str  # one line, for `blkrace list`
    seed: str  # the source document
    variants: dict = field(default_factory=dict)
    default_schedules: int = 2000
    max_steps: int = 20_000
    preempt: bool = True  # CONFIG_PREEMPT (True) or CONFIG_PREEMPT_NONE (False), unless a variant says
    params: dict = field(default_factory=dict)  # name -> Param
    # Engine limits (see ENGINE_LIMITS and docs/DESIGN.md, "Virtual time"):
    # how long the clock may pass a runnable task, how many steps a task may
    # be passed over, how many steps without a clock move let time pass.
    max_delay_ns: int | None = ENGINE_LIMITS["max_delay_ns"]
    max_starve_steps: int | None = ENGINE_LIMITS["max_starve_steps"]
    spin_steps: int | None = ENGINE_LIMITS["spin_steps"]
    # Where the scenario comes from, for `blkrace list` and for the model
    # fingerprint of a scenario outside the package (set by the loader).
    origin: str = "built in"
    source_files: tuple = ()
    source_digest: bytes = b""  # of source_files as they were loaded (loader.sources_digest)
    ref: str = ""  # how a token names it: the name, or the file it was loaded from

    @property
    def token_ref(self):
        return self.ref or self.name

    def preempt_of(self, variant):
        return self.preempt if variant.preempt is None else variant.preempt

    def schedules_of(self, variant):
        return variant.schedules or self.default_schedules

    def limits_of(self, variant):
        """The engine limits of a variant's runs: the scenario's, then the variant's."""
        limits = {key: getattr(self, key) for key in ENGINE_LIMITS}
        for key, value in variant.limits.items():
            if key not in ENGINE_LIMITS and key != "max_steps":
                raise ParamError(f"variant {variant.name} sets unknown engine limit {key!r}")
            limits[key] = value
        limits.pop("max_steps", None)
        return limits

    def max_steps_of(self, variant):
        return variant.limits.get("max_steps", self.max_steps)

    def resolve(self, variant, overrides=None):
        """``variant`` with every declared parameter resolved: the scenario's
        default, the variant's value, then ``overrides`` (strings, from the
        command line or a token).  ParamError names what is wrong."""
        values = {}
        for name, param in self.params.items():
            values[name] = param.default
        for name, value in variant.params.items():
            if name not in self.params:
                raise ParamError(f"variant {variant.name} sets undeclared parameter {name!r}")
            values[name] = self.params[name].check(name, value)
        for name, text in (overrides or {}).items():
            if name not in self.params:
                valid = ", ".join(self.params) or "none"
                raise ParamError(f"unknown parameter {name!r} of {self.name} (valid: {valid})")
            values[name] = self.params[name].parse(name, text)
        return replace(variant, params=values)

    def build(self, execution, variant):  # pragma: no cover - abstract
        raise NotImplementedError

    def builder(self, variant, lockdep=True, preempt=None, params=None):
        """The engine's build callable for one variant.  ``lockdep=False`` turns
        lockdep off for speed (a scenario's ``k.lockdep`` comes out None);
        ``preempt`` overrides the variant's preemption model; ``params``
        (name -> string) override its parameters."""
        preemptive = self.preempt_of(variant) if preempt is None else preempt
        resolved = self.resolve(variant, params)
        limits = self.limits_of(variant)

        def build(execution):
            if not lockdep:
                execution.shared["lockdep"] = None
            execution.set_preemptive(preemptive)
            execution.set_limits(**limits)
            self.build(execution, resolved)

        return build
