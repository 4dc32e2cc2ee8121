"""OpenAPI documents for kubectl (contract §4): v3 (an index, then one JSON document per group-version) and v2 as
gnostic protobuf (kubectl 1.27/1.28). The operations (openapi_operations.py) are published as upstream publishes
them: path and query parameters, request bodies, responses, `x-kubernetes-action` and
`x-kubernetes-group-version-kind`. Every write declares the `fieldValidation` query parameter: kubectl then sends
`fieldValidation=Strict` and leaves validation to the server.
The schemas are the real ones (`kubectl explain`): built-in kinds from api/openapi_schemas.py (derived from the same
type description field validation reads), custom resources from their CRD version's openAPIV3Schema.

Documents are rebuilt when the registry changed (a CRD came, changed or went) and served with an ETag and
`Cache-Control: public, immutable` when the client asks by hash, as kube-apiserver does.
"""
from __future__ import annotations

import hashlib
import json

from aiohttp import web

from kpy_components.api import openapi_schemas, types
from kpy_components.api.errors import APIError
from kpy_components.api.resources import Registry, ResourceInfo
from kpy_components.version import VERSION

from . import openapi_operations as ops, openapi_v2
from .responses import json_response

V2_ACCEPT = "application/com.github.proto-openapi.spec.v2"
V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "version": version, "kind": kind}


def _v3_parameter(parameter: ops.Parameter) -> dict:
    out = {"name": parameter.name, "in": parameter.where}
    if parameter.description:
        out["description"] = parameter.description
    if parameter.required:
        out["required"] = True
    out["schema"] = {"type": parameter.type, "uniqueItems": True}
    return out


def _v3_schema(name: str | None) -> dict:
    return {"type": "string"} if name == ops.STRING else {"$ref": f"#/components/schemas/{name}"}


def v3_operation(op: ops.Operation) -> dict:
    out = {"description": op.description, "operationId": op.id}
    if op.query:
        out["parameters"] = [_v3_parameter(p) for p in op.query]
    if op.body is not None:
        out["requestBody"] = {"content": {media: {"schema": _v3_schema(op.body)} for media in op.body_types},
                              "required": op.method != "delete"}
    responses = {}
    for code, schema in op.responses.items():
        text = {"200": "OK", "201": "Created", "202": "Accepted"}[code]
        responses[code] = ({"description": text, "content": {media: {"schema": _v3_schema(schema)}
                                                             for media in op.produces}}
                           if schema is not None else {"description": text})
    out["responses"] = {**responses, "401": {"description": "Unauthorized"}}
    out["x-kubernetes-action"] = op.action
    out["x-kubernetes-group-version-kind"] = op.gvk
    return out


def paths(registry: Registry, group: str | None = None, version: str | None = None) -> dict[str, list]:
    """path -> its operations (of one group-version, or of all)."""
    out: dict[str, list] = {}
    for info in registry:
        if group is None or (info.group == group and info.version == version):
            for op in ops.operations(info):
                out.setdefault(op.path, []).append(op)
    return out


def kind_messages(registry: Registry, group: str, version: str) -> dict[str, dict]:
    """The built-in messages a group-version's paths speak (its kinds, their lists, their subresources' kinds),
    each with its GVK; kinds the type description lacks (custom resources' own) are left out, a custom resource's
    Scale is not."""
    kinds = {}
    for info in registry:
        if info.group != group or info.version != version:
            continue
        for api_version, kind, gvk in ((info.api_version, info.kind, _gvk(group, version, info.kind)),
                                       (info.api_version, f"{info.kind}List", _gvk(group, version,
                                                                                  f"{info.kind}List")),
                                       *((f"{sub.group}/{sub.version}" if sub.group else sub.version or
                                          info.api_version, sub.kind, _gvk(sub.group, sub.version or version,
                                                                           sub.kind))
                                         for sub in info.subresources)):
            message = types.message_for(api_version, kind)
            if message is not None and message not in kinds:
                kinds[message] = gvk
    for message in ops.META_MESSAGES:
        kinds.setdefault(message, None)
    return kinds


def v3_document(registry: Registry, group: str, version: str) -> dict:
    schemas: dict[str, dict] = openapi_schemas.schemas(kind_messages(registry, group, version))
    for info in registry:
        if info.group != group or info.version != version:
            continue
        name = ops.kind_schema(info.api_version, info.kind, info)
        if info.extra.get("crd"):
            schemas.update(custom_schemas(info))
        elif name is None:  # served from elsewhere (an aggregated API's kind): named, not described
            schemas[_placeholder_name(info)] = {"type": "object", "description": f"{info.kind} ({info.group_version})",
                                                "x-kubernetes-group-version-kind": [_gvk(group, version, info.kind)]}
    document_paths = {}
    for path, path_ops in paths(registry, group, version).items():
        item = {op.method: v3_operation(op) for op in path_ops}
        item["parameters"] = [_v3_parameter(p) for p in ops.path_parameters(path, path_ops[0].gvk["kind"])]
        document_paths[path] = item
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{VERSION}"}, "paths": document_paths,
            "components": {"schemas": schemas}}


