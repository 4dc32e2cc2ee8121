"""kpy-dns (the real binary) against a real kpy-apiserver: authenticated with a client certificate of
system:kube-dns, authorized by the cluster_dns role's own RBAC objects (roles/cluster_dns/files/rbac.yml), it
becomes ready once its caches synced, and Services and EndpointSlices created with the official Python client
become answerable over DNS (dnspython queries), changes and deletions included. It also marks the kube-dns
endpoints of NotReady Nodes not ready."""
from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml
from kubernetes import client, config

from processes import stop_process

REPO = Path(__file__).resolve().parents[3]
RBAC = REPO / "roles" / "cluster_dns" / "files" / "rbac.yml"
ZONE = "cluster.local"
WAIT = 20.0  # seconds for a change to reach DNS (the watch delivers it in milliseconds)
_names = itertools.count()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_dns_port() -> int:
    """A loopback port free for both UDP and TCP (kpy-dns takes both)."""
    while True:
        port = free_port(socket.SOCK_DGRAM)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@pytest.fixture(scope="module")
def api(apiserver):
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(apiserver.admin_kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture(scope="module")
def kpy_dns(apiserver, api, tmp_path_factory):
    """A kpy-dns process on free loopback ports: (dns port, ready URL, metrics URL)."""
    rbac = client.RbacAuthorizationV1Api(api)
    for obj in yaml.safe_load(RBAC.read_text()):
        try:
            if obj["kind"] == "ClusterRole":
                rbac.create_cluster_role(obj)
            else:
                rbac.create_cluster_role_binding(obj)
        except client.ApiException as error:
            if error.status != 409:
                raise
    directory = tmp_path_factory.mktemp("kpy-dns")
    kubeconfig = apiserver.user_kubeconfig("system:kube-dns")
    port = free_dns_port()
    ports = {name: free_port() for name in ("health", "ready", "metrics")}
    (directory / "dns.yaml").write_text(yaml.safe_dump({
        "apiVersion": "dns.kpy.io/v1alpha1", "kind": "KpyDNSConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)}, "clusterDomain": ZONE, "ttl": 5,
        "listen": [f"127.0.0.1:{port}"], "endpointSlice": "kube-system/kube-dns-nodes",
        **{name: f"127.0.0.1:{p}" for name, p in ports.items()}}))
    log = directory / "kpy-dns.log"
    with log.open("wb") as output:
        process = subprocess.Popen([str(Path(sys.executable).parent / "kpy-dns"), "--config",
                                    str(directory / "dns.yaml")], stdout=output, stderr=subprocess.STDOUT)
    try:
        ready = f"http://127.0.0.1:{ports['ready']}/ready"
        deadline = time.monotonic() + WAIT
        while _status(ready) != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"kpy-dns not ready (exit {process.poll()}):\n{log.read_text()}")
            time.sleep(0.1)
        yield port, ready, f"http://127.0.0.1:{ports['metrics']}/metrics"
    finally:
        stop_process(process, timeout=10)


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def query(port: int, name: str, rdtype: str = "A") -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=5)


def answers(response: dns.message.Message, rdtype: str = "A") -> set[str]:
    wanted = dns.rdatatype.from_text(rdtype)
    return {rdata.to_text() for rrset in response.answer if rrset.rdtype == wanted for rdata in rrset}


def wait_for(port: int, name: str, expected, rdtype: str = "A") -> dns.message.Message:
    """Query until `expected(response)` holds (a deadline, no fixed sleep); fails with the last answer."""
    deadline = time.monotonic() + WAIT
    while True:
        response = query(port, name, rdtype)
        if expected(response):
            return response
        if time.monotonic() > deadline:
            pytest.fail(f"{name} {rdtype}: still {dns.rcode.to_text(response.rcode())} {answers(response, rdtype)}")
        time.sleep(0.05)


@pytest.fixture
def namespace(api) -> str:
    name = f"dns-{next(_names)}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def test_ready_and_the_kubernetes_service(kpy_dns, api):
    port, ready, metrics = kpy_dns
    cluster_ip = client.CoreV1Api(api).read_namespaced_service("kubernetes", "default").spec.cluster_ip
    response = query(port, f"kubernetes.default.svc.{ZONE}")
    assert answers(response) == {cluster_ip}
    assert query(port, f"nope.default.svc.{ZONE}").rcode() == dns.rcode.NXDOMAIN
    with urllib.request.urlopen(metrics, timeout=5) as body:
        text = body.read().decode()
    assert "coredns_dns_requests_total" in text and 'rcode="NXDOMAIN"' in text


def test_services_become_answerable_change_and_go(kpy_dns, api, namespace):
    port = kpy_dns[0]
    core = client.CoreV1Api(api)
    name = f"web.{namespace}.svc.{ZONE}"
    assert query(port, name).rcode() == dns.rcode.NXDOMAIN
    assert query(port, f"{namespace}.svc.{ZONE}").rcode() == dns.rcode.NOERROR  # the namespace exists: NODATA
    created = core.create_namespaced_service(namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1ServiceSpec(selector={"app": "web"},
                                  ports=[client.V1ServicePort(name="http", port=80, target_port=8080)])))
    cluster_ip = created.spec.cluster_ip
    wait_for(port, name, lambda r: answers(r) == {cluster_ip})
    srv = query(port, f"_http._tcp.{name}", "SRV")
    assert answers(srv, "SRV") == {f"0 100 80 {name}."}
    reverse = ".".join(reversed(cluster_ip.split("."))) + ".in-addr.arpa."
    assert answers(query(port, reverse, "PTR"), "PTR") == {f"{name}."}
    core.delete_namespaced_service("web", namespace)
    wait_for(port, name, lambda r: r.rcode() == dns.rcode.NXDOMAIN)


