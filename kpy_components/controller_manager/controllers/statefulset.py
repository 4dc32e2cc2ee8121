"""The StatefulSet controller: pods with stable names `<set>-<ordinal>` (hostname = name, subdomain = serviceName),
created in order 0..N-1 each waiting for the one before to be Running and Ready (OrderedReady) or all at once
(Parallel), removed in reverse order when scaled down, and replaced highest ordinal first on a RollingUpdate down
to `partition` (OnDelete: only when the user deletes them).

Revisions: a ControllerRevision per distinct template (history.py), named `<set>-<hash>`; that name is in the
pods' `controller-revision-hash` label and status.currentRevision/updateRevision, so `kubectl rollout
history|undo statefulset` work as on Kubernetes. Each pod's PersistentVolumeClaims come from volumeClaimTemplates
and spec.persistentVolumeClaimRetentionPolicy decides whether they go with the set or a scaled-away pod
(statefulsetclaims.py). maxUnavailable for rolling updates is not implemented (one pod at a time, as Kubernetes'
default).
"""
from __future__ import annotations

import re

from kpy_components.api import meta

from . import history
from . import pods as podutil
from . import statefulsetclaims as claims
from .podowner import PodOwnerController

REVISION_LABEL = history.HASH_LABEL
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def update_revision(sts: dict) -> str:
    """The name the ControllerRevision of the set's current template has (unless it collided since)."""
    collision_count = (sts.get("status") or {}).get("collisionCount")
    return history.revision_name(meta.name_of(sts), history.revision_hash(sts, collision_count))


def ordinal_of(sts: dict, pod: dict) -> int | None:
    match = re.fullmatch(re.escape(meta.name_of(sts)) + r"-(\d+)", meta.name_of(pod))
    return int(match.group(1)) if match else None


def stateful_pod(sts: dict, ordinal: int, revision: str) -> dict:
    spec = sts.get("spec") or {}
    name = f"{meta.name_of(sts)}-{ordinal}"
    pod = podutil.pod_from_template(spec.get("template") or {}, sts, name=name, labels={
        REVISION_LABEL: revision, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)})
    pod["spec"]["hostname"] = name
    if spec.get("serviceName"):
        pod["spec"]["subdomain"] = spec["serviceName"]
    claims.add_claim_volumes(sts, pod, ordinal)
    return pod


def _healthy(pod: dict) -> bool:
    return podutil.phase(pod) == "Running" and podutil.is_ready(pod) and not podutil.is_terminating(pod)


def plan(sts: dict, pods: list[dict], now: float | None = None,
         revision: str | None = None) -> tuple[list[int], list[dict], dict]:
    """(ordinals to create, pods to delete, status) for one sync; `pods` are the set's own (finished included);
    `revision`: the name of the update revision (by default `update_revision`)."""
    spec = sts.get("spec") or {}
    replicas = spec.get("replicas", 1)
    start = (spec.get("ordinals") or {}).get("start", 0)
    parallel = spec.get("podManagementPolicy") == "Parallel"
    revision = revision or update_revision(sts)
    by_ordinal = {ordinal: pod for pod in pods if (ordinal := ordinal_of(sts, pod)) is not None}
    wanted = range(start, start + replicas)
    create, delete = [], []
    blocked = False  # OrderedReady: an earlier pod is not healthy yet
    for ordinal in wanted:
        pod = by_ordinal.get(ordinal)
        if pod is None:
            if not blocked:
                create.append(ordinal)
            blocked = blocked or not parallel
            continue
        if podutil.phase(pod) in ("Failed", "Succeeded") and not podutil.is_terminating(pod):
            delete.append(pod)  # recreated with the same name once it is gone
            blocked = blocked or not parallel
        elif not _healthy(pod) and not parallel:
            blocked = True
    condemned = sorted((o for o in by_ordinal if o not in wanted), reverse=True)
    if not create and not delete and condemned and not blocked:
        doomed = [by_ordinal[o] for o in condemned if not podutil.is_terminating(by_ordinal[o])]
        in_flight = any(podutil.is_terminating(by_ordinal[o]) for o in condemned)
        delete.extend(doomed if parallel else ([] if in_flight else doomed[:1]))
    if not create and not delete and not condemned:
        delete.extend(_rolling_victim(sts, by_ordinal, wanted, revision))
    return create, delete, _status(sts, by_ordinal, revision, now)


