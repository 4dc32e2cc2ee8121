"""The disruption controller (pkg/controller/disruption): PodDisruptionBudget status, which the API server's
eviction subresource reads (disruptionsAllowed, desiredHealthy, currentHealthy, observedGeneration) and writes
(disruptedPods, disruptionsAllowed - 1) when it evicts.

- expectedPods: with an integer minAvailable, the number of selected pods; with a percentage or maxUnavailable,
  the scale of the pods' controllers (ReplicaSet — or the Deployment owning it —, StatefulSet,
  ReplicationController), summed over the distinct controllers. Pods without such a controller make that
  impossible: SyncFailed, nothing allowed.
- desiredHealthy: minAvailable (a percentage of expectedPods rounded up), or expectedPods - maxUnavailable
  (percentage rounded up), never below 0.
- currentHealthy: selected pods that are Ready, not being deleted and not just evicted (disruptedPods entries
  younger than DELETION_TIMEOUT whose pod is not gone or terminating yet).
- disruptionsAllowed = max(0, currentHealthy - desiredHealthy); condition DisruptionAllowed True/SufficientPods
  or False/InsufficientPods.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from kpy_components.api.errors import APIError
from kpy_components.api.meta import deep_copy, now_rfc3339, parse_rfc3339
from kpy_components.client import is_conflict, is_not_found, key_of, split_key

from ..controller import Controller, controller_ref
from .pods import IntOrPercentError, is_ready, is_terminating, scaled_value, selector_of, set_condition

log = logging.getLogger(__name__)
DELETION_TIMEOUT = 120.0  # seconds an eviction recorded in disruptedPods may take to show as a deletion
SCALED_KINDS = {"ReplicaSet": ("replicasets", "apps"), "StatefulSet": ("statefulsets", "apps"),
                "ReplicationController": ("replicationcontrollers", ""), "Deployment": ("deployments", "apps")}


class SyncFailed(Exception):
    """The budget's numbers cannot be computed (message as the SyncFailed condition says it)."""


@dataclass(frozen=True)
class Budget:
    expected: int
    desired: int
    healthy: int

    @property
    def allowed(self) -> int:
        return max(0, self.healthy - self.desired)


def desired_healthy(spec: dict, pod_count: int, expected_scale) -> tuple[int, int]:
    """(expectedPods, desiredHealthy); `expected_scale()` gives the controllers' scale when it is needed."""
    try:
        if spec.get("maxUnavailable") is not None:
            expected = expected_scale()
            return expected, max(0, expected - scaled_value(spec["maxUnavailable"], expected, round_up=True))
        minimum = spec.get("minAvailable")
        if minimum is None:
            return pod_count, 0
        if isinstance(minimum, int):
            return pod_count, minimum
        expected = expected_scale()
        return expected, scaled_value(minimum, expected, round_up=True)
    except IntOrPercentError as error:
        raise SyncFailed(str(error)) from None


def disrupted_still_pending(disrupted: dict, pods_by_name: dict[str, dict], now: float) -> dict:
    """disruptedPods entries to keep: evictions younger than DELETION_TIMEOUT whose pod still looks alive."""
    kept = {}
    for name, when in (disrupted or {}).items():
        pod = pods_by_name.get(name)
        if pod is None or is_terminating(pod):
            continue
        try:
            stamp = parse_rfc3339(when).timestamp()
        except ValueError:
            continue
        if stamp + DELETION_TIMEOUT > now:
            kept[name] = when
    return kept


def count_healthy(pods: list[dict], disrupted: dict) -> int:
    return sum(1 for pod in pods if is_ready(pod) and not is_terminating(pod)
               and pod["metadata"]["name"] not in disrupted)


