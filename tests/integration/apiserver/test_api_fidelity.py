"""Details a real kube-apiserver 1.31 gets right that kubectl and the official Python client rely on (issue 13),
against a real `kpy-apiserver --dev`: client-side -> server-side apply takeover, gzip of large responses, admission
plugins by configuration, decoding errors and wrong kinds worded as upstream, DELETE of a Service answering the
Service, Status bytes, ReplicationController labels, storageVersionHash, the client CAs named in the handshake."""
from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from apiserver.conftest import dev, free_port, running_apiserver
from apiserver.test_python_client import api_client  # noqa: F401 - the fixture, shared


def _raw(apiserver, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, headers, body bytes as sent: not decompressed) of one request as admin."""
    request = urllib.request.Request(apiserver.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=apiserver.ssl_context(), timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _manifest(obj: dict) -> str:
    return yaml.safe_dump(obj)


# --- client-side apply, then server-side apply -----------------------------------------------------------------

def test_server_side_apply_takes_over_from_client_side_apply(kubectl, namespace):
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "migrate"}, "data": {"a": "1"}}
    kubectl("apply", "-n", namespace, "-f", "-", input=_manifest(config_map))
    config_map["data"] = {"a": "2", "b": "3"}
    result = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=_manifest(config_map), check=False)
    assert result.returncode == 0, result.stderr
    stored = json.loads(kubectl("get", "configmap", "migrate", "-n", namespace, "-o", "json",
                                "--show-managed-fields").stdout)
    assert stored["data"] == {"a": "2", "b": "3"}
    managers = {entry["manager"] for entry in stored["metadata"]["managedFields"]}
    assert "kubectl-client-side-apply" not in managers and "kubectl" in managers
    # Only fields that client-side apply set, unchanged since, are taken over: another writer's still conflict.
    kubectl("patch", "configmap", "migrate", "-n", namespace, "-p", '{"data":{"a":"9"}}')
    config_map["data"] = {"a": "4", "b": "3"}
    result = kubectl("apply", "--server-side", "-n", namespace, "-f", "-", input=_manifest(config_map), check=False)
    assert result.returncode != 0 and 'conflict with "kubectl-patch"' in result.stderr


# --- gzip --------------------------------------------------------------------------------------------------------

def test_large_responses_are_gzipped_for_clients_that_accept_it(apiserver, api_client):  # noqa: F811
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="gzip")))
    for index in range(3):
        core.create_namespaced_config_map("gzip", client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"big-{index}"), data={"blob": "x" * 60_000}))
    path = "/api/v1/namespaces/gzip/configmaps"
    status, headers, body = _raw(apiserver, "GET", path, headers={"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in headers["Vary"]
    assert len(json.loads(gzip.decompress(body))["items"]) == 3
    status, headers, body = _raw(apiserver, "GET", path)
    assert status == 200 and "Content-Encoding" not in headers and len(json.loads(body)["items"]) == 3
    assert len(core.list_namespaced_config_map("gzip").items) == 3  # the Python client asks for gzip
    status, headers, _ = _raw(apiserver, "GET", path + "/big-0", headers={"Accept-Encoding": "gzip"})
    assert status == 200 and "Content-Encoding" not in headers, "60 KB is under the 128 KiB threshold"


# --- admission plugins by configuration --------------------------------------------------------------------------

def _config_file(directory, port: int, **extra) -> str:
    """A kpy-apiserver config file over a dev directory's PKI and database."""
    config = dev.prepare(directory, port)
    data = {"bind_address": "127.0.0.1", "secure_port": port,
            "tls": {"cert_file": str(config.tls.cert_file), "key_file": str(config.tls.key_file),
                    "client_ca_file": str(config.tls.client_ca_file)},
            "storage": {"backend": "sqlite", "sqlite_path": str(config.storage.sqlite_path)},
            "service_account": {"key_files": [str(p) for p in config.service_account.key_files],
                                "signing_key_file": str(config.service_account.signing_key_file)}, **extra}
    path = directory / "apiserver.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_admission_plugins_are_disabled_by_configuration(tmp_path, kubectl):
    port = free_port()
    config = _config_file(tmp_path, port, disable_admission_plugins=["ServiceAccount"])
    with running_apiserver(tmp_path, port, "--config", config) as server:
        admin = kubectl.as_user(server.admin_kubeconfig)
        admin("create", "namespace", "nosa")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        # With ServiceAccount admission this is refused (no default ServiceAccount: no controller manager runs).
        admin("create", "-n", "nosa", "-f", "-", input=json.dumps(pod))
        stored = json.loads(admin("get", "pod", "p", "-n", "nosa", "-o", "json").stdout)
        assert "serviceAccountName" not in stored["spec"]


