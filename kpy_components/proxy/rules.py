"""The nftables ruleset kpy-proxy wants, from service ports: pure data, no kernel (script.py turns it into text).

Table `ip kube-proxy` (IPv4 only: kpy's inventory gives one IPv4 pod and Service CIDR, so an `ip6 kube-proxy`
table would stay empty; dual-stack would add the same layout in `ip6`). Layout, as kube-proxy's nftables mode:

  nat-prerouting (nat, prerouting, dstnat) / nat-output (nat, output, -100)  -> jump services
  services:  ip daddr . meta l4proto . th dport vmap @service-ips            (ClusterIPs, external IPs)
             fib daddr type local ... meta l4proto . th dport vmap @service-nodeports   (NodePorts)
  service-H-ns/svc/proto/port   balancing over the usable endpoints: affinity checks, then
                                `numgen random mod N vmap { 0 : goto endpoint-..., ... }` (one endpoint:
                                `goto endpoint-...`, since each anonymous map costs ~1 ms to load)
  local-H-...                   the same over this node's endpoints (internal/externalTrafficPolicy Local)
  external-H-...                NodePort/external-IP entry: mark for masquerade (policy Cluster) or short-circuit
                                pods and the node itself to the service chain and the rest to the local chain
  endpoint-H-...__ip/port       hairpin mark, affinity update, `dnat to ip:port`
  affinity-H-...__ip/port       dynamic set of client addresses (timeout = the Service's affinity timeout); one
                                set per endpoint as upstream, since a set only says a client was seen, not where
  filter-input/forward/output (filter, -110), filter-output-post-dnat (-90): for new connections, Services
  without endpoints -> reject-chain (TCP reset, ICMP port unreachable), unknown ports of ClusterIPs -> reject
  nat-postrouting (nat, postrouting, srcnat) -> masquerading: packets marked with the masquerade bit
  mark-for-masquerade: set the bit. Marked: traffic to a ClusterIP from outside the cluster CIDR, external
  traffic with policy Cluster, and hairpin traffic (a pod reaching itself through its Service), so replies come
  back through the node that translated the request.

H is a hash of the name (as upstream), so names differing only past a truncation or in case stay distinct.
Chains of Services without usable endpoints are not made: their addresses go to the no-endpoint maps instead.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
from dataclasses import dataclass, field

from .model import Endpoint, ServicePort

TABLE = "kube-proxy"
FAMILY = "ip"
MARK_FOR_MASQUERADE = "mark-for-masquerade"
REJECT_CHAIN = "reject-chain"
# Base chains: name -> hook declaration. Filter chains run before the firewall's and before NAT (-110), except
# the post-DNAT one that must see where output traffic was sent (-90).
BASE_CHAINS = {
    "filter-input": "type filter hook input priority -110 ; policy accept ;",
    "filter-forward": "type filter hook forward priority -110 ; policy accept ;",
    "filter-output": "type filter hook output priority -110 ; policy accept ;",
    "filter-output-post-dnat": "type filter hook output priority -90 ; policy accept ;",
    "nat-prerouting": "type nat hook prerouting priority dstnat ; policy accept ;",
    "nat-output": "type nat hook output priority -100 ; policy accept ;",
    "nat-postrouting": "type nat hook postrouting priority srcnat ; policy accept ;",
}
SERVICE_KEY = "ipv4_addr . inet_proto . inet_service"
NODEPORT_KEY = "inet_proto . inet_service"


@dataclass(frozen=True)
class Settings:
    node_name: str
    cluster_cidr: str = ""  # the pod network; "": only hairpin and external traffic are masqueraded
    masquerade_all: bool = False  # masquerade every Service connection (nftables.masqueradeAll)
    masquerade_bit: int = 14
    # Where NodePorts answer: () = every local address but loopback (`fib daddr type local`); else these CIDRs
    # (nodePortAddresses, "primary" already replaced by the node's addresses as /32s).
    nodeport_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Container:
    """A named set or map: its declaration (`{ type ... ; }`) and elements (key -> value; value None in sets).
    `keep` containers (affinity sets) are never flushed: their elements are the kernel's, not ours."""
    kind: str  # "set" or "map"
    declaration: str
    elements: dict[str, str | None] = field(default_factory=dict)
    keep: bool = False


@dataclass
class Ruleset:
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> rules, in order
    containers: dict[str, Container] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {"chain": len(self.chains), "rule": sum(len(r) for r in self.chains.values()),
                "element": sum(len(c.elements) for c in self.containers.values())}


@functools.lru_cache(maxsize=1 << 16)
def hashed(prefix: str, base: str) -> str:
    """`prefix-HASH8-base`: kube-proxy's chain naming (HASH8: the first 8 base32 characters of sha256(base), which
    are those of its first 5 bytes). Cached: every sync names the same chains again."""
    digest = base64.b32encode(hashlib.sha256(base.encode()).digest()[:5]).decode()
    return f"{prefix}-{digest}-{base}"


