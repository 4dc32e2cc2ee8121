"""Table output: columns and cells as Kubernetes' printers compute them, rows carrying what kubectl needs."""
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, strategies as st

from kpy_components.api.catalog import default_registry
from kpy_components.api.errors import APIError
from kpy_components.api.meta import format_rfc3339
from kpy_components.api.tables import human_duration, since, to_table

REGISTRY = default_registry()
NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(**delta) -> str:
    return format_rfc3339(NOW - timedelta(**delta))


def cells(group, plural, obj):
    return to_table(REGISTRY.get(group, "v1", plural), [obj], now=NOW)["rows"][0]["cells"]


@pytest.mark.parametrize("seconds,text", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"), (150, "2m30s"),
    (599, "9m59s"), (600, "10m"), (10799, "179m"), (3 * 3600, "3h"), (3.5 * 3600, "3h30m"), (8 * 3600, "8h"),
    (47 * 3600, "47h"), (48 * 3600, "2d"), (53 * 3600, "2d5h"), (8 * 86400, "8d"), (729 * 86400, "729d"),
    (730 * 86400, "2y"), (735 * 86400, "2y5d"), (8 * 365 * 86400, "8y"), (20 * 365 * 86400 + 3 * 86400, "20y"),
])
def test_human_duration_matches_kubernetes(seconds, text):
    assert human_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10 ** 10))
def test_human_duration_has_at_most_two_units(seconds):
    text = human_duration(seconds)
    assert sum(ch.isalpha() for ch in text) <= 2 and text[0].isdigit()


def test_since_handles_missing_and_bad_times():
    assert since(None, NOW) == "<unknown>" and since("garbage", NOW) == "<unknown>"
    assert since(ago(minutes=5), NOW) == "5m"


def pod(**status):
    return {"metadata": {"name": "web-1", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                         "creationTimestamp": ago(minutes=5)},
            "spec": {"nodeName": "node1", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.5"}], **status}}


RUNNING = {"state": {"running": {}}, "ready": True, "restartCount": 0}


def test_pod_table_like_the_contract_example():
    table = to_table(REGISTRY.get("", "v1", "pods"), [pod(containerStatuses=[RUNNING, RUNNING])], now=NOW,
                     list_meta={"resourceVersion": "111", "continue": "1", "remainingItemCount": 2})
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "111", "continue": "1", "remainingItemCount": 2}
    assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1), ("Node", 1),
        ("Nominated Node", 1), ("Readiness Gates", 1)]
    row = table["rows"][0]
    assert row["cells"] == ["web-1", "2/2", "Running", "0", "5m", "10.244.0.5", "node1", "<none>", "<none>"]
    assert row["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": pod()["metadata"]}
    assert row["object"]["metadata"]["namespace"] == "default", "kubectl -A needs the namespace"


def test_include_object_modes():
    info, obj = REGISTRY.get("", "v1", "pods"), pod()
    assert "object" not in to_table(info, [obj], "None", now=NOW)["rows"][0]
    assert to_table(info, [obj], "Object", now=NOW)["rows"][0]["object"] is obj
    assert to_table(info, [obj], now=NOW, column_definitions=False)["columnDefinitions"] == []
    with pytest.raises(APIError, match="includeObject"):
        to_table(info, [obj], "Everything")


