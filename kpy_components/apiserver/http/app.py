"""The aiohttp application: one catch-all route; every request is parsed into a RequestInfo, authenticated,
authorized, served (resources by handlers.py, everything else by the table below), counted and logged.

Unauthenticated requests get 401, except the health probes (/healthz, /livez, /readyz), which load balancers and
service managers call without credentials (kube-apiserver grants them to everyone through
system:public-info-viewer).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kpy_components.api import errors
from kpy_components.apiserver.kubelet import KubeletClient
from kpy_components.apiserver.registry.api import API

from . import discovery, health, negotiation, openapi
from .context import RequestInfo, Security, User, resolve
from .handlers import ResourceHandler, not_found
from .responses import compressed, error_response, json_response
from .routing import request_info
from .watch import Watches

log = logging.getLogger(__name__)
_PUBLIC_PATHS = ("/healthz", "/livez", "/readyz")
_METRIC_VERBS = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE",
                 "deletecollection": "DELETECOLLECTION", "get": "GET", "list": "LIST", "watch": "WATCH"}


@dataclass
class AppState:
    """What the app serves from. `ready_checks` gate /readyz (storage reachable, caches primed)."""
    api: API
    security: Security
    metrics: health.Metrics
    server_address: str  # host:port clients reach this server at (discovery's serverAddressByClientCIDRs)
    live_checks: dict[str, health.Check] = field(default_factory=dict)
    ready_checks: dict[str, health.Check] = field(default_factory=dict)
    kubelets: KubeletClient | None = None  # reaches kubelets for pods/log; None: not configured
    aggregator: object | None = None  # aggregator.Aggregator: proxies APIService group-versions


def build_app(state: AppState) -> web.Application:
    app = web.Application(client_max_size=3 * 1024 * 1024)  # Kubernetes' request body limit is 3 MiB
    watches = Watches(state.metrics)
    resources = ResourceHandler(state.api, state.security, watches, state.kubelets, state.aggregator)
    docs = openapi.OpenAPI(state.api.registry)

    async def shutdown(_app: web.Application) -> None:
        await watches.close_all()

    app.on_shutdown.append(shutdown)

    async def handle(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        info = request_info(request.method, request.path, request.query)
        user, code = None, 500
        try:
            user = await _authenticate(state.security, request, info)
            await _authorize(state.security, user, info)
            if info.is_resource_request:
                response = await resources(request, info, user)
            else:
                response = await _non_resource(request, info, state, docs)
            code = response.status
            return compressed(request, response)
        except errors.APIError as error:
            code = error.code
            return error_response(error)
        except Exception as exc:  # a bug: logged with its traceback, answered as Kubernetes does
            log.exception("Failed request method=%s path=%s", request.method, request.path)
            code = 500
            return error_response(errors.internal(f"{type(exc).__name__}: {exc}"))
        finally:
            _record(state.metrics, request, info, user, code, time.monotonic() - started)

    app.router.add_route("*", r"/{tail:[\s\S]*}", handle)  # any path, newlines (%0A) too: 404s are Statuses
    return app


async def _authenticate(security: Security, request: web.Request, info: RequestInfo) -> User | None:
    user = await resolve(security.authenticate(request))
    if user is None and request.path not in _PUBLIC_PATHS:
        raise errors.unauthorized()
    return user


async def _authorize(security: Security, user: User | None, info: RequestInfo) -> None:
    if user is None:  # a public health probe
        return
    allowed, reason = await resolve(security.authorize(user, info))
    if allowed:
        return
    if info.is_resource_request:
        raise errors.forbidden(user.name, info.verb, info.resource, info.api_group, info.namespace, info.name,
                               info.subresource, reason)
    message = f'forbidden: User "{user.name}" cannot {info.verb} path "{info.path}"'
    raise errors.APIError(403, "Forbidden", f"{message}: {reason}" if reason else message)


def _record(metrics: health.Metrics, request: web.Request, info: RequestInfo, user: User | None, code: int,
            seconds: float) -> None:
    verb = _METRIC_VERBS.get(info.verb, info.verb.upper()) if info.is_resource_request else info.verb.upper()
    resource = info.resource if info.is_resource_request else ""
    metrics.requests.labels(verb, resource, str(code)).inc()
    if info.verb != "watch":
        metrics.duration.labels(verb, resource).observe(seconds)
    # Like kube-apiserver's httplog (-v=3): every served request at debug; failures also at info.
    level = logging.DEBUG if code < 400 else logging.INFO
    if not log.isEnabledFor(level):
        return
    log.log(level, "Served request verb=%s resource=%s subresource=%s namespace=%s name=%s path=%s code=%d "
            "user=%s ms=%.1f", verb, resource or "-", info.subresource or "-", info.namespace or "-",
            info.name or "-", request.path, code, user.name if user else "-", seconds * 1000)


async def _non_resource(request: web.Request, info: RequestInfo, state: AppState,
                        docs: openapi.OpenAPI) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed(f"the server does not allow this method on {request.path}")
    path = request.path.rstrip("/") or "/"
    accept = negotiation.parse_accept(request.headers.get("Accept"))
    registry = state.api.registry
    if path in ("/api", "/apis"):
        aggregated = negotiation.aggregated_discovery(accept)
        if aggregated:
            version, content_type = aggregated
            return json_response(discovery.aggregated(registry, version, core=path == "/api"),
                                 content_type=content_type)
        if path == "/api":
            return json_response(discovery.api_versions(state.server_address))
        return json_response(discovery.api_group_list(registry))
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) == 2:
        return _found(discovery.api_resource_list(registry, "", parts[1]))
    if parts[0] == "apis" and len(parts) == 2:
        return _found(discovery.api_group(registry, parts[1]))
    if parts[0] == "apis" and len(parts) == 3:
        return _found(discovery.api_resource_list(registry, parts[1], parts[2]))
    if parts[0] == "openapi":
        return docs.serve(request, parts[1:])
    if path == "/version":
        return json_response(health.version_info())
    if path == "/metrics":
        return web.Response(body=generate_latest(state.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})
    probes = {"/healthz": state.live_checks, "/livez": state.live_checks, "/readyz": state.ready_checks}
    if path in probes:
        status, text = await health.run_checks(probes[path], "verbose" in request.query, path.lstrip("/"))
        return web.Response(text=text, status=status, content_type="text/plain")
    raise not_found()


def _found(document: dict | None) -> web.Response:
    if document is None:
        raise not_found()
    return json_response(document)
