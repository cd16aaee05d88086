"""`blkrace list`: scenarios and variants as an indented list wrapped at the console's width.

A table needs five columns and about 200 characters; a list reads at 80.
"""

from __future__ import annotations

import textwrap

from rich.text import Text


def _kinds(kinds):
    return ", ".join(sorted(kinds))


def render_list(console, scenarios, settings=None):
    """``settings(scenario)``: extra lines (parameters, changed engine limits) under its summary."""
    width = console.width

    def para(text, indent, style=""):
        for line in textwrap.wrap(
            text,
            width=max(width, 40),
            initial_indent=" " * indent,
            subsequent_indent=" " * (indent + 2),
            break_long_words=False,
            break_on_hyphens=False,
        ):
            console.print(Text(line, style=style), soft_wrap=True)

    console.print(Text("Scenarios and variants: blkrace check SCENARIO --variant VARIANT", style="bold"))
    for s in scenarios:
        console.print()
        console.print(Text(s.name, style="bold"), soft_wrap=True)
        para(s.summary, 2)
        origin = getattr(s, "origin", "built in")
        if origin != "built in":
            para(f"from {origin}", 2, style="dim")
        for line in settings(s) if settings is not None else ():
            para(line, 2, style="dim")
        for v in s.variants.values():
            expect = f"expects {_kinds(v.expect)}" if v.expect else "expects no violation"
            if v.allowed:
                expect += f" (may also show {_kinds(v.allowed)})"
            line = Text("  ")
            line.append(v.name, style="bold")
            console.print(line, soft_wrap=True)
            para(expect, 6, style="cyan")
            fixed = ", ".join(f"{k}={x}" for k, x in getattr(v, "params", {}).items())
            para(v.summary + (f" [{fixed}]" if fixed else ""), 6)
            para(f"patches: {', '.join(sorted(v.patches)) or 'none'}", 6, style="dim")