def endpoint_base(port: ServicePort, endpoint: Endpoint) -> str:
    return f"{port.key}__{endpoint.address}"


def _balance(port: ServicePort, endpoints: tuple[Endpoint, ...]) -> tuple[str, ...]:
    rules = []
    if port.affinity_seconds:
        for endpoint in endpoints:
            base = endpoint_base(port, endpoint)
            rules.append(f"ip saddr @{affinity_set(port, endpoint)} goto {hashed('endpoint', base)}")
    if len(endpoints) == 1:  # nothing to balance; an anonymous map per rule is the costliest part of a load
        rules.append(f"goto {hashed('endpoint', endpoint_base(port, endpoints[0]))}")
        return tuple(rules)
    targets = " , ".join(f"{index} : goto {hashed('endpoint', endpoint_base(port, e))}"
                         for index, e in enumerate(endpoints))
    rules.append(f"numgen random mod {len(endpoints)} vmap {{ {targets} }}")
    return tuple(rules)


def affinity_set(port: ServicePort, endpoint: Endpoint) -> str:
    """The set's name carries the timeout, so a changed timeout makes a new set rather than an in-place change
    nft refuses."""
    return hashed("affinity", f"{endpoint_base(port, endpoint)}/{port.affinity_seconds}s")


_MAPS = ("cluster-ips", "service-ips", "service-nodeports", "no-endpoint-services", "no-endpoint-nodeports")


@dataclass(frozen=True)
class _Fragment:
    """What one service port adds to the ruleset. Cached per (port, settings): a sync re-renders every Service,
    and most of them have not changed. Never mutated once made."""
    chains: dict[str, tuple[str, ...]]
    sets: dict[str, Container]  # its affinity sets
    elements: tuple[tuple[str, dict[str, str | None]], ...]  # (container, its elements)


@functools.lru_cache(maxsize=1 << 15)
def _fragment(port: ServicePort, s: Settings) -> _Fragment:
    chains: dict[str, tuple[str, ...]] = {}
    sets: dict[str, Container] = {}
    service_ips, nodeports, rejected, rejected_nodeports = {}, {}, {}, {}
    cluster_ips = dict.fromkeys(port.cluster_ips)

    def fragment() -> _Fragment:
        return _Fragment(chains, sets, (("cluster-ips", cluster_ips), ("service-ips", service_ips),
                                        ("service-nodeports", nodeports), ("no-endpoint-services", rejected),
                                        ("no-endpoint-nodeports", rejected_nodeports)))

    cluster = port.cluster_endpoints()
    if not cluster:  # no usable endpoint: reject, never black-hole
        for ip in (*port.cluster_ips, *port.external_ips):
            rejected[f"{ip} . {port.protocol} . {port.port}"] = f"goto {REJECT_CHAIN}"
        if port.node_port:
            rejected_nodeports[f"{port.protocol} . {port.node_port}"] = f"goto {REJECT_CHAIN}"
        return fragment()
    local = port.local_endpoints(s.node_name)
    service_chain = hashed("service", port.key)
    local_chain = hashed("local", port.key)
    needs_local = port.internal_local or (port.external_local and port.has_external)
    masquerade_cluster_ip = []
    for ip in port.cluster_ips:
        match = f"ip daddr {ip} {port.protocol} dport {port.port}"
        if s.masquerade_all:
            masquerade_cluster_ip.append(f"{match} jump {MARK_FOR_MASQUERADE}")
        elif s.cluster_cidr:
            masquerade_cluster_ip.append(f"{match} ip saddr != {s.cluster_cidr} jump {MARK_FOR_MASQUERADE}")
    chains[service_chain] = (*masquerade_cluster_ip, *_balance(port, cluster))
    if needs_local:
        chains[local_chain] = _balance(port, local) if local else ('drop comment "no local endpoints"',)
    for endpoint in sorted(set(cluster) | (set(local) if needs_local else set())):
        rules = [f"ip saddr {endpoint.ip} jump {MARK_FOR_MASQUERADE}"]
        if port.affinity_seconds:
            name = affinity_set(port, endpoint)
            sets[name] = Container("set", f"type ipv4_addr ; flags dynamic,timeout ; timeout {port.affinity_seconds}s ;",
                                   keep=True)
            rules.append(f"update @{name} {{ ip saddr }}")
        rules.append(f"meta l4proto {port.protocol} dnat to {endpoint.ip}:{endpoint.port}")
        chains[hashed("endpoint", endpoint_base(port, endpoint))] = tuple(rules)
    internal = local_chain if port.internal_local else service_chain
    for ip in port.cluster_ips:
        service_ips[f"{ip} . {port.protocol} . {port.port}"] = f"goto {internal}"
    if port.has_external:
        external_chain = hashed("external", port.key)
        if port.external_local:
            short_circuit = [f"ip saddr {s.cluster_cidr} goto {service_chain}"] if s.cluster_cidr else []
            chains[external_chain] = (*short_circuit, f"fib saddr type local jump {MARK_FOR_MASQUERADE}",
                                      f"fib saddr type local goto {service_chain}", f"goto {local_chain}")
        else:
            chains[external_chain] = (f"jump {MARK_FOR_MASQUERADE}", f"goto {service_chain}")
        for ip in port.external_ips:
            service_ips[f"{ip} . {port.protocol} . {port.port}"] = f"goto {external_chain}"
        if port.node_port:
            nodeports[f"{port.protocol} . {port.node_port}"] = f"goto {external_chain}"
    return fragment()


