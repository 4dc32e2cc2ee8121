"""OpenAPI schemas of the built-in kinds, derived from kpy's one description of the Kubernetes types: field names
and shapes from k8s_types.py (what field validation and the protobuf decoder read), descriptions and required
fields from k8s_docs.py (the official Python client's models), list semantics from patch.SCHEMA (what strategic
merge patch and server-side apply merge by). Nothing is typed by hand, so what is published, what is validated and
what is merged agree.

Names are upstream's: `io.k8s.api.apps.v1.Deployment`, `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`. `v3`
gives OpenAPI 3 schemas (`#/components/schemas/...`, message fields as `allOf` of one `$ref` with the field's
description, as kube-apiserver publishes them); `v2` Swagger 2 (`#/definitions/...`).
"""
from __future__ import annotations

import functools

from . import k8s_docs, types
from .patch import SCHEMA as PATCH_SCHEMA, ListField

_SCALARS = {"string": {"type": "string"}, "bytes": {"type": "string", "format": "byte"},
            "int32": {"type": "integer", "format": "int32"}, "int64": {"type": "integer", "format": "int64"},
            "bool": {"type": "boolean"}, "double": {"type": "number", "format": "double"}}
# Types whose JSON is their own: their schemas as upstream publishes them.
_OWN_JSON = {
    types.TIME: {"type": "string", "format": "date-time", "description": "Time is a wrapper around time.Time which "
                 "supports correct marshaling to YAML and JSON.  Wrappers are provided for many of the factory "
                 "methods that the time package offers."},
    types.MICRO_TIME: {"type": "string", "format": "date-time", "description": "MicroTime is version of Time with "
                       "microsecond level precision."},
    types.DURATION: {"type": "string", "description": "Duration is a wrapper around time.Duration which supports "
                     "correct marshaling to YAML and JSON."},
    types.FIELDS_V1: {"type": "object", "description": "FieldsV1 stores a set of fields in a data structure like a "
                      "Trie, in JSON format."},
    types.QUANTITY: {"description": "Quantity is a fixed-point representation of a number.",
                     "oneOf": [{"type": "string"}, {"type": "number"}]},
    types.INT_OR_STRING: {"description": "IntOrString is a type that can hold an int32 or a string.",
                          "x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
    types.RAW_EXTENSION: {"type": "object", "description": "RawExtension is used to hold extensions in external "
                          "versions."},
}
_TYPE_META = ("apiVersion", "kind")


def schema_name(message: str) -> str:
    """`k8s.io.api.apps.v1.Deployment` -> `io.k8s.api.apps.v1.Deployment`."""
    return "io.k8s." + message.removeprefix("k8s.io.")


def _list_extensions(message: str, field: str) -> dict:
    """x-kubernetes-* list and patch extensions from patch.SCHEMA, the table SMP and SSA merge by."""
    spec = PATCH_SCHEMA.get(message.rsplit(".", 1)[-1], {}).get(field)
    if not isinstance(spec, ListField):
        return {}
    if spec.keys:
        out = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(spec.keys)}
    else:
        out = {"x-kubernetes-list-type": "set" if spec.set_ else "atomic"}
    if spec.strategy == "merge":
        if spec.patch_merge_key:
            out["x-kubernetes-patch-merge-key"] = spec.patch_merge_key
        out["x-kubernetes-patch-strategy"] = "merge,retainKeys" if spec.retain_keys else "merge"
    return out


def _value(kind: str, ref) -> dict:
    if kind in _SCALARS:
        return dict(_SCALARS[kind])
    if kind in types.LIST_WRAPPERS:
        (inner,) = types.fields(kind).values()
        return {"type": "array", "items": _value(inner.type, ref)}
    return ref(kind)


def _property(message: str, field: types.Field, description: str, ref, wrap) -> dict:
    if field.map_key is not None:
        out = {"type": "object", "additionalProperties": _value(field.type, ref)}
    elif field.repeated and field.type not in types.LIST_WRAPPERS:
        out = {"type": "array", "items": _value(field.type, ref), **_list_extensions(message, field.name)}
    else:
        out = _value(field.type, ref)
        if field.is_message and field.type not in types.LIST_WRAPPERS:
            return wrap(out, description)  # none of its own: kubectl shows the type's description
    if description:
        out["description"] = description
    return out


def type_description(message: str) -> str:
    return (k8s_docs.DOCS.get(message) or ("", {}, ()))[0] or _OWN_JSON.get(message, {}).get("description", "")


def _schema(message: str, ref, wrap, gvk: dict | None) -> dict:
    if message in _OWN_JSON:
        return dict(_OWN_JSON[message])
    description, docs, required = k8s_docs.DOCS.get(message, ("", {}, ()))
    properties = {}
    if gvk is not None:
        for name in _TYPE_META:
            properties[name] = {"type": "string", "description": docs.get(name, "")}
    for name, field in types.json_fields(message).items():
        properties[name] = _property(message, field, docs.get(name, ""), ref, wrap)
    schema = {"type": "object", "properties": properties}
    if description:
        schema["description"] = description
    present = [r for r in required if r in properties]
    if present:
        schema["required"] = present
    if gvk is not None:
        schema["x-kubernetes-group-version-kind"] = [gvk]
    return schema


def reachable(roots: list[str]) -> list[str]:
    """The messages `roots` use, themselves included, in a stable order."""
    seen: dict[str, None] = {}
    stack = [r for r in roots if types.known(r)]
    while stack:
        message = stack.pop()
        if message in seen:
            continue
        seen[message] = None
        if message in _OWN_JSON:
            continue
        for field in types.fields(message).values():
            if field.is_message and field.type not in seen and types.known(field.type):
                stack.append(field.type)
    return sorted(seen)


def _v3_ref(message: str) -> dict:
    return {"$ref": f"#/components/schemas/{schema_name(message)}"}


def _v3_wrap(reference: dict, description: str) -> dict:
    out = {"allOf": [reference]}
    if description:
        out["description"] = description
    return out


def _v2_ref(message: str) -> dict:
    return {"$ref": f"#/definitions/{schema_name(message)}"}


def _v2_wrap(reference: dict, description: str) -> dict:
    return dict(reference, description=description) if description else reference


def schemas(kinds: dict[str, dict], version: int = 3) -> dict[str, dict]:
    """name -> schema of every message the kinds reach. `kinds`: message full name -> its GVK (a kind the server
    serves) for the GVK extension and apiVersion/kind fields."""
    out = {}
    for message in reachable(list(kinds)):
        gvk = kinds.get(message)
        out[schema_name(message)] = _cached(message, version, None if gvk is None else (
            gvk["group"], gvk["version"], gvk["kind"]))
    return out


@functools.lru_cache(maxsize=4096)
def _cached(message: str, version: int, gvk_key: tuple | None) -> dict:
    """One message's schema (shared between documents: never change what this returns)."""
    ref, wrap = (_v3_ref, _v3_wrap) if version == 3 else (_v2_ref, _v2_wrap)
    gvk = None if gvk_key is None else dict(zip(("group", "version", "kind"), gvk_key, strict=True))
    return _schema(message, ref, wrap, gvk)
