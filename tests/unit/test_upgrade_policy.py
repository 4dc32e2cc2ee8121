"""The upgrade policy on built states: every refusal rule (each naming host and component), and the plan's order."""
import pytest

from kpy_components.upgrade.policy import (APISERVER, CONTROLLER_MANAGER, DNS, ETCD, KUBELET, PROXY, SCHEDULER,
                                           ClusterState, Component, Host, Node, StoredObject, Version, VersionError,
                                           plan, refusals)

V = Version.parse
CONTROL = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KUBELET, PROXY)
NODE = (KUBELET, PROXY, DNS)


def host(name, version="1.30.2", units=CONTROL, node_ready=True, **overrides):
    """A host whose components all run `version` (overrides: unit -> Component or version text)."""
    components = {unit: Component(V(version), V(version)) for unit in units}
    for unit, value in overrides.items():
        unit = "kpy-" + unit.replace("_", "-")
        components[unit] = Component(V(value), V(value)) if isinstance(value, str) else value
    node = None
    if KUBELET in components:
        kubelet = components[KUBELET].running or components[KUBELET].installed
        node = Node(name, node_ready, kubelet, kubelet)
    groups = frozenset({"control_plane", "etcd"} if APISERVER in units else {"workers"})
    return Host(name, components, groups, node)


def cluster(*hosts, leaders=None, stored=()):
    return ClusterState(list(hosts), leaders or {CONTROLLER_MANAGER: "cp1", SCHEDULER: "cp2"}, list(stored))


def n_minus_1():
    """Three control-plane hosts and two workers at 1.30.2 (N-1, N = 1.31)."""
    return [host("cp1"), host("cp2"), host("cp3"), host("w1", units=NODE), host("w2", units=NODE)]


def test_versions_parse_both_spellings_and_name_garbage():
    assert V("1.31.0") == V("v1.31.0") == Version(1, 31, 0)
    assert V("v1.31.2-rc.1+abc") == Version(1, 31, 2) and str(V(" 1.31.0 ")) == "1.31.0"
    for garbage in ("1.31", "latest", "", None, 131, "1.31.0.0"):
        with pytest.raises(VersionError, match="is not a version .*1.31.0"):
            V(garbage)


def test_one_minor_up_from_a_healthy_cluster_is_allowed():
    assert refusals(cluster(*n_minus_1()), V("1.31.0")) == []


CONTROL_UNITS = "kpy-etcd, kpy-apiserver, kpy-controller-manager, kpy-scheduler, kpy-kubelet, kpy-proxy"
NODE_UNITS = "kpy-kubelet, kpy-proxy, kpy-dns"


@pytest.mark.parametrize(("target", "why"), [
    ("1.32.0", "1.30.2 -> 1.32.0 skips minor 1.31: upgrade one minor at a time"),
    ("1.29.9", "1.30.2 -> 1.29.9 is a minor downgrade (not supported)"),
], ids=["skipped-minor", "minor-downgrade"])
def test_a_refused_move_is_one_line_per_host_naming_every_component(target, why):
    assert refusals(cluster(*n_minus_1()), V(target)) == [
        f"cp1: {CONTROL_UNITS} {why}", f"cp2: {CONTROL_UNITS} {why}", f"cp3: {CONTROL_UNITS} {why}",
        f"w1: {NODE_UNITS} {why}", f"w2: {NODE_UNITS} {why}"]


def test_a_host_between_versions_gets_a_line_per_version_components_in_unit_order():
    # the API server's link already switched to 1.30.2, the process still 1.29.0
    hosts = [host("cp1", "1.29.0", units=(SCHEDULER, CONTROLLER_MANAGER), etcd="1.30.2",
                  apiserver=Component(V("1.30.2"), V("1.29.0")))]
    assert refusals(cluster(*hosts), V("1.32.0")) == [
        "cp1: kpy-etcd, kpy-apiserver 1.30.2 -> 1.32.0 skips minor 1.31: upgrade one minor at a time",
        "cp1: kpy-apiserver, kpy-controller-manager, kpy-scheduler 1.29.0 -> 1.32.0 skips minor 1.30, 1.31: "
        "upgrade one minor at a time"]


def test_patch_downgrade_only_with_the_flag():
    found = refusals(cluster(*n_minus_1()), V("1.30.1"))
    assert f"w1: {NODE_UNITS} 1.30.2 -> 1.30.1 is a patch downgrade (allowed only with allow_patch_downgrade)" in found
    assert refusals(cluster(*n_minus_1()), V("1.30.1"), allow_patch_downgrade=True) == []
    assert refusals(cluster(*n_minus_1()), V("1.30.3")) == []  # a patch upgrade


