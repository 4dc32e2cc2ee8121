"""Admission webhooks' matching, refusal wording, patches and reinvocation, with a recording stand-in for the HTTP
call (the real call is exercised against a TLS server in tests/integration/apiserver/test_webhooks_and_policies.py)."""
from __future__ import annotations

import asyncio
import base64
import json

import pytest

from kpy_components.api import catalog
from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission import webhooks
from kpy_components.apiserver.admission.chain import Attributes
from kpy_components.apiserver.http.context import RequestInfo, User, WriteOptions, write_options


def _attributes(operation="CREATE", resource="pods", subresource="", group="", version="v1", obj=None):
    info = RequestInfo(verb="create", path="/", is_resource_request=True, api_group=group, api_version=version,
                       resource=resource, subresource=subresource, namespace="default", name="")
    return Attributes(operation, info, obj if obj is not None else {"metadata": {"name": "p", "labels": {"a": "b"}}},
                      None, User("alice", ("devs",)))


@pytest.mark.parametrize(("resources", "resource", "subresource", "expected"), [
    (["pods"], "pods", "", True), (["pods"], "pods", "status", False), (["pods/*"], "pods", "status", True),
    (["*"], "pods", "", True), (["*"], "pods", "status", False), (["*/*"], "pods", "status", True),
    (["*/status"], "deployments", "status", True), (["configmaps"], "pods", "", False)])
def test_resource_patterns(resources, resource, subresource, expected):
    assert webhooks._resource_matches(resources, resource, subresource) is expected


def test_rules_check_operation_group_version_and_scope():
    rule = {"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"],
            "scope": "Namespaced"}
    assert webhooks.rule_matches(rule, _attributes(), namespaced=True)
    assert not webhooks.rule_matches(rule, _attributes(operation="UPDATE"), namespaced=True)
    assert not webhooks.rule_matches(rule, _attributes(), namespaced=False)
    assert not webhooks.rule_matches(dict(rule, apiGroups=["apps"]), _attributes(), namespaced=True)


def test_refusals_are_worded_as_upstream():
    error = webhooks.denied("deny.example.com", {"code": 403, "message": "no thanks", "reason": "Forbidden"})
    assert (error.code, error.reason, error.message) == (
        403, "Forbidden", 'admission webhook "deny.example.com" denied the request: no thanks')
    bare = webhooks.denied("d", {"code": 200})
    assert (bare.code, bare.message) == (400, 'admission webhook "d" denied the request without explanation')
    assert webhooks.denied("d", {"reason": "Because"}).message == 'admission webhook "d" denied the request: Because'
    assert webhooks.call_failed("d", "boom").message == 'Internal error occurred: failed calling webhook "d": boom'


class _API:
    registry = catalog.default_registry()

    def __init__(self, configurations):
        self.configurations = configurations

    async def list(self, group, plural, namespace="", label_selector="", field_selector="", resource_version=""):
        return self.configurations.get(plural, [])


class _Caller:
    """Answers as each webhook's `answer(request)` says, recording the calls."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    async def call(self, webhook, review):
        self.calls.append(webhook["name"])
        return {"uid": review["request"]["uid"], **self.answers[webhook["name"]](review["request"])}


def _patch(*operations) -> dict:
    return {"allowed": True, "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(list(operations)).encode()).decode()}


def _hook(name: str, **extra) -> dict:
    return {"name": name, "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"],
                                     "resources": ["*"]}], "sideEffects": "None", **extra}


def test_mutations_apply_in_order_and_if_needed_hooks_run_again():
    answers = {
        "first": lambda r: _patch({"op": "add", "path": "/metadata/labels/first",
                                   "value": str(len(r["object"]["metadata"]["labels"]))}),
        "second": lambda r: _patch({"op": "add", "path": "/metadata/labels/second", "value": "x"}),
    }
    caller = _Caller(answers)
    api = _API({"mutatingwebhookconfigurations": [{"metadata": {"name": "c"}, "webhooks": [
        _hook("first", reinvocationPolicy="IfNeeded"), _hook("second")]}]})
    attributes = _attributes()
    asyncio.run(webhooks.MutatingWebhooks(api, caller).admit(attributes))
    assert caller.calls == ["first", "second", "first"]  # the second changed the object: the first runs again
    assert attributes.obj["metadata"]["labels"] == {"a": "b", "first": "3", "second": "x"}


def test_dry_run_needs_a_webhook_without_side_effects():
    caller = _Caller({"w": lambda r: {"allowed": True}})
    api = _API({"validatingwebhookconfigurations": [{"metadata": {"name": "c"}, "webhooks": [
        _hook("w", sideEffects="Unknown")]}]})

    async def run():
        token = write_options.set(WriteOptions(dry_run=True))
        try:
            await webhooks.ValidatingWebhooks(api, caller).validate(_attributes())
        finally:
            write_options.reset(token)
    with pytest.raises(APIError) as refused:
        asyncio.run(run())
    assert refused.value.message == 'admission webhook "w" does not support dry run' and not caller.calls


def test_match_conditions_in_cel_choose_the_call():
    caller = _Caller({"w": lambda r: {"allowed": False, "status": {"message": "no"}}})
    api = _API({"validatingwebhookconfigurations": [{"metadata": {"name": "c"}, "webhooks": [
        _hook("w", matchConditions=[{"name": "devs", "expression": "'devs' in request.userInfo.groups && "
                                                                   "object.metadata.labels.a == 'z'"}])]}]})
    asyncio.run(webhooks.ValidatingWebhooks(api, caller).validate(_attributes()))  # label a is "b": not called
    assert caller.calls == []
