"""The aggregation layer (apiregistration.k8s.io/v1 APIService), as kube-apiserver's kube-aggregator does it:

- availability: for each APIService backed by a Service, the Service is resolved (its cluster IP, or an
  ExternalName's host) and the extension server's discovery document `/apis/<group>/<version>` fetched over TLS
  (trusted through caBundle, or not checked with insecureSkipTLSVerify) with the front-proxy client certificate;
  the `Available` condition says how that went (Passed, ServiceNotFound, FailedDiscoveryCheck), again every
  RECHECK seconds and on every change;
- discovery: the resources the extension server lists join the registry (so /apis, /apis/<g>/<v>, aggregated
  discovery and RBAC see them) while it is available, and leave when it is not;
- proxying: requests for the group-version are forwarded, after kube-apiserver's own authentication and
  authorization, with the user's identity in X-Remote-User, X-Remote-Group and X-Remote-Extra-* (the
  requestheader convention), presenting the front-proxy client certificate. Responses, watches included, are
  streamed back as they come.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import ssl
from urllib.parse import quote

import aiohttp
from aiohttp import web

from kpy_components.api import errors, meta
from kpy_components.api.resources import ALL_VERBS, ResourceInfo, Subresource

from .config import ProxyClientConfig
from .crds import definitions
from .http.context import RequestInfo, User
from .http.responses import relay
from .registry.api import API
from .registry.following import follow

log = logging.getLogger(__name__)
GROUP, PLURAL = "apiregistration.k8s.io", "apiservices"
RECHECK = 30.0  # seconds between availability checks of an unchanged APIService
_PROBE_TIMEOUT = 5.0
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "upgrade", "authorization", "host",
                "content-length", "impersonate-user", "impersonate-group"}


def _resources(listed: dict, group: str, version: str, name: str) -> list[ResourceInfo]:
    """ResourceInfos of an extension server's APIResourceList (subresources from `plural/sub` entries)."""
    entries = [e for e in listed.get("resources") or [] if isinstance(e, dict) and e.get("name")]
    subs: dict[str, list[Subresource]] = {}
    for entry in entries:
        plural, _, sub = entry["name"].partition("/")
        if sub:
            subs.setdefault(plural, []).append(Subresource(sub, entry.get("kind", ""), tuple(entry.get("verbs") or ()),
                                                           entry.get("group", ""), entry.get("version", "")))
    infos = []
    for entry in entries:
        if "/" in entry["name"]:
            continue
        kind = entry.get("kind", "")
        infos.append(ResourceInfo(group=group, version=version, kind=kind, plural=entry["name"],
                                  singular=entry.get("singularName") or kind.lower(),
                                  namespaced=bool(entry.get("namespaced")),
                                  short_names=tuple(entry.get("shortNames") or ()),
                                  categories=tuple(entry.get("categories") or ()),
                                  verbs=tuple(entry.get("verbs") or ALL_VERBS),
                                  subresources=tuple(subs.get(entry["name"], ())), storage=False,
                                  extra={"apiservice": name}))
    return infos


