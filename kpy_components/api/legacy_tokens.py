"""Legacy service-account tokens: the JWTs kube-controller-manager's token controller writes into Secrets of type
kubernetes.io/service-account-token (k8s.io/kubernetes/pkg/serviceaccount/legacy.go). They carry no expiry and no
audience; they are valid while their Secret holds exactly this token and their ServiceAccount keeps its uid. The
token controller signs them, the API server's authenticator checks them: both read the claim names here.
"""
from __future__ import annotations

import jwt
from cryptography.hazmat.primitives import serialization

from .jwt_keys import key_id, signing_algorithm

ISSUER = "kubernetes/serviceaccount"
SECRET_TYPE = "kubernetes.io/service-account-token"
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"
NAMESPACE_CLAIM = "kubernetes.io/serviceaccount/namespace"
SECRET_NAME_CLAIM = "kubernetes.io/serviceaccount/secret.name"
ACCOUNT_NAME_CLAIM = "kubernetes.io/serviceaccount/service-account.name"
ACCOUNT_UID_CLAIM = "kubernetes.io/serviceaccount/service-account.uid"


def claims(namespace: str, account: str, account_uid: str, secret: str) -> dict:
    return {"iss": ISSUER, "sub": f"system:serviceaccount:{namespace}:{account}", NAMESPACE_CLAIM: namespace,
            SECRET_NAME_CLAIM: secret, ACCOUNT_NAME_CLAIM: account, ACCOUNT_UID_CLAIM: account_uid}


class LegacyTokenSigner:
    """Signs legacy tokens with a PEM private key (--service-account-private-key-file); ValueError for a file
    that is not a usable key."""

    def __init__(self, private_key_pem: bytes):
        try:
            self._key = serialization.load_pem_private_key(private_key_pem, password=None)
        except (ValueError, TypeError) as error:
            raise ValueError(f"not a PEM private key ({error})") from None
        self._algorithm = signing_algorithm(self._key.public_key())
        self._kid = key_id(self._key.public_key())

    def sign(self, namespace: str, account: str, account_uid: str, secret: str) -> str:
        return jwt.encode(claims(namespace, account, account_uid, secret), self._key, algorithm=self._algorithm,
                          headers={"kid": self._kid})
