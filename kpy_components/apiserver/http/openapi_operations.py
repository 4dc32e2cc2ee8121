"""The operations kpy-apiserver serves, as its OpenAPI documents (v3 and v2) publish them: one list, rendered twice.

Each operation carries what upstream's documents carry: its path and method, `x-kubernetes-action`,
`x-kubernetes-group-version-kind`, operationId (`listCoreV1NamespacedPod`, `patchAppsV1NamespacedDeploymentScale`,
`connectCoreV1PostNamespacedPodExec`), the query parameters of its kind of request (the list, write, delete, patch,
log and connect ones of kube-apiserver 1.31), the request body (the kind for create and replace, DeleteOptions for
deletes, Patch in the four patch content types) and its responses. Path parameters (`name`, `namespace`) and `pretty`
are the path's own, as upstream declares them. Parameter descriptions and types come from the official Python
client's API methods (api/k8s_docs.PARAMETERS, generated), like the schema descriptions.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kpy_components.api import k8s_docs, openapi_schemas, types
from kpy_components.api.resources import ResourceInfo

from .negotiation import PATCH_TYPES

META = "k8s.io.apimachinery.pkg.apis.meta.v1"
STATUS = openapi_schemas.schema_name(f"{META}.Status")
DELETE_OPTIONS = openapi_schemas.schema_name(f"{META}.DeleteOptions")
PATCH = openapi_schemas.schema_name(f"{META}.Patch")
LIST_META = openapi_schemas.schema_name(f"{META}.ListMeta")
# Messages every document's operations name besides the kinds themselves (request bodies and Status responses).
META_MESSAGES = (f"{META}.Status", f"{META}.DeleteOptions", f"{META}.Patch", f"{META}.ListMeta")
STRING = ""  # a response (or body) that is text, not a schema: logs and connections

# kube-apiserver 1.31's query parameters by kind of request (the client also knows later ones: left out).
QUERY = {
    "list": ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
             "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch"),
    "create": ("dryRun", "fieldManager", "fieldValidation"),
    "replace": ("dryRun", "fieldManager", "fieldValidation"),
    "patch": ("dryRun", "fieldManager", "fieldValidation", "force"),
    "delete": ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"),
    "deletecollection": ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds", "labelSelector", "limit",
                         "orphanDependents", "propagationPolicy", "resourceVersion", "resourceVersionMatch",
                         "sendInitialEvents", "timeoutSeconds"),
    "read": (),
    "log": ("container", "follow", "insecureSkipTLSVerifyBackend", "limitBytes", "previous", "sinceSeconds",
            "tailLines", "timestamps"),
    "exec": ("command", "container", "stderr", "stdin", "stdout", "tty"),
    "attach": ("container", "stderr", "stdin", "stdout", "tty"),
    "portforward": ("ports",),
}
_CONNECT = ("exec", "attach", "portforward")
# Kinds whose delete answers with the object (still terminating) rather than a Status, as upstream declares.
_DELETE_RETURNS_OBJECT = {("", "Pod")}


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str  # "query" or "path"
    type: str  # OpenAPI type: string, boolean, integer
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    path: str
    method: str  # get, post, put, patch, delete
    action: str  # x-kubernetes-action: get, list, post, put, patch, delete, deletecollection, connect
    gvk: dict
    id: str
    description: str
    query: tuple[Parameter, ...] = ()
    body: str | None = None  # schema name of the request body
    body_types: tuple[str, ...] = ("*/*",)
    responses: dict[str, str | None] = field(default_factory=dict)  # code -> schema name, STRING, or None
    produces: tuple[str, ...] = ("application/json",)

    @property
    def writes(self) -> bool:
        return self.method in ("post", "put", "patch") and self.action != "connect"


def parameter(family: str, name: str, where: str = "query", description: str | None = None) -> Parameter:
    kind, text = k8s_docs.PARAMETERS.get(family, {}).get(name) or k8s_docs.PARAMETERS["list"].get(
        name, ("string", ""))
    return Parameter(name, where, kind, text if description is None else description, where == "path")


def path_parameters(path: str, kind: str) -> tuple[Parameter, ...]:
    """What a path declares for all its operations: its `{name}` and `{namespace}`, and `pretty`."""
    out = []
    if "{name}" in path:
        out.append(parameter("read", "name", "path", f"name of the {kind}"))
    if "{namespace}" in path:
        out.append(parameter("list", "namespace", "path"))
    out.append(parameter("list", "pretty"))
    return tuple(out)


def _gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "version": version, "kind": kind}


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", ".").split(".") if part)


def group_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def kind_schema(api_version: str, kind: str, info: ResourceInfo | None = None) -> str | None:
    """The published schema name of a kind: a CRD's `com.example.v1.Widget`, a built-in's upstream name; None when
    the type description lacks it."""
    if info is not None and info.extra.get("crd"):
        return ".".join(reversed(info.group.split("."))) + f".{info.version}.{kind}"
    message = types.message_for(api_version, kind)
    return openapi_schemas.schema_name(message) if message else None


def _query(family: str) -> tuple[Parameter, ...]:
    return tuple(parameter(family, name) for name in QUERY[family])


def operations(info: ResourceInfo) -> list[Operation]:
    """Every operation of a resource, its subresources' included."""
    base = "/" + group_path(info.group, info.version)
    scope = f"{base}/namespaces/{{namespace}}/{info.plural}" if info.namespaced else f"{base}/{info.plural}"
    named = f"{scope}/{{name}}"
    group_name = _camel(info.group.replace(".k8s.io", "")) or "Core"
    api = f"{group_name}{_camel(info.version)}"
    where = "Namespaced" if info.namespaced else ""
    gvk = _gvk(info.group, info.version, info.kind)
    kind = kind_schema(info.api_version, info.kind, info)
    kind_list = kind_schema(info.api_version, f"{info.kind}List", info)
    deleted = kind if (info.group, info.kind) in _DELETE_RETURNS_OBJECT else STATUS
    written = {"200": kind, "201": kind}
    ops = []
    for verb in info.verbs:
        if verb == "list":
            ops.append(Operation(scope, "get", "list", gvk, f"list{api}{where}{info.kind}",
                                 f"list or watch objects of kind {info.kind}", _query("list"),
                                 responses={"200": kind_list}))
            if info.namespaced:
                ops.append(Operation(f"{base}/{info.plural}", "get", "list", gvk,
                                     f"list{api}{info.kind}ForAllNamespaces",
                                     f"list or watch objects of kind {info.kind}", _query("list"),
                                     responses={"200": kind_list}))
        elif verb == "create":
            ops.append(Operation(scope, "post", "post", gvk, f"create{api}{where}{info.kind}", f"create a {info.kind}",
                                 _query("create"), kind, responses={**written, "202": kind}))
        elif verb == "deletecollection":
            ops.append(Operation(scope, "delete", "deletecollection", gvk,
                                 f"deleteCollection{api}{where}{info.kind}", f"delete collection of {info.kind}",
                                 _query("deletecollection"), DELETE_OPTIONS, responses={"200": STATUS}))
        elif verb == "get":
            ops.append(Operation(named, "get", "get", gvk, f"read{api}{where}{info.kind}",
                                 f"read the specified {info.kind}", responses={"200": kind}))
        elif verb == "update":
            ops.append(Operation(named, "put", "put", gvk, f"replace{api}{where}{info.kind}",
                                 f"replace the specified {info.kind}", _query("replace"), kind, responses=written))
        elif verb == "patch":
            ops.append(Operation(named, "patch", "patch", gvk, f"patch{api}{where}{info.kind}",
                                 f"partially update the specified {info.kind}", _query("patch"), PATCH, PATCH_TYPES,
                                 written))
        elif verb == "delete":
            ops.append(Operation(named, "delete", "delete", gvk, f"delete{api}{where}{info.kind}",
                                 f"delete a {info.kind}", _query("delete"), DELETE_OPTIONS,
                                 responses={"200": deleted, "202": deleted}))
    for sub in info.subresources:
        ops.extend(_subresource_operations(info, sub, f"{named}/{sub.name}", api, where))
    return ops


