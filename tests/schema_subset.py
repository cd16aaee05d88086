"""A validator for the part of JSON Schema that docs/blkrace.schema.json uses.

Keywords: $ref (local), oneOf, type, const, enum, minimum, pattern,
properties, required, additionalProperties, items.  Any other keyword is an
error, so the schema cannot quietly use something this does not check.
"""

from __future__ import annotations

import re

_KNOWN = {
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "oneOf",
    "type",
    "const",
    "enum",
    "minimum",
    "pattern",
    "properties",
    "required",
    "additionalProperties",
    "items",
}

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


def _same(a, b):
    # JSON equality: true is not 1
    return type(a) is type(b) and a == b


def errors(instance, schema, root=None, path="$"):
    """Every way ``instance`` breaks ``schema``, as "path: what" strings."""
    root = schema if root is None else root
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"{path}: schema keywords this validator does not check: {sorted(unknown)}")
    out = []
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"{path}: only local $ref: {ref}")
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        out += errors(instance, target, root, path)
    if "oneOf" in schema:
        matches = [s for s in schema["oneOf"] if not errors(instance, s, root, path)]
        if len(matches) != 1:
            out.append(f"{path}: matches {len(matches)} of the oneOf alternatives, not exactly one")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](instance) for t in types):
            out.append(f"{path}: {instance!r:.60} is not of type {' or '.join(types)}")
            return out
    if "const" in schema and not _same(instance, schema["const"]):
        out.append(f"{path}: {instance!r:.60} is not {schema['const']!r}")
    if "enum" in schema and not any(_same(instance, e) for e in schema["enum"]):
        out.append(f"{path}: {instance!r:.60} is not one of {schema['enum']}")
    if "minimum" in schema and _TYPES["number"](instance) and instance < schema["minimum"]:
        out.append(f"{path}: {instance} is below {schema['minimum']}")
    if "pattern" in schema and isinstance(instance, str) and not re.search(schema["pattern"], instance):
        out.append(f"{path}: {instance!r:.60} does not match {schema['pattern']}")
    if isinstance(instance, dict):
        for key in schema.get("required", ()):
            if key not in instance:
                out.append(f"{path}: {key!r} is missing")
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key in props:
                out += errors(value, props[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties", True) is False:
                out.append(f"{path}: {key!r} is not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(value, schema["additionalProperties"], root, f"{path}.{key}")
    if isinstance(instance, list) and "items" in schema:
        for i, item in enumerate(instance):
            out += errors(item, schema["items"], root, f"{path}[{i}]")
    return out
