"""The cluster controllers of kpy-controller-manager against a REAL kpy-apiserver (one per module), run in-process
with simulated nodes: namespace deletion, default service accounts and their tokens, the root CA ConfigMap,
garbage collection with the three propagation policies (also through the real kubectl), endpoints and endpoint
slices, node IPAM, node lifecycle with taint-based eviction, pod GC and disruption budgets.
"""
from __future__ import annotations

import asyncio
import base64

import pytest
from conftest import cm_config, eventually, exists, run_component

from apiserver.conftest import KUBECTL_DIR, Kubectl
from kpy_components.api.errors import APIError
from kpy_components.api.meta import parse_rfc3339
from kpy_components.controller_manager import manager
from kpy_components.client import ClientConfig, RESTClient
from kpy_components.controller_manager.config import NodeLifecycleConfig, ServiceAccountSettings
from kpy_components.controller_manager.controllers.podgc import PodGCController

pytestmark = pytest.mark.anyio


def kubectl_runner(cluster, version: str, cache_dir):
    """kubectl `version` run off the event loop (the controllers under test share the loop)."""
    binary = Kubectl(version, cluster.admin_kubeconfig, cache_dir)
    assert (KUBECTL_DIR / f"kubectl.{version}").exists(), f"the tests need the real kubectl {version}"

    async def run(*args: str, timeout: float = 60):
        return await asyncio.to_thread(binary, *args, timeout=timeout)
    return run


def owner_reference(owner: dict, block: bool = True) -> dict:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": block}


def pod_body(name: str, labels: dict | None = None, owner: dict | None = None, node: str | None = None,
             **spec) -> dict:
    metadata = {"name": name, "labels": labels or {}}
    if owner is not None:
        metadata["ownerReferences"] = [owner_reference(owner)]
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}], **spec}}
    if node:
        body["spec"]["nodeName"] = node
    return body


# --- namespaces and service accounts -------------------------------------------------------------------------------

async def test_every_namespace_gets_a_default_service_account_again_after_deletion(cluster, client):
    accounts, namespaces = client.resource("serviceaccounts"), client.resource("namespaces")
    async with run_component(manager.run, cm_config(["serviceaccount"]), cluster):
        await client.create(namespaces, {"metadata": {"name": "sa-auto"}})
        await eventually(lambda: exists(client, accounts, "default", "sa-auto"), message="default account")
        await client.delete(accounts, "default", "sa-auto")
        await eventually(lambda: exists(client, accounts, "default", "sa-auto"), message="default account again")


async def test_deleting_a_namespace_deletes_its_content_then_the_namespace(cluster, client, nodes, tmp_path):
    namespaces, pods, configmaps = client.resource("namespaces"), client.resource("pods"), client.resource("configmaps")
    kubectl = kubectl_runner(cluster, "1.33", tmp_path / "cache")
    await nodes.add("ns-node")
    async with run_component(manager.run, cm_config(["namespace", "serviceaccount"]), cluster):
        await client.create(namespaces, {"metadata": {"name": "doomed"}})
        await eventually(lambda: exists(client, client.resource("serviceaccounts"), "default", "doomed"))
        await client.create(configmaps, {"metadata": {"name": "settings"}, "data": {"a": "b"}}, "doomed")
        await client.create(pods, pod_body("runs", node="ns-node"), "doomed")
        await eventually(lambda: _phase(client, "doomed", "runs", "Running"), message="pod running")
        result = await kubectl("delete", "namespace", "doomed", "--timeout=60s")
        assert result.stdout.strip() == 'namespace "doomed" deleted'
        assert not await exists(client, namespaces, "doomed")
        assert not await exists(client, configmaps, "settings", "doomed")


