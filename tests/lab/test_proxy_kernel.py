"""kpy-proxy's rules in a real kernel: one lab host with a bridge `kpy0` (as the kubelet makes it) and three network
namespaces as pods: pod-a and pod-b run a TCP server answering its name and the client address it sees; pod-c is
the client. The proxy's own sync (Proxier.sync: render, full or partial script, nft listing) drives the host's
`nft` over SSH, fed Service and EndpointSlice dicts. Every packet stays inside the lab host or between this
machine and it."""
import re
import shlex
import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry
from test_cri_runtime import kpy_lab, wait_for

from kpy_components.proxy.config import ProxyConfig
from kpy_components.proxy.metrics import ProxyMetrics
from kpy_components.proxy.nft import Nft, NftError
from kpy_components.proxy.proxier import Proxier, Snapshot

pytestmark = pytest.mark.lab

LAB = "prx"
HOST = f"{LAB}-w1"
CLUSTER_CIDR = "10.244.0.0/16"  # lives only inside the lab host
GATEWAY = "10.244.1.1"
PODS = {"pod-a": "10.244.1.10", "pod-b": "10.244.1.11", "pod-c": "10.244.1.20"}
PER_SERVICE_CHAIN = re.compile(r"chain (?:service|external|local|endpoint)-[A-Z2-7]{8}-")
WEB_IP, EMPTY_IP, DNS_IP, NODE_PORT = "10.96.0.20", "10.96.0.21", "10.96.0.10", 30080

# Runs inside the pods: on TCP 8080 answers "<name> <client address>\n", then echoes lines until the client hangs
# up; on UDP 8053 answers each datagram with "<name>".
SERVER = r"""
import socketserver, sys, threading
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.wfile.write(f"{sys.argv[1]} {self.client_address[0]}\n".encode())
        for line in self.rfile:
            self.wfile.write(line)
class Datagram(socketserver.BaseRequestHandler):
    def handle(self):
        self.request[1].sendto(sys.argv[1].encode(), self.client_address)
socketserver.ThreadingTCPServer.allow_reuse_address = True
threading.Thread(target=socketserver.UDPServer(("0.0.0.0", 8053), Datagram).serve_forever, daemon=True).start()
socketserver.ThreadingTCPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""
# Runs in a pod: COUNT datagrams to HOST:PORT from one source port (as a resolver keeping its socket), one reply
# line each, or "timeout".
UDP_CLIENT = r"""
import socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40053))
s.settimeout(5)
for _ in range(count):
    s.sendto(b"query", (host, port))
    try:
        print(s.recv(64).decode())
    except TimeoutError:
        print("timeout")
"""
# Runs in a pod or on the host: COUNT connections to HOST:PORT, one line each: the greeting, "refused" or "timeout".
CLIENT = r"""
import socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for _ in range(count):
    try:
        with socket.create_connection((host, port), timeout=10) as s:
            print(s.makefile().readline().strip())
    except ConnectionRefusedError:
        print("refused")
    except OSError as e:
        print("timeout" if isinstance(e, TimeoutError) else f"error {e}")
"""
# Holds one connection: writes the greeting to /tmp/hold.out, waits for /tmp/hold.go, sends a line, writes the echo.
HOLD = r"""
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
f = s.makefile("rw")
open("/tmp/hold.out", "w").write(f.readline())
end = time.monotonic() + 60
while not os.path.exists("/tmp/hold.go") and time.monotonic() < end:
    time.sleep(0.05)
