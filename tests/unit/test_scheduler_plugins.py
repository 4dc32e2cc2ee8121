"""The scheduler's plugins one by one, on NodeInfos and PodInfos built from plain objects (no API), with the reasons
worded as kube-scheduler words them. `node`/`pod`/`bound` build objects for the other scheduler unit tests too."""
from __future__ import annotations

from kpy_components.scheduler.cache import NodeInfo
from kpy_components.scheduler.framework import SKIP, UNSCHEDULABLE, UNSCHEDULABLE_AND_UNRESOLVABLE
from kpy_components.scheduler.plugins.node_affinity import NodeAffinity
from kpy_components.scheduler.plugins.node_name import NodeName
from kpy_components.scheduler.plugins.node_ports import NodePorts
from kpy_components.scheduler.plugins.node_resources import NodeResourcesBalancedAllocation, NodeResourcesFit
from kpy_components.scheduler.plugins.node_unschedulable import NodeUnschedulable
from kpy_components.scheduler.plugins.pod_topology_spread import PodTopologySpread
from kpy_components.scheduler.plugins.taint_toleration import TaintToleration
from kpy_components.scheduler.podinfo import PodInfo, pod_requests


def node(name: str = "n1", cpu: str = "4", memory: str = "8Gi", pods: int = 110, labels: dict | None = None,
         taints: list | None = None, unschedulable: bool = False, **extra: str) -> NodeInfo:
    return NodeInfo({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
                     "spec": {"taints": taints or [], "unschedulable": unschedulable},
                     "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods), **extra}}})


def pod(name: str = "p", namespace: str = "default", cpu: str | None = None, memory: str | None = None,
        labels: dict | None = None, priority: int = 0, **spec) -> PodInfo:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    containers = spec.pop("containers", [{"name": "app", "resources": {"requests": requests}}])
    return PodInfo.of({"metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                                    "labels": labels or {}},
                       "spec": {"containers": containers, "priority": priority, **spec}})


def bound(target: NodeInfo, *pods: PodInfo) -> NodeInfo:
    for info in pods:
        target.add_pod(info)
    return target


def run_filter(plugin, info: PodInfo, target: NodeInfo, nodes=None):
    """PreFilter (when the plugin has one) then Filter, as a cycle runs them; SKIP when the plugin opts out."""
    state = {}
    if hasattr(plugin, "pre_filter"):
        status = plugin.pre_filter(state, info, nodes or [target])
        if status.code == SKIP:
            return SKIP
    return plugin.filter(state, info, target)


# --- NodeUnschedulable, NodeName ---------------------------------------------------------------------------------

def test_cordoned_node_refuses_pods_unless_they_tolerate_it():
    cordoned = node(unschedulable=True)
    status = run_filter(NodeUnschedulable(), pod(), cordoned)
    assert status.code == UNSCHEDULABLE_AND_UNRESOLVABLE and status.reasons == ("node(s) were unschedulable",)
    tolerating = pod(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                   "effect": "NoSchedule"}])
    assert run_filter(NodeUnschedulable(), tolerating, cordoned) is None
    assert run_filter(NodeUnschedulable(), pod(), node()) is None


def test_node_name_matches_only_the_named_node():
    assert run_filter(NodeName(), pod(), node("n1")) == SKIP
    assert run_filter(NodeName(), pod(nodeName="n1"), node("n1")) is None
    assert run_filter(NodeName(), pod(nodeName="n2"), node("n1")).reasons == (
        "node(s) didn't match the requested node name",)


# --- NodeResourcesFit --------------------------------------------------------------------------------------------

def test_requests_must_fit_what_the_node_has_left():
    target = bound(node(cpu="2", memory="1Gi"), pod("a", cpu="1500m", memory="512Mi"))
    assert run_filter(NodeResourcesFit(), pod(cpu="500m"), target) is None
    status = run_filter(NodeResourcesFit(), pod(cpu="501m", memory="600Mi"), target)
    assert status.code == UNSCHEDULABLE and status.reasons == ("Insufficient cpu", "Insufficient memory")


def test_pod_count_is_limited_by_allocatable_pods():
    target = bound(node(pods=2), pod("a"), pod("b"))
    assert run_filter(NodeResourcesFit(), pod(), target).reasons == ("Too many pods",)


