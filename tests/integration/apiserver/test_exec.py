"""pods/exec, pods/attach and pods/portforward with the real kubectl 1.27 (SPDY/3.1 end to end: relayed byte for byte) and 1.33
(WebSocket v5 exec translated to SPDY towards the kubelet; port-forward's SPDY tunnelled in a WebSocket), against a
real kpy-apiserver whose Node points at a stand-in kubelet (stand_in_kubelet.py) running real local processes."""
from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import threading
import time

import pytest
from kubernetes import client, config
from kubernetes.stream import stream
from kubernetes.stream.ws_client import STDIN_CHANNEL as STDIN

from apiserver.conftest import KUBECTL_DIR, free_port
from apiserver.stand_in_kubelet import running
from processes import stop_process

NAMESPACE = "streams"
DEADLINE = 30.0  # seconds for kubectl port-forward to listen


@pytest.fixture(scope="module")
def kubelet(apiserver):
    with running(apiserver.directory) as state:
        yield state


@pytest.fixture(scope="module")
def pods(apiserver, kubelet):
    """Namespace `streams`: node stream-node (its kubelet the stand-in), pod `web` running on it, pod `waiting` not
    scheduled."""
    admin = [str(KUBECTL_DIR / "kubectl.1.33"), "--kubeconfig", str(apiserver.admin_kubeconfig)]
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "stream-node"},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}}}}
    manifests = [
        node,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": NAMESPACE}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": NAMESPACE},
         "spec": {"nodeName": "stream-node", "containers": [{"name": "app", "image": "registry.invalid/app:1"}]}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "waiting", "namespace": NAMESPACE},
         "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]}}]
    for manifest in manifests:
        subprocess.run([*admin, "create", "-f", "-"], input=json.dumps(manifest), text=True, check=True,
                       capture_output=True)
    subprocess.run([*admin, "replace", "--subresource=status", "-f", "-"], input=json.dumps(node), text=True,
                   check=True, capture_output=True)
    subprocess.run([*admin, "patch", "-n", NAMESPACE, "pod", "web", "--subresource=status", "--type=merge", "-p",
                    json.dumps({"status": {"phase": "Running"}})], check=True, capture_output=True)
    return NAMESPACE


def test_exec_relays_output_and_exit_code(kubectl, pods, kubelet):
    kubelet.seen.clear()
    result = kubectl("exec", "-n", pods, "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert result.returncode == 3
    assert result.stdout == "out\n"
    assert "err\n" in result.stderr and "command terminated with exit code 3" in result.stderr
    seen = kubelet.seen[-1]
    assert seen.path == f"/exec/{pods}/web/app"
    assert seen.query == [("output", "1"), ("error", "1"), ("command", "sh"), ("command", "-c"),
                          ("command", "echo out; echo err >&2; exit 3")]
    assert seen.client == "kube-apiserver-kubelet-client"
    if kubectl.version == "1.27":  # its SPDY upgrade, relayed as it came (every version it speaks)
        assert "v4.channel.k8s.io" in seen.protocols and len(seen.protocols) > 1
    else:  # WebSocket v5, translated here to the one SPDY protocol the translation speaks
        assert seen.protocols == ["v4.channel.k8s.io"]


def test_exec_with_stdin(kubectl, pods, kubelet):
    result = kubectl("exec", "-i", "-n", pods, "web", "--", "sh", "-c", "tr a-z A-Z; echo done",
                     input="hello\nworld\n")
    assert result.stdout == "HELLO\nWORLD\ndone\n"
    assert ("input", "1") in kubelet.seen[-1].query


def test_attach(kubectl, pods, kubelet):
    assert kubectl("attach", "-n", pods, "web").stdout == "attached\n"
    assert kubelet.seen[-1].path == f"/attach/{pods}/web/app"
    assert kubectl("attach", "-i", "-n", pods, "web", input="typed\n").stdout == "attached\ntyped\n"
    assert ("input", "1") in kubelet.seen[-1].query


def test_cp_both_ways_keeps_binary_content(kubectl, pods, tmp_path):
    """kubectl cp is tar over exec (stdout one way, stdin the other); the stand-in's "container" is this machine,
    so the paths are local temporary ones."""
    content = bytes(range(256)) * 4096 + b"\x00\xff end"  # 1 MiB and a bit, every byte value
    (tmp_path / "out").mkdir()
    source = tmp_path / "source.bin"
    source.write_bytes(content)
    kubectl("cp", f"{pods}/web:{source}", str(tmp_path / "copied.bin"))
    assert (tmp_path / "copied.bin").read_bytes() == content
    kubectl("cp", str(source), f"{pods}/web:{tmp_path / 'out' / 'uploaded.bin'}")
    assert (tmp_path / "out" / "uploaded.bin").read_bytes() == content


def test_exec_needs_create_on_pods_exec(kubectl, pods, apiserver):
    """RBAC decides on the subresource: a user who may read pods but not exec into them is refused."""
    admin = [str(KUBECTL_DIR / "kubectl.1.33"), "--kubeconfig", str(apiserver.admin_kubeconfig), "-n", pods]
    subprocess.run([*admin, "create", "role", "pod-reader", "--verb=get,list", "--resource=pods"],
                   capture_output=True)  # once per module; the second version finds it there
    subprocess.run([*admin, "create", "rolebinding", "pod-reader", "--role=pod-reader", "--user=reader"],
                   capture_output=True)
    reader = kubectl.as_user(apiserver.user_kubeconfig("reader"))
    result = reader("exec", "-n", pods, "web", "--", "true", check=False)
    assert result.returncode != 0
    assert f'User "reader" cannot create resource "pods/exec" in API group "" in the namespace "{pods}"' \
        in result.stderr


def test_exec_errors_are_worded_as_kubernetes_words_them(kubectl, pods):
    stopped = kubectl("exec", "-n", pods, "web", "-c", "stopped", "--", "true", check=False)
    assert stopped.returncode != 0 and "container stopped is not valid for pod web" in stopped.stderr
    waiting = kubectl("exec", "-n", pods, "waiting", "--", "true", check=False)
    assert waiting.returncode != 0 and "pod waiting does not have a host assigned" in waiting.stderr


def test_a_container_that_is_not_running_is_reported_from_the_kubelet(kubectl, pods, apiserver):
    """The kubelet's refusal travels back: as the upgrade's answer (SPDY) or on the error channel (WebSocket)."""
    admin = [str(KUBECTL_DIR / "kubectl.1.33"), "--kubeconfig", str(apiserver.admin_kubeconfig), "-n", pods]
    subprocess.run([*admin, "create", "-f", "-"], capture_output=True, text=True, input=json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"two-{kubectl.version}"},
         "spec": {"nodeName": "stream-node", "containers": [{"name": "stopped", "image": "registry.invalid/a:1"}]}}))
    result = kubectl("exec", "-n", pods, f"two-{kubectl.version}", "--", "true", check=False)
    assert result.returncode != 0
    assert 'unable to upgrade connection: container not found ("stopped")' in result.stderr


