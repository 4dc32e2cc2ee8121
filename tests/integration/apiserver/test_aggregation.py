"""The aggregation layer with the real kubectl 1.27 and 1.33: an APIService backed by a test HTTPS extension server
(reached through an ExternalName Service, trusted through caBundle, requiring the front-proxy client certificate)
becomes Available, its resources appear in discovery, and requests are proxied with the user's identity in
X-Remote-User / X-Remote-Group; a stopped server turns the APIService unavailable."""
from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading
import time

import pytest
import yaml

from apiserver.selfsigned import self_signed

GROUP = "things.kpy.test"
WAIT = 20.0  # seconds for the aggregator's check (milliseconds in practice; the bound ends a failing test)


class _Extension(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server's name
        client = self.connection.getpeercert() or {}
        subject = dict(item[0] for item in client.get("subject", ()))
        self.server.seen.append((self.path, subject.get("commonName"), self.headers.get("X-Remote-User"),
                                 self.headers.get_all("X-Remote-Group") or []))
        if self.path.split("?")[0] == f"/apis/{GROUP}/v1":
            self._send(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/v1",
                             "resources": [{"name": "gadgets", "singularName": "gadget", "namespaced": True,
                                            "kind": "Gadget", "verbs": ["get", "list"], "shortNames": ["gd"]}]})
        elif "/gadgets" in self.path:
            user = self.headers.get("X-Remote-User", "")
            item = {"apiVersion": f"{GROUP}/v1", "kind": "Gadget",
                    "metadata": {"name": f"for-{user}", "namespace": "default", "creationTimestamp":
                                 "2026-01-01T00:00:00Z",
                                 "annotations": {"groups": ",".join(self.headers.get_all("X-Remote-Group") or [])}}}
            self._send(200, {"apiVersion": f"{GROUP}/v1", "kind": "GadgetList", "metadata": {}, "items": [item]})
        else:
            self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                             "reason": "NotFound", "message": "not here"})

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def extension(apiserver, tmp_path_factory):
    """The extension server (client certificates required, from the front-proxy CA): (port, caBundle, seen)."""
    pem, cert, key = self_signed(tmp_path_factory.mktemp("extension"), "ext", ("ext.default.svc",))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Extension)
    server.seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.load_verify_locations(str(apiserver.directory / "front-proxy-ca.crt"))
    context.verify_mode = ssl.CERT_REQUIRED
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, base64.b64encode(pem).decode()
    server.shutdown()
    server.server_close()


def _wait_available(kubectl, name: str, state: str) -> dict:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = json.loads(kubectl("get", "apiservice", name, "-o", "json").stdout)
        condition = next((c for c in found.get("status", {}).get("conditions", []) if c["type"] == "Available"),
                         None)
        if condition and condition["status"] == state:
            return condition
        time.sleep(0.1)
    pytest.fail(f"APIService {name} not Available={state} within {WAIT}s")


def test_an_apiservice_is_discovered_and_proxied_with_the_users_identity(kubectl, extension):
    server, bundle = extension
    port = server.server_address[1]
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
         "spec": {"type": "ExternalName", "externalName": "localhost", "ports": [{"port": port}]}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": f"v1.{GROUP}"},
         "spec": {"group": GROUP, "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
                  "caBundle": bundle, "service": {"namespace": "default", "name": "ext", "port": port}}}]))
    condition = _wait_available(kubectl, f"v1.{GROUP}", "True")
    assert (condition["reason"], condition["message"]) == ("Passed", "all checks passed")
    rows = [line.split() for line in kubectl("get", "apiservices").stdout.splitlines()]
    assert rows[0] == ["NAME", "SERVICE", "AVAILABLE", "AGE"] and [f"v1.{GROUP}", "default/ext", "True"] in \
        [r[:3] for r in rows]
    resources = kubectl("api-resources", f"--api-group={GROUP}").stdout.splitlines()
    assert resources[1].split() == ["gadgets", "gd", f"{GROUP}/v1", "true", "Gadget"]
    listed = json.loads(kubectl("get", "gadgets", "-o", "json").stdout)
    assert listed["items"][0]["metadata"]["name"] == "for-admin"
    assert "system:masters" in listed["items"][0]["metadata"]["annotations"]["groups"].split(",")
    path, client_cn, user, groups = next(s for s in server.seen if "/gadgets" in s[0])
    assert client_cn == "front-proxy-client" and user == "admin" and "system:authenticated" in groups


def test_a_stopped_extension_server_makes_its_apiservice_unavailable(kubectl):
    name = f"v1.down-{kubectl.version.replace('.', '')}.kpy.test"
    group = name.split(".", 1)[1]
    kubectl("apply", "-f", "-", input=yaml.safe_dump(
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": name},
         "spec": {"group": group, "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
                  "insecureSkipTLSVerify": True, "service": {"namespace": "default", "name": "missing"}}}))
    condition = _wait_available(kubectl, name, "False")
    assert condition["reason"] == "ServiceNotFound"
    assert condition["message"] == 'service/missing in "default" is not present'
    refused = kubectl("apply", "-f", "-", check=False, input=yaml.safe_dump(
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "wrong"},
         "spec": {"group": group, "version": "v1", "groupPriorityMinimum": 0, "versionPriority": 15,
                  "service": {"namespace": "default", "name": "missing"}}}))
    assert f'metadata.name: Invalid value: "wrong": must be v1.{group}' in refused.stderr
    assert "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000" in refused.stderr
    kubectl("delete", "apiservice", name)
