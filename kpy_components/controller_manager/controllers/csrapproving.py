"""The CSR approving controller (pkg/controller/certificates/approver, sarapprove.go): a pending kubelet client
CertificateSigningRequest (signer kubernetes.io/kube-apiserver-client-kubelet, a valid kubelet client request:
O=system:nodes, CN=system:node:<name>, no SANs, client usages) is approved, reason AutoApproved, when a
SubjectAccessReview says its requester may create
  - certificatesigningrequests/selfnodeclient, if the requester is the node itself (CN == spec.username): a renewal;
  - certificatesigningrequests/nodeclient otherwise: a new node's first certificate (system:bootstrappers).
A recognized request its requester may not have approved is retried with backoff, as upstream's (a permission granted
later approves it); anything else is left to people and other approvers. The csrsigning controller then signs it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from cryptography import x509

from kpy_components.api import meta
from kpy_components.api.errors import APIError
from kpy_components.client import is_conflict, is_not_found

from ..controller import Controller
from .csrsigning import KUBELET_CLIENT, SignerValidationError, condition, parse_request, validate_kubelet_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recognizer:
    subresource: str  # of certificatesigningrequests, the permission the requester needs
    message: str  # upstream's condition message on approval
    self_only: bool  # the requester must be the node the certificate is for


# Tried in order: a node renewing its own certificate first, as upstream.
RECOGNIZERS = (
    Recognizer("selfnodeclient", "Auto approving self kubelet client certificate after SubjectAccessReview.", True),
    Recognizer("nodeclient", "Auto approving kubelet client certificate after SubjectAccessReview.", False),
)


class NotApproved(Exception):
    """A recognized request whose requester lacks the permission (retried with backoff, as upstream's)."""


def is_kubelet_client(spec: dict, request: x509.CertificateSigningRequest) -> bool:
    if spec.get("signerName") != KUBELET_CLIENT:
        return False
    try:
        validate_kubelet_client(request, frozenset(spec.get("usages") or ()))
    except SignerValidationError:
        return False
    return True


def recognized(spec: dict, request: x509.CertificateSigningRequest) -> list[Recognizer]:
    """The recognizers that apply to the request, in the order they are tried."""
    if not is_kubelet_client(spec, request):
        return []
    names = request.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    is_self = bool(names) and spec.get("username") == names[0].value
    return [r for r in RECOGNIZERS if is_self or not r.self_only]


def access_review(spec: dict, subresource: str) -> dict:
    """The SubjectAccessReview asking whether the CSR's requester may create certificatesigningrequests/<sub>."""
    review_spec = {"user": spec.get("username", ""), "groups": list(spec.get("groups") or ()),
                   "resourceAttributes": {"group": "certificates.k8s.io", "resource": "certificatesigningrequests",
                                          "verb": "create", "subresource": subresource, "version": "*"}}
    if spec.get("uid"):
        review_spec["uid"] = spec["uid"]
    if spec.get("extra"):
        review_spec["extra"] = spec["extra"]
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": review_spec}


def pending(csr: dict) -> bool:
    return not ((csr.get("status") or {}).get("certificate") or condition(csr, "Approved")
                or condition(csr, "Denied"))


class CSRApprovingController(Controller):
    name = "csrapproving"

    def setup(self) -> None:
        self.csrs = self.informer("certificatesigningrequests", "certificates.k8s.io")
        self.csrs.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new))
        self.reviews = self.client.resource("subjectaccessreviews", "authorization.k8s.io")

    async def reconcile(self, key: str) -> None:
        csr = self.csrs.store.get(key)
        if csr is None or not pending(csr):
            return
        spec = csr.get("spec") or {}
        try:
            request = parse_request(spec)
        except ValueError as error:
            log.info("Not approving csr=%s: %s", key, error)
            return
        tried = []
        for recognizer in recognized(spec, request):
            tried.append(recognizer.subresource)
            review = await self.client.create(self.reviews, access_review(spec, recognizer.subresource))
            if (review.get("status") or {}).get("allowed"):
                await self._approve(key, csr, recognizer.message)
                return
        if tried:
            raise NotApproved(f"recognized csr {key!r} as {tried} but subject access review was not approved")

    async def _approve(self, key: str, csr: dict, message: str) -> None:
        status = meta.deep_copy(csr.get("status") or {})
        stamp = meta.now_rfc3339()
        status.setdefault("conditions", []).append({
            "type": "Approved", "status": "True", "reason": "AutoApproved", "message": message,
            "lastUpdateTime": stamp, "lastTransitionTime": stamp})
        try:
            await self.client.update(self.csrs.info, {**csr, "status": status}, subresource="approval")
        except APIError as error:
            if not (is_conflict(error) or is_not_found(error)):  # changed or gone meanwhile: the event brings us back
                raise
            return
        log.info("Approved csr=%s requester=%s: %s", key, csr["spec"].get("username"), message)
