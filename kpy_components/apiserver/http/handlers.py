"""Resource requests: verbs and subresources mapped onto the store, request bodies decoded, responses encoded
(objects, `<Kind>List`s, Tables, Status), query parameters checked with Kubernetes' wording."""
from __future__ import annotations

from aiohttp import web

from kpy_components.api import errors, tables, types
from kpy_components.api.resources import ResourceInfo
from kpy_components.apiserver.registry import patching, schema, subresources
from kpy_components.apiserver.kubelet import KubeletClient
from kpy_components.apiserver.registry.api import API
from kpy_components.apiserver.registry.context import FIELD_VALIDATION, WriteContext, dry_run_requested
from kpy_components.apiserver.registry.store import Store

from . import components, logs, negotiation, streams, watch
from .context import RequestInfo, Security, User, resolve
from .responses import json_response

_NOT_FOUND = "the server could not find the requested resource"


def not_found() -> errors.APIError:
    return errors.APIError(404, "NotFound", _NOT_FOUND)


def resource_of(api: API, info: RequestInfo) -> ResourceInfo:
    resource = api.registry.get(info.api_group, info.api_version, info.resource)
    if resource is None or (info.namespace and not resource.namespaced and info.resource != "namespaces"):
        raise not_found()
    if info.subresource and resource.subresource(info.subresource) is None:
        raise not_found()
    return resource


def _unsupported(name: str, value: str, supported: list[str]) -> errors.APIError:
    valid = ", ".join(f'"{s}"' for s in supported)
    return errors.bad_request(f'{name}: Unsupported value: "{value}": supported values: {valid}')


_GO_SCALARS = {"int64": (int, "int64"), "int32": (int, "int32"), "bool": (bool, "bool"), "string": (str, "string")}
_JSON_NAMES = {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}


def _check_delete_options(options: dict) -> None:
    """A DeleteOptions body of the wrong shape is a 400 worded as upstream's decoder words it, never a 500: its
    structs and lists by the type description (schema.unknown_fields), its scalars here."""
    try:
        schema.unknown_fields(options, "v1", "DeleteOptions")
    except schema.DecodingError as error:
        raise errors.bad_request(f'DeleteOptions in version "v1" cannot be handled as a DeleteOptions: {error}') \
            from error
    _check_scalars(options, f"{types.META}.DeleteOptions", "DeleteOptions")


def _check_scalars(obj: dict, message: str, where: str) -> None:
    for name, field in types.json_fields(message).items():
        value = obj.get(name)
        if isinstance(value, dict) and field.is_message:
            _check_scalars(value, field.type, f"{where}.{name}")
        wanted, go_type = _GO_SCALARS.get(field.type, (None, ""))
        if value is None or wanted is None or field.repeated:
            continue
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise errors.bad_request(f"json: cannot unmarshal {_JSON_NAMES.get(type(value), 'value')} into Go struct "
                                     f"field {where}.{name} of type {go_type}")


def write_context(request: web.Request, info: RequestInfo, user: User, security: Security,
                  delete_options: dict | None = None, body_unknown: list[str] | None = None) -> WriteContext:
    query = request.query
    dry_run = dry_run_requested(query.getall("dryRun", []) + list((delete_options or {}).get("dryRun") or []))
    validation = query.get("fieldValidation") or "Warn"
    if validation not in FIELD_VALIDATION:
        raise _unsupported("fieldValidation", validation, list(FIELD_VALIDATION))
    manager = query.get("fieldManager") or request.headers.get("User-Agent", "unknown").split("/")[0]
    return WriteContext(user=user, info=info, admit=security.admit, dry_run=dry_run, field_manager=manager,
                        field_validation=validation, force=query.get("force", "").lower() == "true",
                        body_unknown_fields=body_unknown or [])


def _int_param(query, name: str) -> int | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None


