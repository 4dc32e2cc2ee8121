"""Structural schemas (a CustomResourceDefinition version's openAPIV3Schema) applied to custom resources, as
kube-apiserver's apiextensions code does: pruning of unknown fields, defaulting, and validation worded as
go-openapi's validator words it after apiextensions turns its results into field errors
(`spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"`).

Paths follow upstream too: go-openapi joins list indices with dots (`spec.items.0.name`); the list-type checks that
apiextensions runs itself use field paths (`spec.items[1]`).

Schemas are the JSON of JSONSchemaProps (plain dicts); values are decoded JSON. Nothing here raises on bad input:
every problem is a `Cause`.
"""
from __future__ import annotations

import json
import re
from datetime import datetime

from kpy_components.api import meta, types
from kpy_components.api.errors import Cause

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
EMBEDDED = "x-kubernetes-embedded-resource"
_ROOT_KEPT = ("apiVersion", "kind", "metadata")


# --- pruning -----------------------------------------------------------------------------------------------------

def prune(obj: dict, schema: dict | None) -> list[str]:
    """Remove, in place, every field of the object `obj` its schema does not declare (unless a level preserves
    unknown fields) and every null the schema does not allow. Returns the dotted paths of the unknown fields, in
    document order (what `fieldValidation=Strict` refuses)."""
    unknown: list[str] = []
    _prune_object(obj, schema or {}, "", unknown, root=True)
    return unknown


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _prune_metadata(value, path: str, unknown: list[str]) -> None:
    """metadata is decoded as ObjectMeta: what ObjectMeta lacks is dropped (and reported)."""
    if not isinstance(value, dict):
        return
    known = types.json_fields(f"{types.META}.ObjectMeta")
    for name in [n for n in value if n not in known]:
        unknown.append(_join(path, name))
        del value[name]


def _prune_object(obj: dict, schema: dict, path: str, unknown: list[str], root: bool = False) -> None:
    keep_typemeta = root or schema.get(EMBEDDED)
    properties = schema.get("properties")
    additional = schema.get("additionalProperties")
    for name in list(obj):
        here = _join(path, name)
        if keep_typemeta and name in _ROOT_KEPT:
            if name == "metadata":
                _prune_metadata(obj[name], here, unknown)
            continue
        if properties is not None and name in properties:
            child = properties[name]
        elif isinstance(additional, dict):
            child = additional
        elif additional is True or schema.get(PRESERVE):
            continue
        else:
            unknown.append(here)
            del obj[name]
            continue
        if obj[name] is None and not child.get("nullable"):
            del obj[name]
            continue
        _prune_value(obj[name], child, here, unknown)


def _prune_value(value, schema: dict, path: str, unknown: list[str]) -> None:
    if isinstance(value, dict) and (schema.get("type") == "object" or "properties" in schema
                                    or "additionalProperties" in schema or schema.get(EMBEDDED)):
        _prune_object(value, schema, path, unknown)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            _prune_value(item, schema["items"], f"{path}[{index}]", unknown)


# --- defaulting --------------------------------------------------------------------------------------------------

def default(value, schema: dict | None) -> None:
    """Fill in, in place, every absent field whose schema has a `default` (a copy of it), at every level present."""
    if not schema:
        return
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, child in properties.items():
            if "default" in child and (name not in value or (value[name] is None and not child.get("nullable"))):
                value[name] = meta.deep_copy(child["default"])
        for name, item in value.items():
            child = properties.get(name)
            if child is None and isinstance(schema.get("additionalProperties"), dict):
                child = schema["additionalProperties"]
            default(item, child)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            default(item, schema["items"])


# --- validation --------------------------------------------------------------------------------------------------

def _json_type(value) -> str:
    """go-openapi's name for a value's JSON type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number(value) -> str:
    """Go's %v of a float64 bound: 10, 1.5."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _type_ok(value, wanted: str, schema: dict) -> bool:
    kind = _json_type(value)
    if schema.get(INT_OR_STRING):
        return kind in ("integer", "string")
    if not wanted:
        return True
    if wanted == "number":
        return kind in ("integer", "number")
    return kind == wanted


