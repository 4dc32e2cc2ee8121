"""pods/log with the real kubectl: the API server checks the pod and container, then streams the container's log
from the node's kubelet over mutual TLS. The kubelet here is a stand-in (kpy has no kubelet yet) serving only
/containerLogs, and it accepts only the API server's kubelet-client certificate."""
from __future__ import annotations

import http.server
import json
import socketserver
import subprocess
import threading
import time
import urllib.parse

import pytest

from apiserver.conftest import KUBECTL_DIR
from apiserver.stand_in_kubelet import serving_context

LINES = [f"line {n}" for n in range(1, 6)]


class _KubeletLogs(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the body ends when the connection closes, as a followed log does
    seen: list[tuple[str, dict, str]] = []
    last_line_written = 0.0  # time.monotonic() when the last line of a response went out

    def do_GET(self):  # noqa: N802 - the stdlib's name
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        client = dict(x[0] for x in self.connection.getpeercert()["subject"])["commonName"]
        self.seen.append((url.path, query, client))
        if not url.path.startswith("/containerLogs/"):
            self.send_error(404)
            return
        lines = LINES[-int(query["tailLines"]):] if "tailLines" in query else LINES
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        for line in lines:
            self.wfile.write(f"{line} ({url.path.rsplit('/', 1)[1]})\n".encode())
            self.wfile.flush()
            if query.get("follow") == "true":
                time.sleep(0.2)
        type(self).last_line_written = time.monotonic()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def kubelet(apiserver):
    """A stand-in kubelet on 127.0.0.1 with a serving certificate from the cluster CA, requiring client certs."""
    context = serving_context(apiserver.directory, "logs-node")
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _KubeletLogs)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def logs_pods(apiserver, kubelet, tmp_path_factory):
    """Namespace `logs` with a node whose kubelet is the stand-in, a pod on it with two containers, and a pod that
    is not scheduled."""
    admin = [str(KUBECTL_DIR / "kubectl.1.33"), "--kubeconfig", str(apiserver.admin_kubeconfig)]
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "logs-node"},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet}}}}
    manifests = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "logs"}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "logs"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "logs"},
         "spec": {"nodeName": "logs-node", "containers": [{"name": "app", "image": "registry.invalid/app:1"},
                                                          {"name": "sidecar", "image": "registry.invalid/s:1"}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "waiting", "namespace": "logs"},
         "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}]
    for manifest in [node, *manifests]:
        subprocess.run([*admin, "create", "-f", "-"], input=json.dumps(manifest), text=True, check=True,
                       capture_output=True)
    subprocess.run([*admin, "replace", "--subresource=status", "-f", "-"], input=json.dumps(node), text=True,
                   capture_output=True)  # kubectl < 1.24 has no --subresource: status given at create suffices
    return "logs"


def test_logs_stream_from_the_kubelet(kubectl, logs_pods):
    _KubeletLogs.seen.clear()
    result = kubectl("logs", "-n", logs_pods, "web", "-c", "sidecar")
    assert result.stdout.splitlines() == [f"{line} (sidecar)" for line in LINES]
    path, _query, client = _KubeletLogs.seen[-1]
    assert path == "/containerLogs/logs/web/sidecar"
    assert client == "kube-apiserver-kubelet-client"  # the API server's own kubelet-client certificate


def test_log_options_are_passed_on(kubectl, logs_pods):
    result = kubectl("logs", "-n", logs_pods, "web", "-c", "app", "--tail=2", "--timestamps")
    assert result.stdout.splitlines() == [f"{line} (app)" for line in LINES[-2:]]
    assert _KubeletLogs.seen[-1][1] == {"tailLines": "2", "timestamps": "true"}


def test_follow_streams_as_lines_come(kubectl, logs_pods):
    """The first line reaches kubectl while the kubelet is still writing the later ones (relayed, not buffered)."""
    follow = subprocess.Popen(kubectl.command("logs", "-n", logs_pods, "web", "-c", "app", "-f"),
                              stdout=subprocess.PIPE, text=True)
    try:
        first = follow.stdout.readline()
        first_arrived = time.monotonic()
        rest = follow.stdout.read()
        assert follow.wait(timeout=30) == 0
    finally:
        follow.kill()
    assert (first + rest).splitlines() == [f"{line} (app)" for line in LINES]
    assert _KubeletLogs.seen[-1][1] == {"follow": "true"}
    assert first_arrived < _KubeletLogs.last_line_written


def test_errors_are_worded_as_kubernetes_words_them(kubectl, logs_pods, apiserver):
    assert "container nope is not valid for pod web" in \
        kubectl("logs", "-n", logs_pods, "web", "-c", "nope", check=False).stderr
    assert "pod waiting does not have a host assigned" in \
        kubectl("logs", "-n", logs_pods, "waiting", check=False).stderr
    status, body = apiserver.get(f"/api/v1/namespaces/{logs_pods}/pods/web/log")
    assert status == 400
    assert json.loads(body)["message"] == \
        "a container name must be specified for pod web, choose one of: [app sidecar]"
    status, body = apiserver.get(f"/api/v1/namespaces/{logs_pods}/pods/web/log?container=app&tailLines=-1")
    assert status == 422 and "tailLines" in json.loads(body)["message"]
