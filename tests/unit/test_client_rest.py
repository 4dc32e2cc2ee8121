"""The REST client against the in-process fake API: TLS with client certificates and bearer tokens, URL paths,
verbs and patch content types, Status errors, the retry policy, and watch streams."""
from __future__ import annotations

import dataclasses
import json
import ssl

import pytest

from kpy_components.api.errors import APIError
from kpy_components.client.errors import (ClientConnectionError, ignore_not_found, is_already_exists, is_conflict,
                                         is_gone)
from kpy_components.client.kubeconfig import ClientConfig, load_kubeconfig
from kpy_components.client.rest import PATCH_TYPES, RESTClient, RetryPolicy
from test_client_fake_api import Fault, FakeAPIServer, configmap, fake_api, pki  # noqa: F401

pytestmark = pytest.mark.anyio
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02)


@pytest.fixture
async def tls_api(pki):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.crt"))
    context.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
    context.verify_mode = ssl.CERT_OPTIONAL
    server = FakeAPIServer()
    await server.start(context)
    yield server
    await server.stop()


def tls_config(pki, server: FakeAPIServer, **changes) -> ClientConfig:
    return dataclasses.replace(load_kubeconfig(pki / "admin.kubeconfig"), server=server.url, **changes)


# --- transport -----------------------------------------------------------------------------------------------------

async def test_tls_with_the_kubeconfig_client_certificate(pki, tls_api):
    async with RESTClient(tls_config(pki, tls_api)) as client:
        await client.list(client.resource("configmaps"))
    assert tls_api.client_names == ["admin"]
    assert tls_api.requests[0][3]["User-Agent"].startswith("kpy/")


async def test_bearer_token_without_client_certificate(pki, tls_api):
    config = tls_config(pki, tls_api, cert_pem=None, key_pem=None, token="s3cret")
    async with RESTClient(config, user_agent="kpy-scheduler/1.31.0") as client:
        await client.list(client.resource("configmaps"))
    assert tls_api.client_names == [None]
    headers = tls_api.requests[0][3]
    assert headers["Authorization"] == "Bearer s3cret" and headers["User-Agent"] == "kpy-scheduler/1.31.0"


