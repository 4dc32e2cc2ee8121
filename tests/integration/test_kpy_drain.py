"""Draining a node of a REAL `kpy-apiserver --dev` (the process fixture of tests/integration/apiserver/conftest.py,
reused): the kpy_drain module run by Ansible (ad-hoc, as a task runs it) and the real `kubectl drain`, against a
Node with a ReplicaSet's pod behind a PodDisruptionBudget that allows no disruption until the test relaxes it, a
ReplicaSet's pod with emptyDir data and a DaemonSet's pod.

Two controllers are absent from a bare API server and the test stands in for them, only here:
- the kubelet, which finishes the deletion of a terminating pod bound to its node (DELETE with
  gracePeriodSeconds=0) once its containers have stopped: `StandInKubelet`;
- the disruption controller, which writes the budget's status (disruptionsAllowed): `budget_status`.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client as k8s, config as k8s_config
from kubernetes.client.exceptions import ApiException

from apiserver.conftest import KUBECTL_DIR, APIServerProcess, apiserver  # noqa: F401 - the process fixture

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
DEADLINE = 30.0  # seconds for anything the server, the module or kubectl should do "soon"
MERGE = "application/merge-patch+json"
_names = itertools.count()


def wait_for(what: str, condition, deadline: float = DEADLINE):
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {deadline} s")
        time.sleep(0.1)


class StandInKubelet(threading.Thread):
    """Finishes the deletion of every terminating pod bound to `node`, as its kubelet does once the containers
    are stopped (here: at once)."""

    def __init__(self, core: k8s.CoreV1Api, node: str):
        super().__init__(daemon=True)
        self.core, self.node, self.stopping = core, node, threading.Event()

    def run(self):
        while not self.stopping.wait(0.2):
            for pod in self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self.node}").items:
                if pod.metadata.deletion_timestamp:
                    try:
                        self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace,
                                                        grace_period_seconds=0)
                    except ApiException as error:
                        if error.status != 404:
                            raise


class Cluster:
    """A namespace with the DaemonSet and the budget, and the node whose pods the tests drain."""

    def __init__(self, server: APIServerProcess):
        self.kubeconfig = server.admin_kubeconfig
        api = k8s_config.new_client_from_config(config_file=str(self.kubeconfig), persist_config=False)
        self.core, self.apps, self.policy = k8s.CoreV1Api(api), k8s.AppsV1Api(api), k8s.PolicyV1Api(api)
        self.namespace = f"drain-{next(_names)}"
        self.core.create_namespace({"metadata": {"name": self.namespace}})
        self.core.create_namespaced_service_account(self.namespace, {"metadata": {"name": "default"}})
        template = {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
        self.daemonset = self.apps.create_namespaced_daemon_set(self.namespace, {
            "metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}},
                                                   "template": template}})
        self.policy.create_namespaced_pod_disruption_budget(self.namespace, {
            "metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})

    def add_node(self, suffix: str = "node") -> str:
        name = f"{self.namespace}-{suffix}"
        self.core.create_node({"metadata": {"name": name}})
        return name

    def add_pod(self, node: str, name: str, owner: dict | None, labels: dict, empty_dir: bool = False) -> str:
        """A Running pod bound to `node`; returns its UID."""
        spec = {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}
        if empty_dir:
            spec["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        metadata = {"name": name, "labels": labels}
        if owner:
            metadata["ownerReferences"] = [{**owner, "controller": True}]
        pod = self.core.create_namespaced_pod(self.namespace, {"metadata": metadata, "spec": spec})
        self.core.patch_namespaced_pod_status(name, self.namespace, {"status": {"phase": "Running"}},
                                              _content_type=MERGE)
        return pod.metadata.uid

    def populate(self, node: str) -> None:
        replicaset = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d9c7",
                      "uid": "6f1c3c1e-0000-4000-8000-000000000001"}
        self.add_pod(node, "web-1", replicaset, {"app": "web"})
        self.add_pod(node, "cache-1", {**replicaset, "name": "cache-7f8b9"}, {"app": "cache"}, empty_dir=True)
        daemonset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": self.daemonset.metadata.uid}
        self.add_pod(node, "agent-1", daemonset, {"app": "agent"})

    def budget_status(self, disruptions_allowed: int) -> None:
        """What the disruption controller would write for one healthy pod of `web`."""
        generation = self.policy.read_namespaced_pod_disruption_budget("web", self.namespace).metadata.generation
        self.policy.patch_namespaced_pod_disruption_budget_status("web", self.namespace, {"status": {
            "observedGeneration": generation, "disruptionsAllowed": disruptions_allowed, "currentHealthy": 1,
            "desiredHealthy": 1 - disruptions_allowed, "expectedPods": 1}}, _content_type=MERGE)

    def pod_names(self, node: str) -> set[str]:
        return {pod.metadata.name for pod in
                self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items}

    def pod(self, name: str):
        try:
            return self.core.read_namespaced_pod(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def unschedulable(self, node: str) -> bool:
        return bool((self.core.read_node(node).spec or k8s.V1NodeSpec()).unschedulable)


@pytest.fixture
def cluster(apiserver) -> Cluster:  # noqa: F811 - the imported fixture
    return Cluster(apiserver)


@pytest.fixture
def node(cluster):
    """A node with web-1 (budget allowing no disruption), cache-1 (emptyDir) and agent-1 (DaemonSet), and its
    stand-in kubelet."""
    name = cluster.add_node()
    cluster.populate(name)
    cluster.budget_status(disruptions_allowed=0)
    kubelet = StandInKubelet(cluster.core, name)
    kubelet.start()
    yield name
    kubelet.stopping.set()
    kubelet.join()


def drain_module(tmp_path: Path, arguments: dict, *options: str) -> subprocess.Popen:
    """`ansible localhost -m kpy_drain -a <json> --tree <dir> <options>`, started; `module_result` collects it."""
    tree = tmp_path / "tree"
    if tree.exists():
        shutil.rmtree(tree)
    return subprocess.Popen(
        [BIN / "ansible", "localhost", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}",
         "-m", "kpy_drain", "-a", json.dumps(arguments), "--tree", str(tmp_path / "tree"), *options],
        env=ENV, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def module_result(tmp_path: Path, process: subprocess.Popen) -> tuple[int, dict]:
    output = process.communicate(timeout=120)[0]
    tree = tmp_path / "tree" / "localhost"
    assert tree.exists(), output
    return process.returncode, json.loads(tree.read_text())


def run_module(tmp_path: Path, *options: str, **arguments) -> tuple[int, dict]:
    return module_result(tmp_path, drain_module(tmp_path, arguments, *options))


def test_module_cordons_evicts_through_the_budget_leaves_the_daemonset_pod_and_uncordons(tmp_path, cluster, node):
    options = {"kubeconfig": str(cluster.kubeconfig), "node": node}

    code, result = run_module(tmp_path, **options)
    assert code != 0
    assert result["msg"] == (f"cannot drain node {node}: {cluster.namespace}/cache-1 has emptyDir data "
                             "(delete_emptydir_data: true deletes it)")
    assert not cluster.unschedulable(node), "a refused drain changes nothing"

    draining = drain_module(tmp_path, {**options, "delete_emptydir_data": True, "timeout": 120})
    web_uid = cluster.pod("web-1").metadata.uid
    wait_for("cordon, and the eviction of cache-1", lambda: cluster.unschedulable(node)
             and cluster.pod("cache-1") is None)
    assert draining.poll() is None, "the budget holds web-1, so the drain goes on"
    web = cluster.pod("web-1")
    assert web.metadata.uid == web_uid and web.metadata.deletion_timestamp is None
    cluster.budget_status(disruptions_allowed=1)
    code, result = module_result(tmp_path, draining)

    assert code == 0, result
    assert result["changed"] is True and result["cordoned"] is True
    namespace = cluster.namespace
    assert sorted(result["evicted"]) == [f"{namespace}/cache-1", f"{namespace}/web-1"]
    assert result["left"] == [{"pod": f"{namespace}/agent-1", "reason": "managed by DaemonSet agent"}]
    timing = {record["pod"]: record for record in result["pods"]}
    assert timing[f"{namespace}/cache-1"]["attempts"] == 1
    assert timing[f"{namespace}/web-1"]["attempts"] > 1, "the 429 was retried"
    assert all(record["gone_after"] >= record["evicted_after"] for record in result["pods"])
    assert cluster.pod_names(node) == {"agent-1"}
    assert cluster.unschedulable(node)

    code, result = run_module(tmp_path, **options)  # cordoned, only the DaemonSet's pod left
    assert (code, result["changed"], result["evicted"]) == (0, False, [])

    code, result = run_module(tmp_path, **options, state="uncordoned")
    assert (code, result["changed"], result["cordoned"]) == (0, True, True)
    assert not cluster.unschedulable(node)
    code, result = run_module(tmp_path, **options, state="uncordoned")
    assert (code, result["changed"]) == (0, False)


def test_module_check_mode_reports_and_changes_nothing(tmp_path, cluster, node):
    code, result = run_module(tmp_path, "--check", kubeconfig=str(cluster.kubeconfig), node=node,
                              delete_emptydir_data=True)
    assert (code, result["changed"], result["cordoned"]) == (0, True, True)
    assert sorted(result["evicted"]) == [f"{cluster.namespace}/cache-1", f"{cluster.namespace}/web-1"]
    assert not cluster.unschedulable(node)
    assert cluster.pod_names(node) == {"agent-1", "cache-1", "web-1"}


def test_module_gives_up_on_a_budget_that_stays_exhausted_naming_pod_and_budget(tmp_path, cluster, node):
    code, result = run_module(tmp_path, kubeconfig=str(cluster.kubeconfig), node=node, delete_emptydir_data=True,
                              timeout=3)
    assert code != 0
    assert result["msg"].startswith(f"timed out after 3 s evicting pods of node {node}: {cluster.namespace}/web-1: "
                                    "Cannot evict pod as it would violate the pod's disruption budget.")
    assert "The disruption budget web needs 1 healthy pods and has 1 currently" in result["msg"]
    assert result["evicted"] == [f"{cluster.namespace}/cache-1"]
    assert cluster.pod("web-1") is not None


@pytest.mark.parametrize("state", ["cordoned", "drained"])
def test_module_names_a_node_that_does_not_exist(tmp_path, cluster, state):
    code, result = run_module(tmp_path, kubeconfig=str(cluster.kubeconfig), node="nowhere", state=state)
    assert code != 0
    assert result["msg"].startswith("node nowhere not found at https://127.0.0.1:")


def test_module_names_a_missing_kubeconfig_and_an_unreachable_server(tmp_path, cluster):
    code, result = run_module(tmp_path, kubeconfig=str(tmp_path / "missing.kubeconfig"), node="n1")
    assert (code, result["msg"]) == (2, f"kubeconfig {tmp_path}/missing.kubeconfig does not exist")
    unreachable = tmp_path / "unreachable.kubeconfig"
    unreachable.write_text(cluster.kubeconfig.read_text().replace("https://127.0.0.1:", "https://127.0.0.1:1#"))
    code, result = run_module(tmp_path, kubeconfig=str(unreachable), node="n1")
    assert code != 0
    assert result["msg"].startswith("reading node n1: cannot reach the API server at https://127.0.0.1:1")
    assert "Traceback" not in json.dumps(result)


@pytest.mark.parametrize("version", ["1.27", "1.33"])
def test_kubectl_drain_honours_the_budget_and_leaves_the_daemonset_pod(cluster, node, version, tmp_path):
    kubectl = [str(KUBECTL_DIR / f"kubectl.{version}"), "--kubeconfig", str(cluster.kubeconfig),
               "--cache-dir", str(tmp_path / "cache")]
    draining = subprocess.Popen([*kubectl, "drain", node, "--ignore-daemonsets", "--delete-emptydir-data",
                                 "--timeout=120s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for("cordon, and the eviction of cache-1", lambda: cluster.unschedulable(node)
             and cluster.pod("cache-1") is None)
    assert draining.poll() is None, "the budget holds web-1, so kubectl drain goes on"
    assert cluster.pod("web-1").metadata.deletion_timestamp is None
    cluster.budget_status(disruptions_allowed=1)
    stdout, stderr = draining.communicate(timeout=120)

    assert draining.returncode == 0, stderr
    assert f"node/{node} cordoned" in stdout and f"node/{node} drained" in stdout
    assert f"Warning: ignoring DaemonSet-managed Pods: {cluster.namespace}/agent-1" in stderr
    assert "would violate the pod's disruption budget" in stderr, (stdout, stderr)  # kubectl retried the 429
    assert cluster.pod_names(node) == {"agent-1"}
    subprocess.run([*kubectl, "uncordon", node], check=True, capture_output=True)
    assert not cluster.unschedulable(node)


def test_module_cordons_only_and_a_zero_grace_period_needs_no_kubelet(tmp_path, cluster):
    """Without a kubelet, only gracePeriodSeconds=0 removes a pod bound to a node: the module passes grace_period
    in the eviction's deleteOptions."""
    node = cluster.add_node()
    cluster.populate(node)
    cluster.budget_status(disruptions_allowed=1)
    options = {"kubeconfig": str(cluster.kubeconfig), "node": node}
    code, result = run_module(tmp_path, **options, state="cordoned")
    assert (code, result["changed"], result["cordoned"], result["evicted"]) == (0, True, True, [])
    assert cluster.unschedulable(node) and cluster.pod_names(node) == {"agent-1", "cache-1", "web-1"}
    code, result = run_module(tmp_path, **options, state="cordoned")
    assert (code, result["changed"]) == (0, False)

    code, result = run_module(tmp_path, **options, delete_emptydir_data=True, grace_period=0, timeout=20)
    assert code == 0, result
    assert (result["changed"], result["cordoned"]) == (True, False)
    assert cluster.pod_names(node) == {"agent-1"}
    assert [sorted(record) for record in result["pods"]] == [["attempts", "evicted_after", "gone_after", "pod",
                                                              "summary"]] * 2