class ResourceHandler:
    def __init__(self, api: API, security: Security, watches: watch.Watches, kubelets: KubeletClient | None = None,
                 aggregator=None):
        self.api, self.security, self.watches, self.kubelets = api, security, watches, kubelets
        self.aggregator = aggregator  # aggregator.Aggregator, or None

    async def __call__(self, request: web.Request, info: RequestInfo, user: User) -> web.StreamResponse:
        resource = resource_of(self.api, info)
        if resource.extra.get("apiservice") and self.aggregator is not None:
            return await self.aggregator.proxy(request, resource, user, info)
        if resource.qualified == "componentstatuses":
            return await self._component_statuses(request, resource, info)
        if not resource.storage:
            return await self._virtual(request, resource, info, user)
        if info.verb not in resource.verbs and not info.subresource:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        store = self.api.store_for(resource)
        if info.subresource:
            return await self._subresource(request, store, info, user)
        namespace = info.namespace if resource.namespaced else ""
        if resource.plural == "namespaces":
            namespace = ""
        verb = info.verb
        if verb == "watch":
            return await self.watches.serve(request, store, namespace, info.name)
        if verb in ("get", "list"):
            return await self._read(request, store, namespace, info.name)
        unknown: list[str] = []  # protobuf field numbers the body's decoder did not know
        body = await self._body(request, unknown) if verb in ("create", "update", "patch") else None
        if verb == "create":
            ctx = write_context(request, info, user, self.security, body_unknown=unknown)
            created = await store.create(ctx, namespace, body)
            return json_response(created, 201, ctx.warnings)
        if verb == "update":
            ctx = write_context(request, info, user, self.security, body_unknown=unknown)
            stored, created = await store.update(ctx, namespace, info.name, body)
            return json_response(stored, 201 if created else 200, ctx.warnings)
        if verb == "patch":
            ctx = write_context(request, info, user, self.security, body_unknown=unknown)
            patch_type = negotiation.parse_media_type(request.content_type or "").type
            stored, created = await store.patch(ctx, namespace, info.name, patch_type, body)
            return json_response(stored, 201 if created else 200, ctx.warnings)
        options = await self._delete_options(request)
        ctx = write_context(request, info, user, self.security, options)
        if verb == "delete":
            return await self._delete(store, ctx, namespace, info.name, options)
        if verb == "deletecollection":
            deleted = await store.delete_collection(ctx, namespace, options,
                                                    label_selector=request.query.get("labelSelector", ""),
                                                    field_selector=request.query.get("fieldSelector", ""))
            return json_response(deleted)
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    # --- reads ---------------------------------------------------------------------------------------------------
    async def _read(self, request: web.Request, store: Store, namespace: str, name: str) -> web.Response:
        accept = negotiation.parse_accept(request.headers.get("Accept"))
        query = request.query
        if name:
            obj = await store.get(namespace, name, resource_version=query.get("resourceVersion", ""))
            items, list_meta = [obj], {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            result = obj
        else:
            limit = _int_param(query, "limit") or 0
            result = await store.list(namespace, label_selector=query.get("labelSelector", ""),
                                      field_selector=query.get("fieldSelector", ""), limit=max(limit, 0),
                                      continue_token=query.get("continue", ""),
                                      resource_version=query.get("resourceVersion", ""),
                                      resource_version_match=query.get("resourceVersionMatch", ""))
            items, list_meta = result["items"], result["metadata"]
        if negotiation.wants_table(accept):
            table = tables.to_table(store.info, items, query.get("includeObject") or "Metadata", list_meta)
            if negotiation.table_version(accept) == "v1beta1":
                table["apiVersion"] = "meta.k8s.io/v1beta1"
            return json_response(table)
        return json_response(result)

    # --- bodies --------------------------------------------------------------------------------------------------
    @staticmethod
    async def _body(request: web.Request, unknown: list[str]):
        data = await request.read()
        if not data:
            raise errors.bad_request("the request body is empty")
        return negotiation.decode_body(request.headers.get("Content-Type"), data, unknown)

    async def _delete_options(self, request: web.Request) -> dict:
        data = await request.read()
        options = negotiation.decode_body(request.headers.get("Content-Type"), data) if data else {}
        if not isinstance(options, dict):
            raise errors.bad_request("the request body must be a DeleteOptions object")
        _check_delete_options(options)
        query = request.query
        grace = _int_param(query, "gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if query.get("propagationPolicy"):
            options["propagationPolicy"] = query["propagationPolicy"]
        if query.get("orphanDependents"):
            options["orphanDependents"] = query["orphanDependents"].lower() == "true"
        return options

    async def _delete(self, store: Store, ctx: WriteContext, namespace: str, name: str,
                      options: dict) -> web.Response:
        obj, deleted_now = await store.delete(ctx, namespace, name, options)
        if not deleted_now or store.strategy.return_deleted_object:
            return json_response(obj)
        metadata = obj.get("metadata") or {}
        details = {"name": name, "kind": store.info.plural, "uid": metadata.get("uid", "")}
        if store.info.group:
            details["group"] = store.info.group
        return json_response(subresources.success(None, details))

    # --- subresources --------------------------------------------------------------------------------------------
    async def _subresource(self, request: web.Request, store: Store, info: RequestInfo,
                           user: User) -> web.Response:
        sub, verb, namespace, name = info.subresource, info.verb, info.namespace, info.name
        if store.info.plural == "namespaces":
            namespace = ""
        if store.info.plural == "pods" and sub in streams.SUBRESOURCES and name:
            return await streams.serve(request, self.api, self.kubelets, sub, namespace, name)
        if not name:
            raise not_found()
        if (store.info.plural, sub, verb) == ("pods", "log", "get"):
            return await logs.serve_log(request, self.api, self.kubelets, namespace, name)
        unknown: list[str] = []
        body = await self._body(request, unknown) if verb in ("create", "update", "patch") else None
        ctx = write_context(request, info, user, self.security, body_unknown=unknown)
        patch_type = negotiation.parse_media_type(request.content_type or "").type
        serve = _SUBRESOURCE_VERBS.get((sub, verb))
        if serve is None:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        result, code = await serve(self, ctx, store, namespace, name, body, patch_type)
        return json_response(result, code, ctx.warnings)

    # One coroutine per (subresource, verb): (handler, ctx, store, namespace, name, body, patch type) ->
    # (response object, HTTP status).
    async def _get(self, ctx, store, namespace, name, body, patch_type):
        return await store.get(namespace, name), 200

    async def _update_status(self, ctx, store, namespace, name, body, patch_type):
        return (await store.update(ctx, namespace, name, body, subresource="status"))[0], 200

    async def _patch_status(self, ctx, store, namespace, name, body, patch_type):
        return (await store.patch(ctx, namespace, name, patch_type, body, subresource="status"))[0], 200

    async def _get_scale(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.get_scale(store, namespace, name), 200

    async def _update_scale(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.update_scale(ctx, store, namespace, name, body), 200

    async def _patch_scale(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.patch_scale(ctx, store, namespace, name, patch_type, body), 200

    async def _update_approval(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.update_approval(ctx, store, name, body), 200

    async def _patch_approval(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.patch_approval(ctx, store, name, patch_type, body), 200

    async def _evict(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.evict(ctx, self.api, namespace, name, body), 201

    async def _bind(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.bind(ctx, self.api, namespace, name, body), 201

    async def _finalize(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.finalize(ctx, store, name, body), 200

    async def _token(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.request_token(ctx, self.api, self.security.issue_token, namespace, name, body), 201

    async def _update_ephemeral(self, ctx, store, namespace, name, body, patch_type):
        return await subresources.update_ephemeral_containers(ctx, store, namespace, name, lambda pod: body), 200

    async def _patch_ephemeral(self, ctx, store, namespace, name, body, patch_type):
        patching.check_patch(patch_type, body)
        return await subresources.update_ephemeral_containers(
            ctx, store, namespace, name,
            lambda pod: patching.apply_patch(ctx, store.info, patch_type, pod, body, "ephemeralcontainers")), 200

    async def _component_statuses(self, request: web.Request, resource: ResourceInfo,
                                  info: RequestInfo) -> web.Response:
        if info.verb not in ("get", "list") or info.subresource:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if info.name:
            items = [await components.component_status(self.api, info.name)]
            result = items[0]
        else:
            items = await components.component_statuses(self.api)
            result = {"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": items}
        if negotiation.wants_table(negotiation.parse_accept(request.headers.get("Accept"))):
            return json_response(tables.to_table(resource, items, request.query.get("includeObject") or "Metadata"))
        return json_response(result)

    # --- virtual resources (reviews) -----------------------------------------------------------------------------
    async def _virtual(self, request: web.Request, resource: ResourceInfo, info: RequestInfo,
                       user: User) -> web.Response:
        handler = self.security.virtual.get((resource.group, resource.plural))
        if handler is None:
            raise not_found()
        if info.verb != "create" or info.name or info.subresource:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        unknown: list[str] = []
        body = await self._body(request, unknown)
        if not isinstance(body, dict):
            raise errors.bad_request(f"the request body must be a {resource.kind} object")
        warnings = [f'unknown field "{path}"' for path in unknown]
        return json_response(await resolve(handler(body, user, info)), 201, warnings)


_SUBRESOURCE_VERBS = {
    ("status", "get"): ResourceHandler._get, ("status", "update"): ResourceHandler._update_status,
    ("status", "patch"): ResourceHandler._patch_status,
    ("scale", "get"): ResourceHandler._get_scale, ("scale", "update"): ResourceHandler._update_scale,
    ("scale", "patch"): ResourceHandler._patch_scale,
    ("eviction", "create"): ResourceHandler._evict, ("binding", "create"): ResourceHandler._bind,
    ("finalize", "update"): ResourceHandler._finalize, ("token", "create"): ResourceHandler._token,
    ("ephemeralcontainers", "get"): ResourceHandler._get,
    ("approval", "get"): ResourceHandler._get, ("approval", "update"): ResourceHandler._update_approval,
    ("approval", "patch"): ResourceHandler._patch_approval,
    ("ephemeralcontainers", "update"): ResourceHandler._update_ephemeral,
    ("ephemeralcontainers", "patch"): ResourceHandler._patch_ephemeral,
}
