"""The CSR signing controller (pkg/controller/certificates/signer): an approved CertificateSigningRequest of one of
the built-in signers below, not yet issued nor failed, gets status.certificate signed by the cluster CA
(csrSigningController.clusterSigningCertFile/KeyFile). The certificate lasts spec.expirationSeconds, at most
csrSigningController.clusterSigningDuration and never past the CA. A request that breaks its signer's rules
(upstream's pkg/apis/certificates/v1 helpers) gets the Failed condition, reason SignerValidationFailure, instead.
Runs only when both signing files are configured.
"""
from __future__ import annotations

import base64
import datetime
import logging
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from kpy_components.api import meta
from kpy_components.api.errors import APIError
from kpy_components.client import is_conflict, is_not_found
from kpy_components.pki import issue

from ..controller import Controller
from .serviceaccount import read_file

log = logging.getLogger(__name__)
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
NODES_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
# upstream's required usage sets, each with and without "key encipherment" (which non-RSA keys leave out)
_SERVING_USAGES = frozenset({"digital signature", "key encipherment", "server auth"})
_CLIENT_USAGES = frozenset({"digital signature", "key encipherment", "client auth"})
_MIN_SECONDS = 600


class SignerValidationError(ValueError):
    """The request is not one its signer issues; the message is upstream's, shown in the Failed condition."""


def _usages_match(usages: frozenset[str], required: frozenset[str]) -> bool:
    return usages in (required, required - {"key encipherment"})


def _go_list(values) -> str:
    return f"[{' '.join(sorted(values))}]"


def _subject(request: x509.CertificateSigningRequest, oid) -> list[str]:
    return [str(attribute.value) for attribute in request.subject.get_attributes_for_oid(oid)]


