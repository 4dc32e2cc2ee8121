"""The API server in this process on a free port, over real TLS with the dev PKI and its real security: watch
streams (timeouts, Tables, bookmarks, 410, disconnects, shutdown), health and metrics, and the subresources with
behaviour of their own (eviction, binding, token, log)."""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import socket
import ssl
import time

import aiohttp
import pytest

from kpy_components.apiserver import config, dev
from kpy_components.apiserver.server import APIServer
from kpy_components.apiserver.storage.cache import CacheSettings
from kpy_components.pki import cluster_keys

pytestmark = pytest.mark.anyio
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str, context: ssl.SSLContext):
        self.session, self.base, self.context = session, base, context

    async def request(self, method: str, path: str, body=None, content_type: str = "application/json",
                      accept: str = "application/json") -> tuple[int, dict | str]:
        data = json.dumps(body) if body is not None else None
        async with self.session.request(method, self.base + path, data=data, ssl=self.context,
                                        headers={"Content-Type": content_type, "Accept": accept}) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def watch(self, path: str, accept: str = "application/json", count: int | None = None,
                    timeout: float = 10) -> list[dict]:
        """Events of a watch until the server ends it (or `count` arrived)."""
        events = []
        async with asyncio.timeout(timeout):
            async with self.session.get(self.base + path, ssl=self.context, headers={"Accept": accept}) as response:
                assert response.status == 200
                async for line in response.content:
                    events.append(json.loads(line))
                    if count is not None and len(events) == count:
                        break
        return events


@pytest.fixture
async def server(tmp_path):
    port = _free_port()
    # A short watch-cache history (5 events, 1 ms minimum age) so that old resourceVersions expire within a test.
    settings = CacheSettings(bookmark_interval=0.5, capacity=5, min_age=0.001)
    instance = APIServer(dev.prepare(tmp_path, port), cache_settings=settings)
    await instance.start()
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    context.load_cert_chain(tmp_path / "admin.crt", tmp_path / "admin.key")
    async with aiohttp.ClientSession() as session:
        client = Client(session, f"https://127.0.0.1:{port}", context)
        deadline = time.monotonic() + 20
        while (await client.request("GET", "/readyz"))[0] != 200:
            assert time.monotonic() < deadline, "not ready"
            await asyncio.sleep(0.05)
        instance.client = client
        instance.anonymous = Client(session, client.base, ssl.create_default_context(cafile=str(tmp_path / "ca.crt")))
        yield instance
    await instance.stop()


def config_map(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}}


async def test_watch_lists_first_then_ends_at_timeout_seconds(server):
    client = server.client
    await client.request("POST", "/api/v1/namespaces/default/configmaps", config_map("a"))
    started = time.monotonic()
    events = await client.watch("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1")
    assert 0.9 < time.monotonic() - started < 5
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]


async def test_table_watch_sends_column_definitions_once(server):
    client = server.client
    await client.request("POST", "/api/v1/namespaces/default/configmaps", config_map("a"))
    await client.request("POST", "/api/v1/namespaces/default/configmaps", config_map("b"))
    events = await client.watch("/api/v1/namespaces/default/configmaps?watch=true", accept=TABLE, count=2)
    first, second = (event["object"] for event in events)
    assert first["kind"] == "Table" and [c["name"] for c in first["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert second["columnDefinitions"] == [] and second["rows"][0]["cells"][0] == "b"
    assert second["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


async def test_bookmarks_only_when_allowed(server):
    client = server.client
    _, listed = await client.request("GET", "/api/v1/namespaces/default/configmaps")
    version = listed["metadata"]["resourceVersion"]
    events = await client.watch(f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={version}"
                                "&allowWatchBookmarks=true", count=1)
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["object"]["kind"] == "ConfigMap" and events[0]["object"]["apiVersion"] == "v1"
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) >= int(version)
    quiet = await client.watch(f"/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={version}"
                               "&timeoutSeconds=1")
    assert quiet == []


async def test_watch_from_an_expired_version_gets_410_as_an_error_event(server):
    client = server.client
    for index in range(10):
        await client.request("POST", "/api/v1/namespaces/default/configmaps", config_map(f"cm{index}"))
    events = await client.watch("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2")
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410 and events[0]["object"]["reason"] == "Expired"


async def _watchers(client: Client, resource: str = "pods") -> float:
    _, text = await client.request("GET", "/metrics", accept="text/plain")
    prefix = f'apiserver_registered_watchers{{resource="{resource}"}}'
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].split()[-1]) if lines else 0.0