class Aggregator:
    def __init__(self, api: API, proxy_client: ProxyClientConfig | None):
        self.api, self.proxy_client = api, proxy_client
        self.known: dict[str, dict] = {}
        self.targets: dict[str, tuple[str, ssl.SSLContext | bool, str | None]] = {}  # name -> (base URL, TLS, SNI)
        self.served: dict[str, list[ResourceInfo]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    @property
    def store(self):
        return self.api.store(GROUP, PLURAL)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        return self._session

    # --- following APIServices -----------------------------------------------------------------------------
    async def run(self) -> None:
        listed = await self.store.list(resource_version="0")
        revision = listed["metadata"]["resourceVersion"]
        for item in listed["items"]:
            self.known[meta.name_of(item)] = item
            self._queue.put_nowait(meta.name_of(item))
        worker = asyncio.create_task(self._work(), name="aggregator-worker")
        ticker = asyncio.create_task(self._tick(), name="aggregator-recheck")
        try:
            await follow(self.store, self.known, self._queue.put_nowait, revision)
        finally:
            worker.cancel()
            ticker.cancel()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(RECHECK)
            for name in list(self.known):
                self._queue.put_nowait(name)

    async def _work(self) -> None:
        while True:
            name = await self._queue.get()
            try:
                await self._sync(name)
            except Exception:  # one APIService's failure must not stop the others
                log.exception("Failed to check APIService name=%s", name)

    def _serve(self, name: str, infos: list[ResourceInfo]) -> None:
        """Put an APIService's resources into the registry (only when they changed: every change bumps the
        registry's generation, which rebuilds the OpenAPI documents and changes their hashes)."""
        if infos == self.served.get(name, []):
            return
        for old in self.served.pop(name, []):
            self.api.registry.remove(old)
        for info in infos:
            self.api.registry.add(info)
        if infos:
            self.served[name] = infos

    async def _sync(self, name: str) -> None:
        service = self.known.get(name)
        if service is None:
            self._serve(name, [])
            self.targets.pop(name, None)
            return
        spec = service.get("spec") or {}
        if not spec.get("service"):
            await self._set_available(service, "True", "Local", "Local APIServices are always available")
            return
        try:
            base, tls, server_name = await self._target(spec)
        except LookupError as missing:
            self._serve(name, [])
            await self._set_available(service, "False", "ServiceNotFound", str(missing))
            return
        group, version = spec.get("group", ""), spec.get("version", "")
        url = f"{base}/apis/{group}/{version}"
        try:
            async with asyncio.timeout(_PROBE_TIMEOUT):
                async with self.session.get(url, ssl=tls, server_hostname=server_name,
                                            headers={"Accept": "application/json"}) as response:
                    body = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"bad status from {url}: {response.status}")
            listed = json.loads(body)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, RuntimeError) as error:
            self._serve(name, [])
            await self._set_available(service, "False", "FailedDiscoveryCheck",
                                      f"failing or missing response from {url}: {error or type(error).__name__}")
            return
        self.targets[name] = (base, tls, server_name)
        self._serve(name, _resources(listed, group, version, name))
        await self._set_available(service, "True", "Passed", "all checks passed")

    async def _target(self, spec: dict) -> tuple[str, ssl.SSLContext | bool, str | None]:
        ref = spec["service"]
        namespace, name, port = ref.get("namespace", ""), ref.get("name", ""), ref.get("port") or 443
        try:
            found = await self.api.get("", "services", namespace, name)
        except errors.APIError as error:
            raise LookupError(f'service/{name} in "{namespace}" is not present') from error
        service_spec = found.get("spec") or {}
        host = service_spec.get("externalName") if service_spec.get("type") == "ExternalName" else \
            service_spec.get("clusterIP")
        if not host or host == "None":
            raise LookupError(f'service/{name} in "{namespace}" has no address to reach')
        if spec.get("insecureSkipTLSVerify"):
            tls: ssl.SSLContext | bool = False
        else:
            tls = ssl.create_default_context(cadata=_pem(spec.get("caBundle")) or None) if spec.get("caBundle") \
                else ssl.create_default_context()
        if isinstance(tls, ssl.SSLContext) and self.proxy_client is not None:
            tls.load_cert_chain(self.proxy_client.cert_file, self.proxy_client.key_file)
        elif tls is False and self.proxy_client is not None:
            tls = ssl.create_default_context()
            tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
            tls.load_cert_chain(self.proxy_client.cert_file, self.proxy_client.key_file)
        shown = f"[{host}]" if ":" in host else host
        return f"https://{shown}:{port}", tls, f"{name}.{namespace}.svc" if tls is not False else None

    async def _set_available(self, service: dict, state: str, reason: str, message: str) -> None:
        status = meta.deep_copy(service.get("status") or {})
        before = json.dumps([(c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
                             for c in status.get("conditions") or []])
        definitions.set_condition(status, "Available", state, reason, message)
        after = json.dumps([(c.get("type"), c.get("status"), c.get("reason"), c.get("message"))
                            for c in status.get("conditions") or []])
        if before == after:
            return
        try:
            stored = await self.api.update_status(GROUP, PLURAL, "", dict(service, status=status))
        except errors.APIError as error:
            if error.code in (404, 409):
                return  # changed or gone meanwhile: its watch event brings it back
            raise
        self.known[meta.name_of(stored)] = stored

    # --- proxying ------------------------------------------------------------------------------------------
    async def proxy(self, request: web.Request, resource: ResourceInfo, user: User,
                    info: RequestInfo) -> web.StreamResponse:
        name = resource.extra["apiservice"]
        target = self.targets.get(name)
        if target is None:
            raise errors.APIError(503, "ServiceUnavailable", f'the server is currently unable to handle the '
                                  f'request ({info.verb} {resource.plural}.{resource.group})')
        base, tls, server_name = target
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS
                   and not k.lower().startswith("x-remote-")}
        forwarded = list(headers.items()) + [("X-Remote-User", user.name)]
        forwarded += [("X-Remote-Group", group) for group in user.groups]
        for key, values in (user.extra or {}).items():
            forwarded += [(f"X-Remote-Extra-{quote(key, safe='')}", value) for value in values]
        body = await request.read()
        try:
            upstream = await self.session.request(request.method, base + request.path_qs, data=body or None,
                                                  headers=forwarded, ssl=tls, server_hostname=server_name)
        except (aiohttp.ClientError, OSError) as error:
            raise errors.APIError(503, "ServiceUnavailable", f"error trying to reach service: {error}") from error
        response = web.StreamResponse(status=upstream.status)
        for key, value in upstream.headers.items():
            if key.lower() not in _HOP_HEADERS:
                response.headers.add(key, value)
        return await relay(request, response, upstream)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _pem(bundle: str | None) -> str:
    if not bundle:
        return ""
    try:
        return base64.b64decode(bundle).decode()
    except (binascii.Error, UnicodeDecodeError):
        return bundle
