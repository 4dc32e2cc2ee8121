"""The node lifecycle controller (pkg/controller/nodelifecycle and its taint-eviction part):

- Health: a node is alive while its kubelet renews its Lease in kube-node-lease or posts status. When neither has
  changed for nodeMonitorGracePeriod (as this controller observed it, on its own clock, so clock skew between hosts
  does not matter), Ready and the pressure conditions become Unknown, "Kubelet stopped posting node status." A
  node that never posted a Ready condition gets the same after nodeStartupGracePeriod ("Kubelet never posted
  node status.").
- Taints mirror conditions: Ready False -> node.kubernetes.io/not-ready, Unknown -> node.kubernetes.io/unreachable
  (each NoSchedule and NoExecute); memory/disk/pid pressure and network-unavailable -> NoSchedule taints;
  spec.unschedulable -> node.kubernetes.io/unschedulable:NoSchedule.
- Eviction: a pod on a node with NoExecute taints is deleted at once if it does not tolerate them all, else when
  the shortest tolerationSeconds among the tolerations used runs out, counted from the earliest taint's timeAdded
  (so a restarted controller keeps the same deadlines). Pods get 300 s tolerations from the API server's
  DefaultTolerationSeconds admission. Before deletion a pod gets the DisruptionTarget condition.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kpy_components.api.errors import APIError
from kpy_components.api.meta import deep_copy, now_rfc3339, parse_rfc3339
from kpy_components.api.taints import NO_EXECUTE, NO_SCHEDULE, tolerates
from kpy_components.client import is_conflict, is_not_found

from ..controller import Controller
from .pods import condition, is_terminating, phase
from .podindex import NODE_INDEX, pods_by_node

log = logging.getLogger(__name__)
NODE_LEASE_NAMESPACE = "kube-node-lease"
NOT_READY, UNREACHABLE = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS = {("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
                    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
                    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
                    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable"}
MANAGED_KEYS = {NOT_READY, UNREACHABLE, UNSCHEDULABLE, *CONDITION_TAINTS.values()}
UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
STOPPED, NEVER = "Kubelet stopped posting node status.", "Kubelet never posted node status."


# --- pure decisions --------------------------------------------------------------------------------------------

def desired_taints(node: dict, now: str) -> list[dict]:
    """The node's taints with the controller-managed ones made to match its conditions and spec.unschedulable;
    taints that stay keep their timeAdded, others' taints are untouched."""
    ready = (condition(node, "Ready") or {}).get("status")
    wanted: list[tuple[str, str]] = []
    if ready in ("False", "Unknown"):
        key = NOT_READY if ready == "False" else UNREACHABLE
        wanted += [(key, NO_SCHEDULE), (key, NO_EXECUTE)]
    for (kind, status), key in CONDITION_TAINTS.items():
        if (condition(node, kind) or {}).get("status") == status:
            wanted.append((key, NO_SCHEDULE))
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append((UNSCHEDULABLE, NO_SCHEDULE))
    current = list((node.get("spec") or {}).get("taints") or [])
    kept = [t for t in current if t.get("key") not in MANAGED_KEYS or (t.get("key"), t.get("effect")) in wanted]
    have = {(t.get("key"), t.get("effect")) for t in kept}
    added = [{"key": key, "effect": effect, **({"timeAdded": now} if effect == NO_EXECUTE else {})}
             for key, effect in wanted if (key, effect) not in have]
    return kept + added


def mark_unknown(node: dict, message: str, now: str) -> dict | None:
    """The node with Ready and the pressure conditions Unknown (reason NodeStatusUnknown), or None when Ready is
    Unknown already. Conditions the kubelet never posted are added; lastHeartbeatTime stays the kubelet's."""
    if (condition(node, "Ready") or {}).get("status") == "Unknown":
        return None
    updated = deep_copy(node)
    conditions = updated.setdefault("status", {}).setdefault("conditions", [])
    for kind in UNKNOWN_CONDITIONS:
        entry = next((c for c in conditions if c.get("type") == kind), None)
        if entry is None:
            entry = {"type": kind, "lastHeartbeatTime": now}
            conditions.append(entry)
        if entry.get("status") != "Unknown":
            entry.update(status="Unknown", reason="NodeStatusUnknown", message=message, lastTransitionTime=now)
    return updated


def eviction_delay(pod: dict, taints: list[dict], now: float) -> float | None:
    """Seconds until the pod must be evicted from a node with these NoExecute `taints` (0: now), None for never
    (no NoExecute taint, or tolerated without a time limit). now: epoch seconds."""
    no_execute = [t for t in taints if t.get("effect") == NO_EXECUTE]
    if not no_execute:
        return None
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    used = []
    for taint in no_execute:
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        used += matching
    limits = [t["tolerationSeconds"] for t in used if isinstance(t.get("tolerationSeconds"), int)]
    if not limits:
        return None
    since = min((_epoch(t.get("timeAdded")) for t in no_execute), default=None)
    deadline = (now if since is None else since) + max(min(limits), 0)
    return max(deadline - now, 0.0)


