"""The observed state for the upgrade policy: each host's kpy_component_versions result, plus the live cluster read
with the official `kubernetes` client (Nodes, the controller-manager and scheduler Leases, /readyz, and objects in
API versions the target does not serve).

Bad input (a malformed host result, an unreachable API) raises GatherError naming what and where; nothing else
escapes, so the Ansible module never shows a traceback.
"""
from __future__ import annotations

import json

from collections.abc import Iterable
from dataclasses import dataclass

from .policy import (CONTROLLER_MANAGER, SCHEDULER, UNITS, ClusterState, Component, Host, Node, StoredObject, Version,
                     VersionError)

LEASES = {CONTROLLER_MANAGER: "kube-controller-manager", SCHEDULER: "kube-scheduler"}  # in kube-system
ADMISSION = "admissionregistration.k8s.io"


class GatherError(Exception):
    """What could not be read or understood; the message says what and where."""


def _version(text: object, where: str) -> Version | None:
    if text in (None, ""):
        return None
    try:
        return Version.parse(text)
    except VersionError as exc:
        raise GatherError(f"{where}: {exc}") from None


def hosts_from_results(results: dict) -> list[Host]:
    """Hosts (inventory order) from `{host: kpy_component_versions result + groups}`; every problem at once."""
    if not isinstance(results, dict) or not results:
        raise GatherError("hosts: expected a mapping of host -> kpy_component_versions result, got "
                          f"{type(results).__name__}")
    hosts, problems = [], []
    for name, result in results.items():
        if not isinstance(result, dict) or not isinstance(result.get("components"), dict):
            problems.append(f"hosts.{name}: not a kpy_component_versions result (no components mapping)")
            continue
        components = {}
        for unit, entry in result["components"].items():
            where = f"hosts.{name}.components.{unit}"
            if unit not in UNITS:
                continue
            try:
                if not isinstance(entry, dict):
                    raise GatherError(f"{where}: expected a mapping")
                components[unit] = Component(
                    _version(entry.get("installed"), f"{where}.installed"),
                    _version(entry.get("running"), f"{where}.running"), bool(entry.get("active")),
                    entry.get("problem") or None, entry.get("version_error") or None)
            except GatherError as exc:
                problems.append(str(exc))
        groups = result.get("groups") or ()
        hosts.append(Host(name, components, frozenset(groups if isinstance(groups, (list, tuple)) else ())))
    if problems:
        raise GatherError("\n".join(problems))
    return hosts


def _names(name: str, result: dict) -> set[str]:
    hostname = str(result.get("hostname") or "")
    return {n.lower() for n in (name, hostname, hostname.split(".")[0]) if n}


class HostNames:
    """Which inventory host a Node name or a Lease holder names (inventory name or the host's own hostname)."""

    def __init__(self, results: dict):
        self._by_name = {alias: name for name, result in results.items() if isinstance(result, dict)
                         for alias in _names(name, result)}

    def host_of(self, name: str | None) -> str | None:
        if not name:
            return None
        name = name.lower()
        return self._by_name.get(name) or self._by_name.get(name.split(".")[0])

    def lease_holder(self, identity: str | None) -> str | None:
        """kpy's leader election (component/runner.py) names holders `<hostname>_<uuid>`, as upstream does."""
        return self.host_of(identity.rsplit("_", 1)[0]) if identity else None


@dataclass(frozen=True)
class Live:
    nodes: dict[str, Node]  # host -> its Node
    leaders: dict[str, str | None]
    problems: list[str]
    stored_in_removed: list[StoredObject]


def _node(obj: dict) -> Node:
    status = obj.get("status") or {}
    info = status.get("nodeInfo") or {}
    name = obj["metadata"]["name"]
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
    return Node(name, ready, _version(info.get("kubeletVersion"), f"node {name} kubeletVersion"),
                _version(info.get("kubeProxyVersion"), f"node {name} kubeProxyVersion"))


