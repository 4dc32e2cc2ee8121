"""The CSR signing controller's rules and signing (controller_manager/controllers/csrsigning.py), with real keys and
CSRs made with `cryptography`."""
from __future__ import annotations

import base64
import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kpy_components.controller_manager import config as cm_config
from kpy_components.controller_manager.controllers import csrsigning
from kpy_components.component.config import ConfigError
from kpy_components.pki import issue

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
SERVING = frozenset({"digital signature", "key encipherment", "server auth"})
CLIENT = frozenset({"digital signature", "key encipherment", "client auth"})


@pytest.fixture(scope="module")
def ca():
    return issue.create_ca("test-ca", "ecdsa-p256", 3650, NOW)


def make_csr(cn: str, organizations=("system:nodes",), sans=()) -> x509.CertificateSigningRequest:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(key, hashes.SHA256())


def spec_of(request: x509.CertificateSigningRequest, **fields) -> dict:
    pem = request.public_bytes(serialization.Encoding.PEM)
    return {"request": base64.b64encode(pem).decode(), **fields}


NODE_SANS = (x509.DNSName("n1.lab"), x509.IPAddress(ipaddress.ip_address("10.0.0.5")))


def test_kubelet_serving_accepts_a_node_serving_request():
    csrsigning.validate_kubelet_serving(make_csr("system:node:n1", sans=NODE_SANS), SERVING)
    csrsigning.validate_kubelet_serving(make_csr("system:node:n1", sans=NODE_SANS), SERVING - {"key encipherment"})


@pytest.mark.parametrize(("cn", "organizations", "sans", "usages", "message"), [
    ("system:node:n1", ("other",), NODE_SANS, SERVING, "subject organization is not system:nodes"),
    ("system:node:n1", ("system:nodes",), (), SERVING, "DNS or IP subjectAltName is required"),
    ("system:node:n1", ("system:nodes",), NODE_SANS + (x509.RFC822Name("a@b.c"),), SERVING,
     "Email subjectAltNames are not allowed"),
    ("system:node:n1", ("system:nodes",), NODE_SANS + (x509.UniformResourceIdentifier("spiffe://x"),), SERVING,
     "URI subjectAltNames are not allowed"),
    ("system:node:n1", ("system:nodes",), NODE_SANS, CLIENT,
     "usages did not match [digital signature key encipherment server auth]"),
    ("n1", ("system:nodes",), NODE_SANS, SERVING, "subject common name does not begin with system:node:"),
])
def test_kubelet_serving_refuses_what_upstream_refuses(cn, organizations, sans, usages, message):
    with pytest.raises(csrsigning.SignerValidationError, match=f"^{message.replace('[', '.').replace(']', '.')}$"):
        csrsigning.validate_kubelet_serving(make_csr(cn, organizations, sans), usages)


def test_kubelet_client_rules():
    csrsigning.validate_kubelet_client(make_csr("system:node:n1"), CLIENT)
    with pytest.raises(csrsigning.SignerValidationError, match="DNS subjectAltNames are not allowed"):
        csrsigning.validate_kubelet_client(make_csr("system:node:n1", sans=NODE_SANS), CLIENT)
    with pytest.raises(csrsigning.SignerValidationError, match="subject common name does not begin"):
        csrsigning.validate_kubelet_client(make_csr("alice"), CLIENT)
    with pytest.raises(csrsigning.SignerValidationError, match="usages did not match"):
        csrsigning.validate_kubelet_client(make_csr("system:node:n1"), SERVING)


def test_apiserver_client_allows_any_subject_but_only_client_usages():
    csrsigning.validate_apiserver_client(make_csr("alice", ("devs",)), CLIENT)
    with pytest.raises(csrsigning.SignerValidationError, match="^invalid usage for client certificate: server auth$"):
        csrsigning.validate_apiserver_client(make_csr("alice"), frozenset({"client auth", "server auth"}))


def test_signed_certificate_carries_the_request_and_is_signed_by_the_ca(ca):
    ca_cert, ca_key = ca
    request = make_csr("system:node:n1", sans=NODE_SANS)
    spec = spec_of(request, expirationSeconds=3600)
    parsed = csrsigning.parse_request(spec)
    pem = csrsigning.sign(parsed, SERVING, csrsigning.lifetime(spec, 365 * 86400, ca_cert, NOW), ca_cert, ca_key, NOW)
    cert = x509.load_pem_x509_certificate(pem)
    assert issue.signed_by(cert, ca_cert)
    assert cert.subject == request.subject
    assert issue.subject_alt_names(cert) == frozenset(NODE_SANS)
    assert cert.public_key() == request.public_key()
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc == NOW + datetime.timedelta(hours=1)


def test_lifetime_honours_expiration_seconds_within_bounds(ca):
    ca_cert, _ = ca
    year = 365 * 86400
    assert csrsigning.lifetime({}, year, ca_cert, NOW) == datetime.timedelta(seconds=year)
    assert csrsigning.lifetime({"expirationSeconds": 60}, year, ca_cert, NOW) == datetime.timedelta(seconds=600)
    assert csrsigning.lifetime({"expirationSeconds": 10 * year}, year, ca_cert, NOW) == datetime.timedelta(seconds=year)
    # never past the CA
    assert csrsigning.lifetime({}, 100 * year, ca_cert, NOW) == ca_cert.not_valid_after_utc - NOW


def test_bad_request_is_named():
    with pytest.raises(ValueError, match="spec.request is not a PEM certificate request"):
        csrsigning.parse_request({"request": base64.b64encode(b"nonsense").decode()})


def test_only_approved_unissued_requests_of_our_signers_are_signed():
    approved = {"status": {"conditions": [{"type": "Approved", "status": "True"}]}}
    assert csrsigning.to_sign({"spec": {"signerName": csrsigning.KUBELET_SERVING}, **approved})
    assert not csrsigning.to_sign({"spec": {"signerName": "example.com/other"}, **approved})
    assert not csrsigning.to_sign({"spec": {"signerName": csrsigning.KUBELET_SERVING}})
    assert not csrsigning.to_sign({"spec": {"signerName": csrsigning.KUBELET_SERVING},
                                   "status": {"certificate": "eA==", **approved["status"]}})
    failed = {"conditions": approved["status"]["conditions"] + [{"type": "Failed", "status": "True"}]}
    assert not csrsigning.to_sign({"spec": {"signerName": csrsigning.KUBELET_SERVING}, "status": failed})


def test_config_reads_the_signing_files_and_duration():
    config = cm_config.parse({"csrSigningController": {"clusterSigningCertFile": "/x/ca.crt",
                                                       "clusterSigningKeyFile": "/x/ca.key",
                                                       "clusterSigningDuration": "720h"}}, "test")
    assert config.csr_signing.duration == 720 * 3600
    assert "csrsigning" in config.enabled
    with pytest.raises(ConfigError, match="csrSigningController.clusterSigningKeyFile"):
        cm_config.parse({"csrSigningController": {"clusterSigningCertFile": "/x/ca.crt"}}, "test")
    assert not csrsigning.CSRSigningController.wanted(cm_config.parse({}, "test"))
