"""Filters of the firewall role; the port model and its checks live in kpy_components.inventory.firewall."""

from __future__ import annotations

import dataclasses

from kpy_components.inventory.firewall import (
    entries_problems,
    host_rules,
    port_problems,
    sources_by_family,
    sources_problems,
)


def firewall_problems(extra_ports, ssh_port, trusted_sources, etcd_sources, connect_port=None) -> list[str]:
    """Every problem with the role's settings, each naming the variable at fault; [] when they are valid.
    `connect_port` is the host's ansible_port (None when unset): SSH must stay open on it."""
    problems = (
        entries_problems(extra_ports, "firewall_extra_ports")
        + port_problems(ssh_port, "firewall_ssh_port")
        + sources_problems(trusted_sources, "firewall_trusted_sources")
        + sources_problems(etcd_sources, "firewall_etcd_sources")
    )
    if connect_port is not None and str(connect_port) != str(ssh_port):
        problems.append(
            f"ansible_port is {connect_port} but the firewall opens SSH on firewall_ssh_port {ssh_port}: set "
            f"firewall_ssh_port to {connect_port} or the next run could not connect"
        )
    return problems


def firewall_rules(group_ports, group_names, ssh_port, extra_ports) -> list[dict]:
    """The accept rules of a host in `group_names`, as dicts {proto, ports, comment, family, saddrs}."""
    rules = host_rules(group_ports, group_names, ssh_port, extra_ports)
    return [dataclasses.asdict(rule) | {"saddrs": list(rule.saddrs)} for rule in rules]


def firewall_sources_by_family(sources) -> list[dict]:
    """Source networks grouped by nftables family, as dicts {family: "ip" or "ip6", saddrs: [...]}."""
    return [{"family": family, "saddrs": saddrs} for family, saddrs in sources_by_family(sources or [])]


class FilterModule:
    def filters(self):
        return {
            "firewall_problems": firewall_problems,
            "firewall_rules": firewall_rules,
            "firewall_sources_by_family": firewall_sources_by_family,
        }
