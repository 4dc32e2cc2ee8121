"""The DaemonSet controller: one pod on every node the DaemonSet's pods fit (nodeSelector, required node affinity,
taints the pods do not tolerate — with the tolerations Kubernetes adds to every daemon pod), pinned to its node
with node affinity `matchFields metadata.name` (the scheduler binds it); RollingUpdate replaces outdated pods at
most maxUnavailable nodes at a time, OnDelete only when the user deletes them.

Revisions: a ControllerRevision per distinct template (history.py); the pods carry its hash in the label
`controller-revision-hash`, so `kubectl rollout history|undo daemonset` work as on Kubernetes. RollingUpdate
maxSurge is not implemented (an outdated pod is deleted before its replacement starts).
"""
from __future__ import annotations

from types import SimpleNamespace

from kpy_components.api import meta
from kpy_components.client import key_of
from kpy_components.api.nodeaffinity import RequiredAffinity
from kpy_components.api.taints import NO_EXECUTE, NO_SCHEDULE, first_untolerated

from . import history
from . import pods as podutil
from .podowner import PodOwnerController

REVISION_LABEL = history.HASH_LABEL
_EXISTS = "Exists"
# AddOrUpdateDaemonPodTolerations: daemons keep running on nodes that are not ready, under pressure or cordoned.
DEFAULT_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": _EXISTS, "effect": NO_EXECUTE},
    {"key": "node.kubernetes.io/unreachable", "operator": _EXISTS, "effect": NO_EXECUTE},
    {"key": "node.kubernetes.io/disk-pressure", "operator": _EXISTS, "effect": NO_SCHEDULE},
    {"key": "node.kubernetes.io/memory-pressure", "operator": _EXISTS, "effect": NO_SCHEDULE},
    {"key": "node.kubernetes.io/pid-pressure", "operator": _EXISTS, "effect": NO_SCHEDULE},
    {"key": "node.kubernetes.io/unschedulable", "operator": _EXISTS, "effect": NO_SCHEDULE},
)
NETWORK_UNAVAILABLE = {"key": "node.kubernetes.io/network-unavailable", "operator": _EXISTS, "effect": NO_SCHEDULE}


def daemon_tolerations(pod_spec: dict) -> list[dict]:
    """The pod's tolerations plus the defaults it lacks (network-unavailable too for hostNetwork pods)."""
    tolerations = list(pod_spec.get("tolerations") or [])
    defaults = [*DEFAULT_TOLERATIONS, *([NETWORK_UNAVAILABLE] if pod_spec.get("hostNetwork") else [])]
    for default in defaults:
        if not any(t.get("key") == default["key"] and t.get("effect") == default["effect"] for t in tolerations):
            tolerations.append(dict(default))
    return tolerations


def should_run(ds: dict, node: dict) -> bool:
    """NodeShouldRunDaemonPod: the template's nodeSelector and required affinity match the node, and every
    NoSchedule/NoExecute taint is tolerated."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    view = SimpleNamespace(name=meta.name_of(node), labels=meta.labels_of(node))
    if not RequiredAffinity(spec).matches(view):
        return False
    taints = (node.get("spec") or {}).get("taints") or []
    return first_untolerated(taints, daemon_tolerations(spec), (NO_SCHEDULE, NO_EXECUTE)) is None


def target_node(pod: dict) -> str | None:
    """GetTargetNodeName: the node a daemon pod is on, or pinned to while it waits for the scheduler."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or ():
        for field in term.get("matchFields") or ():
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and \
                    len(field.get("values") or ()) == 1:
                return field["values"][0]
    return None


def daemon_pod(ds: dict, node_name: str, revision: str) -> dict:
    template = (ds.get("spec") or {}).get("template") or {}
    pod = podutil.pod_from_template(template, ds, labels={REVISION_LABEL: revision})
    spec = pod["spec"]
    spec["tolerations"] = daemon_tolerations(spec)
    affinity = spec.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    return pod