def _sans(request: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    try:
        return list(request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _check_nodes_subject(request: x509.CertificateSigningRequest) -> None:
    if _subject(request, x509.NameOID.ORGANIZATION_NAME) != [NODES_GROUP]:
        raise SignerValidationError("subject organization is not system:nodes")


def _common_name(request: x509.CertificateSigningRequest) -> str:
    names = _subject(request, x509.NameOID.COMMON_NAME)
    return names[0] if names else ""


def _kinds(request) -> set[type]:
    return {type(name) for name in _sans(request)}


def validate_kubelet_serving(request: x509.CertificateSigningRequest, usages: frozenset[str]) -> None:
    """ValidateKubeletServingCSR: O=system:nodes, CN=system:node:<name>, DNS/IP SANs only, serving usages."""
    _check_nodes_subject(request)
    kinds = _kinds(request)
    if not kinds & {x509.DNSName, x509.IPAddress}:
        raise SignerValidationError("DNS or IP subjectAltName is required")
    if x509.RFC822Name in kinds:
        raise SignerValidationError("Email subjectAltNames are not allowed")
    if x509.UniformResourceIdentifier in kinds:
        raise SignerValidationError("URI subjectAltNames are not allowed")
    if not _usages_match(usages, _SERVING_USAGES):
        raise SignerValidationError(f"usages did not match {_go_list(_SERVING_USAGES)}")
    if not _common_name(request).startswith(NODE_PREFIX):
        raise SignerValidationError("subject common name does not begin with system:node:")


def validate_kubelet_client(request: x509.CertificateSigningRequest, usages: frozenset[str]) -> None:
    """ValidateKubeletClientCSR: O=system:nodes, CN=system:node:<name>, no SANs, client usages."""
    _check_nodes_subject(request)
    kinds = _kinds(request)
    for kind, label in ((x509.DNSName, "DNS"), (x509.RFC822Name, "Email"), (x509.IPAddress, "IP"),
                        (x509.UniformResourceIdentifier, "URI")):
        if kind in kinds:
            raise SignerValidationError(f"{label} subjectAltNames are not allowed")
    if not _common_name(request).startswith(NODE_PREFIX):
        raise SignerValidationError("subject common name does not begin with system:node:")
    if not _usages_match(usages, _CLIENT_USAGES):
        raise SignerValidationError(f"usages did not match {_go_list(_CLIENT_USAGES)}")


def validate_apiserver_client(_request: x509.CertificateSigningRequest, usages: frozenset[str]) -> None:
    """Any subject; only client usages."""
    for usage in sorted(usages):
        if usage not in _CLIENT_USAGES:
            raise SignerValidationError(f"invalid usage for client certificate: {usage}")


VALIDATORS: dict[str, Callable[[x509.CertificateSigningRequest, frozenset[str]], None]] = {
    KUBELET_SERVING: validate_kubelet_serving,
    KUBELET_CLIENT: validate_kubelet_client,
    APISERVER_CLIENT: validate_apiserver_client,
}


def parse_request(spec: dict) -> x509.CertificateSigningRequest:
    """The CSR in spec.request (base64 of PEM); ValueError naming what is wrong."""
    try:
        request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
    except ValueError as error:
        raise ValueError(f"spec.request is not a PEM certificate request: {error}") from None
    if not request.is_signature_valid:
        raise ValueError("spec.request is not signed by its own key")
    return request


def lifetime(spec: dict, maximum: float, ca_cert: x509.Certificate, now: datetime.datetime) -> datetime.timedelta:
    """spec.expirationSeconds (at least 600) capped by `maximum` seconds, never past the CA's own expiry."""
    seconds = maximum
    if spec.get("expirationSeconds") is not None:
        seconds = min(max(int(spec["expirationSeconds"]), _MIN_SECONDS), maximum)
    return min(datetime.timedelta(seconds=seconds), ca_cert.not_valid_after_utc - now)


def sign(request: x509.CertificateSigningRequest, usages: frozenset[str], duration: datetime.timedelta,
         ca_cert: x509.Certificate, ca_key, now: datetime.datetime) -> bytes:
    """The PEM certificate for `request` (its subject and SANs) with `usages`, signed by the CA."""
    extended = {usage.split()[0] for usage in usages if usage in ("server auth", "client auth")}
    certificate = issue.sign_leaf(request.public_key(), request.subject, frozenset(_sans(request)), extended,
                                  "key encipherment" in usages, duration, ca_cert, ca_key, now)
    return certificate.public_bytes(serialization.Encoding.PEM)


def condition(csr: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status", "True") == "True"
               for c in (csr.get("status") or {}).get("conditions") or ())


def to_sign(csr: dict) -> bool:
    """Approved, for one of our signers, and neither issued, denied nor failed yet."""
    return (csr.get("spec", {}).get("signerName") in VALIDATORS and condition(csr, "Approved")
            and not condition(csr, "Denied") and not condition(csr, "Failed")
            and not (csr.get("status") or {}).get("certificate"))


class CSRSigningController(Controller):
    name = "csrsigning"

    @classmethod
    def wanted(cls, config) -> bool:
        return config.csr_signing.cert_file is not None and config.csr_signing.key_file is not None

    def setup(self) -> None:
        settings = self.config.csr_signing
        self.ca_cert = x509.load_pem_x509_certificate(
            read_file(settings.cert_file, "csrSigningController.clusterSigningCertFile"))
        self.ca_key = load_pem_private_key(read_file(settings.key_file, "csrSigningController.clusterSigningKeyFile"),
                                           None)
        self.csrs = self.informer("certificatesigningrequests", "certificates.k8s.io")
        self.csrs.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new))

    async def reconcile(self, key: str) -> None:
        csr = self.csrs.store.get(key)
        if csr is None or not to_sign(csr):
            return
        spec = csr["spec"]
        status = meta.deep_copy(csr.get("status") or {})
        try:
            request = parse_request(spec)
        except ValueError as error:
            log.warning("Cannot sign csr=%s: %s", key, error)
            return
        usages = frozenset(spec.get("usages") or ())
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            VALIDATORS[spec["signerName"]](request, usages)
        except SignerValidationError as error:
            stamp = meta.now_rfc3339()
            status.setdefault("conditions", []).append({
                "type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": str(error),
                "lastUpdateTime": stamp, "lastTransitionTime": stamp})
            log.info("Refused csr=%s signer=%s: %s", key, spec["signerName"], error)
        else:
            pem = sign(request, usages, lifetime(spec, self.config.csr_signing.duration, self.ca_cert, now),
                       self.ca_cert, self.ca_key, now)
            status["certificate"] = base64.b64encode(pem).decode()
            log.info("Signed csr=%s signer=%s subject=%s", key, spec["signerName"], request.subject.rfc4514_string())
        try:
            await self.client.update(self.csrs.info, {**csr, "status": status}, subresource="status")
        except APIError as error:
            if not (is_conflict(error) or is_not_found(error)):  # changed or gone meanwhile: the event brings us back
                raise
