"""Every model function that stands for a kernel function names its C source.

The rule, applied with ``ast`` to the top-level functions of
``src/blkrace/{kernel,block,drivers}``:

- a name starting with a single underscore (``_put``, ``_state``) is a
  private helper of the model and is not checked (the kernel's own names
  that start with underscores start with two: ``__blk_mq_alloc_request``);
- every other function is taken to stand for a kernel function of that
  name, and must give the kernel file it comes from: a path such as
  ``block/blk-mq.c``, ``kernel/smp.c``, ``include/linux/wait.h``,
  ``drivers/nvme/host/tcp.c``, ``lib/sbitmap.c``, ``mm/percpu.c`` or
  ``arch/x86/...``, in its docstring or in the comment lines right above its
  ``def`` (``# blk_mq_get_tag(), block/blk-mq-tag.c``), with the version in
  parentheses where it differs from the module's stated baseline;
- a function with no kernel counterpart of its name says so instead, with a
  ``# model: what it stands for`` comment at the ``def``.

Methods of classes are not checked: a class stands for a kernel struct and
says so in its docstring.  Every module states the kernel version it
follows in its docstring (checked below too).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src" / "blkrace"
KERNEL_PATH = re.compile(r"\b(?:block|kernel|include|drivers|lib|mm|arch|fs|init)/[\w./-]+\.[ch]\b")
VERSION = re.compile(r"\bv\d+\.\d+|\b[0-9a-f]{12}\b")


def _modules():
    for sub in ("kernel", "block", "drivers"):
        yield from sorted((ROOT / sub).rglob("*.py"))


def _comments_above(lines, node):
    i = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 2
    out = []
    while i >= 0 and lines[i].lstrip().startswith("#"):
        out.append(lines[i].strip())
        i -= 1
    return out


def uncited():
    """(module, function) for each kernel-named function without a file citation."""
    missing = []
    for path in _modules():
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.parse(source).body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if node.name.startswith("_") and not node.name.startswith("__"):
                continue
            comments = _comments_above(lines, node)
            if any(c.startswith("# model:") for c in comments):
                continue
            doc = ast.get_docstring(node) or ""
            if KERNEL_PATH.search(doc) or any(KERNEL_PATH.search(c) for c in comments):
                continue
            missing.append((path.relative_to(ROOT).as_posix(), node.name))
    return missing


def test_every_kernel_named_function_cites_its_file():
    missing = uncited()
    assert missing == [], f"{len(missing)} without a kernel file: {missing[:20]}"


def test_the_checker_sees_an_uncited_function(tmp_path, monkeypatch):
    # The rule must be able to fail: a module with one bare kernel-named function.
    pkg = tmp_path / "kernel"
    pkg.mkdir()
    (pkg / "x.py").write_text(
        '"""kernel/x.c (v5.8)."""\n\n'
        "def _mine():\n    pass\n\n\n"
        "# model: a helper\ndef helper():\n    pass\n\n\n"
        "# blk_cited(), block/blk-mq.c\ndef blk_cited():\n    pass\n\n\n"
        'def blk_documented():\n    """blk_documented(), block/blk-core.c."""\n\n\n'
        "def blk_bare():\n    pass\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert uncited() == [("kernel/x.py", "blk_bare")]


def test_every_model_module_states_its_kernel_version():
    unversioned = []
    for path in _modules():
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        if path.name == "__init__.py":
            continue
        if not VERSION.search(doc):
            unversioned.append(path.relative_to(ROOT).as_posix())
    assert unversioned == []
