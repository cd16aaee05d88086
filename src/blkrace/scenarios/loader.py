"""Scenarios from outside the package: a Python file, or an installed package.

A scenario file is any ``.py`` file that defines ``SCENARIO`` (a
``Scenario``) or ``SCENARIOS`` (a list of them); ``blkrace check
./my_race.py`` loads it, and ``./my_race.py::name`` picks one of several.
An installed package offers scenarios through the entry point group
``blkrace.scenarios``: each entry point names a ``Scenario``, a list of
them, or a module defining ``SCENARIO``/``SCENARIOS``.

The loader records where each scenario came from (``origin``) and the source
files it was built from (``source_files``): the model fingerprint of such a
scenario covers them, so a token made before the file was edited is refused
as a token of another model would be.  Loading never hides an error: a file
or entry point that fails to import or defines no scenario gives a
``LoadError`` with one line naming it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from importlib import metadata
from pathlib import Path

from blkrace.scenarios.base import Scenario

ENTRY_POINT_GROUP = "blkrace.scenarios"
FILE_SEPARATOR = "::"


class LoadError(Exception):
    """A scenario file or entry point that cannot be used: one line, naming it."""


def looks_like_file(ref):
    """Is ``ref`` meant as a file (``./x.py``, ``x.py``, ``dir/x.py::name``)?"""
    path = ref.split(FILE_SEPARATOR, 1)[0]
    return path.endswith(".py") or "/" in path or "\\" in path


def load_file(ref):
    """The scenario ``ref`` names: ``path.py`` (its one scenario) or ``path.py::name``."""
    text, _, wanted = ref.partition(FILE_SEPARATOR)
    path = Path(text)
    if not path.is_file():
        raise LoadError(f"scenario file {text!r} does not exist")
    if path.suffix != ".py":
        raise LoadError(f"scenario file {text!r} is not a .py file")
    module_name = "blkrace_scenario_" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look a module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any error in the user's file is one line
        sys.modules.pop(module_name, None)
        raise LoadError(f"scenario file {text!r} does not load: {_one_line(exc)}") from None
    found = _scenarios_of(module, f"scenario file {text!r}")
    files = (str(path.resolve()),)
    digest = sources_digest(files)
    for s in found:
        s.origin = f"file {text}"
        s.source_files = files
        s.source_digest = digest
        s.ref = text if len(found) == 1 and not wanted else f"{text}{FILE_SEPARATOR}{s.name}"
    if wanted:
        for s in found:
            if s.name == wanted:
                return s
        raise LoadError(f"scenario file {text!r} has no scenario {wanted!r} (it has: {_names(found)})")
    if len(found) > 1:
        raise LoadError(
            f"scenario file {text!r} holds several scenarios: name one as {text}{FILE_SEPARATOR}NAME ({_names(found)})"
        )
    return found[0]


def entry_point_scenarios():
    """Every scenario installed packages offer, and the errors of those that fail.

    Returns ``(scenarios, errors)``: scenarios in entry point name order,
    errors as one-line strings.  An entry point that fails is reported, not
    fatal: the others still load.
    """
    scenarios, errors = [], []
    eps = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value))
    for ep in eps:
        where = f"entry point {ep.name!r} ({ep.value})"
        try:
            obj = ep.load()
            found = _scenarios_of(obj, where)
        except LoadError as exc:
            errors.append(str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - a broken plugin is one line, not a traceback
            errors.append(f"{where} does not load: {_one_line(exc)}")
            continue
        files = _package_sources(ep.value.split(":", 1)[0].strip())
        digest = sources_digest(files)
        dist = getattr(ep, "dist", None)
        label = f"entry point {ep.name}" + (f" of {dist.name}" if dist is not None else "")
        for s in found:
            s.origin = label
            s.source_files = files
            s.source_digest = digest
            s.ref = s.name
        scenarios += found
    return scenarios, errors


def _scenarios_of(obj, where):
    if isinstance(obj, Scenario):
        return [obj]
    if isinstance(obj, (list, tuple)):
        items = list(obj)
    elif hasattr(obj, "SCENARIOS"):
        items = list(obj.SCENARIOS)
    elif hasattr(obj, "SCENARIO"):
        items = [obj.SCENARIO]
    else:
        raise LoadError(f"{where} defines no SCENARIO (a blkrace.scenarios.base.Scenario) nor SCENARIOS")
    bad = [x for x in items if not isinstance(x, Scenario)]
    if bad or not items:
        raise LoadError(f"{where}: {bad[0]!r} is not a Scenario" if bad else f"{where} defines no scenario")
    names = [s.name for s in items]
    if len(set(names)) != len(names):
        raise LoadError(f"{where} defines two scenarios of one name ({_names(items)})")
    for s in items:
        if not s.variants:
            raise LoadError(f"{where}: scenario {s.name!r} has no variants")
    return items


def _package_sources(module_name):
    """The source files of the top-level package ``module_name`` belongs to
    (or of the module alone, when it is not in a package), sorted."""
    top = module_name.split(".")[0]
    mod = sys.modules.get(top)
    file = getattr(mod, "__file__", None)
    if file is None:
        return ()
    path = Path(file).resolve()
    if path.name == "__init__.py":
        return tuple(str(p) for p in sorted(path.parent.rglob("*.py")))
    return (str(path),)


def sources_digest(files):
    """SHA-256 over the files' names (relative to the first one's directory) and bytes."""
    h = hashlib.sha256()
    base = Path(files[0]).parent if files else Path(".")
    for f in files:
        p = Path(f)
        try:
            rel = p.relative_to(base).as_posix()
        except ValueError:
            rel = p.name
        h.update(rel.encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.digest()


def _names(scenarios):
    return ", ".join(s.name for s in scenarios)


def _one_line(exc):
    message = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {message}"  # the message names the file and line
    tb = exc.__traceback__
    last = None
    while tb is not None:
        last = tb
        tb = tb.tb_next
    where = f" (at {Path(last.tb_frame.f_code.co_filename).name}:{last.tb_lineno})" if last is not None else ""
    return f"{type(exc).__name__}: {message}{where}"
