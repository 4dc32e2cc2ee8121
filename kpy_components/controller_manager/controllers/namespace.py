"""The namespace controller: a namespace being deleted (Terminating, spec.finalizers holding `kubernetes`) loses
everything in it, then the `kubernetes` finalizer through namespaces/NAME/finalize, after which the API server
removes it.

Each pass (pkg/controller/namespace/deletion): discover every namespaced resource the API serves, delete each
collection (propagationPolicy Background, so the garbage collector takes dependents), list what remains, and
record the outcome in the namespace's conditions as Kubernetes words them. Content still there (pods waiting for
their kubelet, objects with finalizers) means another pass a little later; an incomplete discovery means no
finalize, because unseen resources might still hold objects.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from kpy_components.api.errors import APIError
from kpy_components.api.meta import deep_copy, now_rfc3339
from kpy_components.api.resources import ResourceInfo
from kpy_components.client import ClientConnectionError, ignore_not_found, is_conflict, is_not_found

from ..controller import Controller
from .discovery import discover
from .pods import is_terminating, set_condition

log = logging.getLogger(__name__)
FINALIZER = "kubernetes"
RECHECK_SECONDS = 1.0  # how soon a pass that left content looks again (the estimate when no pod says longer)
MAX_RECHECK_SECONDS = 5.0  # kubelets usually finish long before the grace period ends

# Condition type -> (reason, message) while all is well, as pkg/controller/namespace/deletion sets them.
_GOOD = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions", "All legacy kube types successfully "
                                                    "parsed"),
    "NamespaceDeletionContentFailure": ("ContentDeleted", "All content successfully deleted, may be waiting on "
                                        "finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


@dataclass
class Pass:
    """What one deletion pass found."""
    discovery_failures: dict[str, str] = field(default_factory=dict)
    deletion_failures: list[str] = field(default_factory=list)
    remaining: Counter = field(default_factory=Counter)  # qualified resource -> objects left
    finalizers: Counter = field(default_factory=Counter)  # finalizer -> objects still holding it
    estimate: float = 0.0  # seconds until the content should be gone (graceful pod termination)

    @property
    def done(self) -> bool:
        return not (self.discovery_failures or self.deletion_failures or self.remaining)

    def conditions(self) -> dict[str, tuple[str, str, str]]:
        """Condition type -> (status, reason, message)."""
        problems = {}
        if self.discovery_failures:
            details = ", ".join(f"{gv}: {why}" for gv, why in sorted(self.discovery_failures.items()))
            problems["NamespaceDeletionDiscoveryFailure"] = (
                "DiscoveryFailed", f"Discovery failed for some groups, {len(self.discovery_failures)} failing: "
                f"unable to retrieve the complete list of server APIs: {details}")
        if self.deletion_failures:
            problems["NamespaceDeletionContentFailure"] = (
                "ContentDeletionFailed", f"Failed to delete all resource types, {len(self.deletion_failures)} "
                f"remaining: {', '.join(sorted(self.deletion_failures))}")
        if self.remaining:
            problems["NamespaceContentRemaining"] = (
                "SomeResourcesRemain", "Some resources are remaining: " + ", ".join(
                    f"{resource} has {count} resource instances" for resource, count in sorted(self.remaining.items())))
        if self.finalizers:
            problems["NamespaceFinalizersRemaining"] = (
                "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: " + ", ".join(
                    f"{name} in {count} resource instances" for name, count in sorted(self.finalizers.items())))
        return {kind: ("True", *problems[kind]) if kind in problems else ("False", *good)
                for kind, good in _GOOD.items()}


class NamespaceController(Controller):
    name = "namespace"

    def setup(self) -> None:
        self.namespaces = self.informer("namespaces")
        self.namespaces.add_handler(on_add=self._maybe_enqueue, on_update=lambda _old, new: self._maybe_enqueue(new))

    def _maybe_enqueue(self, namespace: dict) -> None:
        if is_terminating(namespace):
            self.enqueue(namespace)

    async def reconcile(self, key: str) -> None:
        namespace = self.namespaces.store.get(key)
        if namespace is None or not is_terminating(namespace) or \
                FINALIZER not in ((namespace.get("spec") or {}).get("finalizers") or ()):
            return
        outcome = await self.delete_content(key)
        await self._write_conditions(namespace, outcome)
        if not outcome.done:
            delay = min(max(outcome.estimate, RECHECK_SECONDS), MAX_RECHECK_SECONDS)
            log.info("Namespace still has content namespace=%s remaining=%s retry_in=%.0fs", key,
                     dict(outcome.remaining), delay)
            self.queue.add_after(key, delay)
            return
        await self._finalize(key)

    async def delete_content(self, namespace: str) -> Pass:
        outcome = Pass()
        try:
            discovered = await discover(self.client)
        except (APIError, ClientConnectionError) as error:
            outcome.discovery_failures["*"] = str(error)
            return outcome
        outcome.discovery_failures.update(discovered.failures)
        for info in discovered.supporting("list", "delete", namespaced=True):
            try:
                await self._delete_collection(info, namespace)
                left = (await self.client.list(info, namespace)).get("items") or []
            except (APIError, ClientConnectionError) as error:
                if isinstance(error, APIError) and error.code in (404, 405):  # not servable here after all
                    continue
                outcome.deletion_failures.append(f"{info.qualified}: {error}")
                continue
            if left:
                outcome.remaining[info.qualified] += len(left)
                for item in left:
                    outcome.finalizers.update((item.get("metadata") or {}).get("finalizers") or ())
                if info.qualified == "pods":
                    outcome.estimate = max(outcome.estimate, _grace_left(left))
        return outcome

    async def _delete_collection(self, info: ResourceInfo, namespace: str) -> None:
        if "deletecollection" not in info.verbs:
            for item in (await self.client.list(info, namespace)).get("items") or []:
                if not is_terminating(item):
                    await ignore_not_found(self.client.delete(info, item["metadata"]["name"], namespace,
                                                              propagation_policy="Background"))
            return
        body = b'{"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Background"}'
        await self.client.request("DELETE", self.client.path(info, namespace), content=body,
                                  headers={"Content-Type": "application/json"})

    async def _write_conditions(self, namespace: dict, outcome: Pass) -> None:
        updated, now = deep_copy(namespace), now_rfc3339()
        status = updated.setdefault("status", {})
        conditions = status.get("conditions") or []
        for kind, (state, reason, message) in outcome.conditions().items():
            status["conditions"] = set_condition(status.get("conditions") or [], {
                "type": kind, "status": state, "reason": reason, "message": message, "lastTransitionTime": now},
                refresh=True)
        if status["conditions"] == conditions:
            return
        try:
            await self.client.update(self.namespaces.info, updated, subresource="status")
        except APIError as error:
            if not (is_conflict(error) or is_not_found(error)):  # a newer copy comes with the next pass
                raise

    async def _finalize(self, name: str) -> None:
        """Drop `kubernetes` from spec.finalizers (re-read, so other finalizers set meanwhile are kept)."""
        try:
            current = await self.client.get(self.namespaces.info, name)
        except APIError as error:
            if is_not_found(error):
                return
            raise
        spec = current.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or () if f != FINALIZER]
        await ignore_not_found(self.client.update(self.namespaces.info, current, subresource="finalize"))
        log.info("Finalized namespace namespace=%s", name)


def _grace_left(pods: list[dict]) -> float:
    """The longest grace period among pods being deleted: how long their kubelets may take (estimate only)."""
    return float(max(((p.get("metadata") or {}).get("deletionGracePeriodSeconds") or 0 for p in pods), default=0))
