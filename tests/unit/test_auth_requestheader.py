"""Request-header authentication: a certificate of the requestheader CA with an allowed name makes X-Remote-User,
X-Remote-Group and X-Remote-Extra-* the user; such a certificate is never an x509 user of its own; the client CA's
certificates and the headers of anyone else count as before."""
import asyncio
import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from multidict import CIMultiDict

from kpy_components.apiserver.auth.authn import Authenticator
from kpy_components.apiserver.auth.requestheader import RequestHeaderAuthenticator, RequestHeaderConfig, read_cas
from kpy_components.apiserver.config import parse
from kpy_components.component.config import ConfigError
from kpy_components.pki import issue
from kpy_components.pki.profiles import WantedCert

NOW = datetime.datetime(2027, 1, 15, tzinfo=datetime.timezone.utc)


def _leaf(cn: str, orgs: tuple[str, ...], ca):
    wanted = WantedCert(cn, cn, "ca", cn, orgs, frozenset(), frozenset({"client"}), "ecdsa-p256", 30, None)
    cert, _key = issue.issue(wanted, *ca, NOW)
    subject = tuple((("organizationName", o),) for o in orgs) + ((("commonName", cn),),)
    return {"subject": subject}, cert.public_bytes(Encoding.DER)


class TLS:
    def __init__(self, der):
        self.der = der

    def getpeercert(self, binary_form=False):
        assert binary_form
        return self.der


class Transport:
    def __init__(self, peercert, der):
        self.extra = {"peercert": peercert, "ssl_object": TLS(der)}

    def get_extra_info(self, name):
        return self.extra.get(name)


class Request:
    def __init__(self, certificate, headers=()):
        self.transport = Transport(*certificate)
        self.headers = CIMultiDict(headers)
        self.path = "/api/v1/pods"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("requestheader")
    client_ca = issue.create_ca("kpy-test-ca", "ecdsa-p256", 3650, NOW - datetime.timedelta(days=1))
    proxy_ca = issue.create_ca("kpy-test-front-proxy-ca", "ecdsa-p256", 3650, NOW - datetime.timedelta(days=1))
    for name, (cert, _key) in (("ca.crt", client_ca), ("front-proxy-ca.crt", proxy_ca)):
        (directory / name).write_bytes(cert.public_bytes(Encoding.PEM))
    return directory, client_ca, proxy_ca


def authenticator(pki, allowed=("front-proxy-client",), proxy_ca_file="front-proxy-ca.crt"):
    directory = pki[0]
    request_header = RequestHeaderAuthenticator(RequestHeaderConfig(directory / proxy_ca_file, allowed),
                                                read_cas(directory / "ca.crt", "tls.client_ca_file"))
    return Authenticator(request_header=request_header)


def authenticate(auth, request):
    return asyncio.run(auth.authenticate(request))


def test_the_front_proxy_names_the_user_groups_and_extra(pki):
    proxy = _leaf("front-proxy-client", (), pki[2])
    headers = [("X-Remote-User", "alice"), ("X-Remote-Group", "dev"), ("X-Remote-Group", "ops"),
               ("X-Remote-Extra-Scopes", "a"), ("X-Remote-Extra-Scopes", "b"),
               ("X-Remote-Extra-example.com%2fteam", "blue")]
    user = authenticate(authenticator(pki), Request(proxy, headers))
    assert (user.name, user.groups) == ("alice", ("dev", "ops", "system:authenticated"))
    assert user.extra == {"scopes": ("a", "b"), "example.com/team": ("blue",)}


def test_a_proxy_certificate_without_a_user_header_or_allowed_name_is_nobody(pki):
    auth = authenticator(pki)
    assert authenticate(auth, Request(_leaf("front-proxy-client", (), pki[2]))) is None
    # signed by the front-proxy CA, but not an allowed name: neither the proxied user nor an x509 user
    other = _leaf("admin", ("system:masters",), pki[2])
    assert authenticate(auth, Request(other, [("X-Remote-User", "alice")])) is None


def test_any_name_of_the_ca_is_a_proxy_when_no_names_are_listed(pki):
    user = authenticate(authenticator(pki, allowed=()), Request(_leaf("aggregator", (), pki[2]),
                                                                [("X-Remote-User", "bob")]))
    assert user.name == "bob"


def test_client_ca_certificates_ignore_the_headers(pki):
    admin = _leaf("admin", ("system:masters",), pki[1])
    user = authenticate(authenticator(pki), Request(admin, [("X-Remote-User", "mallory"),
                                                            ("X-Remote-Group", "system:masters")]))
    assert (user.name, user.groups) == ("admin", ("system:masters", "system:authenticated"))


def test_a_ca_that_is_both_keeps_its_x509_users(pki):
    # requestheader CA = client CA (a shared CA): a certificate not allowed as a proxy is still an x509 user
    auth = authenticator(pki, proxy_ca_file="ca.crt")
    assert authenticate(auth, Request(_leaf("admin", (), pki[1]), [("X-Remote-User", "x")])).name == "admin"
    proxy = _leaf("front-proxy-client", (), pki[1])
    assert authenticate(auth, Request(proxy, [("X-Remote-User", "carol")])).name == "carol"


def _config(requestheader):
    return {"tls": {"cert_file": "/c", "key_file": "/k", "client_ca_file": "/ca"},
            "storage": {"backend": "sqlite", "sqlite_path": "/db"},
            "service_account": {"signing_key_file": "/sa.key"}, "requestheader": requestheader}


def test_config_takes_upstreams_flags_with_kubeadms_header_names_by_default():
    config = parse(_config({"client_ca_file": "/etc/kpy/pki/front-proxy-ca.crt",
                            "allowed_names": ["front-proxy-client"]}))
    assert config.requestheader == RequestHeaderConfig(
        Path("/etc/kpy/pki/front-proxy-ca.crt"), ("front-proxy-client",),
        ("X-Remote-User",), ("X-Remote-Group",), ("X-Remote-Extra-",))
    assert parse(_config(None) | {"requestheader": {"client_ca_file": "/x"}}).requestheader.allowed_names == ()


def test_config_problems_name_the_field():
    with pytest.raises(ConfigError) as error:
        parse(_config({"allowed_names": "front-proxy-client", "username_headers": [], "group_header": []}))
    assert sorted(error.value.problems) == sorted([
        "requestheader.client_ca_file: is required",
        "requestheader.allowed_names: must be a list of strings, not 'front-proxy-client'",
        "requestheader.username_headers: must name at least one header (the user's name comes from it)",
        "requestheader.group_header: unknown field (known: client_ca_file, allowed_names, username_headers, "
        "group_headers, extra_headers_prefix)",
    ])


def test_a_ca_file_without_certificates_is_named(tmp_path):
    (tmp_path / "empty.crt").write_text("not a certificate\n")
    with pytest.raises(ValueError, match=r"requestheader.client_ca_file: .*empty.crt holds no PEM certificate"):
        read_cas(tmp_path / "empty.crt", "requestheader.client_ca_file")