def test_an_unknown_admission_plugin_is_refused_at_start(tmp_path):
    port = free_port()
    config = _config_file(tmp_path, port, enable_admission_plugins=["AlwaysPullImagez"])
    done = subprocess.run([str(Path(sys.executable).parent / "kpy-apiserver"), "--config", config],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "enable_admission_plugins: 'AlwaysPullImagez' is not one of NamespaceLifecycle" in done.stderr
    assert "Traceback" not in done.stderr


# --- decoding errors and wrong kinds -----------------------------------------------------------------------------

def test_labels_given_as_a_string_fail_in_decoding(apiserver):
    body = json.dumps({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": "strlabels", "labels": "app=web"}}).encode()
    for validation in ("Strict", "Ignore"):
        status, _, raw = _raw(apiserver, "POST", f"/api/v1/namespaces?fieldValidation={validation}", body,
                              {"Content-Type": "application/json"})
        assert status == 400
        assert json.loads(raw)["message"] == ('Namespace in version "v1" cannot be handled as a Namespace: cannot '
                                              "restore map from string")


def test_a_body_of_the_wrong_kind_is_unrecognized_and_yaml_is_read(kubectl, tmp_path):
    pod = tmp_path / "pod.yaml"
    pod.write_text(_manifest({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    result = kubectl("create", "--raw", "/api/v1/namespaces", "-f", str(pod), check=False)
    assert result.returncode != 0
    assert "the object provided is unrecognized (must be of type Namespace)" in result.stderr
    name = f"raw-yaml-{kubectl.version.replace('.', '')}"
    namespace = tmp_path / "ns.yaml"
    namespace.write_text(_manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
    created = json.loads(kubectl("create", "--raw", "/api/v1/namespaces", "-f", str(namespace)).stdout)
    assert created["kind"] == "Namespace" and created["metadata"]["name"] == name


# --- replies ------------------------------------------------------------------------------------------------------

def test_deleting_a_service_returns_the_service(api_client, apiserver):  # noqa: F811
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service("default", client.V1Service(
        metadata=client.V1ObjectMeta(name="gone"),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)], selector={"app": "x"})))
    status, _, body = _raw(apiserver, "DELETE", "/api/v1/namespaces/default/services/gone")
    deleted = json.loads(body)
    assert status == 200 and deleted["kind"] == "Service" and deleted["metadata"]["name"] == "gone"
    assert deleted["spec"]["ports"][0]["port"] == 80


def test_error_status_bytes_are_upstreams(apiserver):
    status, _, body = _raw(apiserver, "GET", "/api/v1/namespaces/default/configmaps/nope")
    assert status == 404
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps '
                    b'\\"nope\\" not found","reason":"NotFound","details":{"name":"nope","kind":"configmaps"},'
                    b'"code":404}\n')
    status, _, body = _raw(apiserver, "GET", "/apis/apps/v1/namespaces/default/deployments/nope")
    assert body == (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps '
                    b'\\"nope\\" not found","reason":"NotFound","details":{"name":"nope","group":"apps",'
                    b'"kind":"deployments"},"code":404}\n')
    invalid = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}).encode()
    status, _, body = _raw(apiserver, "POST", "/api/v1/namespaces/default/configmaps", invalid,
                           {"Content-Type": "application/json"})
    assert status == 422 and body.endswith(b'"code":422}\n')
    order = list(json.loads(body))
    assert order == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
    assert list(json.loads(body)["details"]) == ["name", "kind", "causes"]
    assert list(json.loads(body)["details"]["causes"][0]) == ["reason", "message", "field"]


def test_a_replication_controller_takes_its_templates_labels(api_client):  # noqa: F811
    core = client.CoreV1Api(api_client)
    created = core.create_namespaced_replication_controller("default", client.V1ReplicationController(
        metadata=client.V1ObjectMeta(name="rc"), spec=client.V1ReplicationControllerSpec(
            replicas=0, template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "rc", "tier": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")])))))
    assert created.metadata.labels == {"app": "rc", "tier": "web"}
    assert created.spec.selector == {"app": "rc", "tier": "web"}


def test_discovery_carries_storage_version_hashes(apiserver):
    core = {r["name"]: r for r in json.loads(apiserver.get("/api/v1")[1])["resources"]}
    assert core["pods"]["storageVersionHash"] == "xPOwRZ+Yhw8="  # what kube-apiserver publishes
    assert "storageVersionHash" not in core["pods/status"]
    apps = {r["name"]: r for r in json.loads(apiserver.get("/apis/apps/v1")[1])["resources"]}
    assert apps["deployments"]["storageVersionHash"] == "8aSe+NMegvE="
    reviews = {r["name"]: r for r in json.loads(apiserver.get("/apis/authorization.k8s.io/v1")[1])["resources"]}
    assert "storageVersionHash" not in reviews["selfsubjectaccessreviews"]  # never stored


def test_the_handshake_names_the_acceptable_client_cas(apiserver):
    if not shutil.which("openssl"):
        pytest.fail("the openssl command is needed to read the TLS handshake")
    shown = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{apiserver.port}"], input="",
                           capture_output=True, text=True, timeout=30).stdout
    assert "Acceptable client certificate CA names\nCN = kpy-dev-ca\n" in shown, shown