async def test_namespace_deletion_reports_remaining_content_and_waits_for_finalizers(cluster, client):
    namespaces, configmaps = client.resource("namespaces"), client.resource("configmaps")
    await client.create(namespaces, {"metadata": {"name": "held"}})
    await client.create(configmaps, {"metadata": {"name": "kept", "finalizers": ["example.com/hold"]}}, "held")
    async with run_component(manager.run, cm_config(["namespace"]), cluster):
        await client.delete(namespaces, "held")

        async def remaining():
            conditions = {c["type"]: c for c in (await client.get(namespaces, "held")).get("status", {})
                          .get("conditions", [])}
            return conditions if conditions.get("NamespaceFinalizersRemaining", {}).get("status") == "True" else None
        conditions = await eventually(remaining, message="FinalizersRemaining condition")
        assert conditions["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
        assert conditions["NamespaceContentRemaining"]["message"] == \
            "Some resources are remaining: configmaps has 1 resource instances"
        assert conditions["NamespaceFinalizersRemaining"]["message"] == \
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        assert conditions["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
        assert (await client.get(namespaces, "held"))["spec"]["finalizers"] == ["kubernetes"]
        await client.patch(configmaps, "kept", {"metadata": {"finalizers": None}}, "held")
        await eventually(lambda: _gone(client, namespaces, "held"), message="namespace removed")


async def _phase(client, namespace: str, name: str, phase: str) -> bool:
    pod = await client.get(client.resource("pods"), name, namespace)
    return pod.get("status", {}).get("phase") == phase


async def _gone(client, info, name: str, namespace: str | None = None) -> bool:
    return not await exists(client, info, name, namespace)


# --- garbage collection ----------------------------------------------------------------------------------------------

def workload(kind: str, name: str, labels: dict, owner: dict | None = None) -> dict:
    body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}}}
    if owner is not None:
        body["metadata"]["ownerReferences"] = [owner_reference(owner)]
    return body


async def deployment_tree(client, nodes, namespace: str, name: str) -> tuple[dict, dict, list[dict]]:
    """A Deployment owning a ReplicaSet owning two running pods (ownerReferences written here, as the workload
    controllers would, so that only the garbage collector acts)."""
    labels = {"app": name}
    deployment = await client.create(client.resource("deployments", "apps"), workload("Deployment", name, labels),
                                     namespace)
    replicaset = await client.create(client.resource("replicasets", "apps"),
                                     workload("ReplicaSet", f"{name}-1", labels, deployment), namespace)
    pods = [await client.create(client.resource("pods"), pod_body(f"{name}-{i}", labels, replicaset,
                                                                        f"node-{namespace}"),
                                namespace) for i in range(2)]
    for pod in pods:
        await eventually(lambda pod=pod: _phase(client, namespace, pod["metadata"]["name"], "Running"))
    return deployment, replicaset, pods


@pytest.mark.parametrize("cascade", ["background", "foreground"])
async def test_kubectl_delete_deployment_cascades(cluster, client, nodes, namespace, tmp_path, cascade):
    kubectl = kubectl_runner(cluster, "1.33", tmp_path / "cache")
    await nodes.add(f"node-{namespace}")
    async with run_component(manager.run, cm_config(["garbagecollector"]), cluster):
        _, replicaset, pods = await deployment_tree(client, nodes, namespace, "web")
        result = await kubectl("delete", "deployment", "web", "-n", namespace, f"--cascade={cascade}",
                               "--timeout=60s")
        assert result.stdout.strip() == 'deployment.apps "web" deleted'
        if cascade == "foreground":  # the owner waited for its dependents: they are gone when it is
            assert not await exists(client, client.resource("replicasets", "apps"), "web-1", namespace)
            for pod in pods:
                assert not await exists(client, client.resource("pods"), pod["metadata"]["name"], namespace)
        await eventually(lambda: _gone(client, client.resource("replicasets", "apps"), "web-1", namespace),
                         message="replicaset collected")
        for pod in pods:
            await eventually(lambda pod=pod: _gone(client, client.resource("pods"), pod["metadata"]["name"],
                                                   namespace), message="pod collected")