@pytest.mark.parametrize("status,expected", [
    ({"containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 3,
                             "lastState": {"terminated": {"finishedAt": ago(minutes=2)}}}, RUNNING]},
     ("1/2", "CrashLoopBackOff", "3 (2m ago)")),
    ({"containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}] * 2, "phase": "Pending"},
     ("0/2", "ContainerCreating", "0")),
    ({"containerStatuses": [{"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}] * 2,
      "phase": "Succeeded"}, ("0/2", "Completed", "0")),
    ({"containerStatuses": [{"state": {"terminated": {"exitCode": 3}}}, RUNNING]}, ("1/2", "ExitCode:3", "0")),
    ({"containerStatuses": [{"state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, RUNNING],
      "conditions": [{"type": "Ready", "status": "False"}]}, ("1/2", "NotReady", "0")),
    ({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]},
     ("0/2", "SchedulingGated", "0")),
    ({"phase": "Failed", "reason": "Evicted"}, ("0/2", "Evicted", "0")),
])
def test_pod_status_reasons(status, expected):
    assert tuple(cells("", "pods", pod(**status))[1:4]) == expected


def test_pod_init_containers_and_terminating():
    obj = pod(phase="Pending", initContainerStatuses=[{"name": "init", "state": {"running": {}}}])
    obj["spec"]["initContainers"] = [{"name": "init"}, {"name": "init2"}]
    assert cells("", "pods", obj)[2] == "Init:0/2"
    obj["status"]["initContainerStatuses"] = [{"name": "init", "state": {"terminated": {"exitCode": 1,
                                                                                        "reason": "Error"}}}]
    assert cells("", "pods", obj)[2] == "Init:Error"
    obj = pod(containerStatuses=[RUNNING, RUNNING])
    obj["metadata"]["deletionTimestamp"] = ago(seconds=1)
    assert cells("", "pods", obj)[2] == "Terminating"


def test_pod_sidecar_counts_as_a_container_and_readiness_gates():
    obj = pod(initContainerStatuses=[{"name": "proxy", "started": True, "ready": True, "state": {"running": {}}}],
              containerStatuses=[RUNNING, RUNNING], conditions=[{"type": "Initialized", "status": "True"},
                                                                {"type": "example.com/gate", "status": "True"}])
    obj["spec"]["initContainers"] = [{"name": "proxy", "restartPolicy": "Always"}]
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/gate"}, {"conditionType": "other"}]
    row = cells("", "pods", obj)
    assert row[1] == "3/3" and row[8] == "1/2"


def test_completed_pod_row_condition():
    row = to_table(REGISTRY.get("", "v1", "pods"), [pod(phase="Succeeded")], now=NOW)["rows"][0]
    assert row["conditions"][0]["reason"] == "Succeeded"


def test_deployment_cells():
    deployment = {"metadata": {"name": "web", "creationTimestamp": ago(hours=3, minutes=12)},
                  "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"},
                                                                {"name": "log", "image": "busybox"}]}}},
                  "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert cells("apps", "deployments", deployment) == ["web", "2/3", 3, 2, "3h12m", "web,log",
                                                        "nginx:1.25,busybox", "app=web"]


