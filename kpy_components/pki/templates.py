"""Placeholders in profile strings (CN, O, SANs): `{cluster.domain}`, `{host.addresses}`, `{groups.etcd.names}`...

A placeholder stands for a list of values (a scalar one for a list of one); a template renders to one string per
combination, so `{host.addresses}` alone yields every address of the host.
"""
import itertools
import re

from kpy_components.pki.inventory import Host, Inventory

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_GROUP_KEY = re.compile(r"^groups\.([A-Za-z0-9_-]+)\.(names|addresses)$")
CLUSTER_KEYS = ("cluster.name", "cluster.domain", "cluster.api_endpoint", "cluster.service_ip")
HOST_KEYS = ("host.name", "host.addresses")
_LIST_KEYS = ("host.addresses",)


def problems(template: str, per_host: bool, scalar_only: bool) -> list[str]:
    """What is wrong with a template's placeholders ([] when nothing): unknown names, host values outside a
    per-host profile, list values where one value is required."""
    found = []
    for key in _PLACEHOLDER.findall(template):
        group_key = _GROUP_KEY.match(key)
        if key in HOST_KEYS and not per_host:
            found.append(f"{{{key}}} is only known in a per-host profile (one with for_hosts_in)")
        elif key not in CLUSTER_KEYS + HOST_KEYS and not group_key:
            known = ", ".join(f"{{{k}}}" for k in CLUSTER_KEYS + HOST_KEYS) + ", {groups.<group>.names|addresses}"
            found.append(f"unknown placeholder {{{key}}} (known: {known})")
        elif scalar_only and (key in _LIST_KEYS or group_key):
            found.append(f"{{{key}}} is a list; only single values may be used here")
    if template.count("{") != template.count("}"):
        found.append("unbalanced braces")
    return found


def render(template: str, inventory: Inventory, host: Host | None) -> list[str]:
    """Every string the template stands for. The template must have passed `problems` (unknown keys raise KeyError)."""
    parts = _PLACEHOLDER.split(template)  # literal, key, literal, key, ..., literal
    literals, keys = parts[0::2], parts[1::2]
    choices = [_values(key, inventory, host) for key in keys]
    return [
        literals[0] + "".join(value + literal for value, literal in zip(combo, literals[1:]))
        for combo in itertools.product(*choices)
    ]


def _values(key: str, inventory: Inventory, host: Host | None) -> list[str]:
    cluster = inventory.cluster
    scalars = {
        "cluster.name": cluster.name,
        "cluster.domain": cluster.domain,
        "cluster.api_endpoint": cluster.api_endpoint,
        "cluster.service_ip": cluster.service_ip,
    }
    if key in scalars:
        return [scalars[key]]
    if host is not None and key == "host.name":
        return [host.name]
    if host is not None and key == "host.addresses":
        return list(host.addresses)
    group_key = _GROUP_KEY.match(key)
    if group_key:
        members = inventory.members((group_key[1],))
        if group_key[2] == "names":
            return [m.name for m in members]
        return [a for m in members for a in m.addresses]
    raise KeyError(key)