async def test_foreground_deletion_keeps_the_owner_until_blocking_dependents_are_gone(cluster, client, namespace):
    configmaps = client.resource("configmaps")
    owner = await client.create(configmaps, {"metadata": {"name": "owner"}}, namespace)
    reference = owner_reference({**owner, "apiVersion": "v1", "kind": "ConfigMap"})
    await client.create(configmaps, {"metadata": {"name": "held", "ownerReferences": [reference],
                                                  "finalizers": ["example.com/hold"]}}, namespace)
    async with run_component(manager.run, cm_config(["garbagecollector"]), cluster):
        await client.delete(configmaps, "owner", namespace, propagation_policy="Foreground")
        held = await eventually(lambda: _terminating(client, configmaps, "held", namespace), message="dependent")
        assert held["metadata"]["finalizers"] == ["example.com/hold"]
        still = await client.get(configmaps, "owner", namespace)
        assert still["metadata"]["finalizers"] == ["foregroundDeletion"]
        await client.patch(configmaps, "held", {"metadata": {"finalizers": None}}, namespace)
        await eventually(lambda: _gone(client, configmaps, "owner", namespace), message="owner removed")


async def test_kubectl_delete_cascade_orphan_keeps_the_dependents(cluster, client, nodes, namespace, tmp_path):
    kubectl = kubectl_runner(cluster, "1.27", tmp_path / "cache")
    await nodes.add(f"node-{namespace}")
    replicasets = client.resource("replicasets", "apps")
    async with run_component(manager.run, cm_config(["garbagecollector"]), cluster):
        _, replicaset, pods = await deployment_tree(client, nodes, namespace, "api")
        await kubectl("delete", "deployment", "api", "-n", namespace, "--cascade=orphan", "--timeout=60s")
        assert not await exists(client, client.resource("deployments", "apps"), "api", namespace)
        orphan = await client.get(replicasets, "api-1", namespace)
        assert "ownerReferences" not in orphan["metadata"]
        assert "orphan" not in (orphan["metadata"].get("finalizers") or [])
        await asyncio.sleep(1)  # the collector has seen the owner go: nothing else may follow
        for pod in pods:
            kept = await client.get(client.resource("pods"), pod["metadata"]["name"], namespace)
            assert kept["metadata"]["ownerReferences"][0]["uid"] == replicaset["metadata"]["uid"]
            assert not kept["metadata"].get("deletionTimestamp")


async def test_dependents_of_an_owner_that_never_existed_are_collected(cluster, client, namespace):
    configmaps = client.resource("configmaps")
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "0b0c4a5e-0000-4000-8000"
                                                                                            "-000000000000"}}
    await client.create(configmaps, {"metadata": {"name": "stray", "ownerReferences": [owner_reference(ghost)]}},
                        namespace)
    await client.create(configmaps, {"metadata": {"name": "ghost"}}, namespace)  # same name, other uid
    async with run_component(manager.run, cm_config(["garbagecollector"]), cluster):
        await eventually(lambda: _gone(client, configmaps, "stray", namespace), message="stray collected")
        assert await exists(client, configmaps, "ghost", namespace)


async def _terminating(client, info, name: str, namespace: str) -> dict | None:
    obj = await client.get(info, name, namespace)
    return obj if obj["metadata"].get("deletionTimestamp") else None


# --- node lifecycle ----------------------------------------------------------------------------------------------------

FAST_LIFECYCLE = NodeLifecycleConfig(node_monitor_period=0.5, node_monitor_grace_period=4.0,
                                     node_startup_grace_period=4.0)


def toleration(key: str, seconds: int | None) -> dict:
    entry = {"key": key, "operator": "Exists", "effect": "NoExecute"}
    return entry if seconds is None else {**entry, "tolerationSeconds": seconds}


