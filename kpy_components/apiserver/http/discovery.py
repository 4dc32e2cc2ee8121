"""Discovery documents built from the resource registry: legacy (/api, /apis, /api/v1, /apis/<g>, /apis/<g>/<v>)
and aggregated (apidiscovery.k8s.io v2 and v2beta1, same shape), as client-go's discovery client reads them."""
from __future__ import annotations

import base64
import hashlib
import re

from kpy_components.api.resources import Registry, ResourceInfo


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_STABILITY = {None: 0, "beta": 1, "alpha": 2}


def version_priority(version: str) -> tuple:
    """Sort key of Kubernetes' version priority: GA before beta before alpha, higher numbers first, then
    non-Kubernetes-like versions by name. The first version of a group is its preferred one."""
    match = _KUBE_VERSION.match(version)
    if not match:
        return (3, 0, 0, version)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], -int(major), -int(minor or 0), version)


def _group_versions(registry: Registry) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for group, version in registry.group_versions():
        groups.setdefault(group, []).append(version)
    return {group: sorted(versions, key=version_priority) for group, versions in groups.items()}


def _group(name: str, versions: list[str]) -> dict:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> dict:
    groups = [_group(name, versions) for name, versions in _group_versions(registry).items() if name]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, name: str) -> dict | None:
    versions = _group_versions(registry).get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _resources(registry: Registry, group: str, version: str) -> list[ResourceInfo]:
    return sorted((r for r in registry if r.group == group and r.version == version), key=lambda r: r.plural)


def api_resource_list(registry: Registry, group: str, version: str) -> dict | None:
    resources = _resources(registry, group, version)
    if not resources:
        return None
    entries = []
    for info in resources:
        entries.append({"name": info.plural, "singularName": info.singular, "namespaced": info.namespaced,
                        "kind": info.kind, "verbs": list(info.verbs), "shortNames": list(info.short_names),
                        "categories": list(info.categories)})
        if info.storage:
            entries[-1]["storageVersionHash"] = storage_version_hash(info.group, info.version, info.kind)
        for sub in info.subresources:
            entry = {"name": f"{info.plural}/{sub.name}", "singularName": "", "namespaced": info.namespaced,
                     "kind": sub.kind, "verbs": list(sub.verbs)}
            if sub.group or sub.version:
                entry.update(group=sub.group, version=sub.version or "v1")
            entries.append(entry)
    for entry in entries:  # Kubernetes omits empty optional lists
        for optional in ("shortNames", "categories"):
            if optional in entry and not entry[optional]:
                del entry[optional]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version,
            "resources": entries}


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """Upstream's storageversionhash: base64 of the first 8 bytes of sha256("<group>/<version>/<Kind>") of the
    version objects are stored in ("/v1/Pod" for the core group: pods are "xPOwRZ+Yhw8="); clients such as the
    storage migrator compare it to notice a change."""
    return base64.b64encode(hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()[:8]).decode()


def _aggregated_resource(info: ResourceInfo) -> dict:
    resource = {"resource": info.plural,
                "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
                "scope": "Namespaced" if info.namespaced else "Cluster", "singularResource": info.singular,
                "verbs": sorted(info.verbs)}
    if info.short_names:
        resource["shortNames"] = list(info.short_names)
    if info.categories:
        resource["categories"] = list(info.categories)
    if info.subresources:
        resource["subresources"] = [
            {"subresource": sub.name,
             "responseKind": {"group": sub.group if sub.version else info.group,
                              "version": sub.version or info.version, "kind": sub.kind},
             "verbs": sorted(sub.verbs)}
            for sub in info.subresources]
    return resource


def aggregated(registry: Registry, version: str, core: bool) -> dict:
    """APIGroupDiscoveryList for /api (core=True: the one item named "") or /apis (every named group)."""
    items = []
    for name, versions in _group_versions(registry).items():
        if (name == "") != core:
            continue
        items.append({"metadata": {"name": name, "creationTimestamp": None},
                      "versions": [{"version": v, "freshness": "Current",
                                    "resources": [_aggregated_resource(r) for r in _resources(registry, name, v)]}
                                   for v in versions]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}
