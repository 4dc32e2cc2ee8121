"""Service-account tokens: JWTs as Kubernetes issues them, signed with the cluster's service-account key (PKI
`sa.key`), and the validator that turns a bearer token back into a user.

Claims (k8s.io/kubernetes/pkg/serviceaccount/claims.go):
    iss, sub = system:serviceaccount:<ns>:<name>, aud (list), exp, nbf, iat, jti,
    kubernetes.io = {namespace, serviceaccount {name, uid}, pod? {name, uid}, secret? {...}, node? {...}}
The header carries `kid` = base64url(sha256(DER SubjectPublicKeyInfo)) like kube-apiserver, so keys can rotate.

Every token kpy issues is bound to its service account's uid: deleting and recreating the account invalidates it,
and a token bound to a pod (or secret, node) dies with that object.
"""
from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives import serialization

from kpy_components.api import legacy_tokens
from kpy_components.api.jwt_keys import key_id
from kpy_components.api.jwt_keys import signing_algorithm as _algorithm
from kpy_components.apiserver.http.context import User

AUTHENTICATED = "system:authenticated"
SERVICE_ACCOUNTS = "system:serviceaccounts"
SA_PREFIX = "system:serviceaccount:"
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LEEWAY_SECONDS = 60  # clock skew tolerated on exp/nbf, as kube-apiserver
_EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
_EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
_EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
_EXTRA_CREDENTIAL = "authentication.kubernetes.io/credential-id"

# (plural, namespace, name) -> the stored object, or None when it does not exist. Namespace "" for nodes.
Lookup = Callable[[str, str, str], Awaitable[dict | None]]
Clock = Callable[[], float]


class InvalidToken(Exception):
    """Why a bearer token was refused (shown in TokenReview status.error, never to anonymous callers)."""


def service_account_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED


def load_public_keys(pems: list[bytes]) -> list:
    """Public keys from PEM blobs holding public or private keys (kube-apiserver's --service-account-key-file)."""
    loaded = []
    for pem in pems:
        try:
            loaded.append(serialization.load_pem_public_key(pem))
        except ValueError:
            loaded.append(serialization.load_pem_private_key(pem, password=None).public_key())
    return loaded


@dataclass(frozen=True)
class BoundObject:
    kind: str  # Pod, Secret or Node
    name: str
    uid: str


