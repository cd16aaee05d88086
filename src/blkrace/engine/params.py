"""A run's parameters as one short string: ``key=value`` pairs, sorted, comma-separated.

A schedule token carries what, besides the scenario, the variant and the
model, decides which model a run builds: the preemption model
(``preempt=full``), a scenario's parameters (``p.nr_cpus=8``), and whatever
else a run option adds.  Sorting makes the string canonical, so one run has
one token.  Keys and values are plain text without ``,`` or ``=``; a
string that breaks that is refused here, never written into a token.
"""

from __future__ import annotations

_FORBIDDEN = (",", "=")


class ParamsError(ValueError):
    """A parameter string or pair that cannot be encoded or decoded."""


def encode_params(params):
    """``{"preempt": "full", "p.nr_cpus": "8"}`` -> ``"p.nr_cpus=8,preempt=full"``."""
    items = []
    for key in sorted(params):
        value = str(params[key])
        for text in (key, value):
            if not text.strip() or any(c in text for c in _FORBIDDEN) or text != text.strip():
                raise ParamsError(f"parameter {key}={value!s} cannot be recorded (no ',' or '=', not empty)")
        items.append(f"{key}={value}")
    return ",".join(items)


def decode_params(text):
    """The inverse of ``encode_params``: a dict of strings; ``""`` is ``{}``."""
    out = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise ParamsError(f"malformed parameter {item!r}")
        if key in out:
            raise ParamsError(f"parameter {key!r} given twice")
        out[key] = value
    return out
