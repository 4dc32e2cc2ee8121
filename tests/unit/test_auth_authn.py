"""Authentication: client certificates (CN/O), bearer tokens (service accounts, bootstrap tokens), and None (→ 401)
for anything else, including a real TLS handshake's peer certificate."""
import asyncio
import base64
import socket
import ssl
import threading

import pytest

from kpy_components.api.errors import unauthorized
from kpy_components.apiserver.auth.authn import TOKEN_CACHE_SECONDS, Authenticator, bearer_token, user_from_certificate
from kpy_components.apiserver.auth.bootstrap_tokens import BootstrapTokenAuthenticator
from kpy_components.apiserver.auth.tokens import (InvalidToken, ServiceAccountTokenSigner,
                                                  ServiceAccountTokenValidator, load_public_keys)
from kpy_components.pki import keys

ISSUER = "https://kubernetes.default.svc.cluster.local"
NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class Transport:
    def __init__(self, peercert):
        self.peercert = peercert

    def get_extra_info(self, name):
        return self.peercert if name == "peercert" else None


class Request:
    """The parts of aiohttp's web.Request that authentication reads."""

    def __init__(self, peercert=None, authorization=None):
        self.transport = Transport(peercert)
        self.headers = {"Authorization": authorization} if authorization else {}
        self.path = "/api/v1/pods"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _bootstrap_secret(token_id="abcdef", secret="0123456789abcdef", **overrides):
    data = {"token-id": token_id, "token-secret": secret, "usage-bootstrap-authentication": "true",
            "expiration": "2027-01-16T00:00:00Z",
            "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}
    data.update(overrides)
    return {"metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "type": "bootstrap.kubernetes.io/token", "data": {k: _b64(v) for k, v in data.items() if v is not None}}


def _lookup(store: dict):
    async def lookup(plural, namespace, name):
        return store.get((plural, namespace, name))
    return lookup


def _cert(cn=None, *orgs):
    subject = tuple((("organizationName", o),) for o in orgs) + (((("commonName", cn),),) if cn else ())
    return {"subject": subject}


def test_certificate_user_is_cn_with_o_groups():
    user = user_from_certificate(_cert("kubernetes-admin", "system:masters"))
    assert user.name == "kubernetes-admin"
    assert user.groups == ("system:masters", "system:authenticated")


def test_certificate_without_cn_is_no_user():
    assert user_from_certificate(_cert(None, "system:masters")) is None
    assert user_from_certificate({}) is None and user_from_certificate(None) is None


@pytest.mark.parametrize("header, token", [
    ("Bearer abc.def", "abc.def"), ("bearer   abc", "abc"), ("Basic dXNlcjpwYXNz", None), ("Bearer", None),
    ("Bearer a b", None), ("", None), (None, None),
])
def test_bearer_header_parsing(header, token):
    assert bearer_token(header) == token


@pytest.fixture
def world():
    key = keys.private_pem(keys.generate("ecdsa-p256"))
    store = {("serviceaccounts", "ci", "builder"): {"metadata": {"name": "builder", "namespace": "ci", "uid": "u1"}},
             ("secrets", "kube-system", "bootstrap-token-abcdef"): _bootstrap_secret()}
    lookup = _lookup(store)
    clock = lambda: NOW  # noqa: E731
    authenticator = Authenticator(
        ServiceAccountTokenValidator(load_public_keys([key]), (ISSUER,), (ISSUER,), lookup, clock),
        BootstrapTokenAuthenticator(lookup, clock))
    return authenticator, ServiceAccountTokenSigner(key, ISSUER, clock), store


def _authenticate(authenticator, request):
    return asyncio.run(authenticator.authenticate(request))


def test_certificate_wins_over_a_bad_token(world):
    authenticator, _, _ = world
    user = _authenticate(authenticator, Request(_cert("alice", "dev"), "Bearer garbage.garbage.garbage"))
    assert user.name == "alice" and user.groups == ("dev", "system:authenticated")


def test_service_account_bearer_token(world):
    authenticator, signer, _ = world
    token, _ = signer.sign("ci", "builder", "u1", [ISSUER], 3600)
    user = _authenticate(authenticator, Request(authorization=f"Bearer {token}"))
    assert user.name == "system:serviceaccount:ci:builder"


def test_no_credentials_or_bad_token_is_no_user_and_the_app_answers_401(world):
    authenticator, _, _ = world
    assert _authenticate(authenticator, Request()) is None
    assert _authenticate(authenticator, Request(authorization="Bearer nope")) is None
    assert _authenticate(authenticator, Request(authorization="Bearer a.b.c")) is None
    assert unauthorized().status() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                       "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


def test_bootstrap_token_user_and_groups(world):
    authenticator, _, _ = world
    user = _authenticate(authenticator, Request(authorization="Bearer abcdef.0123456789abcdef"))
    assert user.name == "system:bootstrap:abcdef"
    assert user.groups == ("system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token",
                           "system:authenticated")


@pytest.mark.parametrize("change, reason", [
    ({"token-secret": "ffffffffffffffff"}, "the secret does not match"),
    ({"expiration": "2027-01-15T07:59:59Z"}, "has expired"),
    ({"usage-bootstrap-authentication": None}, "not usable for authentication"),
    ({"auth-extra-groups": "system:masters"}, "auth-extra-groups must start with system:bootstrappers:"),
])
def test_bootstrap_token_refusals(world, change, reason):
    authenticator, _, store = world
    store[("secrets", "kube-system", "bootstrap-token-abcdef")] = _bootstrap_secret(**change)
    with pytest.raises(InvalidToken, match=reason):
        asyncio.run(authenticator.authenticate_token("abcdef.0123456789abcdef"))


def test_bootstrap_token_needs_its_secret(world):
    authenticator, _, store = world
    with pytest.raises(InvalidToken, match="no bootstrap token with id zzzzzz"):
        asyncio.run(authenticator.authenticate_token("zzzzzz.0123456789abcdef"))
    store[("secrets", "kube-system", "bootstrap-token-abcdef")]["type"] = "Opaque"
    with pytest.raises(InvalidToken, match="is not a bootstrap token"):
        asyncio.run(authenticator.authenticate_token("abcdef.0123456789abcdef"))


def test_real_tls_handshake_peer_certificate_gives_the_user(pki_generated):
    """The server side as kubectl meets it: CERT_OPTIONAL + the client CA, the admin client certificate."""
    pki = pki_generated
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki / "apiserver.crt", pki / "apiserver.key")
    server_ctx.verify_mode = ssl.CERT_OPTIONAL
    server_ctx.load_verify_locations(pki / "ca.crt")
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(pki / "ca.crt")
    client_ctx.check_hostname = False
    client_ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")

    listener = socket.create_server(("127.0.0.1", 0))
    seen = {}

    def serve():
        connection, _ = listener.accept()
        with server_ctx.wrap_socket(connection, server_side=True) as tls:
            seen["peercert"] = tls.getpeercert()
            tls.recv(1)

    thread = threading.Thread(target=serve)
    thread.start()
    with socket.create_connection(listener.getsockname()) as raw, client_ctx.wrap_socket(raw) as tls:
        tls.sendall(b"x")
    thread.join(10)
    listener.close()
    user = user_from_certificate(seen["peercert"])
    assert user.name == "admin" and "system:masters" in user.groups and "system:authenticated" in user.groups


def test_the_clusters_service_account_key_pair_signs_and_verifies(pki_generated):
    """sa.key signs (--service-account-signing-key-file); sa.pub verifies (--service-account-key-file)."""
    store = {("serviceaccounts", "default", "default"): {"metadata": {"name": "default", "namespace": "default",
                                                                      "uid": "u"}}}
    signer = ServiceAccountTokenSigner((pki_generated / "sa.key").read_bytes(), ISSUER)
    validator = ServiceAccountTokenValidator(load_public_keys([(pki_generated / "sa.pub").read_bytes()]),
                                             (ISSUER,), (ISSUER,), _lookup(store))
    token, _ = signer.sign("default", "default", "u", [ISSUER], 3600)
    user = asyncio.run(Authenticator(validator).authenticate(Request(authorization=f"Bearer {token}")))
    assert user.name == "system:serviceaccount:default:default"


def test_an_authenticated_token_is_remembered_for_ten_seconds_and_never_past_its_expiry():
    key = keys.private_pem(keys.generate("ecdsa-p256"))
    store = {("serviceaccounts", "ci", "builder"): {"metadata": {"name": "builder", "namespace": "ci", "uid": "u1"}}}
    now = [NOW]
    clock = lambda: now[0]  # noqa: E731 - one clock for the validator and the cache
    authenticator = Authenticator(ServiceAccountTokenValidator(load_public_keys([key]), (ISSUER,), (ISSUER,),
                                                               _lookup(store), clock), clock=clock)
    token, expires = ServiceAccountTokenSigner(key, ISSUER, clock).sign("ci", "builder", "u1", [ISSUER], 3600)
    request = Request(authorization=f"Bearer {token}")
    user = _authenticate(authenticator, request)
    assert user.name == "system:serviceaccount:ci:builder"
    del store[("serviceaccounts", "ci", "builder")]  # the account goes: the cache still answers for a while
    now[0] += TOKEN_CACHE_SECONDS - 1
    assert _authenticate(authenticator, request) == user
    now[0] += 2
    assert _authenticate(authenticator, request) is None
    store[("serviceaccounts", "ci", "builder")] = {"metadata": {"name": "builder", "namespace": "ci", "uid": "u1"}}
    now[0] = expires - 3  # remembered until the token's exp only, not 10 s beyond it
    assert _authenticate(authenticator, request) == user
    del store[("serviceaccounts", "ci", "builder")]
    now[0] = expires + 1
    assert _authenticate(authenticator, request) is None  # validated again (and refused), not remembered
