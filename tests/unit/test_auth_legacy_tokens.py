"""Legacy service-account tokens (the token controller's Secrets): Kubernetes' legacy claims, accepted by the API
server's validator while the Secret holds exactly this token and the account keeps its uid; refused otherwise."""
import base64

import pytest
from test_auth_tokens import ISSUER, Objects, _claims, _run, _sa, clock, key_pem  # noqa: F401

from kpy_components.api.legacy_tokens import LegacyTokenSigner
from kpy_components.apiserver.auth.tokens import InvalidToken, ServiceAccountTokenValidator, load_public_keys
from kpy_components.pki import keys


def _secret(token: str, name="builder-token", namespace="ci", deleting=False) -> dict:
    metadata = {"name": name, "namespace": namespace, "uid": "secret-uid-1"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": metadata, "type": "kubernetes.io/service-account-token",
            "data": {"token": base64.b64encode(token.encode()).decode()}}


@pytest.fixture
def token(key_pem):
    return LegacyTokenSigner(key_pem).sign("ci", "builder", "sa-uid-1", "builder-token")


@pytest.fixture
def objects(token):
    return Objects(("serviceaccounts", _sa()), ("secrets", _secret(token)))


@pytest.fixture
def validator(key_pem, clock, objects):
    return ServiceAccountTokenValidator(load_public_keys([key_pem]), (ISSUER,), (ISSUER,), objects, clock)


def test_legacy_claims_are_kubernetes_shaped(token):
    assert _claims(token) == {
        "iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:ci:builder",
        "kubernetes.io/serviceaccount/namespace": "ci", "kubernetes.io/serviceaccount/secret.name": "builder-token",
        "kubernetes.io/serviceaccount/service-account.name": "builder",
        "kubernetes.io/serviceaccount/service-account.uid": "sa-uid-1"}


def test_a_legacy_token_in_its_secret_authenticates_as_the_account(token, validator):
    result = _run(validator.validate(token))
    assert result.user.name == "system:serviceaccount:ci:builder"
    assert result.user.groups == ("system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated")
    assert result.user.uid == "sa-uid-1"
    assert result.audiences == (ISSUER,)


@pytest.mark.parametrize("change, reason", [
    (lambda objects, token: objects.put("secrets", _secret("another-token")), "token does not match server's copy"),
    (lambda objects, token: objects.remove("secrets", "ci", "builder-token"), "token has been invalidated"),
    (lambda objects, token: objects.put("secrets", _secret(token, deleting=True)), "token has been invalidated"),
    (lambda objects, token: objects.put("serviceaccounts", _sa(uid="sa-uid-2")), "does not match claim"),
    (lambda objects, token: objects.remove("serviceaccounts", "ci", "builder"), "has been deleted"),
], ids=["other-token", "secret-deleted", "secret-deleting", "account-recreated", "account-deleted"])
def test_a_legacy_token_dies_with_its_secret_or_account(token, validator, objects, change, reason):
    change(objects, token)
    with pytest.raises(InvalidToken, match=reason):
        _run(validator.validate(token))


def test_a_legacy_token_from_another_key_is_refused(validator, objects):
    foreign = LegacyTokenSigner(keys.private_pem(keys.generate("rsa-2048"))).sign("ci", "builder", "sa-uid-1",
                                                                                   "builder-token")
    objects.put("secrets", _secret(foreign))
    with pytest.raises(InvalidToken, match="signature was not made by a service-account key"):
        _run(validator.validate(foreign))


def test_a_signer_refuses_what_is_not_a_private_key():
    with pytest.raises(ValueError, match="not a PEM private key"):
        LegacyTokenSigner(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