def test_kubelet_hand_upgraded_newer_than_the_api_servers_refused():
    hosts = n_minus_1()
    hosts[3] = host("w1", units=NODE, kubelet="1.31.0")
    found = refusals(cluster(*hosts), V("1.31.0"))
    assert found == ["w1: kpy-kubelet 1.31.0 is newer than the oldest API server (1.30.2 on cp1)",
                     "w1: kpy-proxy 1.30.2 is not the kubelet's minor on its node (1.31)"]


def test_a_kubelet_newer_than_one_api_server_of_a_mixed_control_plane_refused():
    hosts = [host("cp1", "1.31.0", units=(ETCD, APISERVER)), host("cp2", units=(ETCD, APISERVER)),
             host("w1", "1.31.0", units=NODE)]
    assert refusals(cluster(*hosts), V("1.31.0")) == [
        "w1: kpy-kubelet 1.31.0 is newer than the oldest API server (1.30.2 on cp2)"]


def test_api_servers_more_than_one_minor_apart_refused():
    hosts = [host("cp1", "1.31.0", units=(APISERVER,)), host("cp2", "1.29.0", units=(APISERVER,))]
    found = refusals(cluster(*hosts), V("1.31.0"))
    assert "cp1: kpy-apiserver 1.31.0 is more than one minor newer than the API server 1.29.0 on cp2" in found


def test_controller_manager_and_scheduler_skew():
    newer = [host("cp1", units=(APISERVER,), controller_manager="1.31.0")]
    assert refusals(cluster(*newer), V("1.31.0")) == [
        "cp1: kpy-controller-manager 1.31.0 is newer than the oldest API server (1.30.2 on cp1)"]
    older = [host("cp1", "1.31.0", units=(APISERVER,), scheduler="1.29.0")]
    found = refusals(cluster(*older), V("1.31.0"))
    assert "cp1: kpy-scheduler 1.29.0 is more than one minor older than the API server 1.31.0 on cp1" in found


def test_kubelet_at_most_three_minors_older():
    hosts = [host("cp1", "1.31.0", units=(APISERVER,)), host("w1", "1.27.0", units=(KUBELET,)),
             host("w2", "1.28.0", units=(KUBELET,))]
    found = refusals(cluster(*hosts), V("1.31.1"))
    assert "w1: kpy-kubelet 1.27.0 is more than 3 minors older than the API server 1.31.0 on cp1" in found
    assert not any(line.startswith("w2: kpy-kubelet") and "older than" in line for line in found)


def test_proxy_minor_must_match_the_kubelet_on_its_node():
    hosts = [host("cp1", units=(APISERVER,)), host("w1", "1.30.0", units=NODE, proxy="1.29.0")]
    assert refusals(cluster(*hosts), V("1.30.2")) == [
        "w1: kpy-proxy 1.29.0 is not the kubelet's minor on its node (1.30)"]


def test_unhealthy_etcd_member_and_api_server_refused():
    hosts = n_minus_1()
    hosts[0] = host("cp1", etcd=Component(V("1.30.2"), V("1.30.2"), problem="unhealthy: raft: no leader"),
                    apiserver=Component(V("1.30.2"), None, active=False))
    hosts[1] = host("cp2", apiserver=Component(V("1.30.2"), V("1.30.2"), problem="[-]etcd failed: timeout"))
    assert refusals(cluster(*hosts), V("1.31.0")) == [
        "cp1: kpy-etcd: the etcd member is not healthy: unhealthy: raft: no leader",
        "cp1: kpy-apiserver: the API server is not running",
        "cp2: kpy-apiserver: the API server is not healthy: [-]etcd failed: timeout"]


def test_unreadable_running_version_and_missing_link_refused():
    unreadable = Component(V("1.30.2"), None, version_error="connection refused")
    hosts = [host("cp1", units=(APISERVER,), scheduler=unreadable),
             host("w1", units=(KUBELET,), proxy=Component(None, None, active=False))]
    assert refusals(cluster(*hosts), V("1.31.0")) == [
        "cp1: kpy-scheduler is running but its version could not be read: connection refused",
        "w1: kpy-proxy has no known version (no /opt/kpy/components/kpy-proxy link to a version, not running)"]


def test_node_not_ready_refused_unless_skipped():
    hosts = n_minus_1()
    hosts[4] = host("w2", units=NODE, node_ready=False)
    assert refusals(cluster(*hosts), V("1.31.0")) == [
        "w2: kpy-kubelet: node w2 is not Ready (skip_node_ready to go ahead)"]
    assert refusals(cluster(*hosts), V("1.31.0"), skip_node_ready=True) == []


