"""The JSONPath that CustomResourceDefinitions use for printer columns, scale paths and selectable fields: the
simple paths the CRD validator admits (`.spec.replicas`, `.status.conditions[0].type`, `.items[*].name`,
`.status.conditions[?(@.type=="Ready")].status`), evaluated as kubectl's jsonpath package does (every match, in
order; a missing field is no match).
"""
from __future__ import annotations

import re

_TOKEN = re.compile(r"""\.([A-Za-z0-9_\-/$]+)|\[(\*|-?\d+)\]|\[\?\(@\.([A-Za-z0-9_.\-]+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|([^)\s]+))\)\]|\['([^']+)'\]""")


class JSONPathError(ValueError):
    """A path outside the supported subset."""


def parse(path: str) -> list[tuple]:
    """Steps of a path (`{.a.b}` braces allowed): ("field", name) | ("index", n | "*") | ("filter", field, op,
    value). JSONPathError names what could not be read."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    steps, at = [], 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise JSONPathError(f"unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{{name1."
                                f"name2}}' or '{{.name1.name2}}', got {path!r}")
        name, index, filter_field, op, dq, sq, bare, quoted = match.groups()
        if name is not None or quoted is not None:
            steps.append(("field", name if name is not None else quoted))
        elif index is not None:
            steps.append(("index", index if index == "*" else int(index)))
        else:
            value = dq if dq is not None else sq if sq is not None else bare
            steps.append(("filter", filter_field, op, value))
        at = match.end()
    if not steps:
        raise JSONPathError(f"unexpected path string {path!r}")
    return steps


def _dig(value, dotted: str):
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


_MISSING = object()


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def find(obj, steps: list[tuple]) -> list:
    """Every value the steps reach from obj."""
    current = [obj]
    for step in steps:
        found = []
        for value in current:
            if step[0] == "field":
                if isinstance(value, dict) and step[1] in value:
                    found.append(value[step[1]])
            elif step[0] == "index":
                if isinstance(value, list):
                    if step[1] == "*":
                        found.extend(value)
                    elif -len(value) <= step[1] < len(value):
                        found.append(value[step[1]])
            elif isinstance(value, list):
                _, field, op, wanted = step
                for item in value:
                    got = _dig(item, field)
                    equal = got is not _MISSING and _text(got) == wanted
                    if equal == (op == "=="):
                        found.append(item)
        current = found
    return current


def first(obj, path: str):
    """The first value `path` reaches, or None."""
    found = find(obj, parse(path))
    return found[0] if found else None
