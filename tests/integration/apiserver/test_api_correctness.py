"""API correctness against a real `kpy-apiserver --dev` (issue 13): deletes that race a controller's writes,
server-side dry-run drains, and the fidelity details the real kubectl and the official Python client rely on."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from apiserver.conftest import free_port
from apiserver.test_python_client import api_client  # noqa: F401 - the fixture, shared
from controlloops.test_leader_election import _wait
from processes import stop_process

_names = itertools.count()


@pytest.fixture
def py_namespace(api_client) -> str:
    name = f"corr-{next(_names)}"
    client.CoreV1Api(api_client).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


@pytest.fixture
def controller_manager(apiserver, tmp_path):
    """The real kpy-controller-manager binary (every default controller) against the test's API server."""
    log = tmp_path / "kpy-controller-manager.log"
    command = [str(Path(sys.executable).parent / "kpy-controller-manager"), "--kubeconfig",
               str(apiserver.admin_kubeconfig), "--secure-port", str(free_port()), "--bind-address", "127.0.0.1"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    yield process, log
    stop_process(process, timeout=15)


def _deployment(name: str) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels), spec=client.V1PodSpec(
                containers=[client.V1Container(name="web", image="nginx:1.25")]))))


# --- (1b) an unconditional DELETE never conflicts with a controller's concurrent writes ------------------------------

def test_deletes_racing_the_controller_manager_never_conflict(api_client, py_namespace, controller_manager):
    process, log = controller_manager
    apps = client.AppsV1Api(api_client)
    # The deployment controller is running when it writes the first Deployment's status.
    apps.create_namespaced_deployment(py_namespace, _deployment("probe"))
    _wait(lambda: (apps.read_namespaced_deployment("probe", py_namespace).status or client.V1DeploymentStatus())
          .observed_generation,
          60, f"the controller manager observes a Deployment (log: {log})")
    conflicts = []
    for index in range(40):
        name = f"race-{index}"
        apps.create_namespaced_deployment(py_namespace, _deployment(name))
        try:
            apps.delete_namespaced_deployment(name, py_namespace)
        except ApiException as error:
            conflicts.append((name, error.status, error.body))
    assert process.poll() is None, log.read_text()
    assert conflicts == []


def test_a_delete_precondition_still_conflicts(api_client, py_namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(py_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm")))
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_config_map("cm", py_namespace, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version="1")))
    assert caught.value.status == 409 and "Precondition failed" in json.loads(caught.value.body)["message"]
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_config_map("cm", py_namespace, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="not-the-uid")))
    assert caught.value.status == 409
    core.delete_namespaced_config_map("cm", py_namespace)


# --- (1c) kubectl drain --dry-run=server evicts nothing ------------------------------------------------------------

def _node_and_pods(kubectl, namespace: str, node: str) -> None:
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}))
    kubectl("create", "serviceaccount", "default", "-n", namespace)  # no controller manager runs here
    for index in range(2):
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{index}"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}))


def test_drain_dry_run_server_leaves_every_pod(kubectl, namespace):
    node = f"drain-{namespace}"
    _node_and_pods(kubectl, namespace, node)
    result = kubectl("drain", node, "--dry-run=server", "--force", "--ignore-daemonsets", "--timeout=30s",
                     check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "drained (server dry run)" in result.stdout
    pods = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    assert sorted(p["metadata"]["name"] for p in pods) == ["p0", "p1"]
    assert not any(p["metadata"].get("deletionTimestamp") for p in pods)
    assert not json.loads(kubectl("get", "node", node, "-o", "json").stdout).get("spec", {}).get("unschedulable")
    kubectl("delete", "node", node)


def test_eviction_body_dry_run_values_are_checked(api_client, py_namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_service_account(py_namespace, client.V1ServiceAccount(
        metadata=client.V1ObjectMeta(name="default")))
    core.create_namespaced_pod(py_namespace, client.V1Pod(metadata=client.V1ObjectMeta(name="p"), spec=client.V1PodSpec(
        containers=[client.V1Container(name="c", image="busybox")])))
    eviction = client.V1Eviction(metadata=client.V1ObjectMeta(name="p"),
                                 delete_options=client.V1DeleteOptions(dry_run=["Some"]))
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_pod_eviction("p", py_namespace, eviction)
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["message"].startswith('dryRun: Unsupported value: "Some"')
    eviction.delete_options.dry_run = ["All"]
    core.create_namespaced_pod_eviction("p", py_namespace, eviction)
    assert not core.read_namespaced_pod("p", py_namespace).metadata.deletion_timestamp
    core.create_namespaced_pod_eviction("p", py_namespace, client.V1Eviction(metadata=client.V1ObjectMeta(name="p")))
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod("p", py_namespace)
    assert caught.value.status == 404
