"""The ReplicaSet controller: keeps `spec.replicas` active pods labelled by the set's template and controlled by it,
and reports how many are ready and available.

A sync (replica_set.go syncReplicaSet): claim the active pods in the namespace (adopt orphans the selector matches,
release pods it no longer matches); if the expectations of the last sync are met, create the missing pods or
delete the surplus ones in Kubernetes' deletion order; then write status.
"""
from __future__ import annotations

from kpy_components.api import meta
from ..controller import controller_ref

from . import pods as podutil
from .podowner import PodOwnerController


def replica_set_status(rs: dict, active: list[dict], create_error: str | None = None,
                       now: float | None = None) -> dict:
    """The status of `rs` given its active pods (calculateStatus): replicas, fullyLabeledReplicas (pods carrying
    every template label), ready and available (ready for minReadySeconds) counts, observedGeneration and the
    ReplicaFailure condition while creates fail."""
    spec = rs.get("spec") or {}
    template_labels = meta.labels_of(spec.get("template") or {})
    min_ready = spec.get("minReadySeconds") or 0
    status = {key: value for key, value in (rs.get("status") or {}).items()
              if key not in ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")}
    status["replicas"] = len(active)
    fully = sum(1 for pod in active if template_labels.items() <= meta.labels_of(pod).items())
    ready = sum(1 for pod in active if podutil.is_ready(pod))
    available = sum(1 for pod in active if podutil.is_available(pod, min_ready, now))
    status["fullyLabeledReplicas"] = fully
    if ready:
        status["readyReplicas"] = ready
    if available:
        status["availableReplicas"] = available
    status["observedGeneration"] = meta.metadata(rs).get("generation", 0)
    conditions = status.get("conditions") or []
    if create_error is not None:
        conditions = podutil.set_condition(conditions, {
            "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": create_error,
            "lastTransitionTime": podutil.now_rfc3339(now)})
    elif len(active) >= (spec.get("replicas") or 0):
        conditions = podutil.remove_condition(conditions, "ReplicaFailure")
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status


class ReplicaSetController(PodOwnerController):
    name = "replicaset"
    kind, plural, group = "ReplicaSet", "replicasets", "apps"
    workers = 5

    def pod_changed(self, key: str, old: dict, new: dict) -> None:
        owner = self.owners.store.get(key)
        min_ready = ((owner or {}).get("spec") or {}).get("minReadySeconds") or 0
        if min_ready and podutil.is_ready(new) and not podutil.is_ready(old):
            self.queue.add_after(key, min_ready + 1)  # it turns available then

    async def reconcile(self, key: str) -> None:
        rs = self.owners.store.get(key)
        if rs is None:
            self.expectations.forget(key)
            return
        satisfied = self.expectations.satisfied(key)
        active = await self.claimed_pods(rs)
        create_error = None
        if satisfied and not podutil.is_terminating(rs):
            create_error = await self._manage_replicas(rs, key, active)
        rs = await self.write_status(rs, replica_set_status(rs, active, create_error))
        self._requeue_for_availability(rs, key, active)

    async def _manage_replicas(self, rs: dict, key: str, active: list[dict]) -> str | None:
        wanted = (rs.get("spec") or {}).get("replicas", 1)
        diff = len(active) - wanted
        if diff < 0:
            template = (rs.get("spec") or {}).get("template") or {}
            error = await self.create_pods(rs, key, [podutil.pod_from_template(template, rs)
                                                     for _ in range(-diff)])
            return error.message if error is not None else None
        if diff > 0:
            await self.delete_pods(rs, key, podutil.pods_to_delete(active, diff, self._siblings_pods(rs)))
        return None

    def _siblings_pods(self, rs: dict) -> list[dict]:
        """Pods of the other ReplicaSets of the same Deployment: they rank pods by how crowded their node is."""
        owner = controller_ref(rs)
        if owner is None:
            return []
        namespace = meta.namespace_of(rs)
        siblings = {meta.metadata(other).get("uid") for other in self.owners.store.list(namespace)
                    if (controller_ref(other) or {}).get("uid") == owner.get("uid")
                    and meta.name_of(other) != meta.name_of(rs)}
        return [pod for pod in self.pods.store.list(namespace)
                if (controller_ref(pod) or {}).get("uid") in siblings]

    def _requeue_for_availability(self, rs: dict, key: str, active: list[dict]) -> None:
        min_ready = (rs.get("spec") or {}).get("minReadySeconds") or 0
        waits = [left for pod in active if (left := podutil.seconds_until_available(pod, min_ready)) is not None]
        if waits:
            self.queue.add_after(key, min(waits) + 0.5)
