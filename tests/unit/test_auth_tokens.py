"""Service-account JWTs: signing as Kubernetes does, verification (expiry, foreign keys, audiences, issuers),
bound-object invalidation, TokenRequest defaults and validation."""
import asyncio
import base64
import json

import jwt
import pytest

from kpy_components.api.errors import APIError
from kpy_components.apiserver.auth.token_request import TokenIssuer
from kpy_components.apiserver.auth.tokens import (BoundObject, InvalidToken, ServiceAccountTokenSigner,
                                                  ServiceAccountTokenValidator, key_id, load_public_keys)
from kpy_components.pki import keys

ISSUER = "https://kubernetes.default.svc.cluster.local"
NOW = 1_800_000_000.0


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


class Objects:
    """The lookup callable: stored objects by (plural, namespace, name)."""

    def __init__(self, *objects: tuple[str, dict]):
        self.objects = {}
        for plural, obj in objects:
            self.put(plural, obj)

    def put(self, plural: str, obj: dict):
        meta = obj["metadata"]
        self.objects[(plural, meta.get("namespace", ""), meta["name"])] = obj

    def remove(self, plural: str, namespace: str, name: str):
        del self.objects[(plural, namespace, name)]

    async def __call__(self, plural, namespace, name):
        return self.objects.get((plural, namespace, name))


def _sa(name="builder", namespace="ci", uid="sa-uid-1"):
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid}}


def _pod(name="job-1", namespace="ci", uid="pod-uid-1", sa="builder", node="w1"):
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {"serviceAccountName": sa, "nodeName": node}}


def _node(name="w1", uid="node-uid-1"):
    return {"metadata": {"name": name, "uid": uid}}


@pytest.fixture(params=["rsa-2048", "ecdsa-p256"])
def key_pem(request):
    return keys.private_pem(keys.generate(request.param))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def objects():
    return Objects(("serviceaccounts", _sa()), ("pods", _pod()), ("nodes", _node()))


@pytest.fixture
def signer(key_pem, clock):
    return ServiceAccountTokenSigner(key_pem, ISSUER, clock)


@pytest.fixture
def validator(key_pem, clock, objects):
    return ServiceAccountTokenValidator(load_public_keys([key_pem]), (ISSUER,), (ISSUER,), objects, clock)


def _run(coroutine):
    return asyncio.run(coroutine)


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_claims_are_kubernetes_shaped(signer, key_pem):
    token, expires = signer.sign("ci", "builder", "sa-uid-1", [ISSUER], 3600,
                                 BoundObject("Pod", "job-1", "pod-uid-1"), BoundObject("Node", "w1", "node-uid-1"))
    claims = _claims(token)
    assert claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["sub"] == "system:serviceaccount:ci:builder"
    assert claims["iat"] == claims["nbf"] == int(NOW) and claims["exp"] == expires == int(NOW) + 3600
    assert claims["kubernetes.io"] == {"namespace": "ci", "serviceaccount": {"name": "builder", "uid": "sa-uid-1"},
                                       "pod": {"name": "job-1", "uid": "pod-uid-1"},
                                       "node": {"name": "w1", "uid": "node-uid-1"}}
    header = jwt.get_unverified_header(token)
    assert header["alg"] in ("RS256", "ES256")
    assert header["kid"] == key_id(load_public_keys([key_pem])[0])


def test_valid_token_gives_the_service_account_user(signer, validator):
    token, _ = signer.sign("ci", "builder", "sa-uid-1", [ISSUER], 3600, BoundObject("Pod", "job-1", "pod-uid-1"))
    result = _run(validator.validate(token))
    assert result.user.name == "system:serviceaccount:ci:builder"
    assert result.user.groups == ("system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated")
    assert result.user.uid == "sa-uid-1"
    assert result.user.extra["authentication.kubernetes.io/pod-name"] == ("job-1",)
    assert result.user.extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
    assert result.audiences == (ISSUER,)


def test_expired_token_is_refused_after_the_leeway(signer, validator, clock):
    token, _ = signer.sign("ci", "builder", "sa-uid-1", [ISSUER], 600)
    clock.now += 600 + 59
    assert _run(validator.validate(token)).user.name == "system:serviceaccount:ci:builder"
    clock.now += 2
    with pytest.raises(InvalidToken, match="service account token has expired"):
        _run(validator.validate(token))


def test_token_from_the_future_is_refused(signer, validator, clock):
    token, _ = signer.sign("ci", "builder", "sa-uid-1", [ISSUER], 3600)
    clock.now -= 120
    with pytest.raises(InvalidToken, match="not valid yet"):
        _run(validator.validate(token))


def test_foreign_key_is_refused(validator, clock):
    foreign = ServiceAccountTokenSigner(keys.private_pem(keys.generate("rsa-2048")), ISSUER, clock)
    token, _ = foreign.sign("ci", "builder", "sa-uid-1", [ISSUER], 3600)
    with pytest.raises(InvalidToken, match="signature"):
        _run(validator.validate(token))


