"""The upgrade preflight against a real `kpy-apiserver --dev`: the kpy_upgrade_plan module reads Nodes, the
controller-manager and scheduler Leases and /readyz through the official client, maps them to inventory hosts and
plans or refuses; kpy_upgrade.gather lists objects stored in API versions a target would drop."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client, config

from kpy_components.upgrade import gather
from kpy_components.version import VERSION

REPO = Path(__file__).resolve().parents[3]
MAJOR, MINOR, _ = (int(part) for part in VERSION.split("."))
OLD = f"{MAJOR}.{MINOR - 1}.0"
NODE_INFO = {key: "" for key in ("architecture", "bootID", "containerRuntimeVersion", "kernelVersion", "machineID",
                                 "operatingSystem", "osImage", "systemUUID", "kubeProxyVersion")}
CONTROL = ("kpy-etcd", "kpy-apiserver", "kpy-controller-manager", "kpy-scheduler", "kpy-kubelet", "kpy-proxy")


def run_module(tmp_path, **options) -> dict:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": options}))
    proc = subprocess.run([sys.executable, REPO / "library/kpy_upgrade_plan.py", args_file], capture_output=True,
                          text=True, check=False, timeout=120)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def result(version: str, units, hostname: str, groups) -> dict:
    """A kpy_component_versions result whose units all run `version`, plus the host's groups."""
    return {"hostname": hostname, "groups": list(groups),
            "components": {unit: {"installed": version, "running": version, "active": True, "problem": None,
                                  "version_error": None} for unit in units}}


