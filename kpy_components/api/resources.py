"""What the API serves: one ResourceInfo per resource, registered once and read by discovery, OpenAPI, the
generic store, RBAC, printers and clients alike.

The table of resources itself lives in `catalog.py`; this module holds the shape and the lookups.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str  # "status", "scale", "eviction", "log", "binding", "token", "exec", ...
    kind: str  # the kind the subresource speaks: "Scale", "Eviction", "Pod" (status), ...
    verbs: tuple[str, ...]
    group: str = ""  # when its kind lives in another group: scale → autoscaling/v1, eviction → policy/v1
    version: str = ""


@dataclass(frozen=True)
class PrinterColumn:
    """A Table column as Kubernetes' printers define it; `priority` 1 shows only with `-o wide`."""
    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0


@dataclass(frozen=True)
class ResourceInfo:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[Subresource, ...] = ()
    columns: tuple[PrinterColumn, ...] = ()
    storage: bool = True  # False for virtual resources (reviews) that are created but never stored
    field_selectors: tuple[str, ...] = ("metadata.name", "metadata.namespace")
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:  # what objects carry in apiVersion
        return self.group_version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, or `pods` for the core group: how messages and RBAC name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)


class Registry:
    """Resources by (group, version, plural) and by (apiVersion, kind). Custom resources come and go while the
    server runs: `generation` counts every change, for whatever is built from the registry and cached."""

    def __init__(self, resources: list[ResourceInfo] = ()):
        self._by_plural: dict[tuple[str, str, str], ResourceInfo] = {}
        self._by_kind: dict[tuple[str, str], ResourceInfo] = {}
        self.generation = 0
        for info in resources:
            self.add(info)

    def add(self, info: ResourceInfo) -> None:
        self._by_plural[(info.group, info.version, info.plural)] = info
        self._by_kind[(info.api_version, info.kind)] = info
        self.generation += 1

    def remove(self, info: ResourceInfo) -> None:
        if self._by_plural.get((info.group, info.version, info.plural)) is info:
            del self._by_plural[(info.group, info.version, info.plural)]
        if self._by_kind.get((info.api_version, info.kind)) is info:
            del self._by_kind[(info.api_version, info.kind)]
        self.generation += 1

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_plural.get((group, version, plural))

    def for_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        return self._by_kind.get((api_version, kind))

    def __iter__(self):
        return iter(self._by_plural.values())

    def group_versions(self) -> list[tuple[str, str]]:
        """(group, version) pairs in a stable order: the core group first, then groups by name."""
        return sorted({(r.group, r.version) for r in self}, key=lambda gv: (gv[0] != "", gv))
