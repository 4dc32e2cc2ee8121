"""The pod network, Hard-Way style (flannel's host-gw idea, no overlay):

- This node's pods get addresses from its Node's spec.podCIDR (node IPAM): the kubelet writes the CNI configuration
  containerd reads (bridge `kpy0` as the pods' gateway + host-local IPAM over the pod CIDR + portmap for hostPorts;
  containerd adds the loopback interface itself with the `loopback` plugin).
- Every other node's pod CIDR is routed via that node's InternalIP (`ip route replace`, protocol ROUTE_PROTOCOL so
  kpy's routes can be told apart and stale ones removed), from a watch on Nodes.
- Only traffic that leaves the pod network is masqueraded (the table `ip kpy-pod-network`), so pods see each other's
  real addresses across nodes.

Everything here changes the host's network: it runs in the kubelet on a node (inside lab hosts in the lab), never
in a test on the machine itself. Each call converges (writes only what differs) and may be repeated.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)
NETWORK_NAME = "kpy"
BRIDGE = "kpy0"
CONF_FILE = "10-kpy.conflist"
ROUTE_PROTOCOL = "77"  # a private rtnetlink protocol number marking kpy's pod routes
NAT_TABLE = "kpy-pod-network"


class NetworkError(Exception):
    """A host command failed; the message names the command and what it printed."""


def cni_config(pod_cidr: str) -> dict:
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": pod_cidr}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def write_cni_config(conf_dir: Path, pod_cidr: str) -> bool:
    """Write the node's CNI configuration atomically; whether it changed. Other kpy files in the folder go."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    target = conf_dir / CONF_FILE
    text = json.dumps(cni_config(pod_cidr), indent=2) + "\n"
    if target.exists() and target.read_text() == text:
        return False
    temporary = conf_dir / f".{CONF_FILE}.tmp"
    temporary.write_text(text)
    os.replace(temporary, target)  # containerd watches the folder: it must never read a half-written file
    log.info("Wrote CNI configuration path=%s podCIDR=%s", target, pod_cidr)
    return True


def wanted_routes(nodes: list[dict], own_name: str) -> dict[str, str]:
    """{pod CIDR: next hop} for every other node with a pod CIDR and an InternalIP."""
    routes = {}
    for node in nodes:
        if node.get("metadata", {}).get("name") == own_name:
            continue
        spec, status = node.get("spec") or {}, node.get("status") or {}
        cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
        address = next((a.get("address") for a in status.get("addresses") or ()
                        if a.get("type") == "InternalIP"), None)
        if not address:
            continue
        for cidr in cidrs:
            if ipaddress.ip_network(cidr, strict=False).version == ipaddress.ip_address(address).version:
                routes[str(ipaddress.ip_network(cidr, strict=False))] = address
    return routes


def _run(*argv: str, input_text: str | None = None) -> str:
    try:
        done = subprocess.run(argv, input=input_text, capture_output=True, text=True, check=False)
    except OSError as error:
        raise NetworkError(f"{argv[0]}: {error.strerror}") from None
    if done.returncode != 0:
        raise NetworkError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def current_routes() -> dict[str, str]:
    """kpy's pod routes on this host: {destination: gateway}."""
    listed = json.loads(_run("ip", "-json", "route", "show", "proto", ROUTE_PROTOCOL) or "[]")
    return {route["dst"]: route.get("gateway", "") for route in listed}


def sync_routes(wanted: dict[str, str]) -> list[str]:
    """Make kpy's routes exactly `wanted`; the changes made, for the log."""
    changes = []
    have = current_routes()
    for cidr, gateway in sorted(wanted.items()):
        if have.get(cidr) != gateway:
            _run("ip", "route", "replace", cidr, "via", gateway, "proto", ROUTE_PROTOCOL)
            changes.append(f"{cidr} via {gateway}")
    for cidr in sorted(set(have) - set(wanted)):
        _run("ip", "route", "del", cidr, "proto", ROUTE_PROTOCOL)
        changes.append(f"-{cidr}")
    return changes


def masquerade_rules(cluster_cidr: str) -> str:
    """The nft script of the masquerade table: replaced whole in one transaction."""
    return (f"table ip {NAT_TABLE}\ndelete table ip {NAT_TABLE}\n"
            f"table ip {NAT_TABLE} {{\n"
            f"\tchain postrouting {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
            f"\t\tip saddr {cluster_cidr} ip daddr != {cluster_cidr} masquerade\n\t}}\n}}\n")


def sync_masquerade(cluster_cidr: str) -> bool:
    """Load the masquerade table when it is missing or differs; whether it changed."""
    try:
        listed = _run("nft", "-j", "list", "table", "ip", NAT_TABLE)
        present = cluster_cidr in listed and "masquerade" in listed
    except NetworkError:
        present = False
    if present:
        return False
    _run("nft", "-f", "-", input_text=masquerade_rules(cluster_cidr))
    log.info("Loaded masquerade rules table=%s clusterCIDR=%s", NAT_TABLE, cluster_cidr)
    return True
