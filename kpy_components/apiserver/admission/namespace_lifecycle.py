"""NamespaceLifecycle: nothing is created in a namespace that does not exist (404 `namespaces "x" not found`) or is
being terminated (403 `unable to create new content in namespace x because it is being terminated`), and the
namespaces the system needs (default, kube-system, kube-public) cannot be deleted."""
from __future__ import annotations

from kpy_components.apiserver.admission.chain import Attributes, forbidden
from kpy_components.apiserver.http.context import InternalAPI

IMMORTAL = ("default", "kube-system", "kube-public")
_ACCESS_REVIEWS = {("authorization.k8s.io", "localsubjectaccessreviews"),
                   ("authorization.k8s.io", "subjectaccessreviews"),
                   ("authorization.k8s.io", "selfsubjectaccessreviews"),
                   ("authorization.k8s.io", "selfsubjectrulesreviews"),
                   ("authentication.k8s.io", "tokenreviews")}


def terminating(namespace: dict) -> bool:
    return ((namespace.get("status") or {}).get("phase") == "Terminating"
            or bool((namespace.get("metadata") or {}).get("deletionTimestamp")))


class NamespaceLifecycle:
    def __init__(self, api: InternalAPI, immortal: tuple[str, ...] = IMMORTAL):
        self.api, self.immortal = api, immortal

    async def admit(self, attributes: Attributes) -> None:
        info = attributes.info
        if attributes.targets("", "namespaces"):
            if attributes.operation == "DELETE" and attributes.name in self.immortal:
                raise forbidden(attributes, "this namespace may not be deleted")
            return
        if not attributes.namespace or (info.api_group, info.resource) in _ACCESS_REVIEWS:
            return
        namespace = await self.api.peek("", "namespaces", "", attributes.namespace)  # 404 when missing
        if attributes.operation == "CREATE" and terminating(namespace):
            name = attributes.namespace
            raise forbidden(attributes, f"unable to create new content in namespace {name} because it is being "
                            "terminated", [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                            "message": f"namespace {name} is being terminated"}])

