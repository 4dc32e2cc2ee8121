"""What the API server serves, from its (legacy) discovery documents, as the namespace controller and the garbage
collector find it (client-go's ServerPreferredResources): the preferred version of every group, resources only
(no subresources).

A group version whose document cannot be fetched is reported in `Discovery.failures` and the rest is still
returned, so one broken group does not stop namespace deletion or garbage collection elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kpy_components.api.errors import APIError
from kpy_components.api.resources import ResourceInfo
from kpy_components.client import ClientConnectionError, RESTClient


@dataclass
class Discovery:
    resources: list[ResourceInfo] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # group version -> why its document failed

    def supporting(self, *verbs: str, namespaced: bool | None = None) -> list[ResourceInfo]:
        """Resources that allow every verb in `verbs` (and are namespaced / cluster-scoped when asked)."""
        return [info for info in self.resources if set(verbs) <= set(info.verbs)
                and (namespaced is None or info.namespaced == namespaced)]


async def discover(client: RESTClient) -> Discovery:
    """Every resource of every group's preferred version. Raises (APIError, ClientConnectionError) only when the
    group lists themselves cannot be read."""
    result = Discovery()
    core_versions = (await _get(client, "/api")).get("versions") or []
    paths = {version: f"/api/{version}" for version in core_versions[:1]}  # the first is the preferred one
    for group in (await _get(client, "/apis")).get("groups") or []:
        preferred = (group.get("preferredVersion") or {}).get("groupVersion")
        if preferred:
            paths[preferred] = f"/apis/{preferred}"
    for group_version, path in paths.items():
        try:
            document = await _get(client, path)
        except (APIError, ClientConnectionError) as error:
            result.failures[group_version] = str(error)
            continue
        group, _, version = group_version.rpartition("/")
        result.resources.extend(_resource(group, version, entry) for entry in document.get("resources") or []
                                if "/" not in entry.get("name", "/"))
    return result


def _resource(group: str, version: str, entry: dict) -> ResourceInfo:
    return ResourceInfo(group=entry.get("group") or group, version=entry.get("version") or version,
                        kind=entry.get("kind", ""), plural=entry["name"], singular=entry.get("singularName", ""),
                        namespaced=bool(entry.get("namespaced")), verbs=tuple(entry.get("verbs") or ()))


async def _get(client: RESTClient, path: str) -> dict:
    return (await client.request("GET", path)).json()
