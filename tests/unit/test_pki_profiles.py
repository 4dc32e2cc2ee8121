"""Validation of certificate profiles and of the inventory model: every problem reported at once, each naming
where it is."""
import ipaddress

import pytest
import yaml
from cryptography import x509

from kpy_components.pki import issue

from kpy_components.pki import InventoryError, ProfileError, run
from kpy_components.pki.profiles import parse


@pytest.fixture
def profiles_document(pki_profiles) -> dict:
    return yaml.safe_load(pki_profiles.read_text())


def problems_of(error: pytest.ExceptionInfo) -> list[str]:
    return [line.removeprefix("  - ") for line in str(error.value).splitlines()[1:]]


def test_the_shipped_profiles_are_valid(pki_profiles):
    profiles = parse(yaml.safe_load(pki_profiles.read_text()))
    assert set(profiles.cas) == {"ca", "etcd-ca", "front-proxy-ca"}
    assert profiles.renewal_days == 90


def test_every_problem_is_reported_with_its_path(profiles_document):
    certificates = profiles_document["certificates"]
    certificates["admin"]["ca"] = "admin-ca"
    certificates["admin"]["usages"] = ["client", "serve"]
    certificates["apiserver"]["sans"].append("{cluster.dns_domain}")
    certificates["scheduler"]["cn"] = "{host.name}"
    certificates["kubelet"]["cn"] = "system:node:{host.addresses}"
    certificates["kube-proxy"]["sanz"] = ["x"]
    certificates["etcd-peer"]["key"] = "dsa-1024"
    certificates["etcd-server"]["lifetime_days"] = 0
    profiles_document["kubeconfigs"]["scheduler"]["server"] = "https://127.0.0.1:6443"
    profiles_document["kubeconfigs"]["apiserver"] = {"certificate": "apiserver", "server": "local"}
    with pytest.raises(ProfileError) as error:
        parse(profiles_document, source="certs/profiles.yml")
    assert str(error.value).startswith("certs/profiles.yml: invalid certificate profiles: 10 problem(s):")
    assert problems_of(error) == [
        "certificates.admin.ca: 'admin-ca' is not one of the CAs (ca, etcd-ca, front-proxy-ca)",
        "certificates.admin.usages[1]: 'serve' is not one of client, server",
        "certificates.kubelet.cn: {host.addresses} is a list; only single values may be used here",
        "certificates.kube-proxy.sanz: unknown setting (known: ca, cn, for_hosts_in, key, lifetime_days, o, sans, usages)",
        "certificates.scheduler.cn: {host.name} is only known in a per-host profile (one with for_hosts_in)",
        "certificates.apiserver.sans[10]: unknown placeholder {cluster.dns_domain} (known: {cluster.name}, "
        "{cluster.domain}, {cluster.api_endpoint}, {cluster.service_ip}, {host.name}, {host.addresses}, "
        "{groups.<group>.names|addresses})",
        "certificates.etcd-server.lifetime_days: must be a positive whole number of days, got 0",
        "certificates.etcd-peer.key: 'dsa-1024' is not one of rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384",
        "kubeconfigs.scheduler.server: 'https://127.0.0.1:6443' is not one of api_endpoint, local",
        "kubeconfigs.apiserver.certificate: 'apiserver' is not a client certificate",
    ]