async def test_a_silent_node_becomes_unknown_tainted_and_loses_pods_past_their_toleration(cluster, client, nodes,
                                                                                          namespace):
    pods, node_info = client.resource("pods"), client.resource("nodes")
    await nodes.add("lc-silent")
    await nodes.add("lc-alive")
    short = [toleration("node.kubernetes.io/unreachable", 3), toleration("node.kubernetes.io/not-ready", 3)]
    await client.create(pods, pod_body("short", node="lc-silent", tolerations=short), namespace)
    await client.create(pods, pod_body("forever", node="lc-silent",
                                       tolerations=[toleration("node.kubernetes.io/unreachable", None)]), namespace)
    await client.create(pods, pod_body("default", node="lc-silent"), namespace)  # 300 s from admission
    await client.create(pods, pod_body("elsewhere", node="lc-alive", tolerations=short), namespace)
    for name in ("short", "forever", "default", "elsewhere"):
        await eventually(lambda name=name: _phase(client, namespace, name, "Running"))
    config = cm_config(["nodelifecycle"], node_lifecycle=FAST_LIFECYCLE)
    async with run_component(manager.run, config, cluster):
        nodes.fail("lc-silent")

        async def unknown():
            node = await client.get(node_info, "lc-silent")
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            return node if ready["status"] == "Unknown" else None
        node = await eventually(unknown, timeout=15, message="Ready Unknown")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["reason"], ready["message"]) == ("NodeStatusUnknown", "Kubelet stopped posting node status.")

        async def tainted():
            node = await client.get(node_info, "lc-silent")
            return {(t["key"], t["effect"]): t for t in node["spec"].get("taints", [])}
        taints = await eventually(lambda: _has(tainted(), 2), message="unreachable taints")
        assert set(taints) == {("node.kubernetes.io/unreachable", "NoSchedule"),
                               ("node.kubernetes.io/unreachable", "NoExecute")}
        added = parse_rfc3339(taints[("node.kubernetes.io/unreachable", "NoExecute")]["timeAdded"]).timestamp()
        evicted = await eventually(lambda: _terminating(client, pods, "short", namespace), timeout=15,
                                   message="short-toleration pod evicted")
        assert any(c["type"] == "DisruptionTarget" and c["reason"] == "DeletionByTaintManager"
                   for c in evicted["status"]["conditions"])
        assert parse_rfc3339(evicted["metadata"]["deletionTimestamp"]).timestamp() >= added + 3 - 1
        await asyncio.sleep(1)
        for name in ("forever", "default", "elsewhere"):
            assert not (await client.get(pods, name, namespace))["metadata"].get("deletionTimestamp"), name
        alive = await client.get(node_info, "lc-alive")
        assert not alive["spec"].get("taints")


async def test_cordoning_mirrors_into_the_unschedulable_taint(cluster, client, nodes, tmp_path):
    kubectl = kubectl_runner(cluster, "1.33", tmp_path / "cache")
    node_info = client.resource("nodes")
    await nodes.add("lc-cordon")
    async with run_component(manager.run, cm_config(["nodelifecycle"], node_lifecycle=FAST_LIFECYCLE), cluster):
        await kubectl("cordon", "lc-cordon")

        async def taint_keys():
            return [t["key"] for t in (await client.get(node_info, "lc-cordon"))["spec"].get("taints", [])]
        await eventually(lambda: _equal(taint_keys(), ["node.kubernetes.io/unschedulable"]), message="taint added")
        await kubectl("uncordon", "lc-cordon")
        await eventually(lambda: _equal(taint_keys(), []), message="taint removed")


async def _has(awaitable, count: int):
    value = await awaitable
    return value if len(value) >= count else None


async def _equal(awaitable, expected) -> bool:
    return await awaitable == expected


# --- endpoints and endpoint slices ------------------------------------------------------------------------------------

def web_pod(name: str, port: int, node: str) -> dict:
    body = pod_body(name, {"app": "web"}, node=node)
    body["spec"]["containers"][0]["ports"] = [{"name": "web", "containerPort": port}]
    return body


async def not_ready_pod(client, namespace: str, name: str, port: int, ip: str) -> None:
    """A pod on a node no simulated kubelet looks after, given a podIP but no readiness by hand."""
    pod = await client.create(client.resource("pods"), web_pod(name, port, "nobody-runs-this"), namespace)
    pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                     "conditions": [{"type": "Ready", "status": "False"}]}
    await client.update(client.resource("pods"), pod, subresource="status")