async def test_disconnected_watchers_are_noticed(server):
    client = server.client
    watcher = asyncio.create_task(client.watch("/api/v1/pods?watch=true", timeout=30))
    deadline = time.monotonic() + 5
    while await _watchers(client) != 1.0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    watcher.cancel()  # the client goes away without a word
    await asyncio.gather(watcher, return_exceptions=True)
    while await _watchers(client) != 0.0:
        assert time.monotonic() < deadline + 5, "the server kept an abandoned watch"
        await asyncio.sleep(0.05)


async def test_shutdown_ends_open_watches(server):
    client = server.client
    watcher = asyncio.create_task(client.watch("/api/v1/namespaces/default/configmaps?watch=true&"
                                               "resourceVersion=1&timeoutSeconds=600", timeout=30))
    deadline = time.monotonic() + 5
    while await _watchers(client, "configmaps") != 1.0:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    started = time.monotonic()
    await server.stop()
    assert time.monotonic() - started < 5
    events = await asyncio.wait_for(watcher, 5)  # the stream ended cleanly: no exception
    assert all(event["type"] != "ERROR" for event in events)


async def test_health_metrics_and_authentication(server):
    client, anonymous = server.client, server.anonymous
    status, text = await anonymous.request("GET", "/readyz?verbose", accept="text/plain")
    assert status == 200 and "[+]storage ok" in text and "[+]informer-sync ok" in text
    status, body = await anonymous.request("GET", "/api/v1/namespaces")
    assert status == 401 and body["reason"] == "Unauthorized"
    await client.request("GET", "/api/v1/namespaces/default/configmaps")
    _, metrics = await client.request("GET", "/metrics", accept="text/plain")
    assert 'apiserver_request_total{code="200",resource="configmaps",verb="LIST"}' in metrics
    assert "apiserver_request_duration_seconds_bucket" in metrics and "etcd_request_duration_seconds" in metrics
    assert "process_resident_memory_bytes" in metrics
    status, version = await client.request("GET", "/version")
    assert status == 200 and version["gitVersion"] == "v1.31.0"


async def test_single_object_get_as_a_table(server):
    status, table = await server.client.request("GET", "/api/v1/namespaces/default/services/kubernetes?"
                                                "includeObject=Object", accept=TABLE)
    assert status == 200 and table["kind"] == "Table"
    assert table["rows"][0]["cells"][:3] == ["kubernetes", "ClusterIP", "10.96.0.1"]
    assert table["rows"][0]["object"]["kind"] == "Service"


async def _running_pod(client: Client, name: str, labels: dict) -> None:
    # ServiceAccount admission wants the namespace's "default" account (a controller's job; none runs here).
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    assert (await client.request("POST", "/api/v1/namespaces/default/serviceaccounts", account))[0] in (201, 409)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert (await client.request("POST", "/api/v1/namespaces/default/pods", pod))[0] == 201
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node1"}}
    status, body = await client.request("POST", f"/api/v1/namespaces/default/pods/{name}/binding", binding)
    assert (status, body["status"]) == (201, "Success")
    status, _ = await client.request("PATCH", f"/api/v1/namespaces/default/pods/{name}/status",
                                     {"status": {"phase": "Running"}}, "application/merge-patch+json")
    assert status == 200


async def test_binding_assigns_a_pod_once(server):
    client = server.client
    await _running_pod(client, "p", {})
    _, pod = await client.request("GET", "/api/v1/namespaces/default/pods/p")
    assert pod["spec"]["nodeName"] == "node1" and pod["status"]["phase"] == "Running"
    again = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"name": "node2"}}
    status, body = await client.request("POST", "/api/v1/namespaces/default/pods/p/binding", again)
    assert status == 409 and body["message"].endswith('pod p is already assigned to node "node1"')


