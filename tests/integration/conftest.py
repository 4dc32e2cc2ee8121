"""Real etcd (Debian's etcd-server 3.4) on 127.0.0.1 with mutual TLS, started through `kpy-etcd run`.

A test-only CA issues member (server + peer) and client certificates; every member gets free ports of its own,
so these tests run beside any other etcd on the machine. Processes are stopped when their fixture ends.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kpy_components.etcd import EtcdClient, TLSFiles
from processes import stop_process

ETCD = shutil.which("etcd") or "/usr/bin/etcd"  # scripts/setup installs etcd-server
START_TIMEOUT = 20.0  # seconds for a cluster to report healthy


class ThrowawayCA:
    """A throwaway CA writing PEM files into `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kpy-test-etcd-ca")])
        self.cert = (self._builder(subject, self.key.public_key()).issuer_name(subject)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_file = self._write("ca.crt", self.cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _builder(subject: x509.Name, public_key) -> x509.CertificateBuilder:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (x509.CertificateBuilder().subject_name(subject).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1)))

    def _write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    def issue(self, name: str, server: bool) -> tuple[Path, Path]:
        """A certificate for CN `name` (server: also serverAuth with 127.0.0.1/localhost SANs) and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
        builder = (self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key.public_key())
                   .issuer_name(self.cert.subject).add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName(name), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return (self._write(f"{name}.crt", cert.public_bytes(serialization.Encoding.PEM)),
                self._write(f"{name}.key", key_pem))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class EtcdCluster:
    """`size` members on 127.0.0.1, each run by `kpy-etcd run --config <its wrapper config>`."""

    directory: Path
    ca: ThrowawayCA
    size: int
    token: str = "kpy-test"
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        ports = free_ports(3 * self.size)
        self.names = [f"m{index}" for index in range(self.size)]
        self.members = [{"name": name, "ip": "127.0.0.1", "client_port": ports[3 * i], "peer_port": ports[3 * i + 1]}
                        for i, name in enumerate(self.names)]
        self.metrics_ports = {name: ports[3 * i + 2] for i, name in enumerate(self.names)}
        self.client_cert = self.ca.issue("kpy-test-client", server=False)
        self.config_files = {name: self._write_config(name) for name in self.names}

    def wrapper_config(self, name: str) -> dict:
        cert, key = self.ca.issue(name, server=True)  # one cert serves as server and peer cert here
        return {
            "cluster_token": self.token, "member": name, "members": self.members,
            "data_dir": str(self.directory / f"data-{name}"), "metrics_port": self.metrics_ports[name],
            "tls": {"ca_file": str(self.ca.ca_file), "server_cert_file": str(cert), "server_key_file": str(key),
                    "peer_cert_file": str(cert), "peer_key_file": str(key),
                    "client_cert_file": str(self.client_cert[0]), "client_key_file": str(self.client_cert[1])},
            "etcd_binary": ETCD, "etcd_config_file": str(self.directory / f"etcd-{name}.yaml"),
            "log_level": "warn",
        }

    def _write_config(self, name: str) -> Path:
        path = self.directory / f"kpy-etcd-{name}.yaml"
        path.write_text(yaml.safe_dump(self.wrapper_config(name)))
        return path

    @property
    def endpoints(self) -> list[str]:
        return [f"https://127.0.0.1:{m['client_port']}" for m in self.members]

    @property
    def tls(self) -> TLSFiles:
        return TLSFiles(self.ca.ca_file, *self.client_cert)

    def client(self, **options) -> EtcdClient:
        return EtcdClient(self.endpoints, self.tls, **options)

    def start(self, names: list[str] | None = None) -> None:
        for name in names or self.names:
            log = (self.directory / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "kpy_components.etcd.cli", "run", "--config", str(self.config_files[name])],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.wait_healthy(names or self.names)

    def pids(self, name: str) -> list[int]:
        """The member's `kpy-etcd run` process and its etcd child (for CPU accounting)."""
        pid = self.processes[name].pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [pid, *map(int, children)]

    def wait_healthy(self, names: list[str]) -> None:
        """Poll each member's plain-HTTP /health on its metrics port (independent of the client under test)."""
        deadline = time.monotonic() + START_TIMEOUT
        pending = list(names)
        while pending:
            name = pending[0]
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"etcd {name} exited: {(self.directory / f'{name}.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_ports[name]}/health", timeout=1) as r:
                    if json.load(r).get("health") == "true":
                        pending.pop(0)
                        continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd {name} not healthy after {START_TIMEOUT}s")
            time.sleep(0.1)

    def stop(self, names: list[str] | None = None) -> None:
        for name in names or list(self.processes):
            stop_process(self.processes.pop(name), timeout=10)


@pytest.fixture(scope="session")
def etcd_ca(tmp_path_factory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("etcd-pki"))


@pytest.fixture
def run_kpy_etcd():
    """Run the `kpy-etcd` CLI of this source tree; returns the completed process (output captured as text)."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kpy_components.etcd.cli", *args],
                              capture_output=True, text=True, timeout=60, check=False)
    return run


@pytest.fixture
def stranger_ca(tmp_path) -> ThrowawayCA:
    """A CA that etcd does not trust."""
    return ThrowawayCA(tmp_path)


@pytest.fixture
def new_etcd_cluster(tmp_path, etcd_ca):
    """Make a cluster of `size` members that is not started yet; whatever the test starts is stopped after it."""
    clusters = []

    def make(size: int, token: str) -> EtcdCluster:
        clusters.append(EtcdCluster(tmp_path / token, etcd_ca, size, token=token))
        return clusters[-1]

    yield make
    for cluster in clusters:
        cluster.stop()


def _cluster(tmp_path_factory, ca: ThrowawayCA, size: int):
    cluster = EtcdCluster(tmp_path_factory.mktemp(f"etcd{size}"), ca, size, token=f"kpy-test-{size}")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def etcd1(tmp_path_factory, etcd_ca):
    """A running 1-member cluster, shared by the tests of a session (tests use keys of their own)."""
    yield from _cluster(tmp_path_factory, etcd_ca, 1)


@pytest.fixture(scope="session")
def etcd3(tmp_path_factory, etcd_ca):
    """A running 3-member cluster."""
    yield from _cluster(tmp_path_factory, etcd_ca, 3)


@pytest.fixture
def etcd(etcd1, request):
    """A client of the 1-member cluster, and a key prefix unique to the test."""
    with etcd1.client() as client:
        yield client, f"/{request.node.name}/"
