"""DefaultPreemption (PostFilter): when a pod fits nowhere, make room for it by evicting lower-priority pods.

As kube-scheduler's Evaluator.Preempt:
1. The pod must be eligible: not preemptionPolicy Never, and no lower-priority pod on the node it is already
   nominated to may still be terminating because of an earlier preemption (that room is on its way).
2. Nodes the filters rejected as unresolvable (taints, affinity, ...) are left out; on the others a dry run
   (preemption.py) finds candidates and their victims, and `pick_one_node` picks one.
3. The handle (the scheduler's preemption executor) then adds the DisruptionTarget condition to each victim,
   deletes it and records `Preempted` events, in the background; the plugin answers Success with the node to
   nominate the pod to, and the scheduler requeues the pod until the victims are gone.

When no candidate is found the message has kube-scheduler's shape: "preemption: 0/N nodes are available:
<histogram>." where nodes left out count as "Preemption is not helpful for scheduling", nodes without
lower-priority pods as "No preemption victims found for incoming pod", and nodes where even removing every
lower-priority pod does not help by the reason the filters gave.
"""
from __future__ import annotations

import functools
import random
from typing import Protocol

from kpy_components.api.scheduling import PREEMPT_NEVER

from ..framework import FILTERS_KEY, SUCCESS, UNSCHEDULABLE, UNSCHEDULABLE_AND_UNRESOLVABLE, Status
from ..messages import histogram
from ..nominator import Nominator, run_filters, with_nominated
from ..preemption import (MIN_CANDIDATE_NODES_ABSOLUTE, MIN_CANDIDATE_NODES_PERCENTAGE, NO_VICTIMS, NOT_HELPFUL,
                          Candidate, candidates_to_find, dry_run, pick_one_node)

__all__ = ["DefaultPreemption", "NO_VICTIMS", "NOT_HELPFUL", "PreemptionHandle"]
DISRUPTION_TARGET, PREEMPTION_BY_SCHEDULER = "DisruptionTarget", "PreemptionByScheduler"
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."


class PreemptionHandle(Protocol):
    """What the plugin needs from the scheduler (kube-scheduler's framework.Handle)."""
    nominator: Nominator

    def pdbs(self) -> list[dict]: ...

    def preempting(self, key: str) -> bool:
        """Whether the pod `key` is a victim whose preemption is still being written."""

    def preempt(self, pod, candidate: Candidate) -> None:
        """Evict the candidate's victims (in the background)."""


def terminating_by_preemption(info) -> bool:
    """Being deleted, with the DisruptionTarget condition a preemption adds."""
    if not info.terminating:
        return False
    return any(c.get("type") == DISRUPTION_TARGET and c.get("reason") == PREEMPTION_BY_SCHEDULER
               for c in (info.pod.get("status") or {}).get("conditions") or ())


class DefaultPreemption:
    name = "DefaultPreemption"
    events = frozenset()

    def __init__(self, min_candidate_nodes_percentage: int = MIN_CANDIDATE_NODES_PERCENTAGE,
                 min_candidate_nodes_absolute: int = MIN_CANDIDATE_NODES_ABSOLUTE, rng: random.Random | None = None):
        self.percentage, self.absolute = min_candidate_nodes_percentage, min_candidate_nodes_absolute
        self.rng = rng or random.Random()
        self.handle: PreemptionHandle | None = None  # without one, the plugin decides but evicts nothing

    def bind(self, handle: PreemptionHandle) -> None:
        self.handle = handle

    def post_filter(self, state, pod, nodes, statuses):
        if pod.spec.get("preemptionPolicy") == PREEMPT_NEVER:
            return self._unschedulable(NEVER)
        handle = self.handle
        nominated = (pod.pod.get("status") or {}).get("nominatedNodeName") or (
            handle.nominator.node_of(pod.key) if handle else "")
        if nominated and self._room_is_coming(pod, nominated, nodes, statuses):
            return self._unschedulable(TERMINATING)
        potential = [node for node in nodes
                     if node.name not in statuses or statuses[node.name].code != UNSCHEDULABLE_AND_UNRESOLVABLE]
        candidates, why = [], {}
        if potential:
            filters = state.get(FILTERS_KEY, ())
            ahead = handle.nominator.for_pod(pod) if handle else {}
            check = with_nominated(filters, ahead) if ahead else functools.partial(run_filters, filters)
            wanted = candidates_to_find(len(potential), self.percentage, self.absolute)
            candidates, why = dry_run(check, state, pod, potential, handle.pdbs() if handle else [],
                                      self.rng.randrange(len(potential)), wanted)
        if not candidates:
            outcomes = [why.get(node.name) or Status(UNSCHEDULABLE_AND_UNRESOLVABLE, (NOT_HELPFUL,))
                        for node in nodes]
            return self._unschedulable(histogram(outcomes, len(nodes)), clear=bool(nominated))
        best = pick_one_node(candidates)
        if handle is not None:
            handle.preempt(pod, best)
        return Status(SUCCESS, plugin=self.name, nominated_node=best.node)

    def _room_is_coming(self, pod, nominated: str, nodes, statuses) -> bool:
        """PodEligibleToPreemptOthers: a lower-priority pod on the nominated node is still going away because of
        a preemption (unless the filters now reject that node for good)."""
        status = statuses.get(nominated)
        if status is not None and status.code == UNSCHEDULABLE_AND_UNRESOLVABLE:
            return False
        node = next((n for n in nodes if n.name == nominated), None)
        if node is None:
            return False
        preempting = self.handle.preempting if self.handle else (lambda key: False)
        return any(other.priority < pod.priority and (terminating_by_preemption(other) or preempting(other.key))
                   for other in node.pods.values())

    def _unschedulable(self, message: str, clear: bool = False) -> Status:
        return Status(UNSCHEDULABLE, (f"preemption: {message}",), self.name, nominated_node="" if clear else None)
