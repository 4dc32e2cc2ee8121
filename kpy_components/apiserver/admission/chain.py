"""The admission chain: every mutating plugin in order, then every validating plugin in order (kube-apiserver's
order: NamespaceLifecycle, LimitRanger, ServiceAccount, NodeRestriction, Priority,
DefaultTolerationSeconds, PersistentVolumeClaimResize, DefaultStorageClass, StorageObjectInUseProtection,
MutatingAdmissionWebhook, RBAC escalation, ValidatingAdmissionPolicy, ValidatingAdmissionWebhook, ResourceQuota).
`AdmissionChain.admit` is the http.context.Admit hook: it may change the object in place, or raise an APIError
worded as Kubernetes words it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kpy_components.api.errors import APIError
from kpy_components.apiserver.http.context import RequestInfo, User


@dataclass
class Attributes:
    """One write as admission sees it. `obj` is None for DELETE; `old` is None for CREATE."""
    operation: str
    info: RequestInfo
    obj: dict | None
    old: dict | None
    user: User

    @property
    def namespace(self) -> str:
        return self.info.namespace

    def targets(self, group: str, resource: str, subresource: str = "") -> bool:
        return (self.info.api_group, self.info.resource, self.info.subresource) == (group, resource, subresource)

    @property
    def name(self) -> str:
        """As admission.NewForbidden names the object: the request's name, else the object's (generateName when
        the name is not generated yet), else "Unknown"."""
        if self.info.name:
            return self.info.name
        meta = (self.obj or self.old or {}).get("metadata") or {}
        return meta.get("name") or meta.get("generateName") or "Unknown"


class MutatingPlugin(Protocol):
    async def admit(self, attributes: Attributes) -> None: ...


class ValidatingPlugin(Protocol):
    async def validate(self, attributes: Attributes) -> None: ...


def forbidden(attributes: Attributes, message: str, causes: list[dict] | None = None) -> APIError:
    """admission.NewForbidden: `pods "web" is forbidden: <message>` (403)."""
    info = attributes.info
    qualified = f"{info.resource}.{info.api_group}" if info.api_group else info.resource
    name = attributes.name
    details = {"name": name, "kind": info.resource, **({"group": info.api_group} if info.api_group else {})}
    if causes:
        details["causes"] = causes
    return APIError(403, "Forbidden", f'{qualified} "{name}" is forbidden: {message}', details)


# The admission plugins kpy-apiserver runs, by upstream's names; all are enabled unless the configuration's
# disable_admission_plugins names them (enable_admission_plugins may only name these).
PLUGINS = ("NamespaceLifecycle", "LimitRanger", "ServiceAccount", "Priority", "DefaultTolerationSeconds",
           "DefaultStorageClass", "StorageObjectInUseProtection", "NodeRestriction", "PersistentVolumeClaimResize",
           "MutatingAdmissionWebhook", "ValidatingAdmissionPolicy", "ValidatingAdmissionWebhook", "ResourceQuota")


class AdmissionChain:
    def __init__(self, mutating: Sequence[MutatingPlugin], validating: Sequence[ValidatingPlugin]):
        self.mutating, self.validating = list(mutating), list(validating)

    async def admit(self, operation: str, info: RequestInfo, obj: dict | None, old: dict | None,
                    user: User) -> None:
        attributes = Attributes(operation, info, obj, old, user)
        for plugin in self.mutating:
            await plugin.admit(attributes)
        for plugin in self.validating:
            await plugin.validate(attributes)
