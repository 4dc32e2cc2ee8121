"""Validation shared by strategies, worded as Kubernetes' validators word it (field path + `Invalid value: ...`).

Every function returns a list of `Cause`s (empty when valid) so a strategy reports all problems at once.
"""
from __future__ import annotations

import re

from kpy_components.api import meta
from kpy_components.api.errors import Cause
from kpy_components.api.meta import field_duplicate, field_invalid, field_not_supported, field_required

_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_RE = re.compile(f"^{_QUALIFIED_NAME}$")
_LABEL_VALUE = f"({_QUALIFIED_NAME})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE}$")
_NAME_PART_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                  "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
                  f"'{_QUALIFIED_NAME}')")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                    f"'12345', regex used for validation is '{_LABEL_VALUE}')")


def qualified_name(key: str, path: str) -> list[Cause]:
    """A label or annotation key: `[prefix/]name`, the prefix a DNS subdomain, the name ≤ 63 characters."""
    prefix, _, name = key.rpartition("/")
    causes = []
    if prefix and not meta.is_dns1123_subdomain(prefix):
        causes.append(field_invalid(path, key, "prefix part " + meta.validate_dns1123_subdomain(prefix, path)[-1]
                                    .message.split(": ", 2)[-1]))
    if not name:
        causes.append(field_invalid(path, key, "name part must be non-empty"))
    elif len(name) > 63:
        causes.append(field_invalid(path, key, "name part must be no more than 63 characters"))
    elif not _QUALIFIED_RE.match(name):
        causes.append(field_invalid(path, key, _NAME_PART_MSG))
    return causes


def _string_map(values, path: str, key_of) -> tuple[list[Cause], list[tuple[str, str]]]:
    """Common checks of labels and annotations: a map, qualified keys, string values. Returns (causes, the
    (key, value) pairs with string values for further checks)."""
    if values is None:
        return [], []
    if not isinstance(values, dict):
        return [field_invalid(path, values, "must be a map of string keys to string values")], []
    causes, pairs = [], []
    for key, value in values.items():
        causes.extend(qualified_name(key_of(key), path))
        if isinstance(value, str):
            pairs.append((key, value))
        else:
            causes.append(field_invalid(f"{path}[{key}]", value, "must be a string"))
    return causes, pairs


def labels(values, path: str) -> list[Cause]:
    causes, pairs = _string_map(values, path, str)
    for _, value in pairs:
        if len(value) > 63:
            causes.append(field_invalid(path, value, "must be no more than 63 characters"))
        elif not _LABEL_VALUE_RE.match(value):
            causes.append(field_invalid(path, value, _LABEL_VALUE_MSG))
    return causes


def annotations(values, path: str) -> list[Cause]:
    causes, pairs = _string_map(values, path, str.lower)
    if sum(len(k) + len(v) for k, v in pairs) > 256 * 1024:
        causes.append(Cause(path, f"Too long: must have at most {256 * 1024} bytes", "FieldValueTooLong"))
    return causes


def non_negative(value, path: str) -> list[Cause]:
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [field_invalid(path, value, "must be an integer")]
    if value < 0:
        return [field_invalid(path, value, "must be greater than or equal to 0")]
    return []


def port_number(value, path: str) -> list[Cause]:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        return [field_invalid(path, value, "must be between 1 and 65535, inclusive")]
    return []


def one_of(value, path: str, supported: list[str]) -> list[Cause]:
    if value is None or value in supported:
        return []
    return [field_not_supported(path, value, supported)]


def required(obj: dict, name: str, path: str) -> list[Cause]:
    value = obj.get(name) if isinstance(obj, dict) else None
    return [field_required(f"{path}.{name}" if path else name)] if value in (None, "", [], {}) else []


def unique_names(items: list, path: str) -> list[Cause]:
    seen, causes = set(), []
    for index, item in enumerate(items or []):
        name = item.get("name") if isinstance(item, dict) else None
        if name in seen:
            causes.append(field_duplicate(f"{path}[{index}].name", name))
        elif name:
            seen.add(name)
    return causes
