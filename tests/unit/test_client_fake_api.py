"""An in-process fake of the Kubernetes API for unit tests of kpy_components.client (the REST client, informers,
leader election, the event recorder): objects in memory with resourceVersions, lists with paging, NDJSON watches
replayed from an event log, and fault injection (errors, 410 Gone as an ERROR event or an HTTP 410, dropped
connections). It stands in for the API server only; the real one is exercised by tests/integration/test_client_*.

The tests at the bottom pin the fake's own behaviour that the other suites rely on.
"""
from __future__ import annotations

import asyncio
import json
import re
import ssl
import uuid
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from kpy_components.client.kubeconfig import ClientConfig
from kpy_components.client.rest import RESTClient, RetryPolicy

pytestmark = pytest.mark.anyio

_PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
                   r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?"
                   r"(?:/(?P<sub>[^/]+))?$")


@dataclass
class Fault:
    """Answer the next `times` requests whose method matches and whose path contains `path` with `status`."""
    method: str
    path: str
    status: int
    times: int = 1
    reason: str = "InternalError"
    retry_after: str | None = None
    body: bytes | None = None  # raw body instead of a Status


@dataclass
class _Watch:
    request: web.Request
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)


def status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": code,
            "reason": reason, "message": message}


class FakeAPIServer:
    def __init__(self):
        self.objects: dict[tuple, dict] = {}  # (group, version, plural, namespace, name) -> object
        self.revision = 10
        self.compacted = 0  # watches from below this revision get 410
        self.gone_as_http = False  # 410 as an HTTP answer instead of an ERROR event
        self.expire_continue = False
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, dict, dict]] = []  # method, path, query, headers
        self.bodies: list[tuple[str, str, str, bytes]] = []  # method, path, content type, body
        self.client_names: list[str | None] = []  # the client certificate's CN per request (TLS only)
        self._log: list[tuple[int, str, tuple, dict]] = []  # revision, type, collection, object
        self._watches: list[_Watch] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self, ssl_context: ssl.SSLContext | None = None) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self.drop_watches()
        await self._runner.cleanup()

    def client(self, **options) -> RESTClient:
        options.setdefault("retry", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))
        return RESTClient(ClientConfig(server=self.url), **options)

    # --- direct manipulation (as another client would) -----------------------------------------------------------
    def put(self, obj: dict, group: str = "", version: str = "v1", plural: str = "configmaps") -> dict:
        """Create or replace an object, recording the watch event."""
        meta = obj.setdefault("metadata", {})
        key = (group, version, plural, meta.get("namespace", ""), meta["name"])
        event = "MODIFIED" if key in self.objects else "ADDED"
        meta.setdefault("uid", str(uuid.uuid4()))
        return self._write(key, obj, event)

    def remove(self, name: str, namespace: str = "", group: str = "", version: str = "v1",
               plural: str = "configmaps") -> None:
        key = (group, version, plural, namespace, name)
        obj = self.objects.pop(key)
        self._write(key, obj, "DELETED", store=False)

    def compact(self) -> None:
        """Forget the event log: watches from any earlier revision now get 410 Gone (the current one stays fine)."""
        self.compacted = self.revision
        self._log.clear()

    def bookmark(self) -> None:
        """Send a BOOKMARK at the current revision to watches that allow them."""
        for watch in self._watches:
            if watch.request.query.get("allowWatchBookmarks") == "true":
                watch.queue.put_nowait({"type": "BOOKMARK", "object": {
                    "kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.revision)}}})

    def drop_watches(self) -> None:
        """Cut every watch connection without a proper end (a network failure or a server crash)."""
        for watch in self._watches:
            if watch.request.transport is not None:
                watch.request.transport.abort()
            watch.queue.put_nowait(None)
        self._watches.clear()

    def watch_requests(self) -> list[dict]:
        return [query for method, _, query, _ in self.requests if query.get("watch") == "true"]

    def list_requests(self) -> list[dict]:
        return [query for method, path, query, _ in self.requests
                if method == "GET" and query.get("watch") != "true" and _PATH.match(path)
                and not _PATH.match(path)["name"]]

    def _write(self, key: tuple, obj: dict, event: str, store: bool = True) -> dict:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        if store:
            self.objects[key] = obj
        snapshot = json.loads(json.dumps(obj))
        self._log.append((self.revision, event, key, snapshot))
        for watch in self._watches:
            if self._matches(watch.request, key):
                watch.queue.put_nowait({"type": event, "object": snapshot})
        return json.loads(json.dumps(obj))

    @staticmethod
    def _matches(request: web.Request, key: tuple) -> bool:
        match = _PATH.match(request.path)
        group, version = match["group"] or "", match["core"] or match["version"]
        field_selector = request.query.get("fieldSelector", "")
        if field_selector.startswith("metadata.name=") and field_selector.split("=", 1)[1] != key[4]:
            return False
        return (group, version, match["plural"]) == key[:3] and (not match["namespace"]
                                                                 or match["namespace"] == key[3])

    # --- HTTP ----------------------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        # From here to a watch's registration nothing awaits: a recorded watch request is a live watch.
        self.requests.append((request.method, request.path, dict(request.query), dict(request.headers)))
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        self.client_names.append(dict(item[0] for item in peer["subject"]).get("commonName") if peer else None)
        self.bodies.append((request.method, request.path, request.content_type, body))
        for fault in self.faults:
            if fault.times > 0 and fault.method == request.method and fault.path in request.path:
                fault.times -= 1
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                payload = fault.body if fault.body is not None else json.dumps(
                    status(fault.status, fault.reason, f"injected {fault.status}")).encode()
                return web.Response(status=fault.status, body=payload, headers=headers,
                                    content_type="application/json")
        match = _PATH.match(request.path)
        if not match:
            return _json(status(404, "NotFound", "the server could not find the requested resource"), 404)
        group, version = match["group"] or "", match["core"] or match["version"]
        namespace, name = match["namespace"] or "", match["name"]
        collection = (group, version, match["plural"])
        if request.method == "GET" and request.query.get("watch") == "true":
            return await self._watch(request)
        if request.method == "GET" and not name:
            return self._list(request, collection, namespace)
        if request.method == "POST":
            return self._create(collection, namespace, json.loads(body))
        key = (*collection, namespace, name)
        current = self.objects.get(key)
        if current is None:
            return _json(status(404, "NotFound", f'{match["plural"]} "{name}" not found'), 404)
        if request.method == "GET":
            return _json(current)
        if request.method == "PUT":
            new = json.loads(body)
            expected = (new.get("metadata") or {}).get("resourceVersion")
            if expected and expected != current["metadata"]["resourceVersion"]:
                return _json(status(409, "Conflict", f'Operation cannot be fulfilled on {match["plural"]} '
                                    f'"{name}": the object has been modified'), 409)
            new["metadata"]["uid"] = current["metadata"].get("uid")
            return _json(self._write(key, new, "MODIFIED"))
        if request.method == "PATCH":
            return _json(self._write(key, _merge(json.loads(json.dumps(current)), json.loads(body)), "MODIFIED"))
        if request.method == "DELETE":
            self.objects.pop(key)
            self._write(key, current, "DELETED", store=False)
            return _json({"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}})
        return _json(status(405, "MethodNotAllowed", "not allowed"), 405)

    def _create(self, collection: tuple, namespace: str, obj: dict) -> web.Response:
        meta = obj.setdefault("metadata", {})
        key = (*collection, namespace, meta.get("name"))
        if key in self.objects:
            return _json(status(409, "AlreadyExists", f'{collection[2]} "{key[4]}" already exists'), 409)
        if namespace:
            meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        return _json(self._write(key, obj, "ADDED"), 201)

    def _list(self, request: web.Request, collection: tuple, namespace: str) -> web.Response:
        items = [obj for key, obj in sorted(self.objects.items())
                 if key[:3] == collection and (not namespace or key[3] == namespace)]
        limit, start = int(request.query.get("limit") or 0), 0
        token = request.query.get("continue")
        if token:
            if self.expire_continue:
                return _json(status(410, "Expired", "The provided continue parameter is too old"), 410)
            revision, start = (int(part) for part in token.split(":"))
        meta = {"resourceVersion": str(self.revision) if not token else str(revision)}
        if limit and start + limit < len(items):
            meta["continue"] = f"{meta['resourceVersion']}:{start + limit}"
        page = items[start:start + limit] if limit else items
        return _json({"kind": "List", "apiVersion": "v1", "metadata": meta,
                      "items": [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in page]})

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        since = int(request.query.get("resourceVersion") or self.revision)
        gone = None
        if since < self.compacted:
            gone = status(410, "Expired", f"too old resource version: {since} ({self.compacted})")
            if self.gone_as_http:
                return _json(gone, 410)
        watch = _Watch(request)
        if gone is None:  # replay and register before the first await, so no event can fall in between
            for revision, event, key, obj in self._log:
                if revision > since and self._matches(request, key):
                    watch.queue.put_nowait({"type": event, "object": obj})
            self._watches.append(watch)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        if gone is not None:
            await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            return response
        timeout = int(request.query.get("timeoutSeconds") or 3600)
        try:
            async with asyncio.timeout(timeout):
                while (event := await watch.queue.get()) is not None:
                    await response.write(json.dumps(event).encode() + b"\n")
        except TimeoutError:
            pass
        finally:
            if watch in self._watches:
                self._watches.remove(watch)
        return response


def _merge(target, patch):
    """JSON merge patch (RFC 7386)."""
    if not isinstance(patch, dict):
        return patch
    target = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target


def _json(obj, code: int = 200) -> web.Response:
    return web.Response(status=code, body=json.dumps(obj).encode(), content_type="application/json")


async def eventually(predicate, timeout: float = 5.0, interval: float = 0.01):
    """Wait until predicate() is truthy (returns it); fails the test at the deadline. No fixed sleeps."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {getattr(predicate, '__doc__', None) or predicate}")
        await asyncio.sleep(interval)


def configmap(name: str, namespace: str = "default", **data) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": dict(data)}


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    """A dev PKI (kpy-apiserver --dev's): ca.crt, apiserver.crt/.key for 127.0.0.1, admin.crt/.key (CN admin),
    admin.kubeconfig with everything embedded."""
    from kpy_components.apiserver import dev

    directory = tmp_path_factory.mktemp("client-pki")
    dev.prepare(directory, 6443)
    return directory


@pytest.fixture
async def fake_api():
    server = FakeAPIServer()
    await server.start()
    yield server
    await server.stop()


# --- the fake's own contract ---------------------------------------------------------------------------------------

async def test_fake_replays_events_after_the_requested_revision(fake_api):
    first = fake_api.put(configmap("a"))
    fake_api.put(configmap("b"))
    async with fake_api.client() as client, client.watch(client.resource("configmaps"), "default",
                                                         resource_version=first["metadata"]["resourceVersion"],
                                                         timeout_seconds=1) as events:
        seen = [(event.type, event.object["metadata"]["name"]) async for event in events]
    assert seen == [("ADDED", "b")]


async def test_fake_refuses_a_stale_update_with_409(fake_api):
    stale = fake_api.put(configmap("a"))
    fake_api.put(configmap("a", x="1"))
    async with fake_api.client() as client:
        with pytest.raises(Exception) as raised:
            await client.update(client.resource("configmaps"), stale, "default")
    assert raised.value.code == 409