def test_service_cells():
    svc = {"metadata": {"name": "web", "creationTimestamp": ago(days=2)},
           "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"], "selector": {"app": "web"},
                    "ports": [{"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30443, "protocol": "TCP"}]}}
    assert cells("", "services", svc) == ["web", "NodePort", "10.96.0.10", "<none>", "80/TCP,443:30443/TCP", "2d",
                                          "app=web"]
    svc["spec"]["type"] = "LoadBalancer"
    assert cells("", "services", svc)[3] == "<pending>"
    svc["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
    assert cells("", "services", svc)[3] == "1.2.3.4"
    headless = {"metadata": {"name": "h"}, "spec": {"type": "ClusterIP", "clusterIP": "None"}}
    assert cells("", "services", headless)[2:5] == ["None", "<none>", "<none>"]


def test_node_cells():
    node = {"metadata": {"name": "n1", "creationTimestamp": ago(days=10),
                         "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "etcd"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                       "nodeInfo": {"kubeletVersion": "v1.31.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7"}}}
    assert cells("", "nodes", node) == ["n1", "Ready,SchedulingDisabled", "control-plane,etcd", "10d", "v1.31.0",
                                        "10.0.0.1", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0",
                                        "containerd://1.7"]
    node["status"]["conditions"][0]["status"] = "Unknown"
    assert cells("", "nodes", node)[1] == "NotReady,SchedulingDisabled"


def test_simple_kinds():
    base = {"metadata": {"name": "x", "creationTimestamp": ago(seconds=30)}}
    assert cells("", "namespaces", {**base, "status": {"phase": "Active"}}) == ["x", "Active", "30s"]
    assert cells("", "configmaps", {**base, "data": {"a": "1"}, "binaryData": {"b": ""}}) == ["x", 2, "30s"]
    assert cells("", "secrets", {**base, "type": "Opaque", "data": {"a": "MQ=="}}) == ["x", "Opaque", 1, "30s"]
    assert cells("coordination.k8s.io", "leases", {**base, "spec": {"holderIdentity": "n1"}}) == ["x", "n1", "30s"]
    assert cells("policy", "poddisruptionbudgets", {**base, "spec": {"minAvailable": "50%"},
                                                    "status": {"disruptionsAllowed": 1}}) == [
        "x", "50%", "N/A", 1, "30s"]


def test_events_cells_both_groups():
    event = {"metadata": {"name": "web.17a", "namespace": "default"}, "type": "Warning", "reason": "BackOff",
             "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
             "source": {"component": "kubelet", "host": "node1"}, "message": "Back-off restarting\n",
             "firstTimestamp": ago(minutes=10), "lastTimestamp": ago(minutes=1), "count": 5}
    assert cells("", "events", event) == ["60s", "Warning", "BackOff", "pod/web-1", "spec.containers{web}",
                                          "kubelet, node1", "Back-off restarting", "10m", 5, "web.17a"]
    new_style = {"metadata": {"name": "n1.1"}, "type": "Normal", "reason": "NodeReady", "note": "ready",
                 "regarding": {"kind": "Node", "name": "n1"}, "reportingController": "kubelet",
                 "eventTime": format_rfc3339(NOW - timedelta(minutes=3)).replace("Z", ".000000Z")}
    assert cells("events.k8s.io", "events", new_style) == ["3m", "Normal", "NodeReady", "node/n1", "", "kubelet",
                                                           "ready", "3m", 1, "n1.1"]


def test_workload_kinds():
    template = {"spec": {"containers": [{"name": "c", "image": "i"}], "nodeSelector": {"os": "linux"}}}
    base = {"metadata": {"name": "x", "creationTimestamp": ago(minutes=1)}}
    selector = {"matchLabels": {"app": "x"}}
    assert cells("apps", "replicasets", {**base, "spec": {"replicas": 2, "selector": selector, "template": template},
                                         "status": {"replicas": 2, "readyReplicas": 1}}) == [
        "x", 2, 2, 1, "60s", "c", "i", "app=x"]
    assert cells("apps", "daemonsets", {**base, "spec": {"selector": selector, "template": template},
                                        "status": {"desiredNumberScheduled": 3, "numberReady": 2}}) == [
        "x", 3, 0, 2, 0, 0, "os=linux", "60s", "c", "i", "app=x"]
    assert cells("apps", "statefulsets", {**base, "spec": {"replicas": 3, "template": template},
                                          "status": {"readyReplicas": 3}}) == ["x", "3/3", "60s", "c", "i"]
    job = {**base, "spec": {"completions": 3, "template": template, "selector": selector},
           "status": {"succeeded": 3, "startTime": ago(minutes=5), "completionTime": ago(minutes=2),
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    assert cells("batch", "jobs", job) == ["x", "Complete", "3/3", "3m", "60s", "c", "i", "app=x"]
    cron = {**base, "spec": {"schedule": "*/5 * * * *", "suspend": False, "jobTemplate": {"spec": {
        "template": template}}}, "status": {"active": [{"name": "j"}], "lastScheduleTime": ago(minutes=4)}}
    assert cells("batch", "cronjobs", cron) == ["x", "*/5 * * * *", "<none>", "False", 1, "4m", "60s", "c", "i",
                                                "<none>"]
    rc = {**base, "spec": {"replicas": 1, "selector": {"app": "x"}, "template": template}}
    assert cells("", "replicationcontrollers", rc)[-1] == "app=x"


def test_endpoints_and_slices():
    base = {"metadata": {"name": "web", "creationTimestamp": ago(seconds=5)}}
    endpoints = {**base, "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)],
                                      "ports": [{"port": 80}]}]}
    assert cells("", "endpoints", endpoints)[1] == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."
    assert cells("", "endpoints", base)[1] == "<none>"
    slice_ = {**base, "addressType": "IPv4", "ports": [{"port": 80}],
              "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}
    assert cells("discovery.k8s.io", "endpointslices", slice_) == ["web", "IPv4", "80", "10.0.0.1,10.0.0.2", "5s"]


def test_bindings_and_quota():
    binding = {"metadata": {"name": "b", "creationTimestamp": ago(hours=1)},
               "roleRef": {"kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                            {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"},
                            {"kind": "User", "name": "bob"}]}
    assert cells("rbac.authorization.k8s.io", "rolebindings", binding) == [
        "b", "ClusterRole/view", "60m", "alice, bob", "devs", "ns/sa"]
    quota = {"metadata": {"name": "q", "creationTimestamp": ago(hours=1)},
             "status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
                        "used": {"pods": "3", "limits.cpu": "500m"}}}
    assert cells("", "resourcequotas", quota) == ["q", "60m", "pods: 3/10, requests.cpu: 0/1", "limits.cpu: 500m/2"]


def test_default_table_is_name_and_created_at():
    role = {"metadata": {"name": "reader", "namespace": "ns", "creationTimestamp": "2024-01-01T00:00:00Z"}}
    table = to_table(REGISTRY.get("rbac.authorization.k8s.io", "v1", "roles"), [role], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["reader", "2024-01-01T00:00:00Z"]


def test_every_resource_gives_one_cell_per_column():
    sparse = {"metadata": {"name": "x"}}
    for info in REGISTRY:
        table = to_table(info, [sparse], now=NOW)
        assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"]), info.qualified