def test_foreign_issuer_and_audience_are_refused(key_pem, validator, clock):
    other_issuer = ServiceAccountTokenSigner(key_pem, "https://elsewhere.example", clock)
    with pytest.raises(InvalidToken, match="issuer"):
        _run(validator.validate(other_issuer.sign("ci", "builder", "sa-uid-1", [ISSUER], 3600)[0]))
    signer = ServiceAccountTokenSigner(key_pem, ISSUER, clock)
    with pytest.raises(InvalidToken, match="audiences"):
        _run(validator.validate(signer.sign("ci", "builder", "sa-uid-1", ["vault"], 3600)[0]))
    token, _ = signer.sign("ci", "builder", "sa-uid-1", ["vault", "other"], 3600)
    assert _run(validator.validate(token, ("vault",))).audiences == ("vault",)


def test_tampered_payload_is_refused(signer, validator):
    token, _ = signer.sign("ci", "builder", "sa-uid-1", [ISSUER], 3600)
    header, payload, signature = token.split(".")
    claims = _claims(token)
    claims["sub"] = "system:serviceaccount:kube-system:admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        _run(validator.validate(f"{header}.{forged}.{signature}"))


@pytest.mark.parametrize("garbage", ["a.b.c", "not-a-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_garbage_is_refused(validator, garbage):
    with pytest.raises(InvalidToken):
        _run(validator.validate(garbage))


def test_recreated_service_account_invalidates_its_tokens(signer, validator, objects):
    token, _ = signer.sign("ci", "builder", "sa-uid-1", [ISSUER], 3600)
    objects.put("serviceaccounts", _sa(uid="sa-uid-2"))
    with pytest.raises(InvalidToken, match=r"service account UID \(sa-uid-2\) does not match claim \(sa-uid-1\)"):
        _run(validator.validate(token))
    objects.remove("serviceaccounts", "ci", "builder")
    with pytest.raises(InvalidToken, match='service account "ci/builder" has been deleted'):
        _run(validator.validate(token))


def test_pod_bound_token_dies_with_its_pod(signer, validator, objects):
    token, _ = signer.sign("ci", "builder", "sa-uid-1", [ISSUER], 3600, BoundObject("Pod", "job-1", "pod-uid-1"))
    objects.put("pods", _pod(uid="pod-uid-2"))
    with pytest.raises(InvalidToken, match="pod ci/job-1 UID"):
        _run(validator.validate(token))
    objects.put("pods", {**_pod(), "metadata": {**_pod()["metadata"], "deletionTimestamp": "2027-01-01T00:00:00Z"}})
    with pytest.raises(InvalidToken, match="pod ci/job-1 has been deleted"):
        _run(validator.validate(token))


# --- TokenRequest ----------------------------------------------------------------------------------------------------

@pytest.fixture
def issuer(signer, objects):
    return TokenIssuer(signer, (ISSUER,), objects)


def test_token_request_defaults(issuer, validator):
    answer = _run(issuer.issue(_sa(), {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}))
    assert answer["spec"] == {"expirationSeconds": 3600, "audiences": [ISSUER]}
    assert answer["status"]["expirationTimestamp"] == "2027-01-15T09:00:00Z"  # NOW + 3600 s
    assert answer["metadata"]["name"] == "builder" and answer["metadata"]["namespace"] == "ci"
    assert _run(validator.validate(answer["status"]["token"])).user.name == "system:serviceaccount:ci:builder"


def test_token_request_bound_to_a_pod_records_the_node(issuer):
    answer = _run(issuer.issue(_sa(), {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                                   "name": "job-1", "uid": "pod-uid-1"}}}))
    private = _claims(answer["status"]["token"])["kubernetes.io"]
    assert private["pod"] == {"name": "job-1", "uid": "pod-uid-1"}
    assert private["node"] == {"name": "w1", "uid": "node-uid-1"}


@pytest.mark.parametrize("spec, code, message", [
    ({"expirationSeconds": 599}, 422, 'TokenRequest.authentication.k8s.io "builder" is invalid: '
                                      "spec.expirationSeconds: Invalid value: 599: may not specify a duration less "
                                      "than 10 minutes"),
    ({"expirationSeconds": (1 << 32) + 1}, 422, "may not specify a duration larger than 2^32 seconds"),
    ({"boundObjectRef": {"kind": "Deployment", "name": "x"}}, 422,
     'spec.boundObjectRef.kind: Unsupported value: "Deployment"'),
    ({"boundObjectRef": {"kind": "Pod", "name": "missing"}}, 404, 'pods "missing" not found'),
    ({"boundObjectRef": {"kind": "Pod", "name": "job-1", "uid": "stale"}}, 409,
     "the UID in the bound object reference (stale) does not match"),
])
def test_token_request_refusals(issuer, spec, code, message):
    with pytest.raises(APIError) as caught:
        _run(issuer.issue(_sa(), {"spec": spec}))
    assert caught.value.code == code and message in caught.value.message


def test_token_request_refuses_a_pod_of_another_account(issuer, objects):
    objects.put("pods", _pod(name="other", sa="default"))
    with pytest.raises(APIError) as caught:
        _run(issuer.issue(_sa(), {"spec": {"boundObjectRef": {"kind": "Pod", "name": "other"}}}))
    assert caught.value.code == 400
    assert caught.value.message == ('cannot bind token for serviceaccount "builder" to pod running with different '
                                    "serviceaccount name.")
