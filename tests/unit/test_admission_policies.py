"""ValidatingAdmissionPolicy evaluation: namespaceObject, the authorizer library answered by a decide function,
auditAnnotations, matchPolicy Equivalent (HPAs of autoscaling/v1 matched by a v2 rule, seen as v2) and upstream's
wording, with an in-memory stand-in for the API's lists and gets (the real server runs the integration test in
tests/integration/apiserver/test_webhooks_and_policies.py)."""
from __future__ import annotations

import asyncio
import logging

import pytest

from kpy_components.api import catalog
from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission import policies, policy_typecheck
from kpy_components.apiserver.admission.chain import Attributes
from kpy_components.apiserver.http.context import RequestInfo, User

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"env": "prod"}}}


class _API:
    registry = catalog.default_registry()

    def __init__(self, policy_spec: dict, actions=("Deny",)):
        self.objects = {
            "validatingadmissionpolicies": [{"metadata": {"name": "p"}, "spec": policy_spec}],
            "validatingadmissionpolicybindings": [{"metadata": {"name": "b"}, "spec": {
                "policyName": "p", "validationActions": list(actions)}}]}

    async def list(self, group, plural, namespace="", label_selector="", field_selector="", resource_version=""):
        return self.objects.get(plural, [])

    async def peek(self, group, plural, namespace, name):
        return NAMESPACE if (plural, name) == ("namespaces", "team") else None


def _rules(group="", version="v1", resource="configmaps"):
    return {"resourceRules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [group], "apiVersions": [version],
                               "resources": [resource]}]}


def _attributes(obj, group="", version="v1", resource="configmaps", namespace="team", user=User("alice")):
    info = RequestInfo(verb="create", path="/", is_resource_request=True, api_group=group, api_version=version,
                       resource=resource, namespace=namespace, name="")
    return Attributes("CREATE", info, obj, None, user)


def _validate(spec: dict, attributes: Attributes, decide=None, actions=("Deny",)):
    return asyncio.run(policies.ValidatingAdmissionPolicies(_API(spec, actions), decide).validate(attributes))


CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team"}}


def test_namespace_object_is_the_requests_namespace():
    spec = {"matchConstraints": _rules(), "validations": [{
        "expression": "namespaceObject.metadata.labels.env == 'dev'", "message": "only in dev namespaces"}]}
    with pytest.raises(APIError) as refused:
        _validate(spec, _attributes(CONFIG_MAP))
    assert refused.value.code == 422
    assert ("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: only in dev namespaces"
            in refused.value.message)
    allowed = dict(spec, validations=[{"expression": "namespaceObject.metadata.labels.env == 'prod'"}])
    _validate(allowed, _attributes(CONFIG_MAP))


def test_namespace_object_is_null_for_cluster_scoped_resources():
    spec = {"matchConstraints": _rules(resource="namespaces"),
            "validations": [{"expression": "namespaceObject == null"}]}
    _validate(spec, _attributes(dict(NAMESPACE), resource="namespaces", namespace=""))


def test_authorizer_asks_the_servers_authorizer_for_the_user():
    asked = []

    def decide(user, info):
        asked.append((user.name, info.verb, info.api_group, info.resource, info.subresource, info.namespace,
                      info.name, info.path))
        return (user.name == "alice" and info.resource == "deployments"), "RBAC: allowed by test"

    spec = {"matchConstraints": _rules(), "validations": [{
        "expression": "authorizer.group('apps').resource('deployments').namespace('team').name('web')"
                      ".check('update').allowed()", "messageExpression": "'not allowed: ' + authorizer.group('')"
                      ".resource('secrets').subresource('x').check('get').reason()"}]}
    _validate(spec, _attributes(CONFIG_MAP), decide)
    assert asked == [("alice", "update", "apps", "deployments", "", "team", "web", "")]
    with pytest.raises(APIError) as refused:
        _validate(spec, _attributes(CONFIG_MAP, user=User("bob")), decide)
    assert "denied request: not allowed: RBAC: allowed by test" in refused.value.message
    paths = dict(spec, validations=[{"expression": "authorizer.path('/healthz').check('GET').allowed() && "
                                                   "!authorizer.serviceAccount('team', 'robot').group('apps')"
                                                   ".resource('deployments').check('get').allowed()"}])
    asked.clear()
    with pytest.raises(APIError):
        _validate(paths, _attributes(CONFIG_MAP), decide)  # the path is refused (not a deployment)
    assert asked[0][1] == "get" and asked[0][-1] == "/healthz"