@dataclass
class ServiceAccountTokenSigner:
    """Issues tokens (TokenRequest, the kubelet's projected volumes)."""
    private_key_pem: bytes
    issuer: str = DEFAULT_ISSUER
    clock: Clock = time.time

    def __post_init__(self):
        self._key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        self._algorithm = _algorithm(self._key.public_key())
        self._kid = key_id(self._key.public_key())

    def sign(self, namespace: str, name: str, uid: str, audiences: list[str], expiration_seconds: int,
             bound: BoundObject | None = None, node: BoundObject | None = None) -> tuple[str, int]:
        """(token, expiry as epoch seconds)."""
        now = int(self.clock())
        expires = now + expiration_seconds
        private = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if bound:
            private[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
        if node and "node" not in private:
            private["node"] = {"name": node.name, "uid": node.uid}
        claims = {"iss": self.issuer, "sub": service_account_username(namespace, name), "aud": list(audiences),
                  "exp": expires, "nbf": now, "iat": now, "jti": str(uuid.uuid4()), "kubernetes.io": private}
        return jwt.encode(claims, self._key, algorithm=self._algorithm, headers={"kid": self._kid}), expires


@dataclass(frozen=True)
class TokenResult:
    user: User
    audiences: tuple[str, ...]
    expires: float | None = None  # the token's exp (epoch seconds), when it has one


@dataclass
class ServiceAccountTokenValidator:
    """Checks signature, issuer, audience, time and that the bound objects still exist with the same uid."""
    public_keys: list
    issuers: tuple[str, ...]
    audiences: tuple[str, ...]
    lookup: Lookup
    clock: Clock = time.time
    _by_kid: dict = field(init=False, repr=False)

    def __post_init__(self):
        self._by_kid = {key_id(key): key for key in self.public_keys}

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        return token.count(".") == 2

    def _verify(self, token: str, audiences: tuple[str, ...], legacy: bool = False) -> dict:
        """The claims of a token signed by one of our keys. Legacy tokens carry no audience nor times."""
        checks = {"audience": list(audiences), "options": {
            "require": ["exp", "iat", "iss", "sub", "aud"], "verify_exp": False, "verify_nbf": False,
            "verify_iat": False}}  # times are checked by `validate` against the injectable clock
        if legacy:
            checks = {"options": {"require": ["iss", "sub"], "verify_aud": False, "verify_exp": False,
                                  "verify_nbf": False, "verify_iat": False}}
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise InvalidToken("invalid bearer token") from error
        keys = [self._by_kid[header["kid"]]] if header.get("kid") in self._by_kid else self.public_keys
        for key in keys:
            try:
                return jwt.decode(token, key, algorithms=[_algorithm(key)], **checks)
            except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):  # made by another key
                continue
            except jwt.InvalidAudienceError as error:
                raise InvalidToken("token audiences don't match the API server's audiences") from error
            except jwt.PyJWTError as error:
                raise InvalidToken(f"invalid bearer token: {error}") from error
        raise InvalidToken("invalid bearer token: the signature was not made by a service-account key")

    async def validate(self, token: str, audiences: tuple[str, ...] | None = None) -> TokenResult:
        """The user the token stands for; InvalidToken saying why not. `audiences` (a TokenReview's) replace the
        API server's own; the result's audiences are those the token carries among them."""
        wanted = tuple(audiences or self.audiences)
        if _unverified_issuer(token) == legacy_tokens.ISSUER:
            return await self._validate_legacy(token, wanted)
        claims = self._verify(token, wanted)
        if claims.get("iss") not in self.issuers:
            raise InvalidToken("invalid bearer token: the issuer is not this cluster's")
        if not all(isinstance(claims.get(c, 0), (int, float)) for c in ("exp", "nbf", "iat")):
            raise InvalidToken("invalid bearer token: exp, nbf and iat must be numbers")
        now = self.clock()
        if claims["exp"] + LEEWAY_SECONDS < now:
            raise InvalidToken("service account token has expired")
        if claims.get("nbf", 0) - LEEWAY_SECONDS > now:
            raise InvalidToken("service account token is not valid yet")
        private = claims.get("kubernetes.io")
        if not isinstance(private, dict) or not isinstance(private.get("serviceaccount"), dict):
            raise InvalidToken("invalid bearer token: missing the kubernetes.io service account claims")
        namespace, account = private.get("namespace", ""), private["serviceaccount"]
        if claims["sub"] != service_account_username(namespace, account.get("name", "")):
            raise InvalidToken("invalid bearer token: sub does not match the service account claims")
        await self._check_bound(namespace, account, private)
        token_audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        return TokenResult(self._user(namespace, account, private, claims),
                           tuple(a for a in wanted if a in token_audiences), float(claims["exp"]))

    async def _validate_legacy(self, token: str, audiences: tuple[str, ...]) -> TokenResult:
        """A token from a kubernetes.io/service-account-token Secret (legacyValidator): valid while that Secret
        holds exactly this token and the account exists with the uid the token names. It has no audience, so it
        is good for the API server's own audiences."""
        claims = self._verify(token, audiences, legacy=True)
        names = [claims.get(c) for c in (legacy_tokens.NAMESPACE_CLAIM, legacy_tokens.SECRET_NAME_CLAIM,
                                         legacy_tokens.ACCOUNT_NAME_CLAIM, legacy_tokens.ACCOUNT_UID_CLAIM)]
        if not all(isinstance(value, str) and value for value in names):
            raise InvalidToken("invalid bearer token: missing the kubernetes.io/serviceaccount claims")
        namespace, secret_name, name, uid = names
        if claims["sub"] != service_account_username(namespace, name):
            raise InvalidToken("invalid bearer token: sub does not match the service account claims")
        secret = await self.lookup("secrets", namespace, secret_name)
        if secret is None or _being_deleted(secret):
            raise InvalidToken("token has been invalidated")
        if _secret_token(secret) != token:
            raise InvalidToken("token does not match server's copy")
        account = {"name": name, "uid": uid}
        await self._check_bound(namespace, account, {})
        return TokenResult(self._user(namespace, account, {}, {}), audiences)

    async def _check_bound(self, namespace: str, account: dict, private: dict) -> None:
        sa = await self.lookup("serviceaccounts", namespace, account.get("name", ""))
        if sa is None or _being_deleted(sa):
            raise InvalidToken(f'service account "{namespace}/{account.get("name")}" has been deleted')
        if account.get("uid") and (sa.get("metadata") or {}).get("uid") != account["uid"]:
            raise InvalidToken(f"service account UID ({(sa.get('metadata') or {}).get('uid')}) does not match "
                               f"claim ({account['uid']})")
        for kind, plural, scoped in (("pod", "pods", True), ("secret", "secrets", True), ("node", "nodes", False)):
            ref = private.get(kind)
            if not isinstance(ref, dict):
                continue
            obj = await self.lookup(plural, namespace if scoped else "", ref.get("name", ""))
            where = f"{namespace}/{ref.get('name')}" if scoped else ref.get("name")
            if obj is None or _being_deleted(obj):
                raise InvalidToken(f"{kind} {where} has been deleted")
            if ref.get("uid") and (obj.get("metadata") or {}).get("uid") != ref["uid"]:
                raise InvalidToken(f"{kind} {where} UID ({(obj.get('metadata') or {}).get('uid')}) does not "
                                   f"match claim ({ref['uid']})")

    @staticmethod
    def _user(namespace: str, account: dict, private: dict, claims: dict) -> User:
        extra: dict[str, tuple[str, ...]] = {}
        if isinstance(private.get("pod"), dict):
            extra[_EXTRA_POD_NAME] = (private["pod"].get("name", ""),)
            extra[_EXTRA_POD_UID] = (private["pod"].get("uid", ""),)
        if isinstance(private.get("node"), dict):
            extra[_EXTRA_NODE_NAME] = (private["node"].get("name", ""),)
        if claims.get("jti"):
            extra[_EXTRA_CREDENTIAL] = (f"JTI={claims['jti']}",)
        return User(service_account_username(namespace, account.get("name", "")), service_account_groups(namespace),
                    uid=account.get("uid", ""), extra=extra)


def _unverified_issuer(token: str) -> str | None:
    """The iss claim before the signature is checked (to pick the validation rules); None if unreadable."""
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
    return issuer if isinstance(issuer, str) else None


def _secret_token(secret: dict) -> str | None:
    try:
        return base64.b64decode((secret.get("data") or {}).get("token") or "", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _being_deleted(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))