async def test_eviction_respects_pod_disruption_budgets(server):
    client = server.client
    await _running_pod(client, "guarded", {"app": "db"})
    budget = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db"},
              "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}}
    assert (await client.request("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", budget))[0] == 201
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "guarded"}}
    status, body = await client.request("POST", "/api/v1/namespaces/default/pods/guarded/eviction", eviction)
    assert status == 429 and body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    status, _ = await client.request("PATCH", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/db/status",
                                     {"status": {"disruptionsAllowed": 1, "observedGeneration": 1,
                                                 "currentHealthy": 1, "desiredHealthy": 1}},
                                     "application/merge-patch+json")
    assert status == 200
    status, body = await client.request("POST", "/api/v1/namespaces/default/pods/guarded/eviction", eviction)
    assert (status, body["status"]) == (201, "Success")
    _, pod = await client.request("GET", "/api/v1/namespaces/default/pods/guarded")
    assert pod["metadata"]["deletionTimestamp"]  # deleted gracefully: its kubelet finishes the job
    _, budget = await client.request("GET", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/db")
    assert budget["status"]["disruptionsAllowed"] == 0 and "guarded" in budget["status"]["disruptedPods"]


async def test_token_requests_and_kubelet_subresources(server):
    client = server.client
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}}
    assert (await client.request("POST", "/api/v1/namespaces/default/serviceaccounts", account))[0] == 201
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}}
    status, body = await client.request("POST", "/api/v1/namespaces/default/serviceaccounts/robot/token", request)
    assert status == 201 and body["status"]["token"].count(".") == 2
    status, body = await client.request("GET", "/api/v1/namespaces/default/pods/any/exec?command=ls")
    assert status == 404 and body["message"] == 'pods "any" not found'  # pods/exec is served (test_exec)
    status, body = await client.request("GET", "/api/v1/namespaces/default/pods/missing/log")
    assert status == 404 and body["message"] == 'pods "missing" not found'  # pods/log is served (test_pod_logs)


def _node_client(server, tmp_path, node: str) -> Client:
    """A client with the kubelet identity of `node` (system:node:<node> in system:nodes)."""
    dev.client_certificate(tmp_path, node, f"system:node:{node}", ("system:nodes",))
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    context.load_cert_chain(tmp_path / f"{node}.crt", tmp_path / f"{node}.key")
    return Client(server.client.session, server.client.base, context)


async def test_token_requests_and_evictions_go_through_admission(server, tmp_path):
    """NodeRestriction judges the TokenRequest and the Eviction a node creates (the authorizer lets node1 ask for
    tokens of the account its pod uses, and nodes create evictions)."""
    await _running_pod(server.client, "on-node1", {})
    _, pod = await server.client.request("GET", "/api/v1/namespaces/default/pods/on-node1")
    node1, node2 = _node_client(server, tmp_path, "node1"), _node_client(server, tmp_path, "node2")
    token = "/api/v1/namespaces/default/serviceaccounts/default/token"
    unbound = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}
    status, body = await node1.request("POST", token, unbound)
    assert (status, body["message"]) == (403, 'serviceaccounts "default" is forbidden: node requested token not '
                                                'bound to a pod')
    bound = {**unbound, "spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "on-node1",
                                                    "uid": pod["metadata"]["uid"]}}}
    status, body = await node1.request("POST", token, bound)
    assert status == 201 and body["status"]["token"].count(".") == 2
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "on-node1"}}
    status, body = await node2.request("POST", "/api/v1/namespaces/default/pods/on-node1/eviction", eviction)
    assert (status, body["message"]) == (403, 'pods "on-node1" is forbidden: node "node2" can only evict pods '
                                                'with spec.nodeName set to itself')
    status, body = await node1.request("POST", "/api/v1/namespaces/default/pods/on-node1/eviction", eviction)
    assert (status, body["status"]) == (201, "Success")


async def test_ephemeral_containers_are_only_added(server):
    client = server.client
    await _running_pod(client, "debugged", {})
    path = "/api/v1/namespaces/default/pods/debugged/ephemeralcontainers"
    patch = {"spec": {"ephemeralContainers": [{"name": "debugger", "image": "busybox", "targetContainerName": "c"}]}}
    status, pod = await client.request("PATCH", path, patch, "application/strategic-merge-patch+json")
    assert status == 200
    assert pod["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"] == "File"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["c"]
    status, body = await client.request("PATCH", path, {"spec": {"ephemeralContainers": None}},
                                        "application/merge-patch+json")
    assert status == 422 and "existing ephemeral containers may not be changed" in body["message"]