def test_extended_resources_are_checked_and_ignorable():
    gpu_pod = pod(containers=[{"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}])
    assert run_filter(NodeResourcesFit(), gpu_pod, node()).reasons == ("Insufficient example.com/gpu",)
    assert run_filter(NodeResourcesFit(), gpu_pod, node(**{"example.com/gpu": "2"})) is None
    assert run_filter(NodeResourcesFit(ignored_resources=("example.com/gpu",)), gpu_pod, node()) is None


def test_effective_requests_take_the_largest_init_container_sidecars_and_overhead():
    def container(cpu: str, **extra) -> dict:
        return {"name": cpu, "resources": {"requests": {"cpu": cpu}}, **extra}
    # init containers run one at a time: the largest counts when larger than the app containers together
    assert pod_requests({"containers": [container("1"), container("1")],
                         "initContainers": [container("3"), container("500m")]}) == {"cpu": 3000}
    # a sidecar (restartPolicy Always) keeps running beside everything started after it
    assert pod_requests({"containers": [container("1")],
                         "initContainers": [container("200m", restartPolicy="Always"), container("2")]}) == {
        "cpu": 2200}
    assert pod_requests({"containers": [container("1")], "overhead": {"cpu": "250m"}}) == {"cpu": 1250}


def test_least_allocated_prefers_the_emptier_node_and_balanced_the_even_one():
    fit = NodeResourcesFit()
    empty = node("empty")
    busy = bound(node("busy"), pod("a", cpu="3", memory="6Gi"))
    new = pod(cpu="500m", memory="1Gi")
    assert fit.score({}, new, empty) > fit.score({}, new, busy)
    most = NodeResourcesFit("MostAllocated")
    assert most.score({}, new, busy) > most.score({}, new, empty)
    balanced = NodeResourcesBalancedAllocation()
    even = bound(node("even", cpu="4", memory="4Gi"), pod("b", cpu="2", memory="2Gi"))
    skewed = bound(node("skewed", cpu="4", memory="4Gi"), pod("c", cpu="3", memory="512Mi"))
    assert balanced.score({}, pod(cpu="1", memory="1Gi"), even) == 100
    assert balanced.score({}, pod(cpu="1", memory="1Gi"), skewed) < 100


# --- NodeAffinity ------------------------------------------------------------------------------------------------

def _required(*terms) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def test_node_selector_and_required_affinity_filter():
    ssd = node("ssd", labels={"disk": "ssd", "gen": "5"})
    hdd = node("hdd", labels={"disk": "hdd", "gen": "3"})
    assert run_filter(NodeAffinity(), pod(), ssd) == SKIP
    selector = pod(nodeSelector={"disk": "ssd"})
    assert run_filter(NodeAffinity(), selector, ssd) is None
    status = run_filter(NodeAffinity(), selector, hdd)
    assert status.code == UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == ("node(s) didn't match Pod's node affinity/selector",)
    newer = pod(affinity=_required({"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}))
    assert run_filter(NodeAffinity(), newer, ssd) is None and run_filter(NodeAffinity(), newer, hdd) is not None
    # terms are ORed; matchFields select by node name
    either = pod(affinity=_required({"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]},
                                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["hdd"]}]}))
    assert run_filter(NodeAffinity(), either, hdd) is None and run_filter(NodeAffinity(), either, ssd) is not None
    assert run_filter(NodeAffinity(), pod(affinity=_required({})), ssd) is not None  # an empty term matches nothing


def test_preferred_affinity_scores_the_sum_of_matching_weights_scaled_to_100():
    preferred = pod(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
        {"weight": 30, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]}})
    nodes = [node("a", labels={"disk": "ssd", "zone": "z1"}), node("b", labels={"zone": "z2"}), node("c")]
    plugin, state = NodeAffinity(), {}
    assert plugin.pre_score(state, preferred, nodes).success
    scores = [plugin.score(state, preferred, n) for n in nodes]
    assert scores == [40, 30, 0]
    plugin.normalize(state, preferred, nodes, scores)
    assert scores == [100, 75, 0]
    assert plugin.pre_score({}, pod(), nodes).code == SKIP


# --- TaintToleration ---------------------------------------------------------------------------------------------

def test_untolerated_taint_is_named_in_the_reason():
    tainted = node(taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                           {"key": "dedicated", "value": "db", "effect": "NoExecute"}])
    assert run_filter(TaintToleration(), pod(), tainted).reasons == (
        "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",)
    partly = pod(tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}])
    status = run_filter(TaintToleration(), partly, tainted)
    assert status.code == UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == ("node(s) had untolerated taint {dedicated: db}",)
    everything = pod(tolerations=[{"operator": "Exists"}])
    assert run_filter(TaintToleration(), everything, tainted) is None
    wrong_value = pod(tolerations=[{"key": "dedicated", "value": "web"},
                                   {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}])
    assert run_filter(TaintToleration(), wrong_value, tainted) is not None
    prefer_only = node(taints=[{"key": "spot", "effect": "PreferNoSchedule"}])
    assert run_filter(TaintToleration(), pod(), prefer_only) is None