def _subresource_operations(info: ResourceInfo, sub, path: str, api: str, where: str) -> list[Operation]:
    api_version = f"{sub.group}/{sub.version}" if sub.group else sub.version or info.api_version
    gvk = _gvk(sub.group, sub.version, sub.kind) if sub.version else _gvk(info.group, info.version, sub.kind)
    schema = kind_schema(api_version, sub.kind, info if not sub.version and sub.kind == info.kind else None)
    suffix = _camel(sub.name)
    ops = []
    if sub.name in _CONNECT:
        for verb, method in (("get", "get"), ("create", "post")):
            if verb in sub.verbs:
                ops.append(Operation(path, method, "connect", gvk,
                                     f"connect{api}{method.capitalize()}{where}{info.kind}{suffix}",
                                     f"connect {method.upper()} requests to {sub.name} of {info.kind}",
                                     _query(sub.name), responses={"200": STRING}, produces=("*/*",)))
        return ops
    if sub.name == "log":
        return [Operation(path, "get", "get", gvk, f"read{api}{where}{info.kind}Log",
                          f"read log of the specified {info.kind}", _query("log"), responses={"200": STRING},
                          produces=("text/plain",))]
    written = {"200": schema, "201": schema}
    for verb in sub.verbs:
        if verb == "get":
            ops.append(Operation(path, "get", "get", gvk, f"read{api}{where}{info.kind}{suffix}",
                                 f"read {sub.name} of the specified {info.kind}", responses={"200": schema}))
        elif verb == "update":
            ops.append(Operation(path, "put", "put", gvk, f"replace{api}{where}{info.kind}{suffix}",
                                 f"replace {sub.name} of the specified {info.kind}", _query("replace"), schema,
                                 responses=written))
        elif verb == "patch":
            ops.append(Operation(path, "patch", "patch", gvk, f"patch{api}{where}{info.kind}{suffix}",
                                 f"partially update {sub.name} of the specified {info.kind}", _query("patch"), PATCH,
                                 PATCH_TYPES, written))
        elif verb == "create":
            ops.append(Operation(path, "post", "post", gvk, f"create{api}{where}{info.kind}{suffix}",
                                 f"create {sub.name} of a {info.kind}", _query("create"), schema,
                                 responses={**written, "202": schema}))
    return ops