f.write("still-here\n"); f.flush()
open("/tmp/hold.out", "a").write(f.readline())
"""

def pod_network(pods: dict[str, str], gateway: str, servers: tuple[str, ...]) -> str:
    """Shell lines making the bridge kpy0 (the pods' gateway) and one network namespace per pod on it, and
    starting SERVER (saved as /tmp/server.py) in `servers`. The bridge ports are in hairpin mode, as the kubelet's
    CNI configuration (hairpinMode) makes them: a pod reaching itself through its Service is sent back out of the
    port it came in on."""
    return f"""set -e
sysctl -qw net.ipv4.ip_forward=1
ip link add kpy0 type bridge
ip addr add {gateway}/24 dev kpy0
ip link set kpy0 up
""" + "".join(f"""ip netns add {pod}
ip link add veth-{pod} type veth peer name eth0 netns {pod}
ip link set veth-{pod} master kpy0 up
ip link set veth-{pod} type bridge_slave hairpin on
ip -n {pod} addr add {ip}/24 dev eth0
ip -n {pod} link set lo up
ip -n {pod} link set eth0 up
ip -n {pod} route add default via {gateway}
""" for pod, ip in pods.items()) + "".join(f"""setsid ip netns exec {pod} python3 /tmp/server.py {pod[-1]} \
</dev/null >/tmp/{pod}.log 2>&1 &
""" for pod in servers)


SETUP = ("set -e\nDEBIAN_FRONTEND=noninteractive apt-get install -y -qq conntrack >/dev/null\n"
         + pod_network(PODS, GATEWAY, ("pod-a", "pod-b")))


def on_host(command: str, **kwargs) -> str:
    result = kpy_lab("ssh", f"--lab={LAB}", HOST, command, check=False, **kwargs)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def host_nft(argv: list[str], stdin: str | None) -> str:
    """nft.Runner running the host's nft."""
    result = kpy_lab("ssh", f"--lab={LAB}", HOST, shlex.join(argv), check=False, input=stdin)
    if result.returncode != 0:
        raise NftError(result.stderr.strip())
    return result.stdout


def connect(address: str, port: int, count: int, pod: str | None = None) -> list[str]:
    """Replies of `count` connections from `pod` (or the host itself): "a 10.244.1.20", "refused", ..."""
    prefix = f"ip netns exec {pod} " if pod else ""
    return on_host(f"{prefix}python3 /tmp/client.py {address} {port} {count}").splitlines()


def connect_here(address: str, port: int, count: int) -> list[str]:
    """Replies of `count` connections from this machine (outside the cluster network) to the lab host."""
    return subprocess.run([sys.executable, "-c", CLIENT, address, str(port), str(count)], capture_output=True,
                          text=True, check=True).stdout.splitlines()


def service(name: str, cluster_ip: str, **spec) -> dict:
    return {"metadata": {"namespace": "demo", "name": name},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}], **spec}}