@pytest.fixture(scope="module")
def api(apiserver):
    api_client = config.new_client_from_config(config_file=str(apiserver.admin_kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def cluster(api):
    """Nodes upgrade-cp1, upgrade-w1 (kubelets at OLD, Ready) and the Leases held by cp2's and cp1's processes;
    removed afterwards."""
    core, leases = client.CoreV1Api(api), client.CoordinationV1Api(api)
    nodes = ("upgrade-cp1", "upgrade-cp2", "upgrade-w1")
    holders = {"kube-controller-manager": "upgrade-cp2_7c1c4f8e-0d3e-4c53-9c1e-3f6f7f0a2b11",
               "kube-scheduler": "upgrade-cp1.example.test_9a0e2f44-52a3-4fd8-a7a7-2d0f7d1f0c22"}
    try:
        for name in nodes:
            core.create_node({"metadata": {"name": name}}, _preload_content=False)
            set_node(core, name, ready=True)
        for lease, holder in holders.items():
            # The session's API server is shared: another test's component may hold these Leases already.
            leases.delete_collection_namespaced_lease("kube-system", field_selector=f"metadata.name={lease}")
            leases.create_namespaced_lease("kube-system", {"metadata": {"name": lease},
                                                           "spec": {"holderIdentity": holder}})
        yield core
    finally:
        for name in nodes:
            core.delete_collection_node(field_selector=f"metadata.name={name}")
        for lease in holders:
            leases.delete_collection_namespaced_lease("kube-system", field_selector=f"metadata.name={lease}")


def set_node(core, name, ready):
    core.patch_node_status(name, {"status": {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady"}],
        "nodeInfo": dict(NODE_INFO, kubeletVersion=f"v{OLD}")}}, _preload_content=False)


def hosts_at(version: str) -> dict:
    return {"cp1": result(version, CONTROL, "upgrade-cp1", ["etcd", "control_plane"]),
            "cp2": result(version, CONTROL, "upgrade-cp2", ["etcd", "control_plane"]),
            "w1": result(version, ("kpy-kubelet", "kpy-proxy", "kpy-dns"), "upgrade-w1", ["workers"])}


def test_plan_from_the_live_cluster(tmp_path, apiserver, cluster):
    answer = run_module(tmp_path, kubeconfig=str(apiserver.admin_kubeconfig), target=VERSION, hosts=hosts_at(OLD))
    assert answer.get("failed") is not True, answer.get("msg")
    assert answer["changed"] is False and answer["refusals"] == []
    assert answer["etcd_hosts"] == answer["apiserver_hosts"] == ["cp1", "cp2"]
    assert answer["controller_manager_hosts"] == ["cp1", "cp2"]  # cp2 holds the Lease: last
    assert answer["scheduler_hosts"] == ["cp2", "cp1"]  # the holder's FQDN maps to cp1
    assert answer["node_hosts"] == ["cp1", "cp2", "w1"]
    assert answer["plan"][0] == {"phase": "etcd", "host": "cp1", "component": "kpy-etcd", "from": OLD, "to": VERSION}
    assert ["kpy-dns", "w1", OLD, VERSION] in [line.split() for line in answer["plan_text"].splitlines()]


def test_refusals_name_host_and_component(tmp_path, apiserver, cluster):
    set_node(cluster, "upgrade-w1", ready=False)
    hosts = hosts_at(OLD)
    hosts["w1"]["components"]["kpy-kubelet"].update(installed=VERSION, running=VERSION)
    answer = run_module(tmp_path, kubeconfig=str(apiserver.admin_kubeconfig), target=VERSION, hosts=hosts)
    assert answer["failed"] is True
    assert answer["msg"].splitlines() == [
        f"the upgrade to {VERSION} is refused:",
        f"w1: kpy-kubelet {VERSION} is newer than the oldest API server ({OLD} on cp1)",
        "w1: kpy-kubelet: node upgrade-w1 is not Ready (skip_node_ready to go ahead)"]
    skipped = f"{MAJOR}.{MINOR + 1}.0"
    answer = run_module(tmp_path, kubeconfig=str(apiserver.admin_kubeconfig), target=skipped,
                        hosts=hosts_at(OLD), skip_node_ready=True)
    assert f"cp2: {', '.join(CONTROL)} {OLD} -> {skipped} skips minor {MAJOR}.{MINOR}: upgrade one minor at a " \
        "time" in answer["msg"].splitlines()
    assert answer["msg"].splitlines()[1].startswith(f"target {skipped} is not this checkout's version")


def test_everything_at_the_target_plans_nothing(tmp_path, apiserver, cluster):
    answer = run_module(tmp_path, kubeconfig=str(apiserver.admin_kubeconfig), target=f"v{VERSION}",
                        hosts=hosts_at(VERSION), skip_node_ready=True)
    # the Nodes still report OLD kubelets (within the skew limits): no refusal, and the steps come from what the
    # hosts report running
    assert answer.get("failed") is not True, answer.get("msg")
    assert answer["plan"] == []
    for node in ("upgrade-cp1", "upgrade-cp2", "upgrade-w1"):
        cluster.patch_node_status(node, {"status": {"nodeInfo": {"kubeletVersion": f"v{VERSION}"}}},
                                  _preload_content=False)
    answer = run_module(tmp_path, kubeconfig=str(apiserver.admin_kubeconfig), target=f"v{VERSION}",
                        hosts=hosts_at(VERSION))
    assert answer["plan"] == [] and answer["at_target"] == ["cp1", "cp2", "w1"] and answer["node_hosts"] == []


def test_bad_input_gets_a_message_not_a_traceback(tmp_path, apiserver):
    base = {"kubeconfig": str(apiserver.admin_kubeconfig), "target": VERSION, "hosts": hosts_at(OLD)}
    assert run_module(tmp_path, **dict(base, target="1.x"))["msg"] == (
        "target: '1.x' is not a version (expected MAJOR.MINOR.PATCH, like 1.31.0)")
    bad = hosts_at(OLD)
    bad["w1"]["components"]["kpy-proxy"]["installed"] = "latest"
    bad["cp2"] = "unreachable"
    assert run_module(tmp_path, **dict(base, hosts=bad))["msg"].splitlines() == [
        "hosts.cp2: not a kpy_component_versions result (no components mapping)",
        "hosts.w1.components.kpy-proxy.installed: 'latest' is not a version (expected MAJOR.MINOR.PATCH, like "
        "1.31.0)"]
    assert run_module(tmp_path, **dict(base, kubeconfig=str(tmp_path / "none")))["msg"].startswith(
        f"kubeconfig {tmp_path / 'none'}: ")
    closed = tmp_path / "closed.kubeconfig"
    text = Path(apiserver.admin_kubeconfig).read_text().replace(f":{apiserver.port}", ":9")
    closed.write_text(text)
    message = run_module(tmp_path, **dict(base, kubeconfig=str(closed)))["msg"]
    assert message.startswith("GET https://127.0.0.1:9") and "refused" in message.lower(), message


def test_objects_in_versions_the_target_drops_webhook_configurations_first(api):
    """kpy stores a HorizontalPodAutoscaler as autoscaling/v2 whichever version wrote it. A target serving no
    admissionregistration.k8s.io and autoscaling only as v1 could read back neither the webhook configuration nor
    the HPAs: all listed, the webhook configuration first. A target dropping only autoscaling/v1 reads them all."""
    served = gather.this_checkout_serves()
    admission, autoscaling = client.AdmissionregistrationV1Api(api), client.AutoscalingV1Api(api)
    spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 2}
    admission.create_validating_webhook_configuration({"metadata": {"name": "upgrade-policy"}, "webhooks": []},
                                                      _preload_content=False)
    autoscaling.create_namespaced_horizontal_pod_autoscaler("default", {"metadata": {"name": "upgrade-v1"},
                                                                        "spec": spec}, _preload_content=False)
    client.AutoscalingV2Api(api).create_namespaced_horizontal_pod_autoscaler(
        "default", {"metadata": {"name": "upgrade-v2"}, "spec": {**spec, "minReplicas": 1}}, _preload_content=False)

    def listed(dropped) -> list[tuple[str, str, str, str]]:
        target = {gv: plurals for gv, plurals in served.items() if not dropped(gv)}
        found = gather.stored_in_removed(gather.Cluster(api), target)
        return [(o.api_version, o.resource, o.namespace, o.name) for o in found if o.name.startswith("upgrade-")]
    try:
        assert listed(lambda gv: gv == "autoscaling/v2" or gv.startswith("admissionregistration.k8s.io/")) == [
            ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", "", "upgrade-policy"),
            ("autoscaling/v2", "horizontalpodautoscalers", "default", "upgrade-v1"),
            ("autoscaling/v2", "horizontalpodautoscalers", "default", "upgrade-v2")]
        assert listed(lambda gv: gv == "autoscaling/v1") == []
        assert listed(lambda gv: False) == []
    finally:
        admission.delete_validating_webhook_configuration("upgrade-policy", _preload_content=False)
        for name in ("upgrade-v1", "upgrade-v2"):
            autoscaling.delete_namespaced_horizontal_pod_autoscaler(name, "default", _preload_content=False)


def test_component_versions_reads_the_api_servers_version_and_readiness(tmp_path, apiserver):
    """kpy_component_versions finds the API server from its config (a wildcard bind address means loopback) and
    reads /version with the client certificate (anonymous requests get 401) and /readyz."""
    (tmp_path / "components").mkdir()
    (tmp_path / "components/kpy-apiserver").symlink_to(tmp_path / VERSION)
    systemctl = tmp_path / "systemctl"  # this machine runs no kpy units: every unit is loaded and active
    systemctl.write_text("#!/bin/sh\nprintf 'LoadState=loaded\\nActiveState=active\\n'\n")
    systemctl.chmod(0o755)
    config_file = tmp_path / "kube-apiserver.yaml"
    config_file.write_text(f"# managed\nbind_address: 0.0.0.0\nsecure_port: {apiserver.port}  # the dev server's\n")

    def versions(**options) -> dict:
        args_file = tmp_path / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
            "units": ["kpy-apiserver"], "components_dir": str(tmp_path / "components"), "systemctl": str(systemctl),
            "apiserver_config": str(config_file), **options}}))
        proc = subprocess.run([sys.executable, REPO / "library/kpy_component_versions.py", args_file],
                              capture_output=True, text=True, check=False, timeout=60)
        return json.loads(proc.stdout)["components"]["kpy-apiserver"]

    found = versions(apiserver_client_cert=str(apiserver.directory / "admin.crt"),
                     apiserver_client_key=str(apiserver.directory / "admin.key"))
    assert found == {"installed": VERSION, "link": str(tmp_path / VERSION), "active": True, "running": VERSION,
                     "version_error": None, "problem": None, "health_checked": True}
    anonymous = versions(apiserver_client_cert=str(tmp_path / "none.crt"))
    assert anonymous["running"] is None and anonymous["problem"] is None
    assert anonymous["version_error"].startswith(f"GET https://127.0.0.1:{apiserver.port}/version: HTTP 401")