async def test_a_server_the_ca_did_not_sign_is_refused(pki, tls_api, tmp_path):
    from kpy_components.apiserver import dev

    dev.prepare(tmp_path, 6443)
    other = (tmp_path / "ca.crt").read_bytes()
    async with RESTClient(tls_config(pki, tls_api, ca_pem=other), retry=FAST) as client:
        with pytest.raises(ClientConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.list(client.resource("configmaps"))


async def test_tls_server_name_is_the_name_the_certificate_is_checked_against(pki, tls_api):
    async with RESTClient(tls_config(pki, tls_api, tls_server_name="kubernetes.default")) as client:
        await client.list(client.resource("configmaps"))  # a name in the certificate: accepted
    async with RESTClient(tls_config(pki, tls_api, tls_server_name="elsewhere.example"), retry=FAST) as client:
        with pytest.raises(ClientConnectionError, match="elsewhere.example"):
            await client.list(client.resource("configmaps"))


async def test_a_token_file_is_read_again_after_a_minute(pki, tls_api, tmp_path):
    token = tmp_path / "token"
    token.write_text("first\n")
    config = tls_config(pki, tls_api, cert_pem=None, key_pem=None, token_file=token)
    async with RESTClient(config) as client:
        await client.list(client.resource("configmaps"))
        token.write_text("rotated")
        await client.list(client.resource("configmaps"))  # within the minute: the token read before
        client._token._read_at -= 61
        await client.list(client.resource("configmaps"))
    assert [headers["Authorization"] for *_, headers in tls_api.requests] == [
        "Bearer first", "Bearer first", "Bearer rotated"]


# --- paths and verbs -----------------------------------------------------------------------------------------------

def test_paths_for_core_grouped_cluster_scoped_and_subresources():
    client_path = RESTClient.path
    from kpy_components.api.catalog import default_registry

    registry = default_registry()
    pods, deployments = registry.get("", "v1", "pods"), registry.get("apps", "v1", "deployments")
    nodes = registry.get("", "v1", "nodes")
    assert client_path(pods) == "/api/v1/pods"
    assert client_path(pods, "kube-system", "a b", "binding") == "/api/v1/namespaces/kube-system/pods/a%20b/binding"
    assert client_path(deployments, "web", "api", "scale") == "/apis/apps/v1/namespaces/web/deployments/api/scale"
    assert client_path(nodes, None, "n1", "status") == "/api/v1/nodes/n1/status"
    with pytest.raises(ValueError, match="nodes is cluster-scoped: no namespace may be given"):
        client_path(nodes, "default", "n1")


async def test_verbs_send_what_kubernetes_expects(fake_api):
    async with fake_api.client() as client:
        cms = client.resource("configmaps")
        created = await client.create(cms, configmap("a", x="1"), field_manager="kpy-test", dry_run=False)
        got = await client.get(cms, "a", "default")
        assert got == created
        got["data"]["y"] = "2"
        updated = await client.update(cms, got)
        assert updated["data"] == {"x": "1", "y": "2"}
        for patch_type in ("merge", "strategic"):
            await client.patch(cms, "a", {"data": {patch_type: "1"}}, "default", patch_type=patch_type)
        await client.apply(cms, configmap("a", z="3"), field_manager="kpy-test", force=True)
        listed = await client.list(cms, "default", label_selector="app=x", limit=10)
        assert [item["metadata"]["name"] for item in listed["items"]] == ["a"]
        await client.delete(cms, "a", "default", propagation_policy="Foreground", grace_period_seconds=0,
                            preconditions={"uid": created["metadata"]["uid"]})
    content_types = [c for method, _, c, _ in fake_api.bodies if method == "PATCH"]
    assert content_types == [PATCH_TYPES["merge"], PATCH_TYPES["strategic"], PATCH_TYPES["apply"]]
    queries = {method: query for method, _, query, _ in fake_api.requests}
    assert queries["POST"] == {"fieldManager": "kpy-test"}
    assert queries["PATCH"] == {"fieldManager": "kpy-test", "force": "true"}
    assert fake_api.list_requests()[0] == {"labelSelector": "app=x", "limit": "10"}
    delete_body = json.loads([body for method, _, _, body in fake_api.bodies if method == "DELETE"][0])
    assert delete_body == {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground",
                           "gracePeriodSeconds": 0, "preconditions": {"uid": created["metadata"]["uid"]}}


async def test_namespaces_and_names_are_checked_before_sending(fake_api):
    async with fake_api.client() as client:
        cms = client.resource("configmaps")
        with pytest.raises(ValueError, match="configmaps is namespaced: a namespace is required for 'a'"):
            await client.get(cms, "a")
        with pytest.raises(ValueError, match="give a namespace or set metadata.namespace"):
            await client.create(cms, {"metadata": {"name": "a"}})
        with pytest.raises(ValueError, match="update of configmaps: the body has no metadata.name"):
            await client.update(cms, {"metadata": {}}, "default")
        with pytest.raises(ValueError, match="patch_type 'yaml': must be one of merge, strategic, json, apply"):
            await client.patch(cms, "a", {}, "default", patch_type="yaml")
        with pytest.raises(ValueError, match="needs a field_manager"):
            await client.patch(cms, "a", {}, "default", patch_type="apply")
        with pytest.raises(KeyError, match="unknown resource 'widgets'"):
            client.resource("widgets")
    assert fake_api.requests == []


def test_resource_for_an_object():
    client = RESTClient(ClientConfig(server="http://127.0.0.1:1"))
    assert client.resource_for({"apiVersion": "apps/v1", "kind": "Deployment"}).plural == "deployments"
    with pytest.raises(KeyError, match="unknown kind 'Widget'"):
        client.resource_for({"apiVersion": "v1", "kind": "Widget"})


# --- errors and retries --------------------------------------------------------------------------------------------

async def test_status_errors_become_api_errors(fake_api):
    fake_api.put(configmap("a"))
    async with fake_api.client() as client:
        cms = client.resource("configmaps")
        with pytest.raises(APIError) as raised:
            await client.get(cms, "missing", "default")
        assert (raised.value.code, raised.value.reason, raised.value.message) == (
            404, "NotFound", 'configmaps "missing" not found')
        with pytest.raises(APIError) as raised:
            await client.create(cms, configmap("a"))
        assert is_already_exists(raised.value) and not is_conflict(raised.value)


async def test_ignore_not_found_answers_the_result_or_gone_and_raises_other_errors(fake_api):
    fake_api.put(configmap("a"))
    async with fake_api.client() as client:
        cms = client.resource("configmaps")
        assert (await ignore_not_found(client.get(cms, "a", "default")))["metadata"]["name"] == "a"
        assert await ignore_not_found(client.get(cms, "missing", "default")) is None
        assert await ignore_not_found(client.get(cms, "missing", "default"), gone="gone") == "gone"
        with pytest.raises(APIError) as raised:
            await ignore_not_found(client.create(cms, configmap("a")))
        assert is_already_exists(raised.value)


async def test_an_error_without_a_status_body_gets_one(fake_api):
    fake_api.faults.append(Fault("GET", "/configmaps", 410, body=b"gone away"))
    fake_api.faults.append(Fault("GET", "/configmaps", 403, body=b""))
    async with fake_api.client() as client:
        for code, reason, message in ((410, "Expired", "gone away"),
                                      (403, "Forbidden", "the server responded with HTTP 403 and no explanation")):
            with pytest.raises(APIError) as raised:
                await client.list(client.resource("configmaps"))
            assert (raised.value.code, raised.value.reason, raised.value.message) == (code, reason, message)


async def test_idempotent_verbs_are_retried_on_5xx_and_429_with_retry_after(fake_api):
    fake_api.put(configmap("a"))
    fake_api.faults += [Fault("GET", "/configmaps/a", 503, times=2),
                        Fault("PUT", "/configmaps/a", 429, retry_after="0", reason="TooManyRequests")]
    async with fake_api.client() as client:
        cms = client.resource("configmaps")
        got = await client.get(cms, "a", "default")
        await client.update(cms, got)
    assert [m for m, *_ in fake_api.requests] == ["GET", "GET", "GET", "PUT", "PUT"]


async def test_retries_stop_after_the_policy_attempts(fake_api):
    fake_api.faults.append(Fault("GET", "/configmaps", 500, times=10))
    async with fake_api.client(retry=RetryPolicy(attempts=2, base_delay=0.01)) as client:
        with pytest.raises(APIError, match="injected 500"):
            await client.list(client.resource("configmaps"))
    assert len(fake_api.requests) == 2


@pytest.mark.parametrize("fault", [Fault("POST", "/configmaps", 503), Fault("PATCH", "/configmaps", 503),
                                   Fault("GET", "/configmaps", 429, reason="TooManyRequests"),
                                   Fault("GET", "/configmaps", 429, reason="TooManyRequests", retry_after="600"),
                                   Fault("GET", "/configmaps", 409, reason="Conflict")],
                         ids=["post-5xx", "patch-5xx", "429-no-retry-after", "429-too-long", "409"])
async def test_no_retry_for_non_idempotent_verbs_or_final_answers(fake_api, fault):
    fake_api.put(configmap("a"))
    fake_api.faults.append(fault)
    async with fake_api.client() as client:
        cms = client.resource("configmaps")
        call = {"POST": lambda: client.create(cms, configmap("b")),
                "PATCH": lambda: client.patch(cms, "a", {"data": {}}, "default"),
                "GET": lambda: client.get(cms, "a", "default")}[fault.method]
        with pytest.raises(APIError) as raised:
            await call()
    assert raised.value.code == fault.status
    assert len([r for r in fake_api.requests if r[0] == fault.method]) == 1
    if fault.retry_after:
        assert raised.value.retry_after == int(fault.retry_after)


async def test_unreachable_server_raises_client_connection_error_after_retries():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with RESTClient(ClientConfig(server=f"http://127.0.0.1:{port}"), retry=FAST) as client:
        with pytest.raises(ClientConnectionError,
                           match=r"GET /api/v1/configmaps: ClientConnectorError: Cannot connect to host 127.0.0.1"):
            await client.list(client.resource("configmaps"))


# --- watch ---------------------------------------------------------------------------------------------------------

async def test_watch_yields_type_and_object_and_sends_the_parameters(fake_api):
    start = fake_api.put(configmap("a"))["metadata"]["resourceVersion"]
    fake_api.put(configmap("a", x="1"))
    fake_api.remove("a", "default")
    async with fake_api.client() as client:
        async with client.watch(client.resource("configmaps"), "default", resource_version=start,
                                timeout_seconds=1, label_selector="app=x") as events:
            seen = [(kind, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]) async for kind, obj in events]
    assert [s[0] for s in seen] == ["MODIFIED", "DELETED"]
    assert fake_api.watch_requests()[0] == {"watch": "true", "resourceVersion": start, "labelSelector": "app=x",
                                            "timeoutSeconds": "1", "allowWatchBookmarks": "true"}