async def test_namespaces_go_once_finalized(server):
    client = server.client
    assert (await client.request("POST", "/api/v1/namespaces", {"metadata": {"name": "doomed"}}))[0] == 201
    status, namespace = await client.request("DELETE", "/api/v1/namespaces/doomed")
    assert status == 200 and namespace["status"]["phase"] == "Terminating"
    status, body = await client.request("POST", "/api/v1/namespaces/doomed/configmaps", config_map("late"))
    assert status == 403 and "because it is being terminated" in body["message"]
    namespace["spec"]["finalizers"] = []
    status, _ = await client.request("PUT", "/api/v1/namespaces/doomed/finalize", namespace)
    assert status == 200
    assert (await client.request("GET", "/api/v1/namespaces/doomed"))[0] == 404


async def test_objects_posted_to_the_wrong_url_are_refused(server):
    client = server.client
    status, body = await client.request("POST", "/apis/apps/v1/namespaces/default/deployments", config_map("x"))
    assert status == 400
    assert body["message"] == "the API version in the data (v1) does not match the expected API version (apps/v1)"
    status, body = await client.request("POST", "/api/v1/namespaces/default/secrets", config_map("x"))
    assert status == 400 and body["message"] == ("the object provided is unrecognized (must be of type Secret): the "
                                                 "body is a ConfigMap (v1)")


async def test_secrets_are_encrypted_at_rest_with_an_encryption_config(tmp_path):
    port = _free_port()
    prepared = dev.prepare(tmp_path, port)
    (tmp_path / "encryption.yaml").write_bytes(cluster_keys.new_encryption_config())
    configured = dataclasses.replace(prepared, storage=dataclasses.replace(
        prepared.storage, encryption_config_file=tmp_path / "encryption.yaml"))
    instance = APIServer(configured)
    await instance.start()
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        context.load_cert_chain(tmp_path / "admin.crt", tmp_path / "admin.key")
        async with aiohttp.ClientSession() as session:
            client = Client(session, f"https://127.0.0.1:{port}", context)
            while (await client.request("GET", "/readyz"))[0] != 200:
                await asyncio.sleep(0.05)
            secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                      "stringData": {"password": "plaintext-canary"}}
            assert (await client.request("POST", "/api/v1/namespaces/default/secrets", secret))[0] == 201
            _, read = await client.request("GET", "/api/v1/namespaces/default/secrets/s")
            assert base64.b64decode(read["data"]["password"]) == b"plaintext-canary"
    finally:
        await instance.stop()
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("apiserver.db*"))
    assert b"k8s:enc:aescbc:v1:key1:" in stored
    assert b"plaintext-canary" not in stored and base64.b64encode(b"plaintext-canary") not in stored


async def test_not_ready_while_storage_is_unreachable(tmp_path):
    port = _free_port()
    prepared = dev.prepare(tmp_path, port)
    unreachable = dataclasses.replace(prepared, storage=config.StorageConfig(
        backend="etcd", etcd_servers=(f"https://127.0.0.1:{_free_port()}",), etcd_ca_file=tmp_path / "ca.crt",
        etcd_cert_file=tmp_path / "admin.crt", etcd_key_file=tmp_path / "admin.key"))
    instance = APIServer(unreachable)
    await instance.start()
    try:
        async with aiohttp.ClientSession() as session:
            anonymous = Client(session, f"https://127.0.0.1:{port}",
                               ssl.create_default_context(cafile=str(tmp_path / "ca.crt")))
            status, text = await anonymous.request("GET", "/readyz", accept="text/plain")
            assert status == 500
            assert "[-]storage failed: storage unreachable" in text and "[-]informer-sync failed" in text
            assert text.endswith("readyz check failed\n")
            assert (await anonymous.request("GET", "/livez", accept="text/plain"))[0] == 500
    finally:
        await instance.stop()


async def test_systemd_is_told_once_the_server_is_ready(tmp_path, monkeypatch):
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(tmp_path / "notify.sock"))
    receiver.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    instance = APIServer(dev.prepare(tmp_path / "dev", _free_port()))
    await instance.start()
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                message = receiver.recv(64)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "READY=1 never sent"
                await asyncio.sleep(0.05)
        assert message == b"READY=1"
        assert await instance._bootstrap_check() is None and await instance._cache_check() is None
    finally:
        await instance.stop()
        receiver.close()