def test_an_unreachable_kubelet_is_reported(kubectl, pods, apiserver):
    admin = [str(KUBECTL_DIR / "kubectl.1.33"), "--kubeconfig", str(apiserver.admin_kubeconfig)]
    closed = free_port()  # nothing listens there
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"gone-{kubectl.version}"},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": closed}}}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"on-gone-{kubectl.version}", "namespace": pods},
           "spec": {"nodeName": node["metadata"]["name"], "containers": [{"name": "app", "image": "a.invalid/a:1"}]}}
    for manifest in (node, pod):
        subprocess.run([*admin, "create", "-f", "-"], input=json.dumps(manifest), text=True, check=True,
                       capture_output=True)
    subprocess.run([*admin, "replace", "--subresource=status", "-f", "-"], input=json.dumps(node), text=True,
                   check=True, capture_output=True)
    result = kubectl("exec", "-n", pods, pod["metadata"]["name"], "--", "true", check=False)
    assert result.returncode != 0 and "error dialing backend" in result.stderr and str(closed) in result.stderr


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def echo_port():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _connect(port: int, process: subprocess.Popen) -> socket.socket:
    """A connection to kubectl port-forward's local port, once it listens."""
    deadline = time.monotonic() + DEADLINE
    while True:
        if process.poll() is not None:
            pytest.fail(f"kubectl port-forward exited with {process.returncode}: {process.stderr.read()}")
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"kubectl port-forward did not listen on {port} within {DEADLINE}s")
            time.sleep(0.1)


def _echoed(connection: socket.socket, payload: bytes) -> bytes:
    connection.sendall(payload)
    received = b""
    while len(received) < len(payload) and (chunk := connection.recv(65536)):
        received += chunk
    return received


def test_port_forward_moves_bytes_both_ways(kubectl, pods, echo_port, kubelet):
    local = free_port()
    process = subprocess.Popen(kubectl.command("port-forward", "-n", pods, "pod/web", f"{local}:{echo_port}"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = _connect(local, process)
        with first:
            assert _echoed(first, b"hello through the tunnel\n") == b"hello through the tunnel\n"
            big = bytes(range(256)) * 1024  # 256 KiB: many data frames each way
            with _connect(local, process) as second:  # a second connection: its own pair of streams
                assert _echoed(second, big) == big
            assert _echoed(first, b"still here") == b"still here"
    finally:
        stop_process(process, timeout=10)
    seen = kubelet.seen[-1]
    assert (seen.path, seen.protocols, seen.client) == (f"/portForward/{pods}/web", ["portforward.k8s.io"],
                                                        "kube-apiserver-kubelet-client")


def test_the_python_clients_exec(apiserver, pods):
    """The official client offers v5 and v4 over WebSocket (served by the v5 translation) and sends str as text
    messages."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(apiserver.admin_kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        session = stream(client.CoreV1Api(api).connect_get_namespaced_pod_exec, "web", pods,
                         command=["sh", "-c", "cat; echo err >&2; exit 4"], stdin=True, stdout=True, stderr=True,
                         tty=False, _preload_content=False)
        session.write_stdin("from python\n")
        session.close_channel(STDIN)  # v5 CLOSE: the command sees the end of its input
        session.run_forever(timeout=DEADLINE)
        assert session.read_stdout() == "from python\n"
        assert session.read_stderr() == "err\n"
        assert session.returncode == 4
