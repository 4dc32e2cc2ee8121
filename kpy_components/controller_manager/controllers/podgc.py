"""The pod garbage collector (pkg/controller/podgc), a periodic sweep (every `period` seconds) that force-deletes
(grace period 0) pods nobody else will finish:

- terminated pods (Succeeded/Failed) beyond podGC.terminatedPodGCThreshold, oldest first (0 disables this);
- orphaned pods, bound to a node that no longer exists: seen missing from the cache for `quarantine` seconds and
  then confirmed by the API, they are marked Failed with a DisruptionTarget condition (DeletionByPodGC) first;
- unscheduled pods being deleted;
- pods being deleted on a node that is not Ready and carries the node.kubernetes.io/out-of-service taint.
"""
from __future__ import annotations

import logging
import time

from kpy_components.api.errors import APIError
from kpy_components.api.meta import now_rfc3339
from kpy_components.client import is_not_found

from ..controller import Controller
from .pods import condition, is_terminating, phase
from .podindex import NODE_INDEX, pods_by_node

log = logging.getLogger(__name__)
SWEEP = "sweep"  # the one queue key
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"


def terminated_to_delete(pods: list[dict], threshold: int) -> list[dict]:
    """The oldest finished pods beyond `threshold` (none when the threshold is 0)."""
    finished = [p for p in pods if phase(p) in ("Succeeded", "Failed") and not is_terminating(p)]
    if threshold <= 0 or len(finished) <= threshold:
        return []
    finished.sort(key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
    return finished[:len(finished) - threshold]


def out_of_service(node: dict) -> bool:
    taints = (node.get("spec") or {}).get("taints") or ()
    return (condition(node, "Ready") or {}).get("status") != "True" and \
        any(t.get("key") == OUT_OF_SERVICE and t.get("effect") == "NoExecute" for t in taints)


class PodGCController(Controller):
    name = "podgc"
    workers = 1
    period = 20.0  # seconds between sweeps (kube-controller-manager's gcCheckPeriod)
    quarantine = 40.0  # seconds a node must be missing before its pods count as orphans

    def setup(self) -> None:
        self.pods = pods_by_node(self.informer("pods"))
        self.nodes = self.informer("nodes")
        self.missing_since: dict[str, float] = {}  # node name -> when we first saw its pods without it
        self.queue.add(SWEEP)

    async def reconcile(self, key: str) -> None:
        try:
            await self.sweep()
        finally:
            self.queue.add_after(SWEEP, self.period)

    async def sweep(self) -> None:
        pods = self.pods.store.list()
        for pod in terminated_to_delete(pods, self.config.terminated_pod_gc_threshold):
            await self._force_delete(pod, "terminated pods beyond the threshold")
        for pod in pods:
            if is_terminating(pod) and not (pod.get("spec") or {}).get("nodeName"):
                await self._force_delete(pod, "unscheduled and terminating")
        for node_name in await self._vanished_nodes():
            for pod in self.pods.store.by_index(NODE_INDEX, node_name):
                await self._fail(pod)
                await self._force_delete(pod, f"node {node_name} no longer exists")
        for node in self.nodes.store.list():
            if out_of_service(node):
                for pod in self.pods.store.by_index(NODE_INDEX, node["metadata"]["name"]):
                    if is_terminating(pod):
                        await self._force_delete(pod, "terminating on an out-of-service node")

    async def _vanished_nodes(self) -> list[str]:
        """Nodes pods are bound to that have been missing for the quarantine and that the API confirms gone."""
        now, gone = time.monotonic(), []
        bound = set(self.pods.store.index_values(NODE_INDEX))
        self.missing_since = {n: t for n, t in self.missing_since.items() if n in bound and
                              self.nodes.store.get(n) is None}
        for node_name in bound:
            if self.nodes.store.get(node_name) is not None:
                continue
            first = self.missing_since.setdefault(node_name, now)
            if now - first < self.quarantine:
                continue
            try:
                await self.client.get(self.nodes.info, node_name)
            except APIError as error:
                if not is_not_found(error):
                    raise
                gone.append(node_name)
        return gone

    async def _fail(self, pod: dict) -> None:
        if phase(pod) in ("Succeeded", "Failed"):
            return
        metadata = pod["metadata"]
        status = {"phase": "Failed", "conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists", "lastTransitionTime": now_rfc3339()}]}
        try:
            await self.client.patch(self.pods.info, metadata["name"], {"status": status}, metadata["namespace"],
                                    patch_type="strategic", subresource="status")
        except APIError as error:
            if not is_not_found(error):
                raise

    async def _force_delete(self, pod: dict, why: str) -> None:
        metadata = pod["metadata"]
        if not await self.client.delete_exactly(self.pods.info, pod, grace_period_seconds=0):
            return
        log.info("Deleted pod namespace=%s pod=%s reason=%r", metadata["namespace"], metadata["name"], why)
