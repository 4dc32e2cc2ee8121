"""Schemathesis over the published OpenAPI v3 of core/v1 and apps/v1 against `kpy-apiserver --dev`: every operation
the documents publish gets requests generated from its parameters and body schemas, valid ones (in namespace
`default`, so they reach the handlers) and invalid ones (wrong types, missing required parts, random names). The
server must never answer 5xx, and every 4xx must be a Status with a message (bad input gets a clear error, never a
traceback). Bounded: a few requests per operation and mode, in a fixed (derandomized) order. The server is the
test's own (its deletes and collection deletes must not reach other tests' objects).
"""
from __future__ import annotations

import collections
import json

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.openapi import from_dict

from apiserver.conftest import dev_apiserver

GROUP_VERSIONS = ("api/v1", "apis/apps/v1")
EXAMPLES = {GenerationMode.POSITIVE: 2, GenerationMode.NEGATIVE: 1}
# Streams that would run until their timeout: the test asks for lists and logs, not watches or follows.
STREAMING = ("watch", "follow")


def _session(apiserver) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the server's CA
    session.cert = (str(apiserver.directory / "admin.crt"), str(apiserver.directory / "admin.key"))
    session.verify = str(apiserver.directory / "ca.crt")
    return session


def _problem(response: requests.Response) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        try:
            body = response.json()
        except json.JSONDecodeError:
            return f"{response.status_code} without a Status: {response.text[:200]!r}"
        if body.get("kind") != "Status" or not body.get("message"):
            return f"{response.status_code} without a Status message: {response.text[:200]!r}"
    return None


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    with dev_apiserver(tmp_path_factory.mktemp("schemathesis-apiserver")) as server:
        yield server


def test_generated_requests_get_no_server_error(apiserver):
    session = _session(apiserver)
    tried, problems, classes = 0, [], collections.Counter()
    for group_version in GROUP_VERSIONS:
        document = session.get(f"{apiserver.url}/openapi/v3/{group_version}", timeout=10).json()
        for result in from_dict(document).get_all_operations():
            operation = result.ok()
            for mode, examples in EXAMPLES.items():
                fixed = {"namespace": "default"} if mode is GenerationMode.POSITIVE and "{namespace}" in \
                    operation.path else None

                @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                          phases=[Phase.generate], suppress_health_check=list(HealthCheck))
                @given(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
                def send(case):
                    nonlocal tried
                    for name in STREAMING:
                        (case.query or {}).pop(name, None)
                    tried += 1
                    response = case.call(base_url=apiserver.url, session=session, timeout=30,
                                         verify=session.verify, cert=session.cert)
                    classes[f"{response.status_code // 100}xx"] += 1
                    problem = _problem(response)
                    if problem:
                        problems.append(f"{case.method} {response.request.url[:200]}: {problem}")
                send()
    print(f"schemathesis: {tried} requests over {', '.join(GROUP_VERSIONS)}: {dict(sorted(classes.items()))}")
    assert tried >= 400 and classes["2xx"] > 0
    assert not problems, "\n".join(problems)



# What the generated requests found, kept as plain cases: DeleteOptions of the wrong shape were 500s (a TypeError),
# a name with a newline missed the router and got aiohttp's text 404.
@pytest.mark.parametrize(("body", "message"), [
    ({"preconditions": 5}, 'DeleteOptions in version "v1" cannot be handled as a DeleteOptions: cannot restore '
                           "struct from int64"),
    ({"dryRun": 7.0}, "cannot restore slice from float64"),
    ({"gracePeriodSeconds": "x"}, "json: cannot unmarshal string into Go struct field DeleteOptions."
                                  "gracePeriodSeconds of type int64"),
    ({"orphanDependents": "x"}, "of type bool"),
    ({"preconditions": {"uid": 5}}, "Go struct field DeleteOptions.preconditions.uid of type string"),
], ids=["preconditions", "dryRun", "gracePeriodSeconds", "orphanDependents", "uid"])
def test_delete_options_of_the_wrong_shape_are_400s(apiserver, body, message):
    session = _session(apiserver)
    collection = f"{apiserver.url}/api/v1/namespaces/default/configmaps"
    session.post(collection, json={"metadata": {"name": "shape"}}, timeout=10)
    for url in (f"{collection}/shape", collection):
        response = session.delete(url, json=body, timeout=10)
        assert response.status_code == 400 and message in response.json()["message"]


def test_a_name_with_a_newline_is_a_status_404(apiserver):
    response = _session(apiserver).get(f"{apiserver.url}/api/v1/namespaces/default/pods/a%0Ab", timeout=10)
    assert response.status_code == 404
    assert response.json()["message"] == 'pods "a\nb" not found'