class Cluster:
    """GETs on the live API through an official-client ApiClient; API failures become GatherError."""

    def __init__(self, api_client):
        self.api_client = api_client

    def request(self, path: str, query: Iterable[tuple[str, str]] = ()) -> tuple[int, str]:
        """(status, body) of a GET through the client's configuration (TLS, credentials); no answer: GatherError."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError
        where = f"GET {self.api_client.configuration.host}{path}"
        try:
            method, url, headers, _, _ = self.api_client.param_serialize(
                "GET", path, query_params=list(query), header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"])
            response = self.api_client.call_api(method, url, header_params=headers, _request_timeout=30)
            response.read()
        except ApiException as exc:  # the client's wrapping of TLS and protocol errors
            raise GatherError(f"{where}: {exc.reason}") from None
        except (HTTPError, OSError) as exc:
            raise GatherError(f"{where}: {exc}") from None
        return response.status, (response.data or b"").decode("utf-8", "replace")

    def get(self, path: str) -> dict:
        status, body = self.request(path)
        if status != 200:
            raise GatherError(f"GET {path}: HTTP {status}: {body.strip()[:300]}")
        try:
            return json.loads(body)
        except ValueError:
            raise GatherError(f"GET {path}: not JSON: {body.strip()[:300]!r}") from None

    def readyz(self) -> str | None:
        """None when /readyz (every check, etcd's among them) passes through the kubeconfig's endpoint."""
        status, body = self.request("/readyz", [("verbose", "true")])
        if status == 200:
            return None
        failed = [line for line in body.splitlines() if line.startswith("[-]")]
        return f"HTTP {status}: {'; '.join(failed) or body.strip()[:300]}"

    def served_group_versions(self) -> list[str]:
        """Built-in group/versions the live API serves: discovery minus the group-versions of
        CustomResourceDefinitions and of APIServices backed by a Service (aggregated)."""
        versions = list(self.get("/api")["versions"])
        versions += [v["groupVersion"] for g in self.get("/apis")["groups"] for v in g["versions"]]
        extension = {f"{s['spec']['group']}/{s['spec']['version']}"
                     for s in self.get("/apis/apiregistration.k8s.io/v1/apiservices")["items"]
                     if (s.get("spec") or {}).get("service")}
        extension |= {f"{c['spec']['group']}/{v['name']}"
                      for c in self.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
                      for v in c["spec"]["versions"]}
        return [gv for gv in versions if gv not in extension]

    def resources(self, group_version: str) -> list[dict]:
        path = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        return [r for r in self.get(path)["resources"] if "/" not in r["name"] and "list" in r.get("verbs", ())]

    def items(self, group_version: str, plural: str) -> list[dict]:
        path = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        return self.get(f"{path}/{plural}")["items"]


def _written_in(obj: dict) -> str | None:
    """The apiVersion of the object's last write, as its managedFields record it (kpy records the version it
    stores the object in: a resource's first version in the catalog, whichever version the client wrote)."""
    entries = [e for e in (obj.get("metadata") or {}).get("managedFields") or () if e.get("apiVersion")]
    return max(entries, key=lambda e: e.get("time") or "")["apiVersion"] if entries else None


def _group(group_version: str) -> str:
    return group_version.split("/")[0] if "/" in group_version else ""


def stored_in_removed(cluster: Cluster, target_served: dict[str, set[str]]) -> list[StoredObject]:
    """Objects the target could not read back, given what it serves (group/version -> resource plurals): every
    object of a resource the target serves in no version of its group, and, of a resource it still serves in
    another version, those last written in the dropped one. Webhook configurations (admissionregistration) first."""
    kept = {(_group(gv), plural) for gv, plurals in target_served.items() for plural in plurals}
    dropped = sorted((gv for gv in cluster.served_group_versions() if gv not in target_served),
                     key=lambda gv: (not gv.startswith(ADMISSION + "/"), gv))
    found = []
    for gv in dropped:
        for resource in cluster.resources(gv):
            gone = (_group(gv), resource["name"]) not in kept
            for obj in cluster.items(gv, resource["name"]):
                if gone or _written_in(obj) == gv:
                    meta = obj.get("metadata") or {}
                    found.append(StoredObject(gv, resource["name"], meta.get("name", ""), meta.get("namespace", "")))
    return found


def this_checkout_serves() -> dict[str, set[str]]:
    """group/version -> resource plurals the API server of this checkout serves (its catalog of built-in kinds)."""
    from kpy_components.api import catalog
    served: dict[str, set[str]] = {}
    for info in catalog.default_registry():
        served.setdefault(info.group_version, set()).add(info.plural)
    return served


def live(cluster: Cluster, names: HostNames, target_served: dict[str, set[str]]) -> Live:
    problems = []
    ready = cluster.readyz()
    if ready:
        problems.append(f"kpy-apiserver: the API ({cluster.api_client.configuration.host}) is not ready: {ready}")
    nodes = {}
    for obj in cluster.get("/api/v1/nodes")["items"]:
        node = _node(obj)
        host = names.host_of(node.name)
        if host:
            nodes[host] = node
    leaders = {}
    for unit, lease in LEASES.items():
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}"
        spec = None if cluster.request(path)[0] == 404 else cluster.get(path).get("spec")
        leaders[unit] = names.lease_holder((spec or {}).get("holderIdentity"))
    return Live(nodes, leaders, problems, stored_in_removed(cluster, target_served))


def observe(results: dict, cluster: Cluster, target_served: dict[str, set[str]]) -> ClusterState:
    hosts = hosts_from_results(results)
    seen = live(cluster, HostNames(results), target_served)
    hosts = [Host(h.name, h.components, h.groups, seen.nodes.get(h.name)) for h in hosts]
    return ClusterState(hosts, seen.leaders, seen.stored_in_removed, seen.problems)
