"""Per-resource strategies (defaults and validation with field paths) and the ClusterIP / NodePort allocators, on
the real registry over SQLite."""
from __future__ import annotations

import pytest

from kpy_components.api.catalog import default_registry
from kpy_components.api.errors import APIError
from kpy_components.api.qos import qos_class
from kpy_components.apiserver.registry.allocators import ClusterIPAllocator, NodePortAllocator
from kpy_components.apiserver.registry.api import API
from kpy_components.apiserver.registry.context import WriteContext
from kpy_components.apiserver.registry.strategies import podspec
from kpy_components.apiserver.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api(tmp_path):
    storage = SqliteStorage(tmp_path / "db.sqlite")
    api = API(default_registry(), storage, storage, "10.96.0.0/29")  # 6 usable addresses: fills up fast
    await api.create("", "namespaces", "", {"metadata": {"name": "app"}})
    yield api
    await storage.close()


async def create(api, group: str, plural: str, obj: dict, namespace: str = "app") -> dict:
    return await api.store(group, plural).create(WriteContext(), namespace, obj)


async def invalid(api, group: str, plural: str, obj: dict) -> list[tuple[str, str]]:
    with pytest.raises(APIError) as caught:
        await create(api, group, plural, obj)
    assert caught.value.code == 422
    return [(cause["field"], cause["message"]) for cause in caught.value.details["causes"]]


def service(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], **spec}}