async def test_watch_of_one_object_uses_a_name_field_selector(fake_api):
    async with fake_api.client() as client:
        async with client.watch(client.resource("configmaps"), "default", name="a", timeout_seconds=1,
                                allow_bookmarks=False) as events:
            fake_api.put(configmap("b"))
            fake_api.put(configmap("a"))
            first = await anext(aiter(events))
    assert first.object["metadata"]["name"] == "a"
    assert fake_api.watch_requests()[0]["fieldSelector"] == "metadata.name=a"
    assert "allowWatchBookmarks" not in fake_api.watch_requests()[0]


@pytest.mark.parametrize("as_http", [False, True], ids=["error-event", "http-410"])
async def test_watch_from_a_compacted_revision_raises_410(fake_api, as_http):
    fake_api.put(configmap("a"))
    fake_api.compact()
    fake_api.gone_as_http = as_http
    async with fake_api.client() as client:
        with pytest.raises(APIError) as raised:
            async with client.watch(client.resource("configmaps"), resource_version="1") as events:
                async for _ in events:
                    pass
    assert is_gone(raised.value) and "too old resource version" in raised.value.message


async def test_a_dropped_watch_raises_client_connection_error(fake_api):
    async with fake_api.client() as client:
        with pytest.raises(ClientConnectionError, match="watch /api/v1/configmaps"):
            async with client.watch(client.resource("configmaps")) as events:
                fake_api.put(configmap("a"))
                async for _ in events:
                    fake_api.drop_watches()


async def test_watch_lines_of_any_length_arrive_whole(fake_api):
    start = fake_api.put(configmap("small"))["metadata"]["resourceVersion"]
    big = "x" * 300_000  # past aiohttp's own line limit (128 KiB)
    fake_api.put(configmap("big", blob=big))
    fake_api.put(configmap("after"))
    async with fake_api.client() as client:
        async with client.watch(client.resource("configmaps"), "default", resource_version=start,
                                timeout_seconds=1) as events:
            seen = [obj async for _, obj in events]
    assert [obj["metadata"]["name"] for obj in seen] == ["big", "after"]
    assert seen[0]["data"]["blob"] == big
