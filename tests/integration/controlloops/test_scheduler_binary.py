"""The `kpy-scheduler` console script as deployed (leader election on): it serves /healthz, /readyz (ready once its
informers synced) and /metrics over TLS on its secure port, /metrics only for clients with a certificate of the
cluster CA, takes the kube-system/kube-scheduler Lease, and schedules a pod; SIGTERM ends it with exit 0."""
from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import eventually

from apiserver.conftest import free_port

pytestmark = pytest.mark.anyio

def _get(url: str, cert: tuple[Path, Path] | None = None) -> tuple[int, str]:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed serving certificate
    if cert:
        context.load_cert_chain(*cert)
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _ready(base: str) -> bool:
    try:
        return _get(base + "/readyz")[0] == 200
    except OSError:  # not listening yet
        return False


@pytest.fixture
def scheduler_process(cluster, tmp_path):
    port = free_port()
    log = tmp_path / "kpy-scheduler.log"
    command = [str(Path(sys.executable).parent / "kpy-scheduler"), "--kubeconfig", str(cluster.admin_kubeconfig),
               "--secure-port", str(port), "--bind-address", "127.0.0.1"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    yield process, f"https://127.0.0.1:{port}", log
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


async def test_serves_probes_and_metrics_holds_the_lease_and_schedules(cluster, client, namespace, nodes,
                                                                       scheduler_process):
    process, base, log = scheduler_process
    await eventually(lambda: _ready(base), message="/readyz ok (informers synced)")
    assert _get(base + "/healthz") == (200, "ok")
    status, body = _get(base + "/metrics")
    assert status in (401, 403), "metrics without a client certificate"
    admin = (cluster.directory / "admin.crt", cluster.directory / "admin.key")
    status, body = _get(base + "/metrics", cert=admin)
    assert status == 200 and 'scheduler_pending_pods{queue="active"}' in body

    status, lease = cluster.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler")
    assert status == 200 and json.loads(lease)["spec"]["holderIdentity"]

    await nodes.add("binary-node", cpu="2")
    pods = client.resource("pods")
    await client.create(pods, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "binary-pod"}, "spec": {
        "nodeSelector": {"kubernetes.io/hostname": "binary-node"},
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}}, namespace)

    async def node_name() -> str:
        return (await client.get(pods, "binary-pod", namespace))["spec"].get("nodeName", "")
    assert await eventually(node_name, message="the pod bound") == "binary-node"

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0, log.read_text()[-2000:]