def test_prefer_no_schedule_taints_lower_the_score():
    plugin, state, info = TaintToleration(), {}, pod()
    nodes = [node("clean"), node("one", taints=[{"key": "a", "effect": "PreferNoSchedule"}]),
             node("two", taints=[{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}])]
    plugin.pre_score(state, info, nodes)
    scores = [plugin.score(state, info, n) for n in nodes]
    plugin.normalize(state, info, nodes, scores)
    assert scores == [100, 50, 0]


# --- NodePorts ---------------------------------------------------------------------------------------------------

def _with_port(name: str, port: int, ip: str = "", protocol: str = "TCP") -> PodInfo:
    ports = [{"containerPort": 80, "hostPort": port, "protocol": protocol, **({"hostIP": ip} if ip else {})}]
    return pod(name, containers=[{"name": "c", "ports": ports}])


def test_host_ports_conflict_per_protocol_and_address():
    target = bound(node(), _with_port("web", 8080, ip="10.0.0.1"))
    assert run_filter(NodePorts(), pod(), target) == SKIP
    assert run_filter(NodePorts(), _with_port("same", 8080, ip="10.0.0.1"), target).reasons == (
        "node(s) didn't have free ports for the requested pod ports",)
    assert run_filter(NodePorts(), _with_port("any-address", 8080), target) is not None  # 0.0.0.0 overlaps all
    assert run_filter(NodePorts(), _with_port("other-ip", 8080, ip="10.0.0.2"), target) is None
    assert run_filter(NodePorts(), _with_port("udp", 8080, ip="10.0.0.1", protocol="UDP"), target) is None
    target.remove_pod("default/web")
    assert run_filter(NodePorts(), _with_port("same", 8080, ip="10.0.0.1"), target) is None


# --- PodTopologySpread -------------------------------------------------------------------------------------------

def _spread(name: str, when: str = "DoNotSchedule", key: str = "zone", max_skew: int = 1) -> PodInfo:
    return pod(name, labels={"app": "web"}, topologySpreadConstraints=[
        {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
         "labelSelector": {"matchLabels": {"app": "web"}}}])


def test_spread_constraint_filters_by_skew_and_missing_labels():
    a = bound(node("a", labels={"zone": "z1"}), _spread("w1"), _spread("w2"))
    b = bound(node("b", labels={"zone": "z2"}), _spread("w3"))
    unlabelled = node("c")
    nodes = [a, b, unlabelled]
    plugin, state, new = PodTopologySpread(), {}, _spread("w4")
    assert plugin.pre_filter(state, new, nodes).success
    assert plugin.filter(state, new, a).reasons == ("node(s) didn't match pod topology spread constraints",)
    assert plugin.filter(state, new, b) is None
    status = plugin.filter(state, new, unlabelled)
    assert status.code == UNSCHEDULABLE_AND_UNRESOLVABLE
    assert status.reasons == ("node(s) didn't match pod topology spread constraints (missing required label)",)
    assert plugin.pre_filter({}, pod(), nodes).code == SKIP
    other_namespace = _spread("w5")
    other_namespace.namespace = "elsewhere"  # pods of another namespace do not count
    state = {}
    plugin.pre_filter(state, other_namespace, nodes)
    assert plugin.filter(state, other_namespace, a) is None


def test_spread_score_prefers_the_emptier_domain():
    a = bound(node("a", labels={"zone": "z1"}), _spread("w1"), _spread("w2"))
    b = node("b", labels={"zone": "z2"})
    unlabelled = node("c")
    nodes = [a, b, unlabelled]
    plugin, state, new = PodTopologySpread(), {}, _spread("w3", when="ScheduleAnyway")
    assert plugin.pre_score(state, new, nodes).success
    scores = [plugin.score(state, new, n) for n in nodes]
    plugin.normalize(state, new, nodes, scores)
    assert scores[1] == 100 and scores[0] < scores[1] and scores[2] == 0
