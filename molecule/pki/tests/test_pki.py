"""The PKI as the hosts see it: who owns which key with which mode, what a worker must not have, and what
openssl on the host reads from the certificates."""
from __future__ import annotations

import os

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)
(CONTROL_PLANE,) = RUNNER.get_hosts("control_plane")
(WORKER,) = RUNNER.get_hosts("workers")
SERVICE_IP = "10.96.0.1"  # first address of kpy_service_cidr in .config/molecule/config.yml

ETCD_KEYS = ["/etc/kpy/pki/etcd/server.key", "/etc/kpy/pki/etcd/peer.key", "/etc/kpy/pki/etcd/healthcheck-client.key"]
CONTROL_PLANE_SECRETS = [
    "/etc/kpy/pki/apiserver.key",
    "/etc/kpy/pki/apiserver-kubelet-client.key",
    "/etc/kpy/pki/apiserver-etcd-client.key",
    "/etc/kpy/pki/sa.key",
    "/etc/kpy/pki/ca.key",  # csrsigning in the controller manager signs with it (kubeadm places it there too)
    "/etc/kpy/pki/front-proxy-client.key",
    "/etc/kpy/encryption-config.yaml",
    "/etc/kpy/controller-manager.kubeconfig",
    "/etc/kpy/scheduler.kubeconfig",
]
KUBELET_SECRETS = ["/etc/kpy/pki/kubelet.key", "/etc/kpy/kubelet.kubeconfig", "/etc/kpy/kube-proxy.kubeconfig",
                   "/etc/kpy/kube-dns.kubeconfig"]