class DisruptionController(Controller):
    name = "disruption"

    def setup(self) -> None:
        self.budgets = self.informer("poddisruptionbudgets", "policy")
        self.pods = self.informer("pods")
        self.scaled = {kind: self.informer(plural, group) for kind, (plural, group) in SCALED_KINDS.items()}
        self.budgets.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new))
        self.pods.add_handler(on_add=self._pod_changed, on_update=lambda old, new: self._pod_changed(old, new),
                              on_delete=self._pod_changed)
        for informer in self.scaled.values():  # a scale change moves expectedPods
            informer.add_handler(on_update=lambda _old, new: self._budgets_in(new["metadata"]["namespace"]))

    def _pod_changed(self, *versions: dict) -> None:
        namespace = versions[-1]["metadata"]["namespace"]
        for budget in self.budgets.store.list(namespace):
            chosen = selector_of(budget)
            if any(chosen.matches(v["metadata"].get("labels") or {}) for v in versions):
                self.enqueue(budget)

    def _budgets_in(self, namespace: str) -> None:
        for budget in self.budgets.store.list(namespace):
            self.enqueue(budget)

    async def reconcile(self, key: str) -> None:
        budget = self.budgets.store.get(key)
        if budget is None:
            return
        namespace, _ = split_key(key)
        chosen = selector_of(budget)
        pods = [p for p in self.pods.store.list(namespace) if chosen.matches(p["metadata"].get("labels") or {})]
        status = budget.get("status") or {}
        now = time.time()
        disrupted = disrupted_still_pending(status.get("disruptedPods"), {p["metadata"]["name"]: p for p in pods},
                                            now)
        try:
            expected, desired = desired_healthy(budget.get("spec") or {}, len(pods), lambda: self.expected_scale(pods))
            result = Budget(expected, desired, count_healthy(pods, disrupted))
            failure = None
        except SyncFailed as error:
            result, failure = Budget(0, 0, 0), str(error)
        await self._write(budget, result, disrupted, failure)
        if disrupted:  # look again when the oldest recorded eviction times out
            oldest = min(parse_rfc3339(w).timestamp() for w in disrupted.values())
            self.queue.add_after(key, max(oldest + DELETION_TIMEOUT - now, 1.0))

    def expected_scale(self, pods: list[dict]) -> int:
        """The summed spec.replicas of the pods' distinct controllers (getExpectedScale)."""
        scales: dict[str, int] = {}
        for pod in pods:
            reference = controller_ref(pod)
            controller = self._controller(reference, pod["metadata"]["namespace"]) if reference else None
            if controller is None:
                raise SyncFailed(f"found no controllers for pod {pod['metadata']['name']!r}")
            if controller["kind"] == "ReplicaSet":  # a Deployment's ReplicaSets share the Deployment's scale
                owner = controller_ref(controller)
                deployment = self._controller(owner, pod["metadata"]["namespace"]) if owner else None
                controller = deployment if deployment is not None and deployment["kind"] == "Deployment" \
                    else controller
            scales[controller["metadata"]["uid"]] = (controller.get("spec") or {}).get("replicas", 1)
        return sum(scales.values())

    def _controller(self, reference: dict, namespace: str) -> dict | None:
        informer = self.scaled.get(reference.get("kind", ""))
        found = informer.store.get_object(namespace, reference.get("name", "")) if informer else None
        if found is None or found["metadata"].get("uid") != reference.get("uid"):
            return None
        return {**found, "kind": reference["kind"]}

    async def _write(self, budget: dict, result: Budget, disrupted: dict, failure: str | None) -> None:
        updated = deep_copy(budget)
        old = updated.get("status") or {}
        allowed = 0 if failure else result.allowed
        status = {"observedGeneration": budget["metadata"].get("generation", 1), "disruptionsAllowed": allowed,
                  "currentHealthy": result.healthy, "desiredHealthy": result.desired,
                  "expectedPods": result.expected, **({"disruptedPods": disrupted} if disrupted else {})}
        if failure:
            wanted = ("False", "SyncFailed", failure)
        else:
            wanted = ("True", "SufficientPods", "") if allowed > 0 else ("False", "InsufficientPods", "")
        entry = {"type": "DisruptionAllowed", "status": wanted[0], "reason": wanted[1],
                 "lastTransitionTime": now_rfc3339(), "observedGeneration": status["observedGeneration"]}
        if wanted[2]:
            entry["message"] = wanted[2]
        status["conditions"] = set_condition(old.get("conditions") or [], entry, refresh=True)
        if status == old:
            return
        updated["status"] = status
        try:
            await self.client.update(self.budgets.info, updated, subresource="status")
        except APIError as error:
            if is_not_found(error):
                return
            if is_conflict(error):  # an eviction changed it meanwhile: recompute from its new version
                self.queue.add_rate_limited(key_of(budget))
                return
            raise
        log.info("Updated disruption budget namespace=%s name=%s allowed=%d healthy=%d desired=%d expected=%d",
                 budget["metadata"]["namespace"], budget["metadata"]["name"], allowed, result.healthy,
                 result.desired, result.expected)

