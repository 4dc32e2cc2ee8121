"""Request-header authentication against a real `kpy-apiserver --dev` over TLS: the front-proxy client certificate
with X-Remote-User/X-Remote-Group is that user (SelfSubjectReview says so, RBAC judges it); the same headers from the
admin's certificate change nothing; the front-proxy certificate alone is no user."""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request


def _self_subject_review(apiserver, certificate: str, headers: dict[str, str]) -> tuple[int, dict]:
    context = ssl.create_default_context(cafile=str(apiserver.directory / "ca.crt"))
    context.load_cert_chain(apiserver.directory / f"{certificate}.crt", apiserver.directory / f"{certificate}.key")
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
    request = urllib.request.Request(apiserver.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews", data=body,
                                     method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_front_proxy_certificate_with_remote_user_is_that_user(apiserver):
    status, review = _self_subject_review(apiserver, "front-proxy-client", {
        "X-Remote-User": "jane", "X-Remote-Group": "team-a", "X-Remote-Extra-Reason": "oncall"})
    assert status == 201, review
    assert review["status"]["userInfo"] == {"username": "jane", "groups": ["team-a", "system:authenticated"],
                                            "extra": {"reason": ["oncall"]}}


def test_remote_user_headers_from_a_client_certificate_are_ignored(apiserver):
    status, review = _self_subject_review(apiserver, "admin", {"X-Remote-User": "jane"})
    assert status == 201
    assert review["status"]["userInfo"]["username"] == "admin"


def test_front_proxy_certificate_alone_is_unauthorized(apiserver):
    status, body = _self_subject_review(apiserver, "front-proxy-client", {})
    assert (status, body["reason"]) == (401, "Unauthorized")