def endpoint_slice(name: str, *endpoints: dict) -> dict:
    return {"metadata": {"namespace": "demo", "name": f"{name}-1",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": list(endpoints)}


def endpoint(pod: str, node: str = HOST, **conditions) -> dict:
    return {"addresses": [PODS[pod]], "nodeName": node, "conditions": {"ready": True, **conditions}}


@pytest.fixture(scope="module")
def host_address(tmp_path_factory):
    work = tmp_path_factory.mktemp("proxy")
    kpy_lab("up", f"--lab={LAB}", "--subnet-index=24", "--control-plane=0", "--workers=1",
            f"--inventory={work / 'hosts.yml'}")
    try:
        for name, text in (("server", SERVER), ("client", CLIENT), ("hold", HOLD), ("udp", UDP_CLIENT)):
            on_host(f"cat > /tmp/{name}.py", input=text)
        on_host(SETUP)
        for pod in ("pod-a", "pod-b"):
            wait_for(lambda p=pod: connect(PODS[p], 8080, 1, "pod-c")[0].startswith(f"{p[-1]} "), f"{pod}'s server")
        yield kpy_lab("status", f"--lab={LAB}").stdout.split()[1]
    finally:
        kpy_lab("down", f"--lab={LAB}", check=False)


def proxier() -> Proxier:
    """A new proxier, as after a restart of kpy-proxy: it knows nothing of the kernel's table."""
    return Proxier(ProxyConfig(cluster_cidr=CLUSTER_CIDR, min_sync_period=0), HOST, Nft(host_nft),
                   ProxyMetrics(CollectorRegistry()))


WEB_NODEPORT = service("web", WEB_IP, type="NodePort",
                       ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": NODE_PORT}])
WEB_SLICE = endpoint_slice("web", endpoint("pod-a"), endpoint("pod-b"))
EMPTY = (service("empty", EMPTY_IP, type="NodePort",
                 ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": NODE_PORT + 1}]),
         endpoint_slice("empty"))


def test_cluster_ip_balances_over_both_endpoints_and_keeps_the_pod_address(host_address):
    proxy = proxier()
    assert proxy.sync(Snapshot([WEB_NODEPORT, EMPTY[0]], [WEB_SLICE, EMPTY[1]], None)) == "full"
    replies = connect(WEB_IP, 80, 40, "pod-c")
    assert set(replies) == {f"a {PODS['pod-c']}", f"b {PODS['pod-c']}"}, replies
    # A pod reaching itself through its Service (hairpin) is masqueraded to the bridge's address.
    replies = connect(WEB_IP, 80, 30, "pod-a")
    assert set(replies) <= {f"a {GATEWAY}", f"b {PODS['pod-a']}"} and len(set(replies)) == 2, replies
    # From the host itself (not in the cluster CIDR): masqueraded, still balanced.
    assert {r.split()[0] for r in connect(WEB_IP, 80, 30)} == {"a", "b"}
    # A second sync with nothing changed writes nothing.
    assert proxy.sync(Snapshot([WEB_NODEPORT, EMPTY[0]], [WEB_SLICE, EMPTY[1]], None)) == "none"


def test_services_without_endpoints_refuse_connections(host_address):
    proxier().sync(Snapshot([WEB_NODEPORT, EMPTY[0]], [WEB_SLICE, EMPTY[1]], None))
    assert connect(EMPTY_IP, 80, 2, "pod-c") == ["refused", "refused"]  # forwarded: filter-forward
    assert connect(EMPTY_IP, 80, 1) == ["refused"]  # the host's own traffic: filter-output
    assert connect_here(host_address, NODE_PORT + 1, 1) == ["refused"]  # NodePort: filter-input
    assert connect(WEB_IP, 81, 1, "pod-c") == ["refused"]  # a port the ClusterIP does not serve


def test_node_port_answers_on_the_host_address(host_address):
    proxier().sync(Snapshot([WEB_NODEPORT], [WEB_SLICE], None))
    replies = connect_here(host_address, NODE_PORT, 30)
    # externalTrafficPolicy Cluster: both endpoints, and the client is masqueraded to the node (the bridge).
    assert set(replies) == {f"a {GATEWAY}", f"b {GATEWAY}"}, replies


def test_traffic_policies_local_use_this_nodes_endpoints_only(host_address):
    local = service("web", WEB_IP, type="NodePort", externalTrafficPolicy="Local", internalTrafficPolicy="Local",
                    ports=[{"name": "http", "port": 80, "protocol": "TCP", "nodePort": NODE_PORT}])
    elsewhere = endpoint_slice("web", endpoint("pod-a"), endpoint("pod-b", node="another-node"))
    proxy = proxier()
    proxy.sync(Snapshot([WEB_NODEPORT], [WEB_SLICE], None))
    assert proxy.sync(Snapshot([local], [elsewhere], None)) == "partial"
    here = connect_here(host_address, NODE_PORT, 10)
    source = subprocess.run(["ip", "-o", "route", "get", host_address], capture_output=True, text=True,
                            check=True).stdout.split(" src ")[1].split()[0]
    assert set(here) == {f"a {source}"}, here  # external Local: no masquerade, the client's own address
    assert set(connect(WEB_IP, 80, 10, "pod-c")) == {f"a {PODS['pod-c']}"}


def test_session_affinity_sticks_to_one_endpoint(host_address):
    proxy = proxier()
    proxy.sync(Snapshot([WEB_NODEPORT], [WEB_SLICE], None))
    sticky = {**WEB_NODEPORT, "spec": {**WEB_NODEPORT["spec"], "sessionAffinity": "ClientIP",
                                       "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}}
    assert proxy.sync(Snapshot([sticky], [WEB_SLICE], None)) == "partial"
    for pod in ("pod-c", "pod-a"):
        replies = connect(WEB_IP, 80, 20, pod)
        assert len(set(replies)) == 1 and "refused" not in replies[0], replies
    assert len(set(connect_here(host_address, NODE_PORT, 20))) == 1
    # A full sync (as after a restart) keeps the affinity sets' contents.
    before = connect(WEB_IP, 80, 1, "pod-c")
    assert proxier().sync(Snapshot([sticky], [WEB_SLICE], None)) == "full"
    assert connect(WEB_IP, 80, 10, "pod-c") == before * 10


def test_an_endpoint_change_is_a_partial_sync_and_a_restart_leaves_connections_standing(host_address):
    proxy = proxier()
    proxy.sync(Snapshot([WEB_NODEPORT], [WEB_SLICE], None))
    on_host(f"rm -f /tmp/hold.out /tmp/hold.go; setsid ip netns exec pod-c python3 /tmp/hold.py {WEB_IP} 80 "
            "</dev/null >/tmp/hold.log 2>&1 &")
    greeting = wait_for(lambda: on_host("cat /tmp/hold.out 2>/dev/null || true").strip(), "the held connection")
    held = greeting.split()[0]
    other = "b" if held == "a" else "a"
    # The held endpoint leaves the Service (terminating but serving): a partial sync moves new connections...
    slices = endpoint_slice("web", endpoint(f"pod-{held}", ready=False, serving=True, terminating=True),
                            endpoint(f"pod-{other}"))
    assert proxy.sync(Snapshot([WEB_NODEPORT], [slices], None)) == "partial"
    assert {r.split()[0] for r in connect(WEB_IP, 80, 10, "pod-c")} == {other}
    # ...and a restarted proxy's full sync (from what it reads back from the kernel) leaves the table in place.
    restarted = proxier()
    assert restarted.sync(Snapshot([WEB_NODEPORT], [slices], None)) == "full"
    on_host("touch /tmp/hold.go")
    lines = wait_for(lambda: (out := on_host("cat /tmp/hold.out")).count("\n") >= 2 and out, "the echo")
    assert lines.splitlines() == [greeting, "still-here"]
    # Terminating endpoints are used only when no endpoint is ready (upstream's fallback).
    only_terminating = endpoint_slice("web", endpoint(f"pod-{held}", ready=False, serving=True, terminating=True))
    assert restarted.sync(Snapshot([WEB_NODEPORT], [only_terminating], None)) == "partial"
    assert {r.split()[0] for r in connect(WEB_IP, 80, 5, "pod-c")} == {held}


def test_chains_of_removed_services_are_deleted(host_address):
    proxy = proxier()
    proxy.sync(Snapshot([WEB_NODEPORT, EMPTY[0]], [WEB_SLICE, EMPTY[1]], None))
    assert len(PER_SERVICE_CHAIN.findall(on_host("nft list chains ip"))) == 4  # service, external, 2 endpoints
    assert proxy.sync(Snapshot([], [], None)) == "partial"
    assert not PER_SERVICE_CHAIN.findall(on_host("nft list chains ip"))
    assert connect(WEB_IP, 80, 1, "pod-c") != ["a"]  # no longer translated
    # A restart reading a table with leftovers removes them in its full sync.
    proxy.sync(Snapshot([WEB_NODEPORT], [WEB_SLICE], None))
    proxier().sync(Snapshot([], [], None))
    assert not PER_SERVICE_CHAIN.findall(on_host("nft list chains ip"))


def test_a_table_removed_by_someone_else_comes_back_at_the_next_sync(host_address):
    proxy = proxier()
    proxy.sync(Snapshot([WEB_NODEPORT], [WEB_SLICE], None))
    on_host("nft delete table ip kube-proxy")  # as `systemctl restart nftables` (flush ruleset) would
    assert proxy.sync(Snapshot([WEB_NODEPORT], [WEB_SLICE], None)) == "full"
    assert {r.split()[0] for r in connect(WEB_IP, 80, 20, "pod-c")} == {"a", "b"}


def test_udp_flows_to_a_removed_endpoint_are_cleared(host_address):
    """A resolver keeping its source port keeps its conntrack entry: without clearing it, its datagrams would
    still go to the endpoint removed from the Service (still running here) until the entry timed out."""
    def clear(commands):
        on_host("; ".join(f"conntrack {shlex.join(command)} 2>/dev/null || true" for command in commands))

    dns = service("dns", DNS_IP, ports=[{"name": "dns", "port": 53, "protocol": "UDP"}])
    both = endpoint_slice("dns", endpoint("pod-a"), endpoint("pod-b"))
    both["ports"] = [{"name": "dns", "port": 8053, "protocol": "UDP"}]
    proxy = Proxier(ProxyConfig(cluster_cidr=CLUSTER_CIDR, min_sync_period=0), HOST, Nft(host_nft),
                    ProxyMetrics(CollectorRegistry()), clear_flows=clear)
    proxy.sync(Snapshot([dns], [both], None))
    replies = on_host(f"ip netns exec pod-c python3 /tmp/udp.py {DNS_IP} 53 5").split()
    assert len(set(replies)) == 1 and replies[0] in ("a", "b"), replies  # one flow: one endpoint
    other = "b" if replies[0] == "a" else "a"
    left = {**both, "endpoints": [endpoint(f"pod-{other}")]}
    assert proxy.sync(Snapshot([dns], [left], None)) == "partial"
    assert on_host(f"ip netns exec pod-c python3 /tmp/udp.py {DNS_IP} 53 3").split() == [other] * 3