def test_authorizer_request_resource_and_errors():
    def decide(user, info):
        if info.verb == "delete":
            raise RuntimeError("authorizer down")
        return info.resource == "configmaps" and info.namespace == "team", ""

    spec = {"matchConstraints": _rules(), "validations": [{
        "expression": "authorizer.requestResource.check('get').allowed() && "
                      "authorizer.requestResource.check('delete').errored() && "
                      "authorizer.requestResource.check('delete').error() == 'authorizer down'"}]}
    _validate(spec, _attributes(CONFIG_MAP), decide)


def test_audit_annotations_are_logged_and_null_ones_left_out(caplog):
    spec = {"matchConstraints": _rules(), "validations": [{"expression": "true"}], "auditAnnotations": [
        {"key": "owner", "valueExpression": "'owned by ' + request.userInfo.username"},
        {"key": "absent", "valueExpression": "null"}]}
    with caplog.at_level(logging.INFO, logger=policies.__name__):
        _validate(spec, _attributes(CONFIG_MAP))
    assert "Admission policy audit annotation p/owner=owned by alice" in caplog.text
    assert "p/absent" not in caplog.text
    wrong = dict(spec, auditAnnotations=[{"key": "n", "valueExpression": "1"}])
    with pytest.raises(APIError) as refused:
        _validate(wrong, _attributes(CONFIG_MAP))
    assert "valueExpression '1' resulted in error: must evaluate to a string or null" in refused.value.message


HPA_V1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
          "metadata": {"name": "h", "namespace": "team"},
          "spec": {"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                   "targetCPUUtilizationPercentage": 50}}


def test_match_policy_equivalent_matches_another_version_and_converts():
    spec = {"matchConstraints": _rules("autoscaling", "v2", "horizontalpodautoscalers"), "validations": [{
        "expression": "object.apiVersion == 'autoscaling/v2' && "
                      "object.spec.metrics[0].resource.target.averageUtilization < 50",
        "message": "cpu target too high"}]}
    with pytest.raises(APIError) as refused:
        _validate(spec, _attributes(HPA_V1, "autoscaling", "v1", "horizontalpodautoscalers"))
    assert "denied request: cpu target too high" in refused.value.message
    exact = dict(spec, matchConstraints=dict(spec["matchConstraints"], matchPolicy="Exact"))
    _validate(exact, _attributes(HPA_V1, "autoscaling", "v1", "horizontalpodautoscalers"))  # not matched


def test_warn_and_audit_actions_do_not_deny(caplog):
    spec = {"matchConstraints": _rules(), "validations": [{"expression": "false", "message": "nope"}]}
    with caplog.at_level(logging.INFO, logger=policies.__name__):
        _validate(spec, _attributes(CONFIG_MAP), actions=("Audit",))
    assert "Admission policy failed (audit)" in caplog.text


# --- status.typeChecking -----------------------------------------------------------------------------------------

def test_type_checking_reports_compile_errors_and_undeclared_references_by_field():
    spec = {"validations": [{"expression": "object.spec.replicas <= params.max", "messageExpression": "'too' +"}],
            "matchConditions": [{"name": "m", "expression": "objct.metadata.name != ''"}],
            "variables": [{"name": "v", "expression": "object.items.all(i, i > 0)"}],
            "auditAnnotations": [{"key": "k", "valueExpression": "request.userInfo.username"}]}
    warnings = policy_typecheck.type_checking(spec)["expressionWarnings"]
    assert [w["fieldRef"] for w in warnings] == ["spec.validations[0].messageExpression",
                                                 "spec.matchConditions[0].expression"]
    assert warnings[0]["warning"] == "ERROR: <input>:1:7: Syntax error\n | 'too' +\n | ......^"
    assert warnings[1]["warning"] == ("ERROR: <input>:1:1: undeclared reference to 'objct' (in container '')\n"
                                      " | objct.metadata.name != ''\n | ^")
    assert policy_typecheck.type_checking({"validations": [{"expression": "variables.v && authorizer != null"}]}) == {}


class _StatusAPI:
    def __init__(self):
        self.written = []

    async def update_status(self, group, plural, namespace, obj):
        self.written.append(obj)
        return obj


def test_type_checker_writes_status_once_per_generation():
    api = _StatusAPI()
    checker = policy_typecheck.PolicyTypeChecker(api)
    checker.known["p"] = {"metadata": {"name": "p", "generation": 2},
                          "spec": {"validations": [{"expression": "x == 1"}]}}
    asyncio.run(checker.sync("p"))
    (written,) = api.written
    assert written["status"]["observedGeneration"] == 2
    assert written["status"]["typeChecking"]["expressionWarnings"][0]["fieldRef"] == "spec.validations[0].expression"
    checker.known["p"] = written
    asyncio.run(checker.sync("p"))
    assert len(api.written) == 1