def _custom_schema(info: ResourceInfo) -> dict:
    """A CRD version's published schema: its openAPIV3Schema with the object metadata and GVK upstream adds."""
    schema = dict(info.extra.get("schema") or {"type": "object"})
    properties = dict(schema.get("properties") or {})
    properties.setdefault("apiVersion", {"type": "string", "description": _API_VERSION})
    properties.setdefault("kind", {"type": "string", "description": _KIND})
    properties["metadata"] = {"type": "object", "description": "Standard object's metadata. More info: "
                              "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
                              "#metadata"}
    schema["properties"] = properties
    schema["x-kubernetes-group-version-kind"] = [_gvk(info.group, info.version, info.kind)]
    return schema


def _placeholder_name(info: ResourceInfo) -> str:
    return f"io.k8s.api.{info.group.replace('.k8s.io', '') or 'core'}.{info.version}.{info.kind}"


def custom_schemas(info: ResourceInfo, prefix: str = "#/components/schemas/") -> dict[str, dict]:
    """A custom resource's published schemas: its kind and its list (`prefix`: where references point)."""
    name = ops.kind_schema(info.api_version, info.kind, info)
    return {name: _custom_schema(info), f"{name}List": _custom_list_schema(info, name, prefix)}


def _custom_list_schema(info: ResourceInfo, name: str, prefix: str) -> dict:
    """The list of a custom resource, as upstream publishes it beside the CRD version's schema."""
    return {"type": "object", "description": f"{info.kind}List is a list of {info.kind}", "required": ["items"],
            "properties": {"apiVersion": {"type": "string", "description": _API_VERSION},
                           "items": {"type": "array", "description": f"List of {info.plural}. More info: "
                                     "https://git.k8s.io/community/contributors/devel/api-conventions.md",
                                     "items": {"$ref": f"{prefix}{name}"}},
                           "kind": {"type": "string", "description": _KIND},
                           "metadata": {"description": "Standard list metadata. More info: https://git.k8s.io/"
                                        "community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                                        "allOf": [{"$ref": f"{prefix}{ops.LIST_META}"}]}},
            "x-kubernetes-group-version-kind": [_gvk(info.group, info.version, f"{info.kind}List")]}


_API_VERSION = ("APIVersion defines the versioned schema of this representation of an object. Servers should convert "
                "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
                "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources")
_KIND = ("Kind is a string value representing the REST resource this object represents. Servers may infer this from "
         "the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
         "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")


class OpenAPI:
    """Documents built on first use and again after the registry changed (a CRD came, changed or went)."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._built: dict[str, tuple[int, object]] = {}

    def _cached(self, what: str, build):
        generation = self.registry.generation
        held = self._built.get(what)
        if held is None or held[0] != generation:
            held = self._built[what] = (generation, build())
        return held[1]

    @property
    def _v3(self) -> dict[str, tuple[bytes, str]]:
        """group path ("apis/apps/v1") -> (JSON bytes, hash)."""
        def build():
            documents = {}
            for group, version in self.registry.group_versions():
                body = json.dumps(v3_document(self.registry, group, version), separators=(",", ":")).encode()
                documents[ops.group_path(group, version)] = (body, hashlib.sha512(body).hexdigest()[:32].upper())
            return documents
        return self._cached("v3", build)

    @property
    def _v2(self) -> tuple[bytes, str]:
        def build():
            body = openapi_v2.document(self.registry)
            return body, hashlib.sha512(body).hexdigest()[:32].upper()
        return self._cached("v2", build)

    def serve(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        if parts == ["v2"]:
            if "protobuf" not in (request.headers.get("Accept") or ""):
                return json_response(openapi_v2.json_document(self.registry), headers={"Vary": "Accept"})
            body, etag = self._v2
            return web.Response(body=body, headers={"Content-Type": V2_CONTENT_TYPE, "ETag": f'"{etag}"',
                                                    "Vary": "Accept"})
        if parts == ["v3"]:
            index = {"paths": {name: {"serverRelativeURL": f"/openapi/v3/{name}?hash={digest}"}
                               for name, (_, digest) in self._v3.items()}}
            return json_response(index)
        if parts[:1] == ["v3"] and "/".join(parts[1:]) in self._v3:
            body, digest = self._v3["/".join(parts[1:])]
            headers = {"ETag": f'"{digest}"', "Content-Type": "application/json"}
            headers["Cache-Control"] = ("public, immutable" if request.query.get("hash") == digest
                                        else "no-cache, private")
            return web.Response(body=body, headers=headers)
        raise APIError(404, "NotFound", "the server could not find the requested resource")
