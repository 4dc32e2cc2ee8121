"""`kpy-apiserver --dev DIR`: a single process that needs nothing else. Generated once in DIR (kept on restart):
a self-signed CA, a serving certificate for 127.0.0.1/localhost, an admin client certificate (CN admin,
O system:masters), a client certificate for reaching kubelets (pods/log), a front-proxy CA and the aggregation layer's
client certificate, a service-account key pair and DIR/admin.kubeconfig; objects live in DIR/apiserver.db (SQLite).
Uses kpy's PKI code (kpy_components.pki)."""
from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from kpy_components.pki import cluster_keys, issue, keys, kubeconfig
from kpy_components.pki.profiles import WantedCert

from .config import ProxyClientConfig, ServerConfig, ServiceAccountConfig, StorageConfig, TLSConfig
from .auth.requestheader import RequestHeaderConfig
from .kubelet import KubeletClientConfig

KEY_TYPE = "ecdsa-p256"
LIFETIME_DAYS = 365
ADMIN_KUBECONFIG = "admin.kubeconfig"


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.write_bytes(data)
    os.chmod(path, mode)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _leaf(directory: Path, name: str, cn: str, organizations: tuple[str, ...], usages: frozenset[str],
          sans: frozenset, ca_cert, ca_key, now) -> None:
    wanted = WantedCert(id=name, path=name, ca="ca", cn=cn, organizations=organizations, sans=sans, usages=usages,
                        key_type=KEY_TYPE, lifetime_days=LIFETIME_DAYS, host=None)
    cert, key = issue.issue(wanted, ca_cert, ca_key, now)
    _write(directory / f"{name}.crt", _pem(cert), 0o644)
    _write(directory / f"{name}.key", keys.private_pem(key))


def client_certificate(directory: Path, name: str, user: str, groups: tuple[str, ...] = ()) -> None:
    """A client certificate `<name>.crt/.key` for `user` in `groups`, signed by the dev CA (tests use it for
    restricted users)."""
    ca_cert = x509.load_pem_x509_certificate((directory / "ca.crt").read_bytes())
    ca_key = load_pem_private_key((directory / "ca.key").read_bytes(), None)
    _leaf(directory, name, user, groups, frozenset({"client"}), frozenset(), ca_cert, ca_key,
          datetime.datetime.now(datetime.timezone.utc))


def kubeconfig_for(directory: Path, name: str, port: int) -> Path:
    """DIR/<name>.kubeconfig for the client certificate <name>.crt."""
    path = directory / f"{name}.kubeconfig"
    content = kubeconfig.render("kpy-dev", name, f"https://127.0.0.1:{port}", (directory / "ca.crt").read_bytes(),
                                (directory / f"{name}.crt").read_bytes(), (directory / f"{name}.key").read_bytes())
    _write(path, content)
    return path


def prepare(directory: str | Path, port: int) -> ServerConfig:
    """Create what is missing in `directory` and return the server's configuration."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    if not (directory / "ca.crt").exists():
        ca_cert, ca_key = issue.create_ca("kpy-dev-ca", KEY_TYPE, LIFETIME_DAYS, now)
        _write(directory / "ca.crt", _pem(ca_cert), 0o644)
        _write(directory / "ca.key", keys.private_pem(ca_key))
        sans = frozenset({x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
                          x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default")})
        _leaf(directory, "apiserver", "kube-apiserver", (), frozenset({"server"}), sans, ca_cert, ca_key, now)
        _leaf(directory, "admin", "admin", ("system:masters",), frozenset({"client"}), frozenset(), ca_cert, ca_key,
              now)
    if not (directory / "apiserver-kubelet-client.crt").exists():  # dev dirs made before pods/log was served
        client_certificate(directory, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",))
        private, public = cluster_keys.new_service_account_key(KEY_TYPE)
        _write(directory / "sa.key", private)
        _write(directory / "sa.pub", public, 0o644)
    if not (directory / "front-proxy-client.crt").exists():  # the aggregation layer's client (its own CA)
        proxy_ca, proxy_key = issue.create_ca("kpy-dev-front-proxy-ca", KEY_TYPE, LIFETIME_DAYS, now)
        _write(directory / "front-proxy-ca.crt", _pem(proxy_ca), 0o644)
        _write(directory / "front-proxy-ca.key", keys.private_pem(proxy_key))
        _leaf(directory, "front-proxy-client", "front-proxy-client", (), frozenset({"client"}), frozenset(),
              proxy_ca, proxy_key, now)
    kubeconfig_for(directory, "admin", port)
    return ServerConfig(
        tls=TLSConfig(directory / "apiserver.crt", directory / "apiserver.key", directory / "ca.crt"),
        storage=StorageConfig(backend="sqlite", sqlite_path=directory / "apiserver.db"),
        bind_address="127.0.0.1", secure_port=port, advertise_address="127.0.0.1",
        service_account=ServiceAccountConfig((directory / "sa.pub",), directory / "sa.key"),
        kubelet_client=KubeletClientConfig(directory / "apiserver-kubelet-client.crt",
                                           directory / "apiserver-kubelet-client.key", directory / "ca.crt"),
        proxy_client=ProxyClientConfig(directory / "front-proxy-client.crt", directory / "front-proxy-client.key"),
        requestheader=RequestHeaderConfig(directory / "front-proxy-ca.crt", ("front-proxy-client",)))
