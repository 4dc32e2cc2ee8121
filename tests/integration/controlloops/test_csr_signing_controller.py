"""kpy-controller-manager's csrsigning controller against a REAL kpy-apiserver --dev (its CA signs): CSRs created
and approved with the real kubectl get a certificate signed by the cluster CA for the requested subject, and a
kubelet-serving CSR with a bad subject gets Failed (SignerValidationFailure) instead."""
from __future__ import annotations

import asyncio
import base64
import itertools
import json

import pytest
from conftest import cm_config, eventually, run_component
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apiserver.conftest import KUBECTL_DIR, Kubectl
from kpy_components.controller_manager import manager
from kpy_components.controller_manager.config import CSRSigningSettings
from kpy_components.pki import issue

pytestmark = pytest.mark.anyio
_names = itertools.count()


def csr_manifest(name: str, cn: str, organizations: tuple[str, ...], signer: str, usages: list[str],
                 dns: tuple[str, ...] = ()) -> tuple[str, x509.CertificateSigningRequest]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    request = builder.sign(key, hashes.SHA256())
    manifest = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                "metadata": {"name": name},
                "spec": {"request": base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode(),
                         "signerName": signer, "usages": usages, "expirationSeconds": 3600}}
    return json.dumps(manifest), request


async def csr_of(kubectl: Kubectl, name: str) -> dict:
    result = await asyncio.to_thread(kubectl, "get", "csr", name, "-o", "json")
    return json.loads(result.stdout)


@pytest.fixture
def signing_config(cluster):
    return cm_config(["csrsigning"], csr_signing=CSRSigningSettings(
        cert_file=cluster.directory / "ca.crt", key_file=cluster.directory / "ca.key", duration=365 * 86400.0))


@pytest.mark.parametrize("version", ["1.27", "1.33"])
async def test_kubectl_approved_csrs_are_signed_by_the_cluster_ca(cluster, signing_config, version, tmp_path):
    assert (KUBECTL_DIR / f"kubectl.{version}").exists(), f"the tests need the real kubectl {version}"
    kubectl = Kubectl(version, cluster.admin_kubeconfig, tmp_path / "cache")
    ca_cert = x509.load_pem_x509_certificate((cluster.directory / "ca.crt").read_bytes())
    client_name, serving_name = f"alice-{next(_names)}", f"serving-{next(_names)}"
    client_manifest, client_request = csr_manifest(client_name, "alice", ("devs",),
                                                   "kubernetes.io/kube-apiserver-client",
                                                   ["digital signature", "client auth"])
    serving_manifest, serving_request = csr_manifest(serving_name, "system:node:n1", ("system:nodes",),
                                                     "kubernetes.io/kubelet-serving",
                                                     ["digital signature", "server auth"], dns=("n1.lab",))
    async with run_component(manager.run, signing_config, cluster, name="kube-controller-manager"):
        for manifest in (client_manifest, serving_manifest):
            await asyncio.to_thread(kubectl, "create", "-f", "-", input=manifest)
        assert "certificate" not in (await csr_of(kubectl, client_name)).get("status", {})  # not approved yet
        await asyncio.to_thread(kubectl, "certificate", "approve", client_name, serving_name)
        for name, request in ((client_name, client_request), (serving_name, serving_request)):
            async def issued(name=name):
                return (await csr_of(kubectl, name)).get("status", {}).get("certificate")
            pem = base64.b64decode(await eventually(issued, message=f"CSR {name} gets its certificate"))
            cert = x509.load_pem_x509_certificate(pem)
            assert issue.signed_by(cert, ca_cert)
            assert cert.subject == request.subject
            assert cert.public_key() == request.public_key()
            lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
            assert lifetime.total_seconds() <= 3600 + 600  # expirationSeconds plus the backdating


async def test_kubelet_serving_csr_with_a_bad_subject_fails(cluster, signing_config, tmp_path):
    kubectl = Kubectl("1.33", cluster.admin_kubeconfig, tmp_path / "cache")
    name = f"bad-serving-{next(_names)}"
    manifest, _ = csr_manifest(name, "n1", ("system:nodes",), "kubernetes.io/kubelet-serving",
                               ["digital signature", "server auth"], dns=("n1.lab",))
    async with run_component(manager.run, signing_config, cluster, name="kube-controller-manager"):
        await asyncio.to_thread(kubectl, "create", "-f", "-", input=manifest)
        await asyncio.to_thread(kubectl, "certificate", "approve", name)

        async def failed():
            conditions = (await csr_of(kubectl, name)).get("status", {}).get("conditions") or []
            return next((c for c in conditions if c["type"] == "Failed"), None)
        condition = await eventually(failed, message=f"CSR {name} gets Failed")
    assert condition["reason"] == "SignerValidationFailure"
    assert condition["message"] == "subject common name does not begin with system:node:"
    assert "certificate" not in (await csr_of(kubectl, name)).get("status", {})
