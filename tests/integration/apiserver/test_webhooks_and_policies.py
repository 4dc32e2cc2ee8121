"""Admission webhooks and ValidatingAdmissionPolicies with the real kubectl 1.27 and 1.33 against kpy-apiserver:
a mutating webhook served by a test HTTPS server (its CA in caBundle) adds a label, a validating one denies with
its message and sends a warning, each honours failurePolicy when its server is down, dry runs respect sideEffects;
a ValidatingAdmissionPolicy with a ConfigMap param denies (Deny) and warns (Warn).

Every configuration here matches only the test's own namespace (namespaceSelector), so the session's other tests
never meet them; each test removes what it made."""
from __future__ import annotations

import base64
import http.server
import json

import pytest
import yaml

from apiserver.selfsigned import https_server, reply_json
from conftest import free_port


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        self.server.requests.append((self.path, request))
        obj = request.get("object") or {}
        response = {"uid": request["uid"], "allowed": True}
        if self.path.startswith("/mutate"):
            labels = (obj.get("metadata") or {}).get("labels")
            operations = [{"op": "add", "path": "/metadata/labels", "value": {}}] if labels is None else []
            operations.append({"op": "add", "path": "/metadata/labels/mutated-by", "value": "webhook"})
            response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(operations).encode()).decode())
        elif self.path.startswith("/validate"):
            if ((obj.get("metadata") or {}).get("labels") or {}).get("deny") == "yes":
                response.update(allowed=False, status={"code": 403, "message": "objects labelled deny=yes are "
                                                                                 "refused"})
            else:
                response["warnings"] = ["validated by the test webhook"]
        reply_json(self, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook_server(tmp_path_factory):
    """An HTTPS webhook server on 127.0.0.1 with a self-signed certificate: (base URL, caBundle, requests)."""
    with https_server(tmp_path_factory.mktemp("webhook-tls"), "webhook", _Handler) as (server, pem):
        yield f"https://127.0.0.1:{server.server_address[1]}", base64.b64encode(pem).decode(), server.requests


def _configuration(kind: str, name: str, url: str, bundle: str, namespace: str, **hook) -> str:
    webhook = {"name": name, "admissionReviewVersions": ["v1"], "sideEffects": "None",
               "clientConfig": {"url": url, "caBundle": bundle},
               "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
               "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                          "resources": ["configmaps"]}], **hook}
    return yaml.safe_dump({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                           "metadata": {"name": f"{name}-{namespace}"}, "webhooks": [webhook]})


def _config_map(name: str, **labels: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
                           "data": {"k": "v"}})


def test_mutating_then_validating_webhooks(kubectl, namespace, webhook_server):
    url, bundle, requests = webhook_server
    mutating = _configuration("MutatingWebhookConfiguration", "label.kpy.test", f"{url}/mutate", bundle, namespace)
    validating = _configuration("ValidatingWebhookConfiguration", "deny.kpy.test", f"{url}/validate", bundle,
                                namespace)
    kubectl("apply", "-f", "-", input=mutating)
    kubectl("apply", "-f", "-", input=validating)
    try:
        created = kubectl("-n", namespace, "apply", "-f", "-", input=_config_map("plain"))
        assert "Warning: validated by the test webhook" in created.stderr
        labels = json.loads(kubectl("-n", namespace, "get", "cm", "plain", "-o", "json").stdout)["metadata"]["labels"]
        assert labels == {"mutated-by": "webhook"}
        path, request = next((p, r) for p, r in requests if p.startswith("/validate") and r["name"] == "plain"
                             and r["namespace"] == namespace)
        assert request["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        assert request["operation"] == "CREATE" and request["namespace"] == namespace
        assert request["userInfo"]["username"] == "admin" and "timeout=10s" in path
        assert request["object"]["metadata"]["labels"] == {"mutated-by": "webhook"}  # validating sees the mutation
        refused = kubectl("-n", namespace, "apply", "-f", "-", input=_config_map("bad", deny="yes"), check=False)
        assert refused.returncode == 1
        assert 'admission webhook "deny.kpy.test" denied the request: objects labelled deny=yes are refused' \
            in refused.stderr
        assert "NotFound" in kubectl("-n", namespace, "get", "cm", "bad", check=False).stderr
        listed = kubectl("get", "mutatingwebhookconfigurations", f"label.kpy.test-{namespace}").stdout.split()
        assert listed[:3] == ["NAME", "WEBHOOKS", "AGE"] and listed[4] == "1"
    finally:
        kubectl("delete", "mutatingwebhookconfiguration", f"label.kpy.test-{namespace}")
        kubectl("delete", "validatingwebhookconfiguration", f"deny.kpy.test-{namespace}")


def test_failure_policy_and_side_effects(kubectl, namespace, webhook_server):
    _, bundle, _ = webhook_server
    closed = free_port()
    down = f"https://127.0.0.1:{closed}/validate"
    kubectl("apply", "-f", "-", input=_configuration("ValidatingWebhookConfiguration", "down.kpy.test", down, bundle,
                                                     namespace))
    try:
        failed = kubectl("-n", namespace, "apply", "-f", "-", input=_config_map("a"), check=False)
        assert failed.returncode == 1
        assert (f'Internal error occurred: failed calling webhook "down.kpy.test": failed to call webhook: Post '
                f'"{down}?timeout=10s": dial tcp 127.0.0.1:{closed}: connect: connection refused') in failed.stderr
        kubectl("apply", "-f", "-", input=_configuration("ValidatingWebhookConfiguration", "down.kpy.test", down,
                                                         bundle, namespace, failurePolicy="Ignore",
                                                         sideEffects="Some"))
        kubectl("-n", namespace, "apply", "-f", "-", input=_config_map("a"))
        dry = kubectl("-n", namespace, "apply", "--dry-run=server", "-f", "-", input=_config_map("b"), check=False)
        assert dry.returncode == 1 and 'admission webhook "down.kpy.test" does not support dry run' in dry.stderr
    finally:
        kubectl("delete", "validatingwebhookconfiguration", f"down.kpy.test-{namespace}")


def test_validating_admission_policy_with_a_param_denies_and_warns(kubectl, namespace):
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": f"replicas-{namespace}"},
              "spec": {"failurePolicy": "Fail", "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                       "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                               "operations": ["CREATE", "UPDATE"],
                                                               "resources": ["deployments"]}]},
                       "variables": [{"name": "limit", "expression": "int(params.data.maxReplicas)"}],
                       "validations": [{"expression": "object.spec.replicas <= variables.limit",
                                        "messageExpression": "'replicas must be at most ' + params.data.maxReplicas"},
                                       {"expression": "has(object.metadata.labels) && 'team' in object.metadata.labels"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": f"replicas-{namespace}"},
               "spec": {"policyName": f"replicas-{namespace}", "validationActions": ["Deny"],
                        "paramRef": {"name": "limits", "parameterNotFoundAction": "Deny"},
                        "matchResources": {"namespaceSelector": {"matchLabels": {
                            "kubernetes.io/metadata.name": namespace}}}}}
    kubectl("-n", namespace, "create", "configmap", "limits", "--from-literal=maxReplicas=3")
    kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))
    kubectl("apply", "-f", "-", input=yaml.safe_dump(binding))
    try:
        assert kubectl("get", "validatingadmissionpolicy", f"replicas-{namespace}").stdout.split()[5:7] == \
            ["2", "v1/ConfigMap"]
        refused = kubectl("-n", namespace, "create", "deployment", "big", "--image=nginx", "--replicas=5",
                          check=False)
        assert refused.returncode == 1
        assert (f"ValidatingAdmissionPolicy 'replicas-{namespace}' with binding 'replicas-{namespace}' denied "
                "request: replicas must be at most 3") in refused.stderr
        kubectl("-n", namespace, "create", "deployment", "small", "--image=nginx", "--replicas=2", check=False)
        # the second validation (a team label) fails: switch the binding to Warn and the write goes through
        binding["spec"]["validationActions"] = ["Warn"]
        kubectl("apply", "-f", "-", input=yaml.safe_dump(binding))
        warned = kubectl("-n", namespace, "create", "deployment", "warned", "--image=nginx", "--replicas=5")
        assert (f"Warning: Validation failed for ValidatingAdmissionPolicy 'replicas-{namespace}' with binding "
                f"'replicas-{namespace}': replicas must be at most 3") in warned.stderr
        # without its param the binding denies (parameterNotFoundAction Deny)
        binding["spec"]["validationActions"] = ["Deny"]
        kubectl("apply", "-f", "-", input=yaml.safe_dump(binding))
        kubectl("-n", namespace, "delete", "configmap", "limits")
        missing = kubectl("-n", namespace, "create", "deployment", "other", "--image=nginx", check=False)
        assert "no params found for policy binding with `Deny` parameterNotFoundAction" in missing.stderr
    finally:
        kubectl("delete", "validatingadmissionpolicybinding", f"replicas-{namespace}")
        kubectl("delete", "validatingadmissionpolicy", f"replicas-{namespace}")
