"""Filters of the cluster_dns role: where an API object lives, and whether the live one lacks what the role wants."""

from __future__ import annotations

_PLURALS = {"Service": "services", "EndpointSlice": "endpointslices", "ClusterRole": "clusterroles",
            "ClusterRoleBinding": "clusterrolebindings"}


def cluster_dns_path(obj: dict) -> str:
    """The object's URL path: /api/v1/namespaces/kube-system/services/kube-dns, /apis/rbac.../clusterroles/x."""
    api_version, meta = obj["apiVersion"], obj["metadata"]
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    namespace = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
    return f"{root}{namespace}/{_PLURALS[obj['kind']]}/{meta['name']}"


def _covers(live, wanted) -> bool:
    """True when `live` holds every field of `wanted` with the same value (the server adds defaults: ignored)."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(_covers(live.get(key), value) for key, value in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(live) == len(wanted) and all(map(_covers, live, wanted))
    return live == wanted


def cluster_dns_stale(results: list[dict]) -> list[dict]:
    """The wanted objects (`item` of each uri GET result) that are missing (404) or differ from the live ones."""
    return [result["item"] for result in results
            if result.get("status") != 200 or not _covers(result.get("json"), result["item"])]


class FilterModule:
    def filters(self):
        return {"cluster_dns_path": cluster_dns_path, "cluster_dns_stale": cluster_dns_stale}
