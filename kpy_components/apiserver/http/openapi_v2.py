"""/openapi/v2 as the gnostic `openapi.v2.Document` protobuf, encoded by hand (kubectl 1.27/1.28 accept nothing
else; contract §4). Field numbers are those of gnostic's OpenAPIv2.proto:

    Document{swagger=1, info=2, paths=8}   Info{title=1, version=2}   Paths{path=2 (NamedPathItem)}
    NamedPathItem{name=1, value=2}          PathItem{get=2, put=3, post=4, delete=5, patch=8}
    PathItem{parameters=9}                  Operation{description=3, operation_id=5, parameters=8, vendor_extension=13}
    ParametersItem{parameter=1} -> Parameter{non_body_parameter=2} -> NonBodyParameter{query=3, path=4}
    QueryParameterSubSchema{in=2, description=3, name=4, type=6, unique_items=20}
    PathParameterSubSchema{required=1, in=2, description=3, name=4, type=5, unique_items=19}
    NamedAny{name=1, value=2} -> Any{yaml=2}

Definitions are left out: kubectl's client-side apply then computes patches from its built-in types (a schema-less
definition would make it print warnings about missing fields).
"""
from __future__ import annotations

from kpy_components.api.resources import Registry
from kpy_components.version import VERSION

from . import openapi_operations as ops

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


def _parameter(parameter: ops.Parameter) -> bytes:
    """ParametersItem{parameter} -> Parameter{non_body_parameter} -> NonBodyParameter{query (3) or path (4)}."""
    if parameter.where == "path":  # PathParameterSubSchema{required=1, in=2, description=3, name=4, type=5}
        sub_schema = (_true(1) + _string(2, "path") + _string(3, parameter.description) + _string(4, parameter.name)
                      + _string(5, parameter.type) + _true(19))
        return _message(1, _message(2, _message(4, sub_schema)))
    sub_schema = (_string(2, "query") + _string(3, parameter.description) + _string(4, parameter.name)
                  + _string(6, parameter.type) + _true(20))  # QueryParameterSubSchema
    return _message(1, _message(2, _message(3, sub_schema)))


def _extension(name: str, yaml_text: str) -> bytes:
    return _message(13, _string(1, name) + _message(2, _string(2, yaml_text)))


def _gvk_extension(gvk: dict) -> bytes:
    group = gvk["group"] if gvk["group"] else '""'
    return _extension("x-kubernetes-group-version-kind", f"group: {group}\nkind: {gvk['kind']}\nversion: "
                                                         f"{gvk['version']}\n")


def _operation(op: ops.Operation) -> bytes:
    """Operation{description=3, operation_id=5, parameters=8, vendor_extension=13}; no body parameter nor response
    schemas: they would name definitions this document leaves out."""
    body = _string(3, op.description) + _string(5, op.id)
    body += b"".join(_message(8, _parameter(p)) for p in op.query)
    return body + _gvk_extension(op.gvk) + _extension("x-kubernetes-action", f"{op.action}\n")


def _json_parameter(parameter: ops.Parameter) -> dict:
    out = {"name": parameter.name, "in": parameter.where, "type": parameter.type, "uniqueItems": True}
    if parameter.description:
        out["description"] = parameter.description
    if parameter.required:
        out["required"] = True
    return out


def _json_schema(name: str) -> dict:
    return {"type": "string"} if name == ops.STRING else {"$ref": f"#/definitions/{name}"}


def _json_operation(op: ops.Operation) -> dict:
    out = {"description": op.description, "operationId": op.id, "consumes": list(op.body_types),
           "produces": list(op.produces), "schemes": ["https"]}
    parameters = []
    if op.body is not None:
        parameters.append({"name": "body", "in": "body", "required": op.method != "delete",
                           "schema": _json_schema(op.body)})
    parameters.extend(_json_parameter(p) for p in op.query)
    if parameters:
        out["parameters"] = parameters
    responses = {}
    for code, schema in op.responses.items():
        text = {"200": "OK", "201": "Created", "202": "Accepted"}[code]
        responses[code] = {"description": text, "schema": _json_schema(schema)} if schema else {"description": text}
    out["responses"] = {**responses, "401": {"description": "Unauthorized"}}
    out["x-kubernetes-action"] = op.action
    out["x-kubernetes-group-version-kind"] = op.gvk
    return out


def json_document(registry: Registry) -> dict:
    """The same document as Swagger 2.0 JSON, for clients that ask /openapi/v2 for application/json, with request
    bodies, responses and the definitions of every built-in kind (the protobuf document leaves them out: see above)."""
    from kpy_components.api import openapi_schemas
    from .openapi import custom_schemas, kind_messages, paths

    kinds: dict[str, dict] = {}
    for group, version in registry.group_versions():
        kinds.update(kind_messages(registry, group, version))
    definitions = openapi_schemas.schemas(kinds, version=2)
    for info in registry:
        if info.extra.get("crd"):
            definitions.update(custom_schemas(info, "#/definitions/"))
    document_paths = {}
    for path, path_ops in paths(registry).items():
        item = {op.method: _json_operation(op) for op in path_ops}
        item["parameters"] = [_json_parameter(p) for p in ops.path_parameters(path, path_ops[0].gvk["kind"])]
        document_paths[path] = item
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": f"v{VERSION}"},
            "paths": document_paths, "definitions": definitions}


def document(registry: Registry) -> bytes:
    from .openapi import paths

    encoded_paths = b""
    for path, path_ops in paths(registry).items():
        methods = {op.method: _operation(op) for op in path_ops}
        item = b"".join(_message(_METHOD_FIELDS[m], methods[m]) for m in sorted(methods, key=_METHOD_FIELDS.get))
        item += b"".join(_message(9, _parameter(p)) for p in ops.path_parameters(path, path_ops[0].gvk["kind"]))
        encoded_paths += _message(2, _string(1, path) + _message(2, item))
    info = _string(1, "Kubernetes") + _string(2, f"v{VERSION}")
    return _string(1, "2.0") + _message(2, info) + _message(8, encoded_paths)
