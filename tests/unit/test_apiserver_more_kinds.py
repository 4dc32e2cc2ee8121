"""Strategies and printers of the kinds issue 14 adds (networking, autoscaling with its v1 conversion, certificates,
flowcontrol): defaulting, validation wording, Table cells."""
from __future__ import annotations

from datetime import datetime, timezone

from kpy_components.api import catalog, tables
from kpy_components.apiserver.registry import conversion
from kpy_components.apiserver.registry.strategies import certificates, networking

REGISTRY = catalog.default_registry()
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _info(group: str, version: str, plural: str):
    return REGISTRY.get(group, version, plural)


def _messages(causes) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def test_hpa_defaults_and_validation():
    strategy = networking.HorizontalPodAutoscalerStrategy(_info("autoscaling", "v2", "horizontalpodautoscalers"))
    hpa = {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3, "behavior": {}}}
    strategy.default(hpa)
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 80}
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert strategy.validate(hpa) == []
    bad = {"spec": {"scaleTargetRef": {}, "minReplicas": 4, "maxReplicas": 3}}
    assert _messages(strategy.validate(bad)) == [
        "spec.scaleTargetRef.kind: Required value", "spec.scaleTargetRef.name: Required value",
        "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"]


def test_hpa_v1_and_v2_convert_both_ways():
    to_stored, to_served = conversion.VERSIONS[("autoscaling", "v1", "horizontalpodautoscalers")]
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "a"},
          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 4,
                   "targetCPUUtilizationPercentage": 50},
          "status": {"currentReplicas": 2, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 40}}
    v2 = to_stored(v1)
    assert v2["apiVersion"] == "autoscaling/v2"
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    assert v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 40
    assert to_served(v2) == v1


def test_ingress_validation_words():
    strategy = networking.IngressStrategy(_info("networking.k8s.io", "v1", "ingresses"))
    assert _messages(strategy.validate({"spec": {}})) == [
        "spec: Invalid value: {}: either `defaultBackend` or `rules` must be specified"]
    found = _messages(strategy.validate({"spec": {"rules": [{"host": "Bad_Host", "http": {"paths": [
        {"path": "x", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 0}}}},
        {"pathType": "Fuzzy", "backend": {}}]}}]}}))
    assert 'spec.rules[0].http.paths[0].path: Invalid value: "x": must be an absolute path' in found
    assert "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 0: must be between 1 and " \
           "65535, inclusive" in found
    assert 'spec.rules[0].http.paths[1].pathType: Unsupported value: "Fuzzy": supported values: "Exact", ' \
           '"ImplementationSpecific", "Prefix"' in found
    assert any(f.startswith("spec.rules[0].host: Invalid value") for f in found)


def test_network_policy_defaults_policy_types_and_protocols():
    strategy = networking.NetworkPolicyStrategy(_info("networking.k8s.io", "v1", "networkpolicies"))
    policy = {"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}
    strategy.default(policy)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"
    assert _messages(strategy.validate({"spec": {"policyTypes": ["Sideways"], "ingress": [{"from": [{}]}]}})) == [
        'spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"',
        "spec.ingress[0].from[0]: Required value: must specify a peer"]


def test_csr_conditions_are_exclusive_and_true():
    strategy = certificates.CertificateSigningRequestStrategy(
        _info("certificates.k8s.io", "v1", "certificatesigningrequests"))
    found = _messages(strategy.validate({"spec": {"request": "bm90IGEgcmVxdWVzdA==", "signerName": "nope",
                                                  "usages": ["flying"], "expirationSeconds": 60},
                                         "status": {"conditions": [{"type": "Approved", "status": "False"},
                                                                   {"type": "Denied", "status": "True"}]}}))
    assert found == [
        'spec.request: Invalid value: "bm90IGEgcmVxdWVzdA==": PEM block type must be CERTIFICATE REQUEST',
        "spec.signerName: Invalid value: \"nope\": must be a fully qualified domain and path of the form "
        "'example.com/signer-name'",
        'spec.usages[0]: Unsupported value: "flying": supported values: ' + ", ".join(
            f'"{u}"' for u in certificates._USAGES),
        "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)",
        'status.conditions[0].status: Unsupported value: "False": supported values: "True"',
        'status.conditions[1].type: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive']


def test_printers_of_the_added_kinds():
    hpa = {"metadata": {"name": "web", "creationTimestamp": "2025-12-31T23:00:00Z"},
           "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 5,
                    "metrics": [{"type": "Resource", "resource": {"name": "memory", "target": {
                        "type": "AverageValue", "averageValue": "100Mi"}}}]},
           "status": {"currentReplicas": 3}}
    info = _info("autoscaling", "v2", "horizontalpodautoscalers")
    assert tables.row_cells(info, hpa, NOW) == ["web", "Deployment/web", "memory: <unknown>/100Mi", 2, 5, 3, "60m"]
    csr = {"metadata": {"name": "x", "creationTimestamp": "2025-12-31T23:59:00Z"},
           "spec": {"signerName": "s/x", "username": "u"},
           "status": {"conditions": [{"type": "Approved"}], "certificate": "Y2VydA=="}}
    info = _info("certificates.k8s.io", "v1", "certificatesigningrequests")
    assert tables.row_cells(info, csr, NOW) == ["x", "60s", "s/x", "u", "<none>", "Approved,Issued"]
    exempt = {"metadata": {"name": "exempt"}, "spec": {"type": "Exempt"}}
    info = _info("flowcontrol.apiserver.k8s.io", "v1", "prioritylevelconfigurations")
    assert tables.row_cells(info, exempt, NOW)[:6] == ["exempt", "Exempt", "<none>", "<none>", "<none>", "<none>"]