@pytest.mark.parametrize(
    "document, problem",
    [
        ([], "must be a mapping with cas, certificates and kubeconfigs"),
        ({"certificates": {}, "kubeconfigs": {}}, "cas: required, a non-empty mapping"),
        ({"cas": {"Bad_Name": {"cn": "x"}}, "certificates": {"a": {}}, "kubeconfigs": {"k": {}}},
         "cas.Bad_Name: the name must be lower-case letters, digits and dashes (it names files)"),
    ],
    ids=["not-a-mapping", "no-cas", "bad-name"],
)
def test_malformed_documents_are_refused(document, problem):
    with pytest.raises(ProfileError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse(document)


def test_a_certificate_named_like_a_ca_is_refused(profiles_document):
    profiles_document["certificates"]["ca"] = profiles_document["certificates"]["admin"]
    with pytest.raises(ProfileError, match="certificates.ca: has the name of a CA"):
        parse(profiles_document)


def test_renewal_window_longer_than_a_lifetime_is_refused(tmp_path, pki_profiles, pki_inventory):
    with pytest.raises(ProfileError) as error:
        run(tmp_path / "pki", pki_profiles, **pki_inventory, renewal_days=365)
    assert "certificates.admin: lifetime_days 365 must exceed the renewal window (365 days)" in problems_of(error)
    assert not (tmp_path / "pki").exists()


def test_unreadable_profiles_name_the_file(tmp_path, pki_inventory):
    missing = tmp_path / "nope.yml"
    with pytest.raises(ProfileError, match=f"{missing}: cannot read the certificate profiles: No such file"):
        run(tmp_path / "pki", missing, **pki_inventory)
    broken = tmp_path / "broken.yml"
    broken.write_text("cas: [\n")
    with pytest.raises(ProfileError, match=f"{broken}: not valid YAML"):
        run(tmp_path / "pki", broken, **pki_inventory)


def test_an_invalid_inventory_is_reported_whole_before_anything_is_written(tmp_path, pki_profiles, pki_inventory):
    pki_inventory["cluster"].update(domain="Cluster_Local", service_cidr="10.32.0.1/33", api_endpoint="https://api:6443")
    pki_inventory["hosts"]["W1"] = "10.213.0.21"
    pki_inventory["hosts"]["w2"] = ""
    pki_inventory["hosts"]["cp3"] = ["10.213.0.13", "not an address"]
    pki_inventory["groups"]["workers"].append("w9")
    with pytest.raises(InventoryError) as error:
        run(tmp_path / "pki", pki_profiles, **pki_inventory)
    assert problems_of(error) == [
        "cluster.domain: 'Cluster_Local' is not a DNS name",
        "cluster.api_endpoint: 'https://api:6443' is not an IP address or DNS name (no scheme or port)",
        "cluster.service_cidr: '10.32.0.1/33' is not a network in CIDR form "
        "('10.32.0.1/33' does not appear to be an IPv4 or IPv6 network)",
        "hosts.cp3: 'not an address' is not an IP address or DNS name",
        "hosts.w2: needs an address (ansible_host), got ''",
        "hosts.W1: the host name is not a valid node name (lower-case DNS name)",
        "groups.workers: w2, w9 not in hosts (no address given)",
    ]
    assert not (tmp_path / "pki").exists()


def test_missing_cluster_settings_are_named(tmp_path, pki_profiles, pki_inventory):
    pki_inventory["cluster"] = {"name": "lab", "domian": "cluster.local"}
    with pytest.raises(InventoryError) as error:
        run(tmp_path / "pki", pki_profiles, **pki_inventory)
    assert problems_of(error) == [
        "cluster.domain: required, a non-empty string",
        "cluster.service_cidr: required, a non-empty string",
        "cluster.api_endpoint: required, a non-empty string",
        "cluster.domian: unknown setting",
    ]


def test_ipv6_addresses_and_dns_names_become_the_right_san_types(tmp_path, pki_profiles, pki_inventory):
    pki_inventory["hosts"]["cp1"] = ["fd00::11", "cp1.example.org"]
    pki_inventory["cluster"].update(service_cidr="fd00:96::/108", api_endpoint="fd00::100")
    run(tmp_path / "pki", pki_profiles, **pki_inventory)
    sans = issue.subject_alt_names(x509.load_pem_x509_certificate((tmp_path / "pki/hosts/cp1/etcd-server.crt").read_bytes()))
    assert {str(n.value) for n in sans if isinstance(n, x509.IPAddress)} == {"fd00::11", "127.0.0.1"}
    assert {n.value for n in sans if isinstance(n, x509.DNSName)} == {"cp1", "cp1.example.org", "localhost"}
    apiserver = issue.subject_alt_names(x509.load_pem_x509_certificate((tmp_path / "pki/apiserver.crt").read_bytes()))
    assert x509.IPAddress(ipaddress.ip_address("fd00:96::1")) in apiserver
    admin = yaml.safe_load((tmp_path / "pki/admin.kubeconfig").read_text())
    assert admin["clusters"][0]["cluster"]["server"] == "https://[fd00::100]:6443"