async def test_endpoints_and_slices_follow_pods_readiness_and_ports(cluster, client, nodes, namespace):
    services, endpoints = client.resource("services"), client.resource("endpoints")
    slices = client.resource("endpointslices", "discovery.k8s.io")
    await nodes.add(f"node-{namespace}")
    await client.create(services, {"metadata": {"name": "web"}, "spec": {
        "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "web"}]}}, namespace)
    await client.create(client.resource("pods"), web_pod("a", 8080, f"node-{namespace}"), namespace)
    await client.create(client.resource("pods"), web_pod("c", 9090, f"node-{namespace}"), namespace)
    await not_ready_pod(client, namespace, "b", 8080, "10.99.0.2")
    for name in ("a", "c"):
        await eventually(lambda name=name: _phase(client, namespace, name, "Running"))
    async with run_component(manager.run, cm_config(["endpoints", "endpointslice"]), cluster):
        async def subsets():
            found = (await client.get(endpoints, "web", namespace)) if await exists(client, endpoints, "web",
                                                                                       namespace) else {}
            groups = found.get("subsets") or []
            return groups if len(groups) == 2 and sum(len(g.get("addresses", [])) for g in groups) == 2 else None
        groups = await eventually(subsets, message="two subsets")
        by_port = {g["ports"][0]["port"]: g for g in groups}
        assert by_port[8080]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        assert [a["targetRef"]["name"] for a in by_port[8080]["addresses"]] == ["a"]
        assert by_port[8080]["addresses"][0]["nodeName"] == f"node-{namespace}"
        assert by_port[8080]["notReadyAddresses"] == [
            {"ip": "10.99.0.2", "nodeName": "nobody-runs-this", "targetRef": {
                "kind": "Pod", "namespace": namespace, "name": "b",
                "uid": (await client.get(client.resource("pods"), "b", namespace))["metadata"]["uid"]}}]
        assert [a["targetRef"]["name"] for a in by_port[9090]["addresses"]] == ["c"]

        async def endpoint_conditions():
            listed = (await client.list(slices, namespace,
                                        label_selector="kubernetes.io/service-name=web")).get("items", [])
            return {e["targetRef"]["name"]: (s["ports"][0]["port"], e["conditions"]) for s in listed
                    for e in s.get("endpoints") or []}
        seen = await eventually(lambda: _has(endpoint_conditions(), 3), message="three slice endpoints")
        assert seen == {"a": (8080, {"ready": True, "serving": True, "terminating": False}),
                        "b": (8080, {"ready": False, "serving": False, "terminating": False}),
                        "c": (9090, {"ready": True, "serving": True, "terminating": False})}
        listed = (await client.list(slices, namespace, label_selector="kubernetes.io/service-name=web"))["items"]
        assert all(s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] ==
                   "endpointslice-controller.k8s.io" and s["metadata"]["ownerReferences"][0]["kind"] == "Service"
                   for s in listed)

        await client.patch(services, "web", {"spec": {"publishNotReadyAddresses": True}}, namespace)

        async def all_ready():
            groups = (await client.get(endpoints, "web", namespace)).get("subsets") or []
            return all("notReadyAddresses" not in g for g in groups) and \
                sum(len(g.get("addresses", [])) for g in groups) == 3
        await eventually(all_ready, message="publishNotReadyAddresses lists b as ready")

        await client.delete(client.resource("pods"), "c", namespace)
        await eventually(lambda: _equal(_count(endpoint_conditions()), 2), message="c gone from the slices")
        await client.delete(services, "web", namespace)
        await eventually(lambda: _gone(client, endpoints, "web", namespace), message="endpoints deleted")


async def _count(awaitable) -> int:
    return len(await awaitable)


# --- pod GC ------------------------------------------------------------------------------------------------------------

async def test_pod_gc_removes_finished_pods_beyond_the_threshold_and_orphans(cluster, client, nodes, namespace,
                                                                             monkeypatch):
    monkeypatch.setattr(PodGCController, "period", 0.5)
    monkeypatch.setattr(PodGCController, "quarantine", 1.0)
    pods = client.resource("pods")
    await nodes.add(f"node-{namespace}")
    for index in range(3):
        body = pod_body(f"done-{index}", node=f"node-{namespace}")
        body["metadata"]["annotations"] = {"sim.kpy.io/exit-after": "0"}
        await client.create(pods, body, namespace)
        await eventually(lambda index=index: _phase(client, namespace, f"done-{index}", "Succeeded"))
    await client.create(pods, pod_body("orphan", node="node-that-never-was"), namespace)
    async with run_component(manager.run, cm_config(["podgc"], terminated_pod_gc_threshold=1), cluster):
        for name in ("done-0", "done-1", "orphan"):
            await eventually(lambda name=name: _gone(client, pods, name, namespace), message=f"{name} collected")
        assert await exists(client, pods, "done-2", namespace)


# --- disruption budgets ------------------------------------------------------------------------------------------------

async def test_budget_status_lets_the_api_server_evict_exactly_what_it_allows(cluster, client, nodes, namespace):
    pods, budgets = client.resource("pods"), client.resource("poddisruptionbudgets", "policy")
    node = f"node-{namespace}"
    await nodes.add(node)
    replicaset = await client.create(client.resource("replicasets", "apps"),
                                     workload("ReplicaSet", "db", {"app": "db"}), namespace)
    await client.patch(client.resource("replicasets", "apps"), "db", {"spec": {"replicas": 3}}, namespace)
    for index in range(3):
        await client.create(pods, pod_body(f"db-{index}", {"app": "db"}, replicaset, node), namespace)
        await eventually(lambda index=index: _phase(client, namespace, f"db-{index}", "Running"))
    await client.create(budgets, {"metadata": {"name": "db-min"}, "spec": {
        "minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}}, namespace)
    await client.create(budgets, {"metadata": {"name": "other-max"}, "spec": {
        "maxUnavailable": "34%", "selector": {"matchLabels": {"app": "db", "absent": "x"}}}}, namespace)

    async def status(name: str, **wanted):
        found = (await client.get(budgets, name, namespace)).get("status") or {}
        return found if all(found.get(k) == v for k, v in wanted.items()) else None

    async with run_component(manager.run, cm_config(["disruption"]), cluster):
        found = await eventually(lambda: status("db-min", currentHealthy=3), message="budget status")
        assert {k: found[k] for k in ("expectedPods", "desiredHealthy", "currentHealthy", "disruptionsAllowed",
                                      "observedGeneration")} == {"expectedPods": 3, "desiredHealthy": 2,
                                                                 "currentHealthy": 3, "disruptionsAllowed": 1,
                                                                 "observedGeneration": 1}
        [allowed] = found["conditions"]
        assert (allowed["type"], allowed["status"], allowed["reason"]) == ("DisruptionAllowed", "True",
                                                                           "SufficientPods")
        eviction = {"apiVersion": "policy/v1", "kind": "Eviction"}
        await client.create(pods, {**eviction, "metadata": {"name": "db-0", "namespace": namespace}}, namespace,
                            name="db-0", subresource="eviction")
        with pytest.raises(APIError) as refused:
            await client.create(pods, {**eviction, "metadata": {"name": "db-1", "namespace": namespace}}, namespace,
                                name="db-1", subresource="eviction")
        assert refused.value.code == 429
        async def settled():  # the evicted pod gone, nothing is left in disruptedPods to wait for
            found = await status("db-min", currentHealthy=2, disruptionsAllowed=0)
            return found if found and "disruptedPods" not in found else None

        found = await eventually(settled, message="budget settled after the eviction")
        assert found["conditions"][0]["reason"] == "InsufficientPods"
        empty = await eventually(lambda: status("other-max", observedGeneration=1), message="empty budget status")
        assert (empty["expectedPods"], empty["desiredHealthy"], empty["disruptionsAllowed"]) == (0, 0, 0)


# --- service account tokens and the root CA ------------------------------------------------------------------------------

async def test_token_secrets_are_filled_accepted_by_the_api_server_and_die_with_their_account(cluster, client,
                                                                                             namespace):
    accounts, secrets = client.resource("serviceaccounts"), client.resource("secrets")
    settings = ServiceAccountSettings(private_key_file=cluster.directory / "sa.key",
                                      root_ca_file=cluster.directory / "ca.crt")
    config = cm_config(["serviceaccount", "serviceaccount-token", "root-ca-cert-publisher"],
                       service_account=settings)
    ca = (cluster.directory / "ca.crt").read_bytes()
    await client.create(accounts, {"metadata": {"name": "robot"}}, namespace)
    await client.create(secrets, {"metadata": {"name": "robot-token", "annotations": {
        "kubernetes.io/service-account.name": "robot"}}, "type": "kubernetes.io/service-account-token"}, namespace)
    async with run_component(manager.run, config, cluster):
        async def filled():
            secret = await client.get(secrets, "robot-token", namespace)
            return secret if {"token", "ca.crt", "namespace"} <= set(secret.get("data") or {}) else None
        secret = await eventually(filled, message="token secret filled")
        data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        assert data["ca.crt"] == ca and data["namespace"] == namespace.encode()
        robot = await client.get(accounts, "robot", namespace)
        assert secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == robot["metadata"]["uid"]

        as_robot = RESTClient(ClientConfig(server=cluster.url, ca_pem=ca, token=data["token"].decode()))
        async with as_robot:
            review = await as_robot.create(as_robot.resource("selfsubjectreviews", "authentication.k8s.io"),
                                           {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:robot"

        async def published():
            configmaps = client.resource("configmaps")
            found = await exists(client, configmaps, "kube-root-ca.crt", namespace)
            return found and (await client.get(configmaps, "kube-root-ca.crt", namespace))["data"]
        assert (await eventually(published, message="kube-root-ca.crt"))["ca.crt"] == ca.decode()

        await client.delete(accounts, "robot", namespace)
        await eventually(lambda: _gone(client, secrets, "robot-token", namespace), message="token secret deleted")


# --- all of them, under their own RBAC roles ---------------------------------------------------------------------------

async def test_cluster_controllers_work_as_their_own_service_accounts(cluster, client, nodes, tmp_path):
    """--use-service-account-credentials: every controller writes as kube-system/<its account> with the
    system:controller:* role Kubernetes gives it; a namespace full of content still goes."""
    kubectl = kubectl_runner(cluster, "1.27", tmp_path / "cache")
    names = ["namespace", "garbagecollector", "serviceaccount", "endpoints", "endpointslice", "disruption", "podgc",
             "nodelifecycle"]
    namespace = "rbac-bound"
    async with run_component(manager.run, cm_config(names, use_service_account_credentials=True), cluster):
        await client.create(client.resource("namespaces"), {"metadata": {"name": namespace}})
        await eventually(lambda: exists(client, client.resource("serviceaccounts"), "default", namespace))
        await nodes.add(f"node-{namespace}")
        await deployment_tree(client, nodes, namespace, "app")
        await client.create(client.resource("services"), {"metadata": {"name": "app"}, "spec": {
            "selector": {"app": "app"}, "ports": [{"port": 80}]}}, namespace)
        await client.create(client.resource("poddisruptionbudgets", "policy"), {"metadata": {"name": "app"}, "spec": {
            "maxUnavailable": 1, "selector": {"matchLabels": {"app": "app"}}}}, namespace)

        async def endpoints_ready():
            found = await exists(client, client.resource("endpoints"), "app", namespace)
            return found and len(((await client.get(client.resource("endpoints"), "app", namespace))
                                  .get("subsets") or [{}])[0].get("addresses", [])) == 2
        await eventually(endpoints_ready, message="endpoints written as endpoint-controller")
        await eventually(lambda: _has_items(client, client.resource("endpointslices", "discovery.k8s.io"), namespace),
                         message="slices written as endpointslice-controller")

        async def budget_synced():
            status = (await client.get(client.resource("poddisruptionbudgets", "policy"), "app", namespace))["status"]
            return status.get("observedGeneration") == 1
        await eventually(budget_synced, message="budget status written as disruption-controller")
        result = await kubectl("delete", "namespace", namespace, "--timeout=60s")
        assert result.stdout.strip() == f'namespace "{namespace}" deleted'


async def _has_items(client, info, namespace: str) -> bool:
    return bool((await client.list(info, namespace)).get("items"))
