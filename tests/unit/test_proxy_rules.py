"""kpy-proxy's wanted ruleset, rendered from service ports without a kernel."""
import re

import pytest

from kpy_components.proxy.model import Endpoint, ServicePort
from kpy_components.proxy.rules import REJECT_CHAIN, Settings, affinity_set, endpoint_base, hashed, render

CIDR = "10.244.0.0/16"
SETTINGS = Settings(node_name="n1", cluster_cidr=CIDR)
A = Endpoint("10.244.1.10", 8080, node_name="n1")
B = Endpoint("10.244.2.10", 8080, node_name="n2")


def port(*endpoints, **fields) -> ServicePort:
    values = {"namespace": "demo", "name": "web", "port_name": "http", "protocol": "tcp", "port": 80,
              "cluster_ips": ("10.96.0.20",), "endpoints": endpoints, **fields}
    return ServicePort(**values)


def chain(kind: str, p: ServicePort) -> str:
    return hashed(kind, p.key)


def endpoint_chain(p: ServicePort, e: Endpoint) -> str:
    return hashed("endpoint", endpoint_base(p, e))


def per_service_chains(ruleset) -> set[str]:
    return {name for name in ruleset.chains if re.match(r"(service|local|external|endpoint)-[A-Z2-7]{8}-", name)}


def test_names_carry_a_hash_of_the_port_and_endpoint():
    p = port(A)
    assert chain("service", p) == f"service-{chain('service', p).split('-')[1]}-demo/web/tcp/http"
    assert endpoint_chain(p, A).endswith("-demo/web/tcp/http__10.244.1.10/8080")
    assert chain("service", p) != chain("service", port(A, name="Web"))
    assert re.fullmatch(r"service-[A-Z2-7]{8}-demo/web/tcp/http", chain("service", p))


def test_a_cluster_ip_balances_over_every_ready_endpoint():
    p = port(A, B)
    ruleset = render([p], SETTINGS)
    assert ruleset.containers["service-ips"].elements == {"10.96.0.20 . tcp . 80": f"goto {chain('service', p)}"}
    assert ruleset.containers["cluster-ips"].elements == {"10.96.0.20": None}
    assert ruleset.chains[chain("service", p)] == (
        f"ip daddr 10.96.0.20 tcp dport 80 ip saddr != {CIDR} jump mark-for-masquerade",
        f"numgen random mod 2 vmap {{ 0 : goto {endpoint_chain(p, A)} , 1 : goto {endpoint_chain(p, B)} }}")
    assert ruleset.chains[endpoint_chain(p, A)] == ("ip saddr 10.244.1.10 jump mark-for-masquerade",
                                                   "meta l4proto tcp dnat to 10.244.1.10:8080")
    assert per_service_chains(ruleset) == {chain("service", p), endpoint_chain(p, A), endpoint_chain(p, B)}
    assert ruleset.containers["no-endpoint-services"].elements == {}


def test_a_service_without_usable_endpoints_is_rejected_not_black_holed():
    unready = Endpoint("10.244.1.10", 8080, ready=False, serving=False)
    p = port(unready, node_port=30080, external_ips=("192.0.2.7",))
    ruleset = render([p], SETTINGS)
    assert per_service_chains(ruleset) == set()
    assert ruleset.containers["service-ips"].elements == {}
    assert ruleset.containers["service-nodeports"].elements == {}
    assert ruleset.containers["no-endpoint-services"].elements == {
        "10.96.0.20 . tcp . 80": f"goto {REJECT_CHAIN}", "192.0.2.7 . tcp . 80": f"goto {REJECT_CHAIN}"}
    assert ruleset.containers["no-endpoint-nodeports"].elements == {"tcp . 30080": f"goto {REJECT_CHAIN}"}
    assert ruleset.chains[REJECT_CHAIN] == ("meta l4proto tcp reject with tcp reset", "reject")
    assert ruleset.containers["cluster-ips"].elements == {"10.96.0.20": None}  # other ports of it are rejected


def test_the_filter_chains_check_new_connections_only():
    chains = render([], SETTINGS).chains
    assert chains["filter-input"] == ("ct state new jump nodeport-endpoints-check",
                                      "ct state new jump service-endpoints-check")
    assert chains["filter-forward"] == ("ct state new jump service-endpoints-check",
                                        "ct state new jump cluster-ips-check")
    assert chains["filter-output"] == ("ct state new jump service-endpoints-check",)
    assert chains["filter-output-post-dnat"] == ("ct state new jump cluster-ips-check",)
    assert chains["cluster-ips-check"][0].startswith("ip daddr @cluster-ips reject")


def test_terminating_endpoints_serve_only_when_none_is_ready():
    draining = Endpoint("10.244.1.11", 8080, ready=False, serving=True, terminating=True)
    with_ready = render([port(A, draining)], SETTINGS)
    assert endpoint_chain(port(A, draining), draining) not in with_ready.chains
    only_draining = port(draining)
    ruleset = render([only_draining], SETTINGS)
    assert ruleset.chains[chain("service", only_draining)][-1] == f"goto {endpoint_chain(only_draining, draining)}"


def test_masquerade_of_cluster_ip_traffic_follows_the_settings():
    p = port(A)
    no_cidr = render([p], Settings(node_name="n1")).chains[chain("service", p)]
    assert not any("mark-for-masquerade" in rule for rule in no_cidr)
    everything = render([p], Settings(node_name="n1", cluster_cidr=CIDR, masquerade_all=True))
    assert everything.chains[chain("service", p)][0] == "ip daddr 10.96.0.20 tcp dport 80 jump mark-for-masquerade"


