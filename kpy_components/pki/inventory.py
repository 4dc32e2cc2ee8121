"""The inventory model the PKI renders certificates from: cluster settings, hosts with addresses, and groups.

Built by the pki role from Ansible's `groups`/`hostvars`; validated here so a bad inventory stops the run with every
problem listed, before any key is generated.
"""
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from kpy_components.pki.errors import InventoryError

# DNS-1123 subdomain: what Kubernetes accepts as a node name and what is safe as a DNS SAN.
_DNS_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")


def is_dns_name(value: str) -> bool:
    return bool(_DNS_NAME.match(value))


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Host:
    name: str
    addresses: tuple[str, ...]  # IPs or DNS names the host is reached at (ansible_host)


@dataclass(frozen=True)
class Cluster:
    name: str
    domain: str  # cluster DNS domain, e.g. cluster.local
    service_ip: str  # first address of the service CIDR: the `kubernetes` Service's ClusterIP
    api_endpoint: str  # name or IP clients use to reach the API servers (no scheme, no port)


@dataclass(frozen=True)
class Inventory:
    cluster: Cluster
    hosts: Mapping[str, Host]
    groups: Mapping[str, tuple[str, ...]]  # group name -> host names, in inventory order

    def members(self, group_names: tuple[str, ...]) -> list[Host]:
        """Hosts in any of `group_names`, each once, in inventory order of first appearance."""
        seen: dict[str, Host] = {}
        for group in group_names:
            for name in self.groups.get(group, ()):
                seen.setdefault(name, self.hosts[name])
        return list(seen.values())


def build(cluster: Mapping, hosts: Mapping, groups: Mapping) -> Inventory:
    """Validate raw mappings (as the Ansible module receives them) into an Inventory, or raise InventoryError.

    cluster: {name, domain, service_cidr, api_endpoint}; hosts: {name: address | [addresses]};
    groups: {group: [host names]}.
    """
    problems: list[str] = []
    parsed_cluster = _cluster(cluster, problems)
    parsed_hosts = _hosts(hosts, problems)
    parsed_groups = _groups(groups, parsed_hosts, problems)
    if problems:
        raise InventoryError.from_problems("invalid inventory", problems)
    return Inventory(parsed_cluster, parsed_hosts, parsed_groups)


def _cluster(raw: Mapping, problems: list[str]) -> Cluster | None:
    if not isinstance(raw, Mapping):
        problems.append(f"cluster: must be a mapping, got {type(raw).__name__}")
        return None
    for key in ("name", "domain", "service_cidr", "api_endpoint"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            problems.append(f"cluster.{key}: required, a non-empty string")
    for key in sorted(set(raw) - {"name", "domain", "service_cidr", "api_endpoint"}):
        problems.append(f"cluster.{key}: unknown setting")
    if problems:
        return None
    if not is_dns_name(raw["domain"]):
        problems.append(f"cluster.domain: {raw['domain']!r} is not a DNS name")
    endpoint = raw["api_endpoint"]
    if not (is_ip(endpoint) or is_dns_name(endpoint)):
        problems.append(f"cluster.api_endpoint: {endpoint!r} is not an IP address or DNS name (no scheme or port)")
    service_ip = _first_service_ip(raw["service_cidr"], problems)
    return Cluster(raw["name"], raw["domain"], service_ip, endpoint) if service_ip else None


def _first_service_ip(cidr: str, problems: list[str]) -> str | None:
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError as exc:
        problems.append(f"cluster.service_cidr: {cidr!r} is not a network in CIDR form ({exc})")
        return None
    if network.num_addresses < 4:
        problems.append(f"cluster.service_cidr: {cidr!r} is too small for Services")
        return None
    return str(network[1])


def _hosts(raw: Mapping, problems: list[str]) -> dict[str, Host]:
    if not isinstance(raw, Mapping):
        problems.append(f"hosts: must be a mapping of host name to address, got {type(raw).__name__}")
        return {}
    hosts = {}
    for name, value in raw.items():
        addresses = [value] if isinstance(value, str) else value
        if not is_dns_name(str(name)):
            problems.append(f"hosts.{name}: the host name is not a valid node name (lower-case DNS name)")
        if not isinstance(addresses, list) or not addresses or not all(isinstance(a, str) and a for a in addresses):
            problems.append(f"hosts.{name}: needs an address (ansible_host), got {value!r}")
            continue
        bad = [a for a in addresses if not (is_ip(a) or is_dns_name(a))]
        if bad:
            problems.append(f"hosts.{name}: {', '.join(map(repr, bad))} is not an IP address or DNS name")
        hosts[str(name)] = Host(str(name), tuple(addresses))
    return hosts


def _groups(raw: Mapping, hosts: Mapping[str, Host], problems: list[str]) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        problems.append(f"groups: must be a mapping of group name to host names, got {type(raw).__name__}")
        return {}
    groups = {}
    for group, names in raw.items():
        if not isinstance(names, list):
            problems.append(f"groups.{group}: must be a list of host names, got {type(names).__name__}")
            continue
        unknown = [n for n in names if n not in hosts]
        if unknown:
            problems.append(f"groups.{group}: {', '.join(map(str, unknown))} not in hosts (no address given)")
        groups[str(group)] = tuple(dict.fromkeys(n for n in names if n in hosts))
    return groups