def _epoch(timestamp: str | None) -> float | None:
    try:
        return parse_rfc3339(timestamp).timestamp() if timestamp else None
    except ValueError:
        return None


@dataclass
class Probe:
    """The last heartbeat seen (lease renewTime, Ready's lastHeartbeatTime) and when it was seen to change."""
    heartbeat: tuple
    seen: float


# --- the controller --------------------------------------------------------------------------------------------

class NodeLifecycleController(Controller):
    name = "nodelifecycle"

    def setup(self) -> None:
        self.settings = self.config.node_lifecycle
        self.nodes = self.informer("nodes")
        self.leases = self.informer("leases", "coordination.k8s.io")
        self.pods = pods_by_node(self.informer("pods"))
        self.probes: dict[str, Probe] = {}
        self.nodes.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                               on_delete=self.enqueue)
        self.leases.add_handler(on_add=self._lease_changed, on_update=lambda _old, new: self._lease_changed(new))
        self.pods.add_handler(on_add=self._pod_changed, on_update=lambda _old, new: self._pod_changed(new))

    def _lease_changed(self, lease: dict) -> None:
        if lease["metadata"].get("namespace") == NODE_LEASE_NAMESPACE:
            self.queue.add(lease["metadata"]["name"])

    def _pod_changed(self, pod: dict) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self.queue.add(node)

    async def reconcile(self, name: str) -> None:
        node = self.nodes.store.get(name)
        if node is None:
            self.probes.pop(name, None)
            return
        node = await self._monitor_health(name, node)
        node = await self._update_taints(node)
        await self._evict(node)
        self.queue.add_after(name, self.settings.node_monitor_period)  # health is judged by time passing too

    async def _monitor_health(self, name: str, node: dict) -> dict:
        lease = self.leases.store.get_object(NODE_LEASE_NAMESPACE, name)
        ready = condition(node, "Ready")
        heartbeat = ((lease or {}).get("spec", {}).get("renewTime"), (ready or {}).get("lastHeartbeatTime"))
        now = time.monotonic()
        probe = self.probes.get(name)
        if probe is None or probe.heartbeat != heartbeat:
            probe = self.probes[name] = Probe(heartbeat, now)
        grace = self.settings.node_monitor_grace_period if ready else self.settings.node_startup_grace_period
        if now - probe.seen <= grace:
            return node
        updated = mark_unknown(node, STOPPED if ready else NEVER, now_rfc3339())
        if updated is None:
            return node
        try:
            node = await self.client.update(self.nodes.info, updated, subresource="status")
        except APIError as error:
            if is_conflict(error):
                return node  # the kubelet wrote meanwhile: its news comes through the informer
            raise
        log.info("Node stopped posting status node=%s silent_for=%.0fs", name, now - probe.seen)
        self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        return node

    async def _update_taints(self, node: dict) -> dict:
        taints = desired_taints(node, now_rfc3339())
        if taints == list((node.get("spec") or {}).get("taints") or []):
            return node
        updated = deep_copy(node)
        updated.setdefault("spec", {})["taints"] = taints
        if not taints:
            del updated["spec"]["taints"]
        node = await self.client.update(self.nodes.info, updated)
        log.info("Updated node taints node=%s taints=%s", node["metadata"]["name"],
                 ",".join(f"{t['key']}:{t['effect']}" for t in taints) or "-")
        return node

    async def _evict(self, node: dict) -> None:
        taints = (node.get("spec") or {}).get("taints") or []
        if not any(t.get("effect") == NO_EXECUTE for t in taints):
            return
        now, name, soonest = time.time(), node["metadata"]["name"], None
        for pod in self.pods.store.by_index(NODE_INDEX, name):
            if is_terminating(pod) or phase(pod) in ("Succeeded", "Failed"):
                continue
            delay = eviction_delay(pod, taints, now)
            if delay is None:
                continue
            if delay > 0:
                soonest = delay if soonest is None else min(soonest, delay)
                continue
            await self._delete(pod)
        if soonest is not None:
            self.queue.add_after(name, soonest)

    async def _delete(self, pod: dict) -> None:
        metadata = pod["metadata"]
        try:
            await self.client.patch(self.pods.info, metadata["name"], {"status": {"conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": now_rfc3339()}]}},
                metadata["namespace"], patch_type="strategic", subresource="status")
        except APIError as error:
            if is_not_found(error):
                return
            raise
        if not await self.client.delete_exactly(self.pods.info, pod):
            return
        log.info("Evicted pod from a NoExecute-tainted node namespace=%s pod=%s node=%s", metadata["namespace"],
                 metadata["name"], pod["spec"].get("nodeName"))
        self.recorder.event(pod, "Normal", "TaintManagerEviction",
                            f"Marking for deletion Pod {metadata['namespace']}/{metadata['name']}")
