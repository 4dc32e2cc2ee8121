"""Inventory validation: every problem that would stop provisioning or build a broken cluster, all found at once,
before anything changes.

Works on plain data (what Ansible's inventory holds) so the Ansible action that feeds it stays thin and the checks can
be tested directly. Each problem is one sentence naming what is wrong and where.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
from collections.abc import Mapping, Sequence

from kpy_components.inventory.firewall import entries_problems
from kpy_components.inventory.networks import Network, parse_network

KPY_GROUPS = ("etcd", "control_plane", "workers")
# Cluster-wide variables every inventory defines (group_vars/all.yml); the CIDR ones must be disjoint networks.
CLUSTER_VARIABLES = (
    "kpy_cluster_name",
    "kpy_cluster_domain",
    "kpy_pod_cidr",
    "kpy_service_cidr",
    "kpy_node_cidr",
    "kpy_api_endpoint",
)
CIDR_VARIABLES = ("kpy_pod_cidr", "kpy_service_cidr", "kpy_node_cidr")
# Per-host variables the checks read.
HOST_VARIABLES = ("ansible_host", "firewall_extra_ports")


@dataclasses.dataclass(frozen=True)
class Unresolved:
    """A variable that is set but whose template could not be evaluated."""

    reason: str


_UNSET = object()


def inventory_problems(
    groups: Mapping[str, Sequence[str]],
    cluster: Mapping[str, object],
    hosts: Mapping[str, Mapping[str, object]],
    definitions: Mapping[str, Mapping[str, object]] | None = None,
) -> list[str]:
    """Every problem of an inventory; [] when it is valid.

    groups: Ansible's `groups` (group name -> host names, with "all").
    cluster: the cluster-wide variables as evaluated for the play (absent: not set).
    hosts: host name -> its HOST_VARIABLES, evaluated (absent: not set).
    definitions: host name -> its cluster-wide variables as written, unevaluated; used to spot hosts that override
      a cluster-wide value.
    """
    all_hosts = list(groups.get("all", ()))
    networks, problems = _cluster_problems(cluster)
    problems = _group_problems(groups, all_hosts) + problems
    problems += _definition_problems(definitions or {}, all_hosts)
    problems += _address_problems(hosts, all_hosts, networks.get("kpy_node_cidr"))
    problems += _firewall_problems(hosts, all_hosts)
    return problems


def _group_problems(groups: Mapping[str, Sequence[str]], all_hosts: list[str]) -> list[str]:
    problems = []
    etcd = list(groups.get("etcd", ()))
    if not etcd:
        problems.append("group etcd is empty or missing: it needs an odd number of members (1, 3 or 5)")
    elif len(etcd) % 2 == 0:
        problems.append(
            f"group etcd has {len(etcd)} members ({', '.join(etcd)}): it needs an odd number (1, 3 or 5); "
            f"an even number tolerates no more failures than one member fewer"
        )
    if not groups.get("control_plane"):
        problems.append("group control_plane is empty or missing: the cluster needs at least one control-plane host")
    grouped = {host for group in KPY_GROUPS for host in groups.get(group, ())}
    problems += [
        f"host {host} is in none of the groups {', '.join(KPY_GROUPS)}: add it to one or remove it from the inventory"
        for host in all_hosts
        if host not in grouped
    ]
    return problems


def _cluster_problems(cluster: Mapping[str, object]) -> tuple[dict[str, Network], list[str]]:
    """Problems with the cluster-wide variables, and the valid networks among them."""
    problems = []
    networks: dict[str, Network] = {}
    for name in CLUSTER_VARIABLES:
        value = cluster.get(name)
        if value is None or value == "":
            problems.append(f"{name} is not set: define it for all hosts (the inventory's group_vars/all.yml)")
        elif isinstance(value, Unresolved):
            problems.append(f"{name} could not be evaluated: {value.reason}")
        elif name in CIDR_VARIABLES:
            try:
                networks[name] = parse_network(value)
            except ValueError as error:
                problems.append(f"{name}: {error}")
        elif not isinstance(value, str):
            problems.append(f"{name} must be text, got {value!r}")
    for (name_a, net_a), (name_b, net_b) in itertools.combinations(networks.items(), 2):
        if net_a.version == net_b.version and net_a.overlaps(net_b):
            problems.append(
                f"{name_a} {net_a} overlaps {name_b} {net_b}: the pod, service and node networks must not overlap"
            )
    return networks, problems


def _definition_problems(definitions: Mapping[str, Mapping[str, object]], all_hosts: list[str]) -> list[str]:
    """Cluster-wide variables that some hosts define differently (e.g. in host_vars)."""
    problems = []
    for name in CLUSTER_VARIABLES:
        hosts_by_value: dict[str, list[str]] = {}
        for host in all_hosts:
            value = definitions.get(host, {}).get(name, _UNSET)
            hosts_by_value.setdefault("unset" if value is _UNSET else repr(value), []).append(host)
        if len(hosts_by_value) > 1:
            variants = "; ".join(f"{value} on {', '.join(hosts)}" for value, hosts in hosts_by_value.items())
            problems.append(
                f"{name} differs between hosts ({variants}): it is cluster-wide, define it once in group_vars/all.yml"
            )
    return problems


def _address_problems(
    hosts: Mapping[str, Mapping[str, object]], all_hosts: list[str], node_network: Network | None
) -> list[str]:
    problems = []
    hosts_by_address: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, list[str]] = {}
    for host in all_hosts:
        value = hosts.get(host, {}).get("ansible_host")
        if value is None or value == "":
            problems.append(f"host {host} has no ansible_host: set it to the host's IP address")
            continue
        if isinstance(value, Unresolved):
            problems.append(f"host {host}: ansible_host could not be evaluated: {value.reason}")
            continue
        try:
            address = ipaddress.ip_address(str(value).strip())
        except ValueError:
            problems.append(f"host {host}: ansible_host {value!r} is not an IP address")
            continue
        hosts_by_address.setdefault(address, []).append(host)
        if node_network is not None and address not in node_network:
            problems.append(f"host {host}: ansible_host {address} is outside kpy_node_cidr {node_network}")
    problems += [
        f"hosts {', '.join(sharing)} share the address {address} (ansible_host): each host needs its own"
        for address, sharing in hosts_by_address.items()
        if len(sharing) > 1
    ]
    return problems


def _firewall_problems(hosts: Mapping[str, Mapping[str, object]], all_hosts: list[str]) -> list[str]:
    """Problems with firewall_extra_ports, each reported once with the hosts it concerns."""
    hosts_by_problem: dict[str, list[str]] = {}
    for host in all_hosts:
        value = hosts.get(host, {}).get("firewall_extra_ports")
        found = (
            [f"firewall_extra_ports could not be evaluated: {value.reason}"]
            if isinstance(value, Unresolved)
            else entries_problems(value, "firewall_extra_ports")
        )
        for problem in found:
            hosts_by_problem.setdefault(problem, []).append(host)
    return [
        f"{problem} ({'all hosts' if concerned == all_hosts else 'hosts: ' + ', '.join(concerned)})"
        for problem, concerned in hosts_by_problem.items()
    ]
