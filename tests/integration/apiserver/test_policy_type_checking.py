"""kpy-apiserver writes status.typeChecking of a ValidatingAdmissionPolicy (real server, real kubectl): an
expression that does not compile and one naming an undeclared variable are reported by field, with the policy's
observedGeneration; a fixed policy's warnings go away."""
from __future__ import annotations

import json
import time

import pytest

DEADLINE = 15.0  # seconds for the server's type checker to write the status


def _policy(name: str, expression: str) -> str:
    return json.dumps({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}]},
            "validations": [{"expression": expression}, {"expression": "true", "messageExpression": "'x' +"}]}})


def _checked(kubectl, name: str) -> dict:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        policy = json.loads(kubectl("get", "validatingadmissionpolicy", name, "-o", "json").stdout)
        status = policy.get("status") or {}
        if status.get("observedGeneration") == policy["metadata"].get("generation"):
            return status
        time.sleep(0.2)
    pytest.fail(f"no type checking of {name} within {DEADLINE}s")


def test_type_checking_is_written_to_the_policy_status(kubectl):
    name = f"typecheck-{kubectl.version.replace('.', '-')}"
    kubectl("apply", "-f", "-", input=_policy(name, "objct.data.size() < 3"))
    try:
        warnings = _checked(kubectl, name)["typeChecking"]["expressionWarnings"]
        assert [w["fieldRef"] for w in warnings] == ["spec.validations[0].expression",
                                                     "spec.validations[1].messageExpression"]
        assert "undeclared reference to 'objct'" in warnings[0]["warning"]
        assert "Syntax error" in warnings[1]["warning"]
        fixed = json.loads(_policy(name, "object.data.size() < 3"))
        fixed["spec"]["validations"].pop()
        kubectl("apply", "-f", "-", input=json.dumps(fixed))
        assert not _checked(kubectl, name).get("typeChecking")
    finally:
        kubectl("delete", "validatingadmissionpolicy", name, check=False)
