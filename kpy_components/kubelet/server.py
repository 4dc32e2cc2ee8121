"""The kubelet API on 10250 (TLS) and the plain /healthz on 10248 (loopback).

Every request on 10250 is authenticated — a client certificate signed by authentication.x509.clientCAFile, or a
bearer token checked with a TokenReview (cached for webhook.cacheTTL) — and authorized with a SubjectAccessReview
on the Node, as upstream's kubelet maps paths: /stats → nodes/stats, /metrics → nodes/metrics, /logs → nodes/log,
/spec → nodes/spec, everything else (/pods, /containerLogs, /exec, /attach, /portForward, /healthz) → nodes/proxy;
the verb from the method (GET get, POST create, PUT update, PATCH patch, DELETE delete). Anonymous requests are
refused with 401 unless authentication.anonymous.enabled.
"""
from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kpy_components.api.errors import APIError
from kpy_components.client import ClientConnectionError, RESTClient
from kpy_components.component.health import version_info

from .config import KubeletConfig

log = logging.getLogger(__name__)
AUTHENTICATED = "system:authenticated"
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_SUBRESOURCES = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"), ("/spec", "spec"))


@dataclass(frozen=True)
class Caller:
    name: str
    groups: tuple[str, ...]
    uid: str = ""
    extra: dict | None = None


def caller_from_certificate(peercert: dict | None) -> Caller | None:
    if not peercert:
        return None
    names = [v for rdn in peercert.get("subject", ()) for k, v in rdn if k == "commonName"]
    groups = [v for rdn in peercert.get("subject", ()) for k, v in rdn if k == "organizationName"]
    return Caller(names[0], (*groups, AUTHENTICATED)) if names and names[0] else None


def subresource_of(path: str) -> str:
    for prefix, subresource in _SUBRESOURCES:
        if path == prefix or path.startswith(prefix + "/"):
            return subresource
    return "proxy"


class Guard:
    """Authentication and authorization of kubelet API requests through the API server's review APIs."""

    def __init__(self, client: RESTClient, config: KubeletConfig, node_name: str):
        self.client, self.config, self.node_name = client, config, node_name
        self.token_reviews = client.resource("tokenreviews", "authentication.k8s.io")
        self.access_reviews = client.resource("subjectaccessreviews", "authorization.k8s.io")
        self._tokens: dict[str, tuple[float, Caller | None]] = {}
        self._decisions: dict[tuple, tuple[float, bool, str]] = {}

    async def authenticate(self, request: web.Request) -> Caller | None:
        transport = request.transport
        caller = caller_from_certificate(transport.get_extra_info("peercert") if transport else None)
        if caller:
            return caller
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip() and self.config.webhook_authentication:
            return await self._review_token(token.strip())
        return None

    async def _review_token(self, token: str) -> Caller | None:
        now = time.monotonic()
        cached = self._tokens.get(token)
        if cached and cached[0] > now:
            return cached[1]
        review = await self.client.create(self.token_reviews, {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})
        status = review.get("status") or {}
        user = status.get("user") or {}
        caller = Caller(user["username"], tuple(user.get("groups") or ()), user.get("uid", ""),
                        user.get("extra")) if status.get("authenticated") and user.get("username") else None
        if len(self._tokens) > 1024:
            self._tokens.clear()
        self._tokens[token] = (now + self.config.webhook_cache_ttl, caller)
        return caller

    async def authorize(self, caller: Caller, verb: str, subresource: str) -> tuple[bool, str]:
        if self.config.authorization_mode == "AlwaysAllow":
            return True, ""
        key = (caller.name, caller.groups, verb, subresource)
        now = time.monotonic()
        cached = self._decisions.get(key)
        if cached and cached[0] > now:
            return cached[1], cached[2]
        spec = {"user": caller.name, "groups": list(caller.groups),
                "resourceAttributes": {"verb": verb, "resource": "nodes", "subresource": subresource,
                                       "name": self.node_name}}
        if caller.uid:
            spec["uid"] = caller.uid
        if caller.extra:
            spec["extra"] = caller.extra
        review = await self.client.create(self.access_reviews, {
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
        status = review.get("status") or {}
        decision = (bool(status.get("allowed")), status.get("reason", ""))
        if len(self._decisions) > 1024:
            self._decisions.clear()
        self._decisions[key] = (now + (300.0 if decision[0] else 30.0), *decision)  # upstream's webhook cache TTLs
        return decision

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        verb, subresource = _VERBS.get(request.method, "get"), subresource_of(request.path)
        try:
            caller = await self.authenticate(request)
            if caller is None and self.config.anonymous:
                caller = Caller("system:anonymous", ("system:unauthenticated",))
            if caller is None:
                return web.Response(status=401, text="Unauthorized\n")
            allowed, reason = await self.authorize(caller, verb, subresource)
        except (APIError, ClientConnectionError) as error:  # the API server cannot review the request now
            log.warning("Could not review a kubelet API request path=%s: %s", request.path, error)
            return web.Response(status=500, text=f"Internal Server Error: authorization failed: {error}\n")
        if not allowed:
            text = (f"Forbidden (user={caller.name}, verb={verb}, resource=nodes, subresource={subresource})"
                    + (f": {reason}" if reason else ""))
            return web.Response(status=403, text=text + "\n")
        request["caller"] = caller
        return await handler(request)


HealthCheck = Callable[[], Awaitable[str | None]]  # None when healthy, else what is wrong


async def health_response(checks: dict[str, HealthCheck]) -> web.Response:
    failed = []
    for name, check in checks.items():
        problem = await check()
        if problem:
            failed.append(f"[-]{name} failed: {problem}")
    if failed:
        return web.Response(status=500, text="\n".join(failed) + "\nhealthz check failed\n")
    return web.Response(text="ok")


def api_app(guard: Guard, checks: dict[str, HealthCheck], metrics: CollectorRegistry,
            routes: Callable[[web.Application], None]) -> web.Application:
    """The authenticated kubelet API; `routes` adds the pod routes (/pods, /containerLogs, streaming)."""
    app = web.Application(middlewares=[guard.middleware])

    async def healthz(_request: web.Request) -> web.Response:
        return await health_response(checks)

    async def metrics_handler(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_handler)
    routes(app)
    return app


def healthz_app(checks: dict[str, HealthCheck]) -> web.Application:
    """/healthz, and /version (the distribution version, as the other components serve it; what upgrades read)."""
    app = web.Application()

    async def healthz(_request: web.Request) -> web.Response:
        return await health_response(checks)

    async def version(_request: web.Request) -> web.Response:
        return web.json_response(version_info())

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/version", version)
    return app


def tls_context(config: KubeletConfig) -> ssl.SSLContext:
    """The serving certificate; client certificates are asked for (and verified against the client CA) but not
    required, so token callers can connect too. The handshake names the acceptable client CAs."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.tls_cert_file is None or config.tls_private_key_file is None:
        raise ValueError("the kubelet API needs tlsCertFile and tlsPrivateKeyFile")
    context.load_cert_chain(config.tls_cert_file, config.tls_private_key_file)
    if config.client_ca_file:
        context.load_verify_locations(cafile=str(config.client_ca_file))
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


async def start(app: web.Application, address: str, port: int, context: ssl.SSLContext | None) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, address, port, ssl_context=context).start()
    log.info("Serving address=%s port=%d tls=%s", address, port, context is not None)
    return runner
