"""The rest of 1.31's built-in API surface (issue 14 item 4) with the real kubectl 1.27 and 1.33 and the Python
client: Ingress, IngressClass, NetworkPolicy, HPAs in autoscaling/v1 and v2 (one object, converted),
CertificateSigningRequests approved and denied, RuntimeClass, PodTemplate, CSIDriver, flowcontrol objects and
ComponentStatuses, each printed with upstream's columns, defaulted and validated in upstream's words."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client

from apiserver.test_python_client import api_client  # noqa: F401 - the fixture, shared

MANIFEST = Path(__file__).parent / "manifests" / "networking.yaml"


def _rows(kubectl, *args: str) -> list[list[str]]:
    return [line.split() for line in kubectl("get", *args).stdout.splitlines()]


def test_networking_objects_round_trip_with_upstream_columns(kubectl, namespace):
    kubectl("-n", namespace, "apply", "-f", str(MANIFEST))
    ingress = _rows(kubectl, "-n", namespace, "ingress")
    assert ingress[0] == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert ingress[1][:5] == ["web", "nginx", "a.example.com,*", "80,", "443"]
    netpol = _rows(kubectl, "-n", namespace, "netpol")
    assert netpol[0] == ["NAME", "POD-SELECTOR", "AGE"] and netpol[1][:2] == ["web", "app=web"]
    spec = json.loads(kubectl("-n", namespace, "get", "networkpolicy", "web", "-o", "json").stdout)["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]  # defaulted from the rules present
    assert spec["ingress"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]
    assert _rows(kubectl, "ingressclass", "nginx")[1][:3] == ["nginx", "k8s.io/ingress-nginx", "<none>"]
    assert _rows(kubectl, "runtimeclass")[0] == ["NAME", "HANDLER", "AGE"]
    template = _rows(kubectl, "-n", namespace, "podtemplate")
    assert template[0] == ["NAME", "CONTAINERS", "IMAGES", "POD", "LABELS"] and template[1] == ["tpl", "c", "busybox",
                                                                                              "app=web"]
    csi = _rows(kubectl, "csidriver")
    assert csi[0][:4] == ["NAME", "ATTACHREQUIRED", "PODINFOONMOUNT", "STORAGECAPACITY"]
    assert csi[1][:4] == ["hostpath.csi.k8s.io", "false", "true", "false"] and csi[1][6] == "Persistent,Ephemeral"
    levels = _rows(kubectl, "prioritylevelconfiguration", "batch")
    assert levels[1][:6] == ["batch", "Limited", "30", "64", "8", "50"]  # queuing defaults
    assert _rows(kubectl, "flowschema", "batch")[1][:4] == ["batch", "batch", "1000", "ByUser"]


def test_invalid_ingress_is_refused_in_upstream_words(kubectl, namespace):
    bad = yaml.safe_dump({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bad"},
                          "spec": {"rules": [{"http": {"paths": [{"path": "nope", "backend": {
                              "service": {"name": "web", "port": {}}}}]}}]}})
    result = kubectl("-n", namespace, "apply", "-f", "-", input=bad, check=False)
    assert result.returncode == 1
    assert 'The Ingress "bad" is invalid' in result.stderr
    assert "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified" in result.stderr
    assert "spec.rules[0].http.paths[0].backend.service.port: Invalid value" in result.stderr


def test_autoscale_in_either_version_is_one_object(kubectl, namespace):
    kubectl("-n", namespace, "create", "deployment", "web", "--image=nginx")
    # kubectl 1.27 creates autoscaling/v1 HPAs, 1.33 autoscaling/v2: both read back in both versions
    kubectl("-n", namespace, "autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=60")
    rows = _rows(kubectl, "-n", namespace, "hpa")
    assert rows[0] == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert rows[1][:6] == ["web", "Deployment/web", "cpu:", "<unknown>/60%", "2", "5"]
    v1 = json.loads(kubectl("-n", namespace, "get", "horizontalpodautoscalers.v1.autoscaling", "web", "-o", "json").stdout)
    v2 = json.loads(kubectl("-n", namespace, "get", "horizontalpodautoscalers.v2.autoscaling", "web", "-o", "json").stdout)
    assert v1["apiVersion"] == "autoscaling/v1" and v1["spec"]["targetCPUUtilizationPercentage"] == 60
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 60}}}]
    assert v1["metadata"]["uid"] == v2["metadata"]["uid"]
    kubectl("-n", namespace, "patch", "horizontalpodautoscalers.v1.autoscaling", "web", "--type=merge",
            "-p", '{"spec":{"targetCPUUtilizationPercentage":75}}')
    v2 = json.loads(kubectl("-n", namespace, "get", "horizontalpodautoscalers.v2.autoscaling", "web", "-o", "json").stdout)
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 75
    inverted = yaml.safe_dump({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                               "metadata": {"name": "inverted"},
                               "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 4,
                                        "maxReplicas": 3}})
    refused = kubectl("-n", namespace, "apply", "-f", "-", input=inverted, check=False)
    assert refused.returncode == 1
    assert "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`" in refused.stderr


def _csr(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).sign(key, hashes.SHA256())
    pem = request.public_bytes(serialization.Encoding.PEM)
    return yaml.safe_dump({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                           "metadata": {"name": name},
                           "spec": {"request": base64.b64encode(pem).decode(), "expirationSeconds": 86400,
                                    "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"],
                                    "username": "someone-else"}})


def test_certificate_signing_requests_are_approved_or_denied(kubectl):
    approved, denied = f"alice-{kubectl.version}", f"bob-{kubectl.version}"
    for name in (approved, denied):
        kubectl("apply", "-f", "-", input=_csr(name))
    rows = _rows(kubectl, "csr", approved)
    assert rows[0] == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"]
    assert rows[1][2:] == ["kubernetes.io/kube-apiserver-client", "admin", "24h", "Pending"]  # who asked, not the body
    assert kubectl("certificate", "approve", approved).stdout.strip() == \
        f"certificatesigningrequest.certificates.k8s.io/{approved} approved"
    kubectl("certificate", "deny", denied)
    assert _rows(kubectl, "csr", approved)[1][-1] == "Approved"
    assert _rows(kubectl, "csr", denied)[1][-1] == "Denied"
    both = kubectl("certificate", "deny", approved, check=False)
    assert both.returncode == 1 and "already Approved" in both.stderr
    condition = json.loads(kubectl("get", "csr", approved, "-o", "json").stdout)["status"]["conditions"][0]
    assert condition["reason"] == "KubectlApprove" and condition["lastTransitionTime"]


def test_component_statuses_report_storage(kubectl):
    rows = _rows(kubectl, "componentstatuses")
    assert rows[0] == ["NAME", "STATUS", "MESSAGE", "ERROR"]
    assert ["etcd-0", "Healthy", "ok"] in [r[:3] for r in rows[1:]]
    assert {r[0] for r in rows[1:]} == {"controller-manager", "etcd-0", "scheduler"}


def test_python_client_reads_the_new_groups(api_client):  # noqa: F811
    networking = client.NetworkingV1Api(api_client)
    body = client.V1NetworkPolicy(metadata=client.V1ObjectMeta(name="py"),
                                  spec=client.V1NetworkPolicySpec(pod_selector=client.V1LabelSelector()))
    created = networking.create_namespaced_network_policy("default", body)
    assert created.spec.policy_types == ["Ingress"]
    classes = networking.list_ingress_class()
    assert isinstance(classes.items, list)
    autoscaling = client.AutoscalingV2Api(api_client)
    hpa = client.V2HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="py"),
        spec=client.V2HorizontalPodAutoscalerSpec(
            max_replicas=3, scale_target_ref=client.V2CrossVersionObjectReference(kind="Deployment", name="x")))
    made = autoscaling.create_namespaced_horizontal_pod_autoscaler("default", hpa)
    assert made.spec.min_replicas == 1 and made.spec.metrics[0].resource.target.average_utilization == 80
    as_v1 = client.AutoscalingV1Api(api_client).read_namespaced_horizontal_pod_autoscaler("py", "default")
    assert as_v1.spec.target_cpu_utilization_percentage == 80
    networking.delete_namespaced_network_policy("py", "default")
    autoscaling.delete_namespaced_horizontal_pod_autoscaler("py", "default")


@pytest.mark.parametrize("kind", ["flowschemas", "prioritylevelconfigurations", "csinodes", "volumeattachments"])
def test_discovery_lists_the_added_resources(kubectl, kind):
    assert kind in [name.split(".")[0] for name in kubectl("api-resources", "-o", "name").stdout.split()]
