"""OpenAPI documents for kubectl (contract §4): v3 (an index, then one JSON document per group-version) and v2 as
gnostic protobuf (kubectl 1.27/1.28). Every write operation declares the `fieldValidation` query parameter and its
`x-kubernetes-group-version-kind`: kubectl then sends `fieldValidation=Strict` and leaves validation to the server.
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

from . import openapi_v2
from .responses import json_response

V2_ACCEPT = "application/com.github.proto-openapi.spec.v2"
V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_WRITE_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation")
_HTTP_METHODS = {"get": "get", "list": "get", "create": "post", "update": "put", "patch": "patch",
                 "delete": "delete", "deletecollection": "delete"}


def group_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", ".").split(".") if part)


def _schema_name(group: str, version: str, kind: str) -> str:
    short = group.replace(".k8s.io", "") if group else "core"
    return f"io.k8s.api.{short}.{version}.{kind}"


def _gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "version": version, "kind": kind}


def operations(info: ResourceInfo) -> list[dict]:
    """Every operation of a resource: {path, method, action, gvk, id, writes}."""
    base = "/" + group_path(info.group, info.version)
    scope = f"{base}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"
    names = _camel(info.group.replace(".k8s.io", "")) or "Core"
    prefix = f"{names}{info.version[:1].upper()}{info.version[1:]}{'Namespaced' if info.namespaced else ''}"
    gvk = _gvk(info.group, info.version, info.kind)
    ops = []
    for verb in info.verbs:
        path = scope if verb in ("list", "create", "deletecollection") else f"{scope}/{{name}}"
        if verb == "watch":
            continue
        action = {"create": "post", "update": "put", "delete": "delete", "deletecollection": "deletecollection",
                  "list": "list", "get": "get", "patch": "patch"}[verb]
        suffix = "Collection" if verb == "deletecollection" else ""
        op_verb = {"get": "read", "update": "replace", "deletecollection": "delete"}.get(verb, verb)
        ops.append({"path": path, "method": _HTTP_METHODS[verb], "action": action, "gvk": gvk,
                    "id": f"{op_verb}{prefix}{info.kind}{suffix}",
                    "writes": verb in ("create", "update", "patch")})
    for sub in info.subresources:
        sub_gvk = _gvk(sub.group, sub.version, sub.kind) if sub.version else gvk
        for verb in sub.verbs:
            method = {"get": "get", "update": "put", "patch": "patch", "create": "post"}.get(verb)
            if method is None:
                continue
            op_verb = {"get": "read", "update": "replace"}.get(verb, verb)
            ops.append({"path": f"{scope}/{{name}}/{sub.name}", "method": method, "action": method,
                        "gvk": sub_gvk, "id": f"{op_verb}{prefix}{info.kind}{_camel(sub.name)}",
                        "writes": method in ("post", "put", "patch")})
    return ops


def _v3_parameters(op: dict) -> list[dict]:
    names = _WRITE_PARAMETERS + (("force",) if op["method"] == "patch" else ()) if op["writes"] else ()
    return [{"name": name, "in": "query", "schema": {"type": "boolean" if name == "force" else "string",
                                                     "uniqueItems": True}} for name in names]


def kind_messages(registry: Registry, group: str, version: str) -> dict[str, dict]:
    """The built-in messages a group-version's paths speak (its kinds, their lists, their subresources' kinds),
    each with its GVK; resources the type description lacks (custom resources) are left out."""
    kinds = {}
    for info in registry:
        if info.group != group or info.version != version or info.extra.get("crd"):
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
    return kinds


def _kind_schema_name(info: ResourceInfo) -> str:
    if info.extra.get("crd"):
        return ".".join(reversed(info.group.split("."))) + f".{info.version}.{info.kind}"
    message = types.message_for(info.api_version, info.kind)
    return openapi_schemas.schema_name(message) if message else _schema_name(info.group, info.version, info.kind)


def v3_document(registry: Registry, group: str, version: str) -> dict:
    paths: dict[str, dict] = {}
    schemas: dict[str, dict] = openapi_schemas.schemas(kind_messages(registry, group, version))
    for info in registry:
        if info.group != group or info.version != version:
            continue
        name = _kind_schema_name(info)
        if info.extra.get("crd"):
            schemas[name] = _custom_schema(info)
        elif name not in schemas:
            schemas[name] = {"type": "object", "description": f"{info.kind} ({info.group_version})",
                             "x-kubernetes-group-version-kind": [_gvk(group, version, info.kind)]}
        for op in operations(info):
            reference = {"$ref": f"#/components/schemas/{name}"}
            paths.setdefault(op["path"], {})[op["method"]] = {
                "operationId": op["id"], "parameters": _v3_parameters(op),
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
                "x-kubernetes-action": op["action"], "x-kubernetes-group-version-kind": op["gvk"]}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{VERSION}"}, "paths": paths,
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
                documents[group_path(group, version)] = (body, hashlib.sha512(body).hexdigest()[:32].upper())
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