def test_the_masquerade_bit_sets_the_mark():
    chains = render([], Settings(node_name="n1", masquerade_bit=5)).chains
    assert chains["mark-for-masquerade"] == ("meta mark set meta mark | 0x00000020",)
    assert chains["masquerading"] == ("meta mark & 0x00000020 == 0 return", "meta mark set meta mark ^ 0x00000020",
                                      "masquerade fully-random")
    assert chains["nat-postrouting"] == ("jump masquerading",)


def test_node_ports_with_cluster_policy_are_masqueraded_and_balanced_cluster_wide():
    p = port(A, B, node_port=30080, external_ips=("192.0.2.7",))
    ruleset = render([p], SETTINGS)
    external = chain("external", p)
    assert ruleset.containers["service-nodeports"].elements == {"tcp . 30080": f"goto {external}"}
    assert ruleset.containers["service-ips"].elements["192.0.2.7 . tcp . 80"] == f"goto {external}"
    assert ruleset.chains[external] == ("jump mark-for-masquerade", f"goto {chain('service', p)}")
    assert ruleset.chains["services"][1] == (
        "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports")


def test_external_policy_local_keeps_the_client_address_and_uses_local_endpoints():
    p = port(A, B, node_port=30080, external_local=True)
    ruleset = render([p], SETTINGS)
    service, local = chain("service", p), chain("local", p)
    assert ruleset.chains[chain("external", p)] == (
        f"ip saddr {CIDR} goto {service}", f"fib saddr type local jump mark-for-masquerade",
        f"fib saddr type local goto {service}", f"goto {local}")
    assert ruleset.chains[local] == (f"goto {endpoint_chain(p, A)}",)  # one endpoint: nothing to balance
    assert ruleset.containers["service-ips"].elements["10.96.0.20 . tcp . 80"] == f"goto {service}"


def test_a_local_policy_without_local_endpoints_drops_instead_of_leaving_the_node():
    p = port(B, node_port=30080, external_local=True)
    ruleset = render([p], SETTINGS)
    assert ruleset.chains[chain("local", p)] == ('drop comment "no local endpoints"',)
    assert ruleset.containers["no-endpoint-nodeports"].elements == {}  # cluster-wide it has endpoints


def test_internal_policy_local_sends_cluster_ip_traffic_to_the_local_chain():
    p = port(A, B, internal_local=True)
    ruleset = render([p], SETTINGS)
    assert ruleset.containers["service-ips"].elements["10.96.0.20 . tcp . 80"] == f"goto {chain('local', p)}"
    assert chain("external", p) not in ruleset.chains


def test_no_local_chain_without_a_local_policy():
    p = port(A, B, node_port=30080)
    assert chain("local", p) not in render([p], SETTINGS).chains
    # externalTrafficPolicy Local means nothing without external traffic.
    q = port(A, B, external_local=True)
    assert chain("local", q) not in render([q], SETTINGS).chains


def test_client_ip_affinity_checks_per_endpoint_sets_before_balancing():
    p = port(A, B, affinity_seconds=600)
    ruleset = render([p], SETTINGS)
    set_a, set_b = affinity_set(p, A), affinity_set(p, B)
    assert set_a.startswith("affinity-") and set_a.endswith("__10.244.1.10/8080/600s")
    rules = ruleset.chains[chain("service", p)]
    assert rules[1:3] == (f"ip saddr @{set_a} goto {endpoint_chain(p, A)}",
                          f"ip saddr @{set_b} goto {endpoint_chain(p, B)}")
    assert rules[3].startswith("numgen random mod 2")
    assert ruleset.chains[endpoint_chain(p, A)][1] == f"update @{set_a} {{ ip saddr }}"
    container = ruleset.containers[set_a]
    assert container.keep and container.elements == {}
    assert container.declaration == "type ipv4_addr ; flags dynamic,timeout ; timeout 600s ;"
    # A new timeout is a new set (nft cannot change a set's timeout in place).
    assert affinity_set(port(A, affinity_seconds=60), A) != set_a


def test_node_port_addresses_limit_where_node_ports_answer():
    p = port(A, node_port=30080)
    ruleset = render([p], Settings(node_name="n1", nodeport_cidrs=("10.213.0.0/24", "10.213.0.21/32",
                                                                   "fd00::/64")))
    assert ruleset.containers["nodeport-ips"].elements == {"10.213.0.0/24": None}
    assert "flags interval" in ruleset.containers["nodeport-ips"].declaration
    assert ruleset.chains["services"][1] == "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"
    assert ruleset.chains["nodeport-endpoints-check"][0].startswith("ip daddr @nodeport-ips ")
    assert "nodeport-ips" not in render([p], SETTINGS).containers


def test_rendering_is_deterministic_and_independent_of_input_order():
    ports = [port(A, B), port(A, name="api", cluster_ips=("10.96.0.30",)),
             port(B, name="dns", protocol="udp", port=53, cluster_ips=("10.96.0.10",))]
    first, second = render(ports, SETTINGS), render(list(reversed(ports)), SETTINGS)
    assert first.chains == second.chains and list(first.chains) == list(second.chains)
    assert first.containers == second.containers
    assert first.containers["service-ips"].elements["10.96.0.10 . udp . 53"].startswith("goto service-")


@pytest.mark.parametrize("count", [1, 3, 10])
def test_counts_grow_with_services(count):
    ports = [port(A, B, name=f"svc{i}", cluster_ips=(f"10.96.1.{i}",)) for i in range(count)]
    counts = render(ports, SETTINGS).counts()
    base = render([], SETTINGS).counts()
    assert counts["chain"] - base["chain"] == 3 * count  # service + 2 endpoints
    assert counts["element"] - base["element"] == 2 * count  # service-ips + cluster-ips