def test_headless_service_answers_its_ready_endpoint_slices(kpy_dns, api, namespace):
    port = kpy_dns[0]
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    core.create_namespaced_service(namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="db"),
        spec=client.V1ServiceSpec(cluster_ip="None", selector={"app": "db"},
                                  ports=[client.V1ServicePort(name="pg", port=5432)])))
    name = f"db.{namespace}.svc.{ZONE}"
    assert query(port, name).rcode() == dns.rcode.NXDOMAIN  # no ready endpoints yet
    endpoints = [client.V1Endpoint(addresses=["10.244.1.5"], hostname="db-0",
                                   conditions=client.V1EndpointConditions(ready=True)),
                 client.V1Endpoint(addresses=["10.244.2.6"], conditions=client.V1EndpointConditions(ready=True)),
                 client.V1Endpoint(addresses=["10.244.3.7"], hostname="db-2",
                                   conditions=client.V1EndpointConditions(ready=False))]
    discovery.create_namespaced_endpoint_slice(namespace, client.V1EndpointSlice(
        metadata=client.V1ObjectMeta(name="db-1", labels={"kubernetes.io/service-name": "db",
                                                          "endpointslice.kubernetes.io/managed-by": "test"}),
        address_type="IPv4", endpoints=endpoints,
        ports=[client.DiscoveryV1EndpointPort(name="pg", port=5432, protocol="TCP")]))
    wait_for(port, name, lambda r: answers(r) == {"10.244.1.5", "10.244.2.6"})
    assert answers(query(port, f"db-0.{name}")) == {"10.244.1.5"}
    assert query(port, f"db-2.{name}").rcode() == dns.rcode.NXDOMAIN  # not ready
    assert answers(query(port, f"_pg._tcp.{name}", "SRV"), "SRV") == {
        f"0 50 5432 db-0.{name}.", f"0 50 5432 10-244-2-6.{name}."}
    assert answers(query(port, "5.1.244.10.in-addr.arpa.", "PTR"), "PTR") == {f"db-0.{name}."}
    # db-2 becomes ready: answered without any restart
    endpoints[2].conditions.ready = True
    discovery.patch_namespaced_endpoint_slice("db-1", namespace, {"endpoints": [e.to_dict() for e in endpoints]})
    wait_for(port, f"db-2.{name}", lambda r: answers(r) == {"10.244.3.7"})


def test_external_name_and_pod_names(kpy_dns, api, namespace):
    port = kpy_dns[0]
    client.CoreV1Api(api).create_namespaced_service(namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="ext"),
        spec=client.V1ServiceSpec(type="ExternalName", external_name="www.example.com")))
    wait_for(port, f"ext.{namespace}.svc.{ZONE}", lambda r: answers(r, "CNAME") == {"www.example.com."})
    assert answers(query(port, f"10-244-7-7.{namespace}.pod.{ZONE}")) == {"10.244.7.7"}
    assert query(port, f"10-244-7-7.no-such-namespace.pod.{ZONE}").rcode() == dns.rcode.NXDOMAIN


def _node_ready(core: client.CoreV1Api, name: str, ready: bool) -> None:
    core.patch_node_status(name, {"status": {"conditions": [{
        "type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady" if ready else "NodeDown",
        "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}})


def _slice_readiness(discovery: client.DiscoveryV1Api) -> dict[str, bool | None]:
    found = discovery.read_namespaced_endpoint_slice("kube-dns-nodes", "kube-system")
    return {e.node_name: e.conditions.ready if e.conditions else None for e in found.endpoints}


def test_endpoints_of_not_ready_nodes_are_marked_not_ready(kpy_dns, api):
    core, discovery = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    for name in ("dns-node-a", "dns-node-b"):
        core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name)))
        _node_ready(core, name, True)
    discovery.create_namespaced_endpoint_slice("kube-system", client.V1EndpointSlice(
        metadata=client.V1ObjectMeta(name="kube-dns-nodes", labels={"kubernetes.io/service-name": "kube-dns"}),
        address_type="IPv4", ports=[client.DiscoveryV1EndpointPort(name="dns", port=53, protocol="UDP")],
        endpoints=[client.V1Endpoint(addresses=["10.213.0.11"], node_name="dns-node-a"),
                   client.V1Endpoint(addresses=["10.213.0.12"], node_name="dns-node-b")]))
    assert _slice_readiness(discovery) == {"dns-node-a": None, "dns-node-b": None}  # as the role writes it
    _node_ready(core, "dns-node-b", False)
    deadline = time.monotonic() + WAIT
    while _slice_readiness(discovery) != {"dns-node-a": None, "dns-node-b": False}:
        assert time.monotonic() < deadline, _slice_readiness(discovery)
        time.sleep(0.1)
    _node_ready(core, "dns-node-b", True)
    while _slice_readiness(discovery)["dns-node-b"] is not True:
        assert time.monotonic() < deadline + WAIT, _slice_readiness(discovery)
        time.sleep(0.1)
