"""The real kubectl 1.27 and 1.33 driving kpy-apiserver through the everyday commands of issue 3's "Done when"."""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import yaml

MANIFEST = Path(__file__).parent / "manifests" / "app.yaml"


def get_json(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_version_reports_the_distribution(kubectl):
    result = kubectl("version", "-o", "json")
    server = json.loads(result.stdout)["serverVersion"]
    assert server["gitVersion"] == "v1.31.0"
    assert (server["major"], server["minor"]) == ("1", "31")


def test_api_resources_lists_every_group(kubectl):
    lines = kubectl("api-resources").stdout.splitlines()
    rows = {tuple(line.split()[:1] + line.split()[-3:]) for line in lines[1:]}
    assert ("deployments", "apps/v1", "true", "Deployment") in rows
    assert ("namespaces", "v1", "false", "Namespace") in rows
    assert ("poddisruptionbudgets", "policy/v1", "true", "PodDisruptionBudget") in rows
    assert ("selfsubjectaccessreviews", "authorization.k8s.io/v1", "false", "SelfSubjectAccessReview") in rows


def test_client_side_apply_creates_then_reports_unchanged_then_configures(kubectl, namespace):
    created = kubectl("-n", namespace, "apply", "-f", str(MANIFEST)).stdout.splitlines()
    assert created == ["deployment.apps/web created", "service/web created", "configmap/settings created",
                       "secret/credentials created"]
    again = kubectl("-n", namespace, "apply", "-f", str(MANIFEST)).stdout.splitlines()
    assert again[:3] == ["deployment.apps/web unchanged", "service/web unchanged", "configmap/settings unchanged"]
    changed = MANIFEST.read_text().replace("nginx:1.25", "nginx:1.27")
    assert "deployment.apps/web configured" in kubectl("-n", namespace, "apply", "-f", "-", input=changed).stdout
    deployment = get_json(kubectl, "-n", namespace, "deployment", "web")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert deployment["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in deployment["metadata"]["annotations"]
    secret = get_json(kubectl, "-n", namespace, "secret", "credentials")
    assert secret["data"] == {"password": "aHVudGVyMg=="} and "stringData" not in secret


def test_server_side_apply_records_the_manager_and_dry_run_persists_nothing(kubectl, namespace):
    applied = kubectl("-n", namespace, "apply", "--server-side", "-f", str(MANIFEST)).stdout.splitlines()
    assert applied[0] == "deployment.apps/web serverside-applied"
    deployment = get_json(kubectl, "-n", namespace, "deployment", "web", "--show-managed-fields")
    managers = {(m["manager"], m["operation"]) for m in deployment["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    bigger = MANIFEST.read_text().replace("replicas: 2", "replicas: 7")
    dry = kubectl("-n", namespace, "apply", "--server-side", "--dry-run=server", "-f", "-", input=bigger)
    assert "deployment.apps/web serverside-applied (server dry run)" in dry.stdout
    assert get_json(kubectl, "-n", namespace, "deployment", "web")["spec"]["replicas"] == 2


def test_get_wide_all_namespaces_and_yaml(kubectl, namespace):
    kubectl("-n", namespace, "apply", "-f", str(MANIFEST))
    wide = kubectl("-n", namespace, "get", "deployments", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES",
                               "SELECTOR"]
    assert wide[1].split()[:2] == ["web", "0/2"] and wide[1].split()[-3:] == ["nginx", "nginx:1.25", "app=web"]
    everywhere = kubectl("get", "services", "-A").stdout.splitlines()
    assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == [namespace, "web"] for line in everywhere)
    assert any(line.split()[:2] == ["default", "kubernetes"] for line in everywhere)
    document = yaml.safe_load(kubectl("-n", namespace, "get", "configmap", "settings", "-o", "yaml").stdout)
    assert document["kind"] == "ConfigMap" and document["data"] == {"color": "blue"}
    assert document["metadata"]["uid"] and int(document["metadata"]["resourceVersion"]) > 0


def test_get_watch_streams_new_objects(kubectl, namespace):
    kubectl("-n", namespace, "create", "configmap", "first")
    watcher = subprocess.Popen(kubectl.command("-n", namespace, "get", "configmaps", "-w"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout.readline().split()[:2] == ["NAME", "DATA"]
        seen = [watcher.stdout.readline().split()[0]]
        kubectl("-n", namespace, "create", "configmap", "second")
        deadline = time.monotonic() + 10
        while "second" not in seen and time.monotonic() < deadline:
            seen.append(watcher.stdout.readline().split()[0])
        assert "first" in seen and "second" in seen
    finally:
        watcher.kill()
        watcher.wait()


def test_describe_deployment_and_service(kubectl, namespace):
    kubectl("-n", namespace, "apply", "-f", str(MANIFEST))
    described = kubectl("-n", namespace, "describe", "deployment", "web").stdout
    assert re.search(r"^Replicas:\s+2 desired \| 0 updated \| 0 total \| 0 available \| 0 unavailable$", described,
                     re.M)
    assert re.search(r"^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$", described, re.M)
    service = kubectl("-n", namespace, "describe", "service", "web").stdout
    cluster_ip = get_json(kubectl, "-n", namespace, "service", "web")["spec"]["clusterIP"]
    assert cluster_ip.startswith("10.96.") and re.search(rf"^IP:\s+{re.escape(cluster_ip)}$", service, re.M)


def test_label_annotate_and_three_patch_types(kubectl, namespace):
    kubectl("-n", namespace, "apply", "-f", str(MANIFEST))
    assert kubectl("-n", namespace, "label", "deployment", "web", "tier=frontend").stdout.strip() == \
        "deployment.apps/web labeled"
    kubectl("-n", namespace, "annotate", "deployment", "web", "note=hello")
    kubectl("-n", namespace, "patch", "deployment", "web", "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}}')
    kubectl("-n", namespace, "patch", "deployment", "web", "--type=merge", "-p", '{"spec":{"paused":true}}')
    kubectl("-n", namespace, "patch", "deployment", "web", "--type=json",
            "-p", '[{"op":"add","path":"/spec/minReadySeconds","value":5}]')
    deployment = get_json(kubectl, "-n", namespace, "deployment", "web")
    assert deployment["metadata"]["labels"] == {"app": "web", "tier": "frontend"}
    assert deployment["metadata"]["annotations"]["note"] == "hello"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["ports"]) == ("nginx:2", [{"containerPort": 80, "protocol": "TCP"}])
    assert deployment["spec"]["paused"] is True and deployment["spec"]["minReadySeconds"] == 5
    assert deployment["metadata"]["generation"] == 4


def test_scale_goes_through_the_scale_subresource(kubectl, namespace, apiserver):
    kubectl("-n", namespace, "apply", "-f", str(MANIFEST))
    assert kubectl("-n", namespace, "scale", "deployment/web", "--replicas=5").stdout.strip() == \
        "deployment.apps/web scaled"
    scale = json.loads(kubectl("get", "--raw", f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale").stdout)
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 5 and scale["status"]["selector"] == "app=web"


def test_replace_with_a_stale_resource_version_conflicts(kubectl, namespace, tmp_path):
    kubectl("-n", namespace, "create", "configmap", "settings", "--from-literal=a=1")
    stale = tmp_path / "stale.yaml"
    stale.write_text(kubectl("-n", namespace, "get", "configmap", "settings", "-o", "yaml").stdout)
    kubectl("-n", namespace, "patch", "configmap", "settings", "-p", '{"data":{"a":"2"}}')
    result = kubectl("-n", namespace, "replace", "-f", str(stale), check=False)
    assert result.returncode == 1
    assert 'Error from server (Conflict): error when replacing "' in result.stderr
    assert ('Operation cannot be fulfilled on configmaps "settings": the object has been modified; please apply '
            'your changes to the latest version and try again') in result.stderr


def test_delete_removes_everything_applied(kubectl, namespace):
    kubectl("-n", namespace, "apply", "-f", str(MANIFEST))
    deleted = kubectl("-n", namespace, "delete", "-f", str(MANIFEST)).stdout.splitlines()
    assert deleted == ['deployment.apps "web" deleted', 'service "web" deleted', 'configmap "settings" deleted',
                       'secret "credentials" deleted']
    assert kubectl("-n", namespace, "get", "deployments,services,configmaps,secrets").stderr.strip() == \
        f"No resources found in {namespace} namespace."


def test_cordon_and_uncordon_a_node(kubectl):
    name = f"node-{kubectl.version.replace('.', '')}"
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}))
    assert kubectl("cordon", name).stdout.strip() == f"node/{name} cordoned"
    assert get_json(kubectl, "node", name)["spec"]["unschedulable"] is True
    assert "SchedulingDisabled" in kubectl("get", "node", name).stdout
    assert kubectl("uncordon", name).stdout.strip() == f"node/{name} uncordoned"
    assert "unschedulable" not in get_json(kubectl, "node", name)["spec"]