def connect(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def address(name: str) -> str:
    return RUNNER.get_variables(name)["ansible_host"]


@pytest.fixture(scope="module")
def cp():
    return connect(CONTROL_PLANE)


@pytest.fixture(scope="module")
def worker():
    return connect(WORKER)


def openssl(host, *args: str) -> str:
    result = host.run("openssl " + " ".join(args))
    assert result.rc == 0, result.stderr
    return result.stdout


def names(host, cert: str) -> tuple[str, set[str]]:
    """(subject, SANs) as openssl prints them, e.g. ('O=system:nodes, CN=system:node:w1', {'DNS:w1', ...})."""
    subject = openssl(host, "x509 -noout -subject -nameopt sep_comma_plus_space -in", cert).strip()
    extension = openssl(host, "x509 -noout -ext subjectAltName -in", cert).splitlines()[1:]
    sans = {name.strip() for line in extension for name in line.split(",")}
    return subject.removeprefix("subject="), {s.replace("IP Address:", "IP:") for s in sans if s}


def assert_secret(host, path: str, owner: str) -> None:
    file = host.file(path)
    assert file.is_file, f"{path} missing"
    assert (file.mode, file.user, file.group) == (0o600, owner, owner), path


@pytest.mark.parametrize("path", ETCD_KEYS)
def test_etcd_keys_are_0600_owned_by_etcd(cp, path):
    assert_secret(cp, path, "etcd")


@pytest.mark.parametrize("path", CONTROL_PLANE_SECRETS)
def test_control_plane_secrets_are_0600_owned_by_kube(cp, path):
    assert_secret(cp, path, "kube")


@pytest.mark.parametrize("name", [CONTROL_PLANE, WORKER])
@pytest.mark.parametrize("path", KUBELET_SECRETS)
def test_every_kubelet_host_has_its_secrets_0600_owned_by_kube(name, path):
    assert_secret(connect(name), path, "kube")


def test_certificates_are_world_readable_and_owned_by_root(cp):
    for path in ("/etc/kpy/pki/ca.crt", "/etc/kpy/pki/etcd/ca.crt", "/etc/kpy/pki/apiserver.crt",
                 "/etc/kpy/pki/etcd/server.crt", "/etc/kpy/pki/sa.pub", "/etc/kpy/pki/front-proxy-ca.crt",
                 "/etc/kpy/pki/front-proxy-client.crt"):
        file = cp.file(path)
        assert (file.mode, file.user) == (0o644, "root"), path


def test_worker_has_no_etcd_or_control_plane_material(worker):
    assert not worker.file("/etc/kpy/pki/etcd").exists
    for path in CONTROL_PLANE_SECRETS + ["/etc/kpy/pki/apiserver.crt", "/etc/kpy/pki/sa.pub",
                                         "/etc/kpy/pki/front-proxy-ca.crt"]:
        assert not worker.file(path).exists, path
    keys = worker.run("find /etc/kpy -name '*.key' -o -name '*.kubeconfig' -o -name '*.yaml'").stdout.split()
    assert sorted(keys) == sorted(KUBELET_SECRETS)


def test_apiserver_certificate_names_every_way_to_reach_it(cp):
    subject, sans = names(cp, "/etc/kpy/pki/apiserver.crt")
    assert subject == "CN=kubernetes"
    assert {f"IP:{address(CONTROL_PLANE)}", f"DNS:{CONTROL_PLANE}", f"IP:{SERVICE_IP}", "IP:127.0.0.1",
            "DNS:kubernetes.default.svc.cluster.local", "DNS:kubernetes.default.svc", "DNS:kubernetes"} <= sans


def test_etcd_member_certificates_are_the_members_own_and_chain_to_the_etcd_ca(cp):
    for kind in ("server", "peer"):
        cert = f"/etc/kpy/pki/etcd/{kind}.crt"
        subject, sans = names(cp, cert)
        assert subject == f"CN={CONTROL_PLANE}"
        assert sans == {f"DNS:{CONTROL_PLANE}", f"IP:{address(CONTROL_PLANE)}", "DNS:localhost", "IP:127.0.0.1"}
        assert cp.run(f"openssl verify -CAfile /etc/kpy/pki/etcd/ca.crt {cert}").rc == 0
        assert cp.run(f"openssl verify -CAfile /etc/kpy/pki/ca.crt {cert}").rc != 0


def test_kubelet_certificate_is_the_nodes_own(worker):
    subject, sans = names(worker, "/etc/kpy/pki/kubelet.crt")
    assert subject == f"O=system:nodes, CN=system:node:{WORKER}"
    assert sans == {f"DNS:{WORKER}", f"IP:{address(WORKER)}", "IP:127.0.0.1"}
    assert worker.run("openssl verify -CAfile /etc/kpy/pki/ca.crt /etc/kpy/pki/kubelet.crt").rc == 0


@pytest.mark.parametrize("name, cert", [
    (CONTROL_PLANE, "/etc/kpy/pki/etcd/server.crt"),
    (CONTROL_PLANE, "/etc/kpy/pki/etcd/peer.crt"),
    (CONTROL_PLANE, "/etc/kpy/pki/apiserver.crt"),
    (WORKER, "/etc/kpy/pki/kubelet.crt"),
])
def test_each_key_belongs_to_its_certificate(name, cert):
    host = connect(name)
    key = cert.removesuffix(".crt") + ".key"
    assert openssl(host, "x509 -noout -pubkey -in", cert) == openssl(host, "pkey -pubout -in", key)


@pytest.mark.parametrize("name, path, server", [
    (CONTROL_PLANE, "/etc/kpy/controller-manager.kubeconfig", "https://127.0.0.1:6443"),
    (CONTROL_PLANE, "/etc/kpy/scheduler.kubeconfig", "https://127.0.0.1:6443"),
    (WORKER, "/etc/kpy/kubelet.kubeconfig", "https://127.0.0.1:6443"),
    (WORKER, "/etc/kpy/kube-proxy.kubeconfig", "https://127.0.0.1:6443"),
    (WORKER, "/etc/kpy/kube-dns.kubeconfig", "https://127.0.0.1:6443"),
])
def test_kubeconfigs_point_at_the_right_api_server(name, path, server):
    assert connect(name).run(f"grep -h 'server:' {path}").stdout.split() == ["server:", server]


def test_etcd_user_is_the_account_debians_package_would_create(cp):
    user = cp.user("etcd")
    assert (user.group, user.home, user.shell) == ("etcd", "/var/lib/etcd/", "/usr/sbin/nologin")
    assert user.uid < 1000
    home = cp.file("/var/lib/etcd")
    assert (home.mode, home.user, home.group) == (0o700, "etcd", "etcd")


def test_kube_is_a_system_user_without_a_login(worker):
    user = worker.user("kube")
    assert user.uid < 1000 and user.shell == "/usr/sbin/nologin"


def test_front_proxy_client_certificate_chains_to_the_front_proxy_ca_only(cp):
    cert = "/etc/kpy/pki/front-proxy-client.crt"
    subject, sans = names(cp, cert)
    assert (subject, sans) == ("CN=front-proxy-client", set())
    assert "TLS Web Client Authentication" in openssl(cp, "x509 -noout -ext extendedKeyUsage -in", cert)
    assert cp.run(f"openssl verify -CAfile /etc/kpy/pki/front-proxy-ca.crt {cert}").rc == 0
    assert cp.run(f"openssl verify -CAfile /etc/kpy/pki/ca.crt {cert}").rc != 0
