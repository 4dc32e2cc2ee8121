"""kpy-dns on every control-plane host, queried over the lab network from the worker (through its firewall) with
dnspython from kpy's own venv on the host; the kube-dns Service and its EndpointSlice as the role wrote them."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

testinfra_hosts = ["kdns-w1"]
DNS_HOSTS = {"kdns-cp1": "10.213.18.11", "kdns-cp2": "10.213.18.12"}
KUBECONFIG = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "artifacts" / "admin.kubeconfig"
# Runs on the worker: one query, printed as "RCODE answer... | authority..." (or TIMEOUT).
QUERY = """
import sys, dns.message, dns.query, dns.exception
try:
    r = dns.query.udp(dns.message.make_query(sys.argv[2], sys.argv[3]), sys.argv[1], timeout=5)
except dns.exception.Timeout:
    print("TIMEOUT"); sys.exit()
import dns.rcode
print(dns.rcode.to_text(r.rcode()), *[x.to_text() for s in r.answer for x in s], "|",
      *[s.rdtype for s in r.authority])
"""


def ask(host, server: str, name: str, rdtype: str = "A") -> str:
    return host.run("/opt/kpy/current/bin/python -c %s %s %s %s", QUERY, server, name, rdtype).stdout.strip()


def kubectl(*args: str) -> str:
    done = subprocess.run([os.path.realpath(shutil.which("kubectl")), "--kubeconfig", str(KUBECONFIG),
                           "--request-timeout", "10s", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.mark.parametrize("server", sorted(DNS_HOSTS))
def test_every_replica_answers_the_zone_from_another_host(host, server):
    address = DNS_HOSTS[server]
    assert ask(host, address, "kubernetes.default.svc.cluster.local") == "NOERROR 10.96.0.1 |"
    assert ask(host, address, "kube-dns.kube-system.svc.cluster.local") == "NOERROR 10.96.0.10 |"
    assert ask(host, address, "nope.default.svc.cluster.local") == "NXDOMAIN | 6"  # 6: the zone's SOA
    assert ask(host, address, "default.svc.cluster.local") == "NOERROR | 6"
    assert ask(host, address, "1.0.96.10.in-addr.arpa", "PTR") == "NOERROR kubernetes.default.svc.cluster.local. |"
    assert ask(host, address, "example.com").startswith("SERVFAIL")  # no upstream in the lab: at once


def test_hosts_outside_the_dns_group_run_no_kpy_dns(host):
    assert not host.file("/etc/systemd/system/kpy-dns.service").exists


def test_kube_dns_service_and_its_endpoints():
    service = json.loads(kubectl("get", "service", "-n", "kube-system", "kube-dns", "-o", "json"))
    assert service["spec"]["clusterIP"] == "10.96.0.10"
    assert {(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]} == {
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")}
    slices = json.loads(kubectl("get", "endpointslices", "-n", "kube-system", "-l",
                                "kubernetes.io/service-name=kube-dns", "-o", "json"))["items"]
    assert sorted(address for s in slices for e in s["endpoints"] for address in e["addresses"]) == sorted(
        DNS_HOSTS.values())


@pytest.mark.parametrize("server", sorted(DNS_HOSTS))
def test_ready_and_metrics(host, server):
    probe = host.run("curl -s --max-time 5 http://%s:9153/metrics", DNS_HOSTS[server])
    if probe.rc == 127:  # no curl on the host: python from kpy's venv
        probe = host.run("/opt/kpy/current/bin/python -c %s", "import urllib.request; print(urllib.request.urlopen("
                         f"'http://{DNS_HOSTS[server]}:9153/metrics', timeout=5).read().decode())")
    assert "coredns_dns_requests_total" in probe.stdout