def test_an_owner_uncordons_only_what_it_cordoned(tmp_path, cluster):
    """With `owner`, a cordon is recorded on the node and only that owner's cordon is undone: a node an administrator
    cordoned stays cordoned through an upgrade, and a re-run finds the nodes an interrupted one left cordoned."""
    ours, theirs = cluster.add_node("ours"), cluster.add_node("theirs")
    options = {"kubeconfig": str(cluster.kubeconfig), "owner": "kpy-upgrade"}
    cluster.core.patch_node(theirs, {"spec": {"unschedulable": True}}, _content_type=MERGE)  # the administrator's
    for node in (ours, theirs):
        assert run_module(tmp_path, **options, node=node, state="cordoned")[0] == 0
    assert cluster.core.read_node(ours).metadata.annotations.get("kpy.io/cordoned-by") == "kpy-upgrade"
    assert "kpy.io/cordoned-by" not in (cluster.core.read_node(theirs).metadata.annotations or {})
    code, result = run_module(tmp_path, **options, node=theirs, state="uncordoned")
    assert (code, result["changed"]) == (0, False) and cluster.unschedulable(theirs)
    code, result = run_module(tmp_path, **options, node=ours, state="uncordoned")
    assert (code, result["changed"], result["cordoned"]) == (0, True, True) and not cluster.unschedulable(ours)
    assert "kpy.io/cordoned-by" not in (cluster.core.read_node(ours).metadata.annotations or {})
    assert run_module(tmp_path, **options, node=ours, state="uncordoned")[1]["changed"] is False
