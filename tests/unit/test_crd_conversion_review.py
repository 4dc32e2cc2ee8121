"""The CRD conversion webhook client's checks of a ConversionReview answer, as upstream's webhook converter: only
objects not yet in the desired version are sent, failures and malformed answers are 500s worded as upstream, and of
the metadata only labels and annotations may change. A stand-in answers for the HTTPS call (the real call is in
tests/integration/apiserver/test_crd_conversion_webhook.py)."""
from __future__ import annotations

import asyncio

import pytest

from kpy_components.api.errors import APIError
from kpy_components.api.resources import ResourceInfo
from kpy_components.apiserver.crds import conversion_webhook
from kpy_components.apiserver.crds.definitions import validate_definition

INFO = ResourceInfo("example.com", "v2", "Widget", "widgets", "widget", True)
V1 = {"apiVersion": "example.com/v1", "kind": "Widget",
      "metadata": {"name": "w", "namespace": "d", "uid": "u1", "labels": {"a": "b"}}, "spec": {"size": 1}}


class _Caller:
    def __init__(self, answer):
        self.answer, self.reviews = answer, []

    async def call(self, webhook, review):
        self.reviews.append(review)
        if isinstance(self.answer, Exception):
            raise self.answer
        return {"uid": review["request"]["uid"], **self.answer(review["request"])}


def _convert(answer, objects, version="example.com/v2", review_versions=("v1",)):
    caller = _Caller(answer)
    webhook = conversion_webhook.ConversionWebhook(caller, INFO, {"conversionReviewVersions": list(review_versions)})
    return asyncio.run(webhook.convert(objects, version)), caller.reviews


def _renamed(request):
    return {"result": {"status": "Success"}, "convertedObjects": [
        dict(o, apiVersion=request["desiredAPIVersion"], metadata=dict(o["metadata"], name="other", labels={"c": "d"}))
        for o in request["objects"]]}


def test_only_objects_in_another_version_are_sent_and_metadata_is_kept():
    already = dict(V1, apiVersion="example.com/v2")
    (converted, kept), reviews = _convert(_renamed, [V1, already])
    assert kept is already and [o["metadata"]["uid"] for o in reviews[0]["request"]["objects"]] == ["u1"]
    assert reviews[0]["apiVersion"] == "apiextensions.k8s.io/v1" and reviews[0]["kind"] == "ConversionReview"
    assert converted["apiVersion"] == "example.com/v2"
    assert converted["metadata"] == {"name": "w", "namespace": "d", "uid": "u1", "labels": {"c": "d"}}
    assert _convert(_renamed, [already])[1] == []


@pytest.mark.parametrize(("answer", "why"), [
    (lambda r: {"result": {"status": "Failure", "message": "cannot convert size"}}, "cannot convert size"),
    (lambda r: {"result": {"status": "Failure"}}, "response.result.status was 'Failure', not 'Success'"),
    (lambda r: {"result": {"status": "Success"}, "convertedObjects": []}, "returned 0 objects, expected 1"),
    (lambda r: {"result": {"status": "Success"}, "convertedObjects": [V1]},
     'invalid converted object at index 0: invalid apiVersion "example.com/v1", expected "example.com/v2"'),
    (RuntimeError('failed to call webhook: Post "https://x/convert": dial tcp 1.2.3.4:443: connect: connection '
                  'refused'), 'failed: Post "https://x/convert": dial tcp 1.2.3.4:443'),
])
def test_failures_are_internal_errors_worded_as_upstream(answer, why):
    with pytest.raises(APIError) as failed:
        _convert(answer, [V1])
    assert failed.value.code == 500
    assert failed.value.message.startswith(
        "Internal error occurred: conversion webhook for example.com/v1, Kind=Widget failed: ")
    assert why in failed.value.message


def test_a_webhook_without_a_v1_review_version_is_refused():
    with pytest.raises(APIError, match="no supported conversion review versions"):
        _convert(_renamed, [V1], review_versions=("v1beta1",))


def _crd(conversion):
    return {"metadata": {"name": "widgets.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced", "conversion": conversion,
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object"}}}]}}


def test_webhook_conversion_is_validated_with_upstreams_words():
    def fields(conversion):
        return {(c.field, c.message) for c in validate_definition(_crd(conversion))}
    assert fields({"strategy": "Webhook"}) == {
        ("spec.conversion.webhook", "Required value: required when strategy is set to Webhook")}
    assert ("spec.conversion.webhook.clientConfig", "Required value: exactly one of url or service is required") \
        in fields({"strategy": "Webhook", "webhook": {"clientConfig": {}, "conversionReviewVersions": ["v1"]}})
    assert any("must include at least one of v1, v1beta1" in message for _, message in fields(
        {"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://x"}, "conversionReviewVersions": ["v9"]}}))
    assert fields({"strategy": "None", "webhook": {"clientConfig": {"url": "https://x"}}}) == {
        ("spec.conversion.webhook", "Forbidden: should not be set when strategy is not set to Webhook")}
    assert fields({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://x"},
                                                      "conversionReviewVersions": ["v1"]}}) == set()