def plan(ds: dict, nodes: list[dict], pods: list[dict], now: float | None = None, revision: str | None = None):
    """(nodes needing a pod, pods to delete, status). Pods: the DaemonSet's own, finished ones included;
    `revision`: the hash of the current template's ControllerRevision (by default the hash it would have)."""
    spec = ds.get("spec") or {}
    min_ready = spec.get("minReadySeconds") or 0
    if revision is None:
        revision = history.revision_hash(ds, (ds.get("status") or {}).get("collisionCount"))
    by_node: dict[str, list[dict]] = {}
    doomed = []
    for pod in pods:
        node = target_node(pod)
        if node is None or podutil.is_terminating(pod):
            continue
        if podutil.phase(pod) == "Failed":  # a daemon pod that failed is replaced
            doomed.append(pod)
            continue
        by_node.setdefault(node, []).append(pod)
    create, counts = [], dict.fromkeys(("desired", "current", "misscheduled", "ready", "updated", "available"), 0)
    outdated = []
    for node in nodes:
        name = meta.name_of(node)
        here = sorted(by_node.pop(name, []), key=lambda p: (meta.metadata(p).get("creationTimestamp") or ""))
        if not should_run(ds, node):
            if here:
                counts["misscheduled"] += 1
                doomed.extend(here)
            continue
        counts["desired"] += 1
        if not here:
            create.append(name)
            continue
        pod, extra = here[0], here[1:]
        doomed.extend(extra)  # one daemon pod per node: the oldest stays
        counts["current"] += 1
        ready, available = podutil.is_ready(pod), podutil.is_available(pod, min_ready, now)
        counts["ready"] += ready
        counts["available"] += available
        if meta.labels_of(pod).get(REVISION_LABEL) == revision:
            counts["updated"] += 1
        else:
            outdated.append((available, pod))
    for leftover in by_node.values():  # pods on nodes that no longer exist
        doomed.extend(leftover)
    doomed.extend(_rolling_victims(ds, outdated, counts))
    status = {key: value for key, value in (ds.get("status") or {}).items() if key in ("conditions",
                                                                                        "collisionCount")}
    status.update({"desiredNumberScheduled": counts["desired"], "currentNumberScheduled": counts["current"],
                   "numberMisscheduled": counts["misscheduled"], "numberReady": counts["ready"],
                   "updatedNumberScheduled": counts["updated"], "numberAvailable": counts["available"],
                   "numberUnavailable": counts["desired"] - counts["available"],
                   "observedGeneration": meta.metadata(ds).get("generation", 0)})
    for field in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
        if not status[field]:
            del status[field]
    return create, doomed, status


def _rolling_victims(ds: dict, outdated: list[tuple[bool, dict]], counts: dict) -> list[dict]:
    """RollingUpdate: outdated pods that are unavailable anyway go at once; available ones only while fewer than
    maxUnavailable nodes lack an available daemon pod."""
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return []
    limit = podutil.scaled_value((strategy.get("rollingUpdate") or {}).get("maxUnavailable"), counts["desired"],
                                 True, 1)
    limit = max(limit, 1) if counts["desired"] else 0
    unavailable = counts["desired"] - counts["available"]
    victims = [pod for available, pod in outdated if not available]
    for available, pod in outdated:
        if available and unavailable < limit:
            victims.append(pod)
            unavailable += 1
    return victims


class DaemonSetController(PodOwnerController):
    name = "daemonset"
    kind, plural, group = "DaemonSet", "daemonsets", "apps"

    def setup(self) -> None:
        super().setup()
        self.history = history.RevisionHistory(self, self.kind)
        self.nodes = self.informer("nodes")
        self.nodes.add_handler(on_add=self._node_changed, on_update=self._node_updated,
                               on_delete=self._node_changed)

    def _node_changed(self, _node: dict) -> None:
        for ds in self.owners.store.list():
            self.queue.add(key_of(ds))

    def _node_updated(self, old: dict, new: dict) -> None:
        if meta.labels_of(old) != meta.labels_of(new) or old.get("spec") != new.get("spec"):
            self._node_changed(new)

    def pod_changed(self, key: str, old: dict, new: dict) -> None:
        owner = self.owners.store.get(key)
        min_ready = ((owner or {}).get("spec") or {}).get("minReadySeconds") or 0
        if min_ready and podutil.is_ready(new) and not podutil.is_ready(old):
            self.queue.add_after(key, min_ready + 1)

    async def reconcile(self, key: str) -> None:
        ds = self.owners.store.get(key)
        if ds is None:
            self.expectations.forget(key)
            return
        pods = await self.claimed_pods(ds, include_inactive=True)
        deleting = podutil.is_terminating(ds)
        synced = None if deleting else await self.history.sync(ds)
        try:
            create, doomed, status = plan(ds, self.nodes.store.list(), pods, revision=synced and synced.hash)
        except podutil.IntOrPercentError as error:
            self.recorder.event(ds, "Warning", "InvalidStrategy", f"spec.updateStrategy.rollingUpdate: {error}")
            return
        if synced is not None and synced.collision_count is not None:
            status["collisionCount"] = synced.collision_count
        if self.expectations.satisfied(key) and not deleting:
            if doomed:
                await self.delete_pods(ds, key, doomed)
            elif create:
                error = await self.create_pods(ds, key, [daemon_pod(ds, node, synced.hash) for node in create])
                if error is not None:
                    raise error
            running = {meta.labels_of(pod).get(REVISION_LABEL) for pod in pods}
            await self.history.trim(ds, synced, {meta.name_of(r) for r in synced.revisions
                                                 if meta.labels_of(r).get(REVISION_LABEL) in running})
        await self.write_status(ds, status)