def test_objects_in_versions_the_target_drops_listed_webhook_configurations_first():
    stored = [StoredObject("flowcontrol.apiserver.k8s.io/v1beta3", "flowschemas", "exempt"),
              StoredObject("admissionregistration.k8s.io/v1beta1", "validatingwebhookconfigurations", "policy"),
              StoredObject("autoscaling/v2beta2", "horizontalpodautoscalers", "web", "shop")]
    assert refusals(cluster(*n_minus_1(), stored=stored), V("1.31.0")) == [
        "kpy-apiserver 1.31.0 does not serve admissionregistration.k8s.io/v1beta1: validatingwebhookconfigurations "
        "policy is stored in it; rewrite it in a served version first",
        "kpy-apiserver 1.31.0 does not serve autoscaling/v2beta2: horizontalpodautoscalers shop/web is stored in "
        "it; rewrite it in a served version first",
        "kpy-apiserver 1.31.0 does not serve flowcontrol.apiserver.k8s.io/v1beta3: flowschemas exempt is stored in "
        "it; rewrite it in a served version first"]


def test_plan_order_etcd_apiservers_standbys_then_leader_then_nodes_control_plane_first():
    hosts = [host("w1", units=NODE), *n_minus_1()[:3], host("w2", units=(KUBELET, PROXY))]
    result = plan(cluster(*hosts, leaders={CONTROLLER_MANAGER: "cp1", SCHEDULER: "cp2"}), V("1.31.0"))
    assert result.hosts("etcd") == ["cp1", "cp2", "cp3"]
    assert result.hosts("apiserver") == ["cp1", "cp2", "cp3"]
    assert result.hosts("controller-manager") == ["cp2", "cp3", "cp1"]
    assert result.hosts("scheduler") == ["cp1", "cp3", "cp2"]
    assert result.hosts("node") == ["cp1", "cp2", "cp3", "w1", "w2"]
    phases = [step.phase for step in result.steps]
    assert phases == sorted(phases, key=["etcd", "apiserver", "controller-manager", "scheduler", "node"].index)
    assert [(s.component, s.host) for s in result.steps if s.phase == "node"][-5:] == [
        (KUBELET, "w1"), (PROXY, "w1"), (DNS, "w1"), (KUBELET, "w2"), (PROXY, "w2")]
    assert result.steps[0].as_dict() == {"phase": "etcd", "host": "cp1", "component": ETCD, "from": "1.30.2",
                                         "to": "1.31.0"}
    assert result.at_target == []


def test_resume_from_a_mixed_cluster_plans_only_what_is_left():
    """API servers, controller managers and schedulers at N, one worker done, the rest of the nodes at N-1."""
    done = dict(etcd="1.31.0", apiserver="1.31.0", controller_manager="1.31.0", scheduler="1.31.0")
    hosts = [host("cp1", **done), host("cp2", **done), host("cp3", **done), host("w1", "1.31.0", units=NODE),
             host("w2", units=NODE)]
    state = cluster(*hosts)
    assert refusals(state, V("1.31.0")) == []
    result = plan(state, V("1.31.0"))
    assert [step.phase for step in result.steps] == ["node"] * (3 * 2 + 3)
    assert result.hosts("node") == ["cp1", "cp2", "cp3", "w2"] and result.at_target == ["w1"]


def test_a_switched_link_with_the_old_process_still_running_is_a_step():
    hosts = [host("cp1", units=(APISERVER,), etcd=Component(V("1.31.0"), V("1.30.2")))]
    assert [(s.host, s.component, str(s.current)) for s in plan(cluster(*hosts), V("1.31.0")).steps] == [
        ("cp1", ETCD, "1.30.2"), ("cp1", APISERVER, "1.30.2")]


def test_everything_at_the_target_plans_nothing():
    hosts = [host(name, "1.31.0", units=units) for name, units in
             (("cp1", CONTROL), ("cp2", CONTROL), ("w1", NODE))]
    state = cluster(*hosts)
    result = plan(state, V("1.31.0"))
    assert refusals(state, V("1.31.0")) == [] and result.steps == []
    assert result.at_target == ["cp1", "cp2", "w1"]
    assert "nothing to do: every component is at the target" in result.text()


def test_plan_text_is_a_table_then_the_order():
    text = plan(cluster(host("cp1"), host("w1", units=NODE)), V("1.31.0")).text()
    lines = text.splitlines()
    assert lines[0] == "Upgrade plan to 1.31.0:"
    assert lines[2].split() == ["COMPONENT", "HOST", "CURRENT", "TARGET"]
    assert lines[3].split() == [ETCD, "cp1", "1.30.2", "1.31.0"]
    assert ["kpy-dns", "w1", "1.30.2", "1.31.0"] in [line.split() for line in lines]
    order = text[text.index("Order:"):]
    assert order.index("etcd members") < order.index("API servers") < order.index("controller managers") \
        < order.index("schedulers") < order.index("nodes")
    assert "     w1: kpy-kubelet 1.30.2 -> 1.31.0, kpy-proxy 1.30.2 -> 1.31.0, kpy-dns 1.30.2 -> 1.31.0" in lines