def _rolling_victim(sts: dict, by_ordinal: dict[int, dict], wanted: range, revision: str) -> list[dict]:
    """RollingUpdate: when every pod is healthy, the highest outdated ordinal at or above the partition."""
    strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return []
    if not all(o in by_ordinal and _healthy(by_ordinal[o]) for o in wanted):
        return []
    partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
    for ordinal in reversed(wanted):
        if ordinal - wanted.start < partition:
            break
        if meta.labels_of(by_ordinal[ordinal]).get(REVISION_LABEL) != revision:
            return [by_ordinal[ordinal]]
    return []


def _status(sts: dict, by_ordinal: dict[int, dict], revision: str, now: float | None) -> dict:
    spec, old = sts.get("spec") or {}, sts.get("status") or {}
    current_revision = old.get("currentRevision") or revision
    live = [pod for pod in by_ordinal.values() if not podutil.is_terminating(pod)]
    count = {
        "replicas": len(live),
        "readyReplicas": sum(1 for p in live if podutil.is_ready(p)),
        "availableReplicas": sum(1 for p in live if podutil.is_available(p, spec.get("minReadySeconds") or 0, now)),
        "currentReplicas": sum(1 for p in live if meta.labels_of(p).get(REVISION_LABEL) == current_revision),
        "updatedReplicas": sum(1 for p in live if meta.labels_of(p).get(REVISION_LABEL) == revision)}
    replicas = spec.get("replicas", 1)
    if count["updatedReplicas"] == count["readyReplicas"] == replicas == count["replicas"]:
        current_revision, count["currentReplicas"] = revision, count["updatedReplicas"]  # completeRollingUpdate
    status = {key: value for key, value in old.items() if key in ("conditions", "collisionCount")}
    status.update({key: value for key, value in count.items() if value or key == "replicas"})
    status.update({"currentRevision": current_revision, "updateRevision": revision,
                   "observedGeneration": meta.metadata(sts).get("generation", 0)})
    return status


class StatefulSetController(PodOwnerController):
    name = "statefulset"
    kind, plural, group = "StatefulSet", "statefulsets", "apps"
    workers = 5  # kube-controller-manager --concurrent-statefulset-syncs

    def setup(self) -> None:
        super().setup()
        self.history = history.RevisionHistory(self, self.kind)
        self.claims = claims.StatefulSetClaims(self, on_claim_deleted=self._enqueue_matching)

    async def reconcile(self, key: str) -> None:
        sts = self.owners.store.get(key)
        if sts is None:
            self.expectations.forget(key)
            return
        pods = await self.claimed_pods(sts, include_inactive=True)  # a terminating pod still holds its name
        deleting = podutil.is_terminating(sts)
        synced = None if deleting else await self.history.sync(sts)
        revision = meta.name_of(synced.update) if synced else None
        create, delete, status = plan(sts, pods, revision=revision)
        if synced is not None and synced.collision_count is not None:
            status["collisionCount"] = synced.collision_count
        if self.expectations.satisfied(key) and not deleting:
            by_ordinal = {o: pod for pod in pods if (o := ordinal_of(sts, pod)) is not None}
            await self.claims.apply_retention_policy(sts, by_ordinal)
            for ordinal, pod in by_ordinal.items():
                if podutil.phase(pod) == "Pending" and not podutil.is_terminating(pod):
                    await self.claims.ensure(sts, ordinal, new_pod=False)
            if delete:
                await self.delete_pods(sts, key, delete)
            elif create:
                await self._create_pods(sts, key, create, revision)
            live = {meta.labels_of(pod).get(REVISION_LABEL) for pod in pods} | {status["currentRevision"]}
            await self.history.trim(sts, synced, live)
        await self.write_status(sts, status)

    async def _create_pods(self, sts: dict, key: str, ordinals: list[int], revision: str) -> None:
        """Each pod after its claims; a pod whose claims cannot all be had yet waits (OrderedReady: so do the
        pods after it)."""
        ready = []
        for ordinal in ordinals:
            if not await self.claims.ensure(sts, ordinal):
                if sts["spec"].get("podManagementPolicy") != "Parallel":
                    break
                continue
            ready.append(stateful_pod(sts, ordinal, revision))
        error = await self.create_pods(sts, key, ready) if ready else None
        if error is not None:
            raise error
        if len(ready) < len(ordinals):
            self.queue.add_after(key, 1.0)  # a claim is being deleted or could not be created: look again
