"""/openapi/v2 as the gnostic `openapi.v2.Document` protobuf, encoded by hand (kubectl 1.27/1.28 accept nothing
else; contract §4). Field numbers are those of gnostic's OpenAPIv2.proto:

    Document{swagger=1, info=2, paths=8}   Info{title=1, version=2}   Paths{path=2 (NamedPathItem)}
    NamedPathItem{name=1, value=2}          PathItem{get=2, put=3, post=4, delete=5, patch=8}
    Operation{operation_id=5, parameters=8, vendor_extension=13}
    ParametersItem{parameter=1} -> Parameter{non_body_parameter=2} -> NonBodyParameter{query_parameter_sub_schema=3}
    QueryParameterSubSchema{in=2, name=4, type=6, unique_items=20}
    NamedAny{name=1, value=2} -> Any{yaml=2}

Definitions are left out: kubectl's client-side apply then computes patches from its built-in types (a schema-less
definition would make it print warnings about missing fields).
"""
from __future__ import annotations

from kpy_components.api.resources import Registry
from kpy_components.version import VERSION

_METHOD_FIELDS = {"get": 2, "put": 3, "post": 4, "delete": 5, "patch": 8}
_LENGTH_DELIMITED, _VARINT = 2, 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _message(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _message(number, text.encode())


def _true(number: int) -> bytes:
    return _varint(number << 3 | _VARINT) + b"\x01"


def _query_parameter(name: str, kind: str = "string") -> bytes:
    sub_schema = _string(2, "query") + _string(4, name) + _string(6, kind) + _true(20)
    return _message(8, _message(1, _message(2, _message(3, sub_schema))))


def _gvk_extension(gvk: dict) -> bytes:
    group = gvk["group"] if gvk["group"] else '""'
    yaml_text = f"group: {group}\nkind: {gvk['kind']}\nversion: {gvk['version']}\n"
    return _message(13, _string(1, "x-kubernetes-group-version-kind") + _message(2, _string(2, yaml_text)))


def _operation(op: dict) -> bytes:
    body = _string(5, op["id"])
    if op["writes"]:
        for name in ("dryRun", "fieldManager", "fieldValidation"):
            body += _query_parameter(name)
        if op["method"] == "patch":
            body += _query_parameter("force", "boolean")
    return body + _gvk_extension(op["gvk"])


def _paths(registry: Registry, encode) -> dict[str, dict]:
    from .openapi import operations  # shared with the v3 documents

    paths: dict[str, dict] = {}
    for info in registry:
        for op in operations(info):
            paths.setdefault(op["path"], {})[op["method"]] = encode(op)
    return paths


def _json_operation(op: dict) -> dict:
    names = ("dryRun", "fieldManager", "fieldValidation") if op["writes"] else ()
    parameters = [{"name": name, "in": "query", "type": "string", "uniqueItems": True} for name in names]
    if op["writes"] and op["method"] == "patch":
        parameters.append({"name": "force", "in": "query", "type": "boolean", "uniqueItems": True})
    return {"operationId": op["id"], "parameters": parameters, "responses": {"200": {"description": "OK"}},
            "x-kubernetes-group-version-kind": op["gvk"]}


def json_document(registry: Registry) -> dict:
    """The same document as Swagger 2.0 JSON, for clients that ask /openapi/v2 for application/json, with the
    definitions of every built-in kind (the protobuf document leaves them out: see above)."""
    from kpy_components.api import openapi_schemas
    from .openapi import kind_messages

    kinds: dict[str, dict] = {}
    for group, version in registry.group_versions():
        kinds.update(kind_messages(registry, group, version))
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": f"v{VERSION}"},
            "paths": _paths(registry, _json_operation), "definitions": openapi_schemas.schemas(kinds, version=2)}


def document(registry: Registry) -> bytes:
    paths = _paths(registry, _operation)
    encoded_paths = b""
    for path, methods in paths.items():
        item = b"".join(_message(_METHOD_FIELDS[m], methods[m]) for m in sorted(methods, key=_METHOD_FIELDS.get))
        encoded_paths += _message(2, _string(1, path) + _message(2, item))
    info = _string(1, "Kubernetes") + _string(2, f"v{VERSION}")
    return _string(1, "2.0") + _message(2, info) + _message(8, encoded_paths)