class _Builder:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.ruleset = Ruleset()
        self.mark = f"0x{1 << settings.masquerade_bit:08x}"
        self.elements: dict[str, dict[str, str | None]] = {name: {} for name in _MAPS}

    def static(self) -> None:
        chains, s = self.ruleset.chains, self.settings
        chains["filter-input"] = ("ct state new jump nodeport-endpoints-check",
                                  "ct state new jump service-endpoints-check")
        chains["filter-forward"] = ("ct state new jump service-endpoints-check",
                                    "ct state new jump cluster-ips-check")
        chains["filter-output"] = ("ct state new jump service-endpoints-check",)
        chains["filter-output-post-dnat"] = ("ct state new jump cluster-ips-check",)
        chains["nat-prerouting"] = ("jump services",)
        chains["nat-output"] = ("jump services",)
        chains["nat-postrouting"] = ("jump masquerading",)
        chains[MARK_FOR_MASQUERADE] = (f"meta mark set meta mark | {self.mark}",)
        chains["masquerading"] = (f"meta mark & {self.mark} == 0 return",
                                  f"meta mark set meta mark ^ {self.mark}",
                                  "masquerade fully-random")
        nodeport_match = ("ip daddr @nodeport-ips" if s.nodeport_cidrs
                          else "fib daddr type local ip daddr != 127.0.0.0/8")
        chains["services"] = ("ip daddr . meta l4proto . th dport vmap @service-ips",
                              f"{nodeport_match} meta l4proto . th dport vmap @service-nodeports")
        chains["service-endpoints-check"] = ("ip daddr . meta l4proto . th dport vmap @no-endpoint-services",)
        chains["nodeport-endpoints-check"] = (
            f"{nodeport_match} meta l4proto . th dport vmap @no-endpoint-nodeports",)
        chains["cluster-ips-check"] = (
            'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',)
        chains[REJECT_CHAIN] = ("meta l4proto tcp reject with tcp reset", "reject")
        if s.nodeport_cidrs:
            self.ruleset.containers["nodeport-ips"] = Container(
                "set", "type ipv4_addr ; flags interval ; comment \"IPs that accept NodePort traffic\" ;",
                {cidr: None for cidr in _merged(s.nodeport_cidrs)})

    def add(self, port: ServicePort) -> None:
        fragment = _fragment(port, self.settings)
        self.ruleset.chains.update(fragment.chains)
        self.ruleset.containers.update(fragment.sets)
        for name, elements in fragment.elements:
            self.elements[name].update(elements)

    def finish(self) -> Ruleset:
        containers = self.ruleset.containers
        containers["cluster-ips"] = Container("set", 'type ipv4_addr ; comment "Active ClusterIPs" ;',
                                              self.elements["cluster-ips"])
        containers["service-ips"] = Container(
            "map", f'type {SERVICE_KEY} : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ;',
            self.elements["service-ips"])
        containers["service-nodeports"] = Container(
            "map", f'type {NODEPORT_KEY} : verdict ; comment "NodePort traffic" ;', self.elements["service-nodeports"])
        containers["no-endpoint-services"] = Container(
            "map", f'type {SERVICE_KEY} : verdict ; comment "vmap to drop or reject packets to services with no '
            'endpoints" ;', self.elements["no-endpoint-services"])
        containers["no-endpoint-nodeports"] = Container(
            "map", f'type {NODEPORT_KEY} : verdict ; comment "vmap to drop or reject packets to service nodeports '
            'with no endpoints" ;', self.elements["no-endpoint-nodeports"])
        return self.ruleset


def _merged(cidrs: tuple[str, ...]) -> list[str]:
    """Overlapping intervals merged (an interval set refuses overlaps)."""
    networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    return [str(n) for n in ipaddress.collapse_addresses(n for n in networks if n.version == 4)]


def render(ports: list[ServicePort], settings: Settings) -> Ruleset:
    """The whole wanted ruleset for these service ports on this node."""
    builder = _Builder(settings)
    builder.static()
    for port in sorted(ports, key=lambda p: p.key):
        builder.add(port)
    return builder.finish()