def _type_error(path: str, value, schema: dict) -> Cause:
    wanted = "integer,string" if schema.get(INT_OR_STRING) else schema.get("type", "")
    actual = _json_type(value)
    return Cause(path, f'Invalid value: "{actual}": {path} in body must be of type {wanted}: "{actual}"',
                 "FieldValueTypeInvalid")


_FORMATS = {
    "date-time": lambda v: bool(re.match(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", v)),
    "date": lambda v: _parses(v, "%Y-%m-%d"),
    "uuid": lambda v: bool(re.match(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", v)),
    "byte": lambda v: bool(re.match(r"^[A-Za-z0-9+/]*={0,2}$", v)) and len(v) % 4 == 0,
    "ipv4": lambda v: bool(re.match(r"^(\d{1,3}\.){3}\d{1,3}$", v)) and all(int(p) < 256 for p in v.split(".")),
}


def _parses(value: str, fmt: str) -> bool:
    try:
        datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


def validate(obj, schema: dict | None) -> list[Cause]:
    """Every problem of `obj` against its schema (the root object; apiVersion, kind and metadata are checked by
    the API server itself, as upstream strips them before validating)."""
    if not schema:
        return []
    causes: list[Cause] = []
    body = {k: v for k, v in obj.items() if k not in _ROOT_KEPT} if isinstance(obj, dict) else obj
    stripped = dict(schema, required=[r for r in schema.get("required") or () if r not in _ROOT_KEPT])
    stripped["properties"] = {k: v for k, v in (schema.get("properties") or {}).items() if k not in _ROOT_KEPT}
    _validate(body, stripped, "", causes)
    return causes


def _validate(value, schema: dict, path: str, causes: list[Cause]) -> None:
    if value is None and schema.get("nullable"):
        return
    if not _type_ok(value, schema.get("type", ""), schema):
        causes.append(_type_error(path, value, schema))
        return
    _value_checks(value, schema, path, causes)
    for key in ("allOf", "anyOf", "oneOf", "not"):
        _combinators(value, schema, key, path, causes)
    if isinstance(value, dict):
        _validate_object(value, schema, path, causes)
    elif isinstance(value, list):
        _validate_array(value, schema, path, causes)


def _value_checks(value, schema: dict, path: str, causes: list[Cause]) -> None:
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = [v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in enum]
        causes.append(meta.field_not_supported(path, value, supported))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _numeric(value, schema, path, causes)
    if isinstance(value, str):
        _string(value, schema, path, causes)


def _numeric(value, schema: dict, path: str, causes: list[Cause]) -> None:
    if "maximum" in schema:
        limit, exclusive = schema["maximum"], schema.get("exclusiveMaximum")
        if value > limit or (exclusive and value == limit):
            words = "less than" if exclusive else "less than or equal to"
            causes.append(meta.field_invalid(path, value, f"{path} in body should be {words} {_number(limit)}"))
    if "minimum" in schema:
        limit, exclusive = schema["minimum"], schema.get("exclusiveMinimum")
        if value < limit or (exclusive and value == limit):
            words = "greater than" if exclusive else "greater than or equal to"
            causes.append(meta.field_invalid(path, value, f"{path} in body should be {words} {_number(limit)}"))
    step = schema.get("multipleOf")
    if step and (value / step) != int(value / step):
        causes.append(meta.field_invalid(path, value, f"{path} in body should be a multiple of {_number(step)}"))


def _string(value: str, schema: dict, path: str, causes: list[Cause]) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        causes.append(meta.field_too_long(path, value, schema["maxLength"]))
    if "minLength" in schema and len(value) < schema["minLength"]:
        causes.append(meta.field_invalid(path, value, f"{path} in body should be at least {schema['minLength']} "
                                                      "chars long"))
    pattern = schema.get("pattern")
    if pattern is not None and not _search(pattern, value):
        causes.append(meta.field_invalid(path, value, f"{path} in body should match '{pattern}'"))
    check = _FORMATS.get(schema.get("format", ""))
    if check is not None and not check(value):
        causes.append(Cause(path, f'Invalid value: {meta._show(value)}: {path} in body must be of type '
                            f'{schema["format"]}: {meta._show(value)}', "FieldValueTypeInvalid"))


def _search(pattern: str, value: str) -> bool:
    """ECMA-262 patterns match anywhere unless anchored (Go's regexp MatchString)."""
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # refused when the CRD was written; an unreadable pattern matches nothing to complain about


def _combinators(value, schema: dict, key: str, path: str, causes: list[Cause]) -> None:
    branches = schema.get(key)
    if not branches:
        return
    if key == "not":
        if not _errors(value, branches, path):
            causes.append(meta.field_invalid(path, value, f"{path} in body must not validate the schema (not)"))
        return
    results = [_errors(value, branch, path) for branch in branches]
    if key == "allOf":
        for found in results:
            causes.extend(found)
    elif key == "anyOf" and all(results):
        causes.append(meta.field_invalid(path, value, f"{path} in body must validate at least one schema (anyOf)"))
        causes.extend(results[0])
    elif key == "oneOf" and sum(1 for r in results if not r) != 1:
        causes.append(meta.field_invalid(path, value, f"{path} in body must validate one and only one schema "
                                                      "(oneOf)"))


def _errors(value, schema: dict, path: str) -> list[Cause]:
    found: list[Cause] = []
    _validate(value, schema, path, found)
    return found


def _count(count: int, schema: dict, suffix: str, noun: str, path: str, causes: list[Cause]) -> None:
    """maxItems/minItems, maxProperties/minProperties (upstream says "items" for too many properties too)."""
    if f"max{suffix}" in schema and count > schema[f"max{suffix}"]:
        causes.append(Cause(path, f"Too many: {count}: must have at most {schema[f'max{suffix}']} items",
                            "FieldValueTooMany"))
    if f"min{suffix}" in schema and count < schema[f"min{suffix}"]:
        causes.append(meta.field_invalid(path, count, f"{path} in body should have at least "
                                                      f"{schema[f'min{suffix}']} {noun}"))


def _validate_object(value: dict, schema: dict, path: str, causes: list[Cause]) -> None:
    if schema.get(EMBEDDED):  # an embedded object names its own kind, as upstream's embedded validation asks
        for name in ("apiVersion", "kind"):
            if not value.get(name):
                causes.append(meta.field_required(_join(path, name), "must not be empty"))
        name = (value.get("metadata") or {}).get("name") if isinstance(value.get("metadata"), dict) else None
        if name:
            causes.extend(meta.validate_dns1123_subdomain(name, _join(path, "metadata.name")))
    for name in schema.get("required") or ():
        if name not in value:
            causes.append(meta.field_required(_join(path, name)))
    _count(len(value), schema, "Properties", "properties", path, causes)
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for name, item in value.items():
        child = properties.get(name, additional if isinstance(additional, dict) else None)
        if child is not None:
            _validate(item, child, _join(path, name), causes)


def _validate_array(value: list, schema: dict, path: str, causes: list[Cause]) -> None:
    _count(len(value), schema, "Items", "items", path, causes)
    if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) != len(value):
        causes.append(meta.field_invalid(path, value, f"{path} in body shouldn't contain duplicates"))
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _validate(item, items, f"{path}.{index}", causes)
    _list_type(value, schema, path, causes)


def _list_type(value: list, schema: dict, path: str, causes: list[Cause]) -> None:
    """x-kubernetes-list-type set (unique values) and map (unique keys), checked as apiextensions does."""
    list_type = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: set[str] = set()
    for index, item in enumerate(value):
        if list_type == "set":
            identity = json.dumps(item, sort_keys=True)
        elif list_type == "map" and isinstance(item, dict):
            identity = json.dumps({k: item.get(k) for k in keys}, sort_keys=True)
        else:
            return
        if identity in seen:
            shown = item if list_type == "set" else {k: item.get(k) for k in keys}
            causes.append(meta.field_duplicate(f"{path}[{index}]", shown))
        seen.add(identity)


# --- the schema itself -------------------------------------------------------------------------------------------

def structural_problems(schema, path: str) -> list[Cause]:
    """What makes a version's schema non-structural, as the CRD validator words it: every level needs a type unless
    it preserves unknown fields or is int-or-string."""
    causes: list[Cause] = []
    if not isinstance(schema, dict):
        return [meta.field_required(path)]
    _structural(schema, path, causes, root=True)
    return causes


def _structural(schema: dict, path: str, causes: list[Cause], root: bool = False) -> None:
    if not schema.get("type") and not schema.get(INT_OR_STRING) and not schema.get(PRESERVE) and not root:
        causes.append(meta.field_required(f"{path}.type", "must not be empty for specified object fields"))
    if root and schema.get("type") not in (None, "object"):
        causes.append(meta.field_invalid(f"{path}.type", schema.get("type"), 'must be object at the root'))
    if schema.get("properties") and schema.get("additionalProperties") not in (None, False):
        causes.append(meta.field_forbidden(f"{path}.additionalProperties",
                                           "additionalProperties and properties are mutual exclusive"))
    if schema.get("type") == "array" and not isinstance(schema.get("items"), dict):
        causes.append(meta.field_required(f"{path}.items", "must be specified"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as error:
            causes.append(meta.field_invalid(f"{path}.pattern", pattern, f"must be a valid regular expression, "
                                                                         f"but isn't: {error}"))
    for name, child in (schema.get("properties") or {}).items():
        if isinstance(child, dict):
            _structural(child, f"{path}.properties[{name}]", causes)
    if isinstance(schema.get("additionalProperties"), dict):
        _structural(schema["additionalProperties"], f"{path}.additionalProperties", causes)
    if isinstance(schema.get("items"), dict):
        _structural(schema["items"], f"{path}.items", causes)


# --- list semantics for server-side apply ------------------------------------------------------------------------

def merge_types(kind: str, schema: dict | None) -> tuple[dict[str, dict], dict]:
    """The CRD schema's list and map semantics in patch.SCHEMA's terms: (named types, root field map). Lists are
    atomic unless x-kubernetes-list-type says map (merged by x-kubernetes-list-map-keys) or set; maps and structs
    with x-kubernetes-map-type atomic are replaced whole."""
    from kpy_components.api.patch import ListField

    types: dict[str, dict] = {}

    def fields(node: dict, path: str) -> dict:
        out: dict = {"__atomic__": True} if node.get("x-kubernetes-map-type") == "atomic" else {}
        for name, child in (node.get("properties") or {}).items():
            if isinstance(child, dict):
                described = describe(child, f"{path}.{name}")
                if described is not None:
                    out[name] = described
        return out

    def describe(node: dict, path: str):
        if node.get("type") == "array":
            items = node.get("items") if isinstance(node.get("items"), dict) else {}
            item_name = None
            if items.get("type") == "object" and items.get("properties"):
                item_name = f"{kind}/{path}[]"
                types[item_name] = fields(items, f"{path}[]")
            list_type = node.get("x-kubernetes-list-type")
            if list_type == "map":
                return ListField(tuple(node.get("x-kubernetes-list-map-keys") or ()), item=item_name)
            if list_type == "set":
                return ListField(set_=True)
            return ListField(item=item_name)
        if node.get("type") == "object" and node.get("properties"):
            name = f"{kind}/{path}"
            types[name] = fields(node, path)
            return name
        return None

    root = {"metadata": "ObjectMeta", **fields(schema or {}, "")}
    root.pop("__atomic__", None)
    return types, root