async def test_pod_defaults_kubectl_relies_on(api):
    created = await create(api, "", "pods", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}, {"name": "d", "image": "nginx:1.25"}]}})
    spec = created["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["securityContext"], spec["schedulerName"],
            spec["terminationGracePeriodSeconds"]) == ("Always", "ClusterFirst", {}, "default-scheduler", 30)
    first, second = spec["containers"]
    assert first["imagePullPolicy"] == "Always" and second["imagePullPolicy"] == "IfNotPresent"
    assert first["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert first["terminationMessagePath"] == "/dev/termination-log"
    assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


async def test_pod_validation_names_each_field(api):
    causes = await invalid(api, "", "pods", {"metadata": {"name": "p"}, "spec": {"restartPolicy": "Sometimes",
        "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 70000}]}, {"name": "c"}]}})
    assert ("spec.containers[0].ports[0].containerPort",
            "Invalid value: 70000: must be between 1 and 65535, inclusive") in causes
    assert ("spec.containers[1].image", "Required value") in causes
    assert ("spec.containers[1].name", 'Duplicate value: "c"') in causes
    assert ("spec.restartPolicy",
            'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"') in causes


async def test_pod_spec_is_immutable_but_images_may_change(api):
    pods = api.store("", "pods")
    await create(api, "", "pods", {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "a"}]}})
    updated, _ = await pods.patch(WriteContext(), "app", "p", "application/strategic-merge-patch+json",
                                  {"spec": {"containers": [{"name": "c", "image": "b"}]}})
    assert updated["spec"]["containers"][0]["image"] == "b"
    with pytest.raises(APIError) as caught:
        await pods.patch(WriteContext(), "app", "p", "application/merge-patch+json", {"spec": {"hostname": "x"}})
    assert caught.value.details["causes"][0]["message"].startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`")


async def test_workload_defaults_and_selector_rules(api):
    template = {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    deployment = await create(api, "apps", "deployments", {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "a"}}, "template": template}})
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert (deployment["spec"]["replicas"], deployment["spec"]["revisionHistoryLimit"],
            deployment["spec"]["progressDeadlineSeconds"]) == (1, 10, 600)
    causes = await invalid(api, "apps", "daemonsets", {"metadata": {"name": "ds"}, "spec": {"template": template}})
    assert causes[0] == ("spec.selector", "Required value")
    job = await create(api, "batch", "jobs", {"metadata": {"name": "j"}, "spec": {"template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}})
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "j"
    assert (job["spec"]["completions"], job["spec"]["parallelism"], job["spec"]["backoffLimit"]) == (1, 1, 6)
    causes = await invalid(api, "batch", "jobs", {"metadata": {"name": "k"}, "spec": {"template": {
        "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    assert ("spec.template.spec.restartPolicy",
            'Unsupported value: "Always": supported values: "OnFailure", "Never"') in causes
    deployments = api.store("apps", "deployments")
    with pytest.raises(APIError) as caught:
        await deployments.patch(WriteContext(), "app", "d", "application/merge-patch+json",
                                {"spec": {"selector": {"matchLabels": {"app": "b"}},
                                          "template": {"metadata": {"labels": {"app": "b"}}}}})
    assert caught.value.details["causes"][0]["field"] == "spec.selector"


async def test_secrets_turn_string_data_into_base64(api):
    secret = await create(api, "", "secrets", {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"},
                                               "data": {"user": "YWRtaW4="}})
    assert secret["type"] == "Opaque" and "stringData" not in secret
    assert secret["data"] == {"user": "YWRtaW4=", "password": "aHVudGVyMg=="}
    causes = await invalid(api, "", "secrets", {"metadata": {"name": "t"}, "data": {"bad key": "!!"}})
    assert [field for field, _ in causes] == ["data", "data[bad key]"]


async def test_namespaces_and_services_use_dns_label_names(api):
    causes = await invalid(api, "", "namespaces", {"metadata": {"name": "has.dots"}})
    assert causes[0][0] == "metadata.name" and "RFC 1123 label" in causes[0][1]
    causes = await invalid(api, "", "services", service("1st"))
    assert "DNS-1035 label" in causes[0][1]


async def test_cluster_ips_and_node_ports_are_allocated_once(api):
    first = await create(api, "", "services", service("a"))
    assert first["spec"]["clusterIP"] == "10.96.0.2" and first["spec"]["clusterIPs"] == ["10.96.0.2"]
    assert first["spec"]["ports"][0] == {"port": 80, "protocol": "TCP", "targetPort": 80}
    node_port = await create(api, "", "services", service("b", type="NodePort"))
    assert node_port["spec"]["ports"][0]["nodePort"] == 30086  # above the static band (2768 ports / 32)
    causes = await invalid(api, "", "services", service("c", clusterIP="10.96.0.2"))
    assert causes == [("spec.clusterIPs", 'Invalid value: "10.96.0.2": failed to allocate: provided IP is already '
                                          "allocated")]
    headless = await create(api, "", "services", service("d", clusterIP="None"))
    assert headless["spec"]["clusterIP"] == "None"
    await api.store("", "services").delete(WriteContext(), "app", "a")  # gives 10.96.0.2 back
    reused = await create(api, "", "services", service("e"))
    assert reused["spec"]["clusterIP"] == "10.96.0.2"
    for name in ("f", "g", "h"):
        await create(api, "", "services", service(name))
    causes = await invalid(api, "", "services", service("full"))
    assert "range is full" in causes[0][1]
    outside = await invalid(api, "", "services", service("out", clusterIP="192.168.0.1"))
    assert "not in the valid range" in outside[0][1]


def test_dynamic_allocation_leaves_the_static_band_for_last():
    """The 10th address of a /16 (the cluster DNS) and the first NodePorts stay free until the rest is used."""
    cluster_ips = list(ClusterIPAllocator(None, "10.96.0.0/16").candidates())
    assert cluster_ips[0] == "10.96.1.0" and cluster_ips.index("10.96.0.10") > cluster_ips.index("10.96.255.254")
    assert len(cluster_ips) == len(set(cluster_ips)) == 65536 - 3  # network, kubernetes' .1 and broadcast excluded
    ports = list(NodePortAllocator(None).candidates())
    assert ports[0] == "30086" and ports[-1] == "30085" and sorted(map(int, ports)) == list(range(30000, 32768))


async def test_rbac_names_may_contain_colons_and_role_refs_are_fixed(api):
    binding = {"metadata": {"name": "system:readers"}, "subjects": [{"kind": "User", "name": "u"}],
               "roleRef": {"kind": "ClusterRole", "name": "view", "apiGroup": "rbac.authorization.k8s.io"}}
    await create(api, "rbac.authorization.k8s.io", "clusterrolebindings", binding, namespace="")
    store = api.store("rbac.authorization.k8s.io", "clusterrolebindings")
    with pytest.raises(APIError) as caught:
        await store.patch(WriteContext(), "", "system:readers", "application/merge-patch+json",
                          {"roleRef": {"name": "edit"}})
    assert caught.value.details["causes"][0]["message"].endswith("cannot change roleRef")


def container(name: str, **resources) -> dict:
    return {"name": name, "image": "busybox", "resources": resources}


async def test_pod_with_limits_in_one_container_and_no_requests_in_another_is_burstable(api):
    created = await create(api, "", "pods", {"metadata": {"name": "p"}, "spec": {"containers": [
        container("a", limits={"cpu": "1", "memory": "1Gi"}), container("b")]}})
    assert created["status"]["qosClass"] == "Burstable"


@pytest.mark.parametrize("containers, expected", [
    # requests default to limits per container, and equal quantities compare by value
    ([container("a", limits={"cpu": "1", "memory": "1Gi"})], "Guaranteed"),
    ([container("a", limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "1000m"}),
      container("b", limits={"cpu": "500m", "memory": "1024Mi"})], "Guaranteed"),
    ([container("a", limits={"cpu": "1", "memory": "1Gi"}, requests={"cpu": "500m"})], "Burstable"),
    ([container("a", limits={"cpu": "1"})], "Burstable"),
    ([container("a", requests={"memory": "1Gi"}), container("b")], "Burstable"),
    ([container("a", limits={"cpu": "1", "memory": "1Gi"}), container("b", requests={"cpu": "1"})], "Burstable"),
    ([container("a", requests={"cpu": "0"}), container("b", limits={"ephemeral-storage": "1Gi"})], "BestEffort"),
    ([container("a"), container("b")], "BestEffort"),
])
def test_qos_class_follows_kubernetes(containers, expected):
    assert qos_class({"containers": containers}) == expected


def test_qos_class_counts_init_containers():
    spec = {"containers": [container("a", limits={"cpu": "1", "memory": "1Gi"})],
            "initContainers": [container("i", requests={"cpu": "1"})]}
    assert qos_class(spec) == "Burstable"
