"""What the PKI generated from certs/profiles.yml contains: subjects, SANs, usages, chains, modes, kubeconfigs,
and that real TLS peers (Python's ssl, i.e. OpenSSL) accept the certificates for what they are meant for."""
import base64
import ssl
import stat

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from kpy_components.pki import issue, keys

CONTROL_PLANE = {"cp1": "10.213.0.11", "cp2": "10.213.0.12", "cp3": "10.213.0.13"}
ALL_HOSTS = {**CONTROL_PLANE, "w1": "10.213.0.21", "w2": "10.213.0.22"}


def load(directory, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((directory / name).read_bytes())


def subject(cert: x509.Certificate, oid) -> list[str]:
    return [a.value for a in cert.subject.get_attributes_for_oid(oid)]


def san_strings(cert: x509.Certificate) -> set[str]:
    return {f"IP:{n.value}" if isinstance(n, x509.IPAddress) else f"DNS:{n.value}" for n in issue.subject_alt_names(cert)}


def test_apiserver_sans_cover_every_way_clients_reach_it(pki_generated):
    assert san_strings(load(pki_generated, "apiserver.crt")) == {
        "IP:127.0.0.1", "DNS:localhost",
        "DNS:cp1", "DNS:cp2", "DNS:cp3", "IP:10.213.0.11", "IP:10.213.0.12", "IP:10.213.0.13",
        "DNS:api.k8s.test",  # the API endpoint
        "IP:10.32.0.1",  # first IP of the service CIDR 10.32.0.0/16 (KTHW #905)
        "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.k8s.test",  # not kubernetes.svc.<domain> (k0s #7803)
    }


# (file, CN, O, extended key usages, signing CA) of every certificate a cluster-wide profile issues.
CLUSTER_WIDE = [
    ("admin.crt", "admin", ["system:masters"], {"client"}, "ca.crt"),
    ("kube-proxy.crt", "system:kube-proxy", ["system:node-proxier"], {"client"}, "ca.crt"),
    ("controller-manager.crt", "system:kube-controller-manager", ["system:kube-controller-manager"], {"client"}, "ca.crt"),
    # O is not system:system:kube-scheduler (KTHW #931)
    ("scheduler.crt", "system:kube-scheduler", ["system:kube-scheduler"], {"client"}, "ca.crt"),
    ("kube-dns.crt", "system:kube-dns", [], {"client"}, "ca.crt"),
    ("apiserver.crt", "kubernetes", [], {"server"}, "ca.crt"),
    ("apiserver-kubelet-client.crt", "kube-apiserver-kubelet-client", ["system:masters"], {"client"}, "ca.crt"),
    ("apiserver-etcd-client.crt", "kube-apiserver-etcd-client", [], {"client"}, "etcd-ca.crt"),
    ("etcd-healthcheck-client.crt", "kube-etcd-healthcheck-client", [], {"client"}, "etcd-ca.crt"),
    # the aggregation layer's client, trusted by requestheader authentication only (kubeadm's front-proxy-client)
    ("front-proxy-client.crt", "front-proxy-client", [], {"client"}, "front-proxy-ca.crt"),
]
CAS = ["ca.crt", "etcd-ca.crt", "front-proxy-ca.crt"]


@pytest.mark.parametrize("name, cn, organizations, usages, ca", CLUSTER_WIDE, ids=[c[0] for c in CLUSTER_WIDE])
def test_cluster_wide_certificate_subject_usage_and_issuer(pki_generated, name, cn, organizations, usages, ca):
    cert = load(pki_generated, name)
    assert subject(cert, NameOID.COMMON_NAME) == [cn]
    assert subject(cert, NameOID.ORGANIZATION_NAME) == organizations
    assert issue.usages_of(cert) == usages
    assert issue.signed_by(cert, load(pki_generated, ca))
    for other_ca in set(CAS) - {ca}:
        assert not issue.signed_by(cert, load(pki_generated, other_ca))


@pytest.mark.parametrize("host", sorted(ALL_HOSTS))
def test_every_kubelet_host_has_its_own_node_certificate(pki_generated, host):
    cert = load(pki_generated, f"hosts/{host}/kubelet.crt")
    assert subject(cert, NameOID.COMMON_NAME) == [f"system:node:{host}"]
    assert subject(cert, NameOID.ORGANIZATION_NAME) == ["system:nodes"]
    assert san_strings(cert) == {f"DNS:{host}", f"IP:{ALL_HOSTS[host]}", "IP:127.0.0.1"}
    assert issue.usages_of(cert) == {"server", "client"}


@pytest.mark.parametrize("kind", ["etcd-server", "etcd-peer"])
@pytest.mark.parametrize("member", sorted(CONTROL_PLANE))
def test_every_etcd_member_has_its_own_server_and_peer_certificate(pki_generated, member, kind):
    cert = load(pki_generated, f"hosts/{member}/{kind}.crt")
    assert subject(cert, NameOID.COMMON_NAME) == [member]
    assert san_strings(cert) == {f"DNS:{member}", f"IP:{CONTROL_PLANE[member]}", "DNS:localhost", "IP:127.0.0.1"}
    assert issue.signed_by(cert, load(pki_generated, "etcd-ca.crt"))
    assert not issue.signed_by(cert, load(pki_generated, "ca.crt"))


def test_member_certificates_are_not_shared(pki_generated):
    keys_seen = {
        (pki_generated / f"hosts/{m}/{k}.key").read_bytes() for m in CONTROL_PLANE for k in ("etcd-server", "etcd-peer")
    }
    assert len(keys_seen) == 2 * len(CONTROL_PLANE)


def test_workers_get_no_etcd_certificates(pki_generated):
    for worker in ("w1", "w2"):
        assert sorted(p.name for p in (pki_generated / "hosts" / worker).iterdir()) == [
            "kubelet.crt", "kubelet.key", "kubelet.kubeconfig"
        ]


def test_cas_are_self_signed_leaf_only_cas(pki_generated):
    for name in CAS:
        ca = load(pki_generated, name)
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert constraints.ca and constraints.path_length == 0
        assert issue.signed_by(ca, ca)
    assert subject(load(pki_generated, "ca.crt"), NameOID.COMMON_NAME) == ["kpy-lab-ca"]
    assert subject(load(pki_generated, "front-proxy-ca.crt"), NameOID.COMMON_NAME) == ["kpy-lab-front-proxy-ca"]


def test_private_keys_and_kubeconfigs_are_0600_certificates_0644_directories_0700(pki_generated):
    paths = [pki_generated, *pki_generated.rglob("*")]
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.is_dir():
            expected = 0o700
        elif path.suffix in (".crt", ".pub"):
            expected = 0o644
        else:
            expected = 0o600
        assert mode == expected, f"{path.relative_to(pki_generated)} is {mode:o}"
    # CAs, cluster-wide leaves, kubelets, etcd members (server + peer), service account
    assert sum(p.suffix == ".key" for p in paths) == len(CAS) + len(CLUSTER_WIDE) + 5 + 6 + 1


def test_every_key_belongs_to_its_certificate(pki_generated):
    for cert_path in pki_generated.rglob("*.crt"):
        key = keys.load_private(cert_path.with_suffix(".key").read_bytes())
        assert keys.same_public_key(load(cert_path.parent, cert_path.name).public_key(), key.public_key()), cert_path


KUBECONFIGS = [
    ("admin.kubeconfig", "admin", "https://api.k8s.test:6443"),
    ("kube-proxy.kubeconfig", "system:kube-proxy", "https://127.0.0.1:6443"),
    ("controller-manager.kubeconfig", "system:kube-controller-manager", "https://127.0.0.1:6443"),
    ("scheduler.kubeconfig", "system:kube-scheduler", "https://127.0.0.1:6443"),
    *[(f"hosts/{h}/kubelet.kubeconfig", f"system:node:{h}", "https://127.0.0.1:6443") for h in sorted(ALL_HOSTS)],
]


@pytest.mark.parametrize("name, user, server", KUBECONFIGS, ids=[k[0] for k in KUBECONFIGS])
def test_kubeconfigs_parse_and_point_at_the_right_server_with_embedded_credentials(pki_generated, name, user, server):
    config = yaml.safe_load((pki_generated / name).read_text())
    context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    credentials = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    assert context["cluster"] == "lab" and context["user"] == user
    assert cluster["server"] == server
    assert base64.b64decode(cluster["certificate-authority-data"]) == (pki_generated / "ca.crt").read_bytes()
    cert = x509.load_pem_x509_certificate(base64.b64decode(credentials["client-certificate-data"]))
    key = keys.load_private(base64.b64decode(credentials["client-key-data"]))
    assert subject(cert, NameOID.COMMON_NAME) == [user]
    assert keys.same_public_key(cert.public_key(), key.public_key())


def test_service_account_key_pair_matches(pki_generated):
    private = keys.load_private((pki_generated / "sa.key").read_bytes())
    public = serialization.load_pem_public_key((pki_generated / "sa.pub").read_bytes())
    assert keys.same_public_key(private.public_key(), public)
    assert keys.type_of(public) == "rsa-2048"


def test_encryption_config_holds_one_32_byte_aescbc_key_then_identity(pki_generated):
    config = yaml.safe_load((pki_generated / "encryption-config.yaml").read_text())
    assert config["kind"] == "EncryptionConfiguration"
    (entry,) = config["resources"]
    assert entry["resources"] == ["secrets"]
    aescbc, identity = entry["providers"]
    (key,) = aescbc["aescbc"]["keys"]
    assert len(base64.b64decode(key["secret"], validate=True)) == 32
    assert identity == {"identity": {}}


def _handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext, server_hostname: str) -> dict:
    """A TLS handshake between two in-memory endpoints, then one byte of data; returns the certificate the server
    accepted from the client. Raises ssl.SSLError when either side rejects the other."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    server = server_context.wrap_bio(server_in, server_out, server_side=True)
    client = client_context.wrap_bio(client_in, client_out, server_hostname=server_hostname)
    pending = [client, server]
    for _ in range(10):
        for endpoint in list(pending):
            try:
                endpoint.do_handshake()
                pending.remove(endpoint)
            except ssl.SSLWantReadError:
                pass
        server_in.write(client_out.read())
        client_in.write(server_out.read())
        if not pending:
            break
    assert not pending, "the handshake did not finish"
    client.write(b"x")
    server_in.write(client_out.read())
    assert server.read(1) == b"x"
    return server.getpeercert()


def _server(directory, cert: str, ca: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / cert, directory / cert.replace(".crt", ".key"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(directory / ca)
    return context


def _client(directory, cert: str, ca: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(directory / ca)
    context.load_cert_chain(directory / cert, directory / cert.replace(".crt", ".key"))
    return context


def _common_name(peer: dict) -> str:
    return dict(item for rdn in peer["subject"] for item in rdn)["commonName"]


@pytest.mark.parametrize("name", ["kubernetes.default.svc.k8s.test", "10.32.0.1", "api.k8s.test", "10.213.0.12", "127.0.0.1"])
def test_tls_client_with_admin_certificate_and_api_server_accept_each_other(pki_generated, name):
    peer = _handshake(_server(pki_generated, "apiserver.crt", "ca.crt"), _client(pki_generated, "admin.crt", "ca.crt"), name)
    assert _common_name(peer) == "admin"


def test_tls_client_refuses_api_server_under_a_name_not_in_its_sans(pki_generated):
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(_server(pki_generated, "apiserver.crt", "ca.crt"), _client(pki_generated, "admin.crt", "ca.crt"),
                   "kubernetes.svc.k8s.test")


def test_api_server_refuses_a_client_certificate_of_the_etcd_ca(pki_generated):
    client = _client(pki_generated, "apiserver-etcd-client.crt", "ca.crt")
    with pytest.raises(ssl.SSLError):
        _handshake(_server(pki_generated, "apiserver.crt", "ca.crt"), client, "kubernetes")


@pytest.mark.parametrize("kind", ["etcd-server", "etcd-peer"])
def test_etcd_member_and_its_clients_accept_each_other(pki_generated, kind):
    server = _server(pki_generated, f"hosts/cp2/{kind}.crt", "etcd-ca.crt")
    client = _client(pki_generated, "etcd-healthcheck-client.crt", "etcd-ca.crt")
    assert _common_name(_handshake(server, client, "10.213.0.12")) == "kube-etcd-healthcheck-client"
    peer = _client(pki_generated, f"hosts/cp1/{kind}.crt", "etcd-ca.crt")  # a peer presents its own certificate
    assert _common_name(_handshake(server, peer, "cp2")) == "cp1"
