"""Preemption's decisions (kube-scheduler's pkg/scheduler/framework/preemption and DefaultPreemption's victim
selection), as pure functions over the scheduler's NodeInfos:

- `select_victims`: on a copy of the node, remove every pod of lower priority; if the preemptor still does not
  fit, the node is no candidate. Otherwise give back ("reprieve") as many of them as possible, most important
  first (higher priority, then earlier start), those whose eviction would violate a PodDisruptionBudget before
  the others; what cannot be given back are the victims.
- `dry_run`: `select_victims` over the candidate nodes from a random offset, stopping once enough candidates are
  found (max(10% of the nodes, 100) by default) and at least one of them violates no PDB.
- `pick_one_node` (pickOneNodeForPreemption): fewest PDB violations, then the lowest highest-victim priority,
  then the smallest sum of priorities, then the fewest victims, then the latest start of the highest-priority
  victims; the first candidate among equals.

A PreFilter's cycle state is not adjusted for removed or re-added pods (kube-scheduler's PreFilterExtensions
AddPod/RemovePod): InterPodAffinity adjusts its counts itself from the node clone it is given (NodeInfo.origin);
PodTopologySpread judges skew with the victims still counted.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kpy_components.api.errors import APIError
from kpy_components.api.meta import parse_rfc3339
from kpy_components.api.selectors import label_selector_from_dict

from .cache import NodeInfo
from .framework import ERROR, UNSCHEDULABLE_AND_UNRESOLVABLE, CycleState, Status
from .nominator import Check
from .podinfo import PodInfo

NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
MIN_CANDIDATE_NODES_PERCENTAGE, MIN_CANDIDATE_NODES_ABSOLUTE = 10, 100
_INT32_SPAN = 2 ** 31  # added per victim to the sum of priorities, as upstream does (keeps the sum non-negative)


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo]
    pdb_violations: int = 0
    order: int = field(default=0, compare=False)  # position in the dry run, for ties


def start_time(info: PodInfo) -> datetime:
    """status.startTime; a pod that has not started counts as starting now (upstream's GetPodStartTime)."""
    try:
        return parse_rfc3339((info.pod.get("status") or {}).get("startTime") or "")
    except ValueError:
        return datetime.now(timezone.utc)


def importance(info: PodInfo) -> tuple:
    """Sort key putting the more important pod first: higher priority, then the earlier start."""
    return (-info.priority, start_time(info))


def split_by_pdb(pods: Sequence[PodInfo], pdbs: Sequence[dict]) -> tuple[list[PodInfo], list[PodInfo]]:
    """(pods whose eviction would violate a PDB, the others), in the given order (filterPodsWithPDBViolation).
    Each PDB's disruptionsAllowed is spent by the pods it matches, in order; pods it lists as already disrupted
    do not spend it. A PDB with an empty or unparsable selector matches nothing."""
    budgets = []
    for pdb in pdbs:
        try:
            selector = label_selector_from_dict((pdb.get("spec") or {}).get("selector"))
        except APIError:
            continue
        if selector.empty() or selector.nothing:
            continue
        status = pdb.get("status") or {}
        budgets.append([(pdb.get("metadata") or {}).get("namespace", ""), selector,
                        int(status.get("disruptionsAllowed") or 0), status.get("disruptedPods") or {}])
    violating, other = [], []
    for pod in pods:
        violated = False
        if pod.labels:
            for budget in budgets:
                namespace, selector, _, disrupted = budget
                if namespace != pod.namespace or not selector.matches(pod.labels) or pod.name in disrupted:
                    continue
                budget[2] -= 1
                violated = violated or budget[2] < 0
        (violating if violated else other).append(pod)
    return violating, other


def select_victims(check: Check, state: CycleState, pod: PodInfo, node: NodeInfo,
                   pdbs: Sequence[dict]) -> Candidate | Status:
    """The fewest lower-priority pods to remove from `node` so that `pod` passes `check`, or why there are none."""
    potential = sorted((p for p in node.pods.values() if p.priority < pod.priority), key=importance)
    if not potential:
        return Status(UNSCHEDULABLE_AND_UNRESOLVABLE, (NO_VICTIMS,))
    twin = node.clone()
    for other in potential:
        twin.remove_pod(other.key)
    status = check(state, pod, twin)
    if status is not None:
        return status
    victims, violations = [], 0
    violating, other = split_by_pdb(potential, pdbs)
    for group, counts in ((violating, True), (other, False)):
        for candidate in group:
            twin.add_pod(candidate)
            if check(state, pod, twin) is not None:
                twin.remove_pod(candidate.key)
                victims.append(candidate)
                violations += counts
    if not victims:  # the pod fits without preemption: a filter changed its mind meanwhile
        return Status(ERROR, (f"expected at least one victim pod on node {node.name}",))
    victims.sort(key=importance)
    return Candidate(node.name, victims, violations)


def candidates_to_find(nodes: int, percentage: int = MIN_CANDIDATE_NODES_PERCENTAGE,
                       absolute: int = MIN_CANDIDATE_NODES_ABSOLUTE) -> int:
    return min(max(nodes * percentage // 100, absolute), nodes)


def dry_run(check: Check, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], pdbs: Sequence[dict],
            offset: int, wanted: int) -> tuple[list[Candidate], dict[str, Status]]:
    """Candidates (those violating no PDB first) and, per node that is none, why."""
    clean, violating, statuses = [], [], {}
    count = len(nodes)
    for step in range(count):
        node = nodes[(offset + step) % count]
        result = select_victims(check, state, pod, node, pdbs)
        if isinstance(result, Status):
            statuses[node.name] = result
            continue
        result.order = step
        (violating if result.pdb_violations else clean).append(result)
        if clean and len(clean) + len(violating) >= wanted:
            break
    return clean + violating, statuses


def _earliest_start_of_most_important(candidate: Candidate) -> datetime:
    top = candidate.victims[0].priority
    return min(start_time(v) for v in candidate.victims if v.priority == top)


def pick_one_node(candidates: Sequence[Candidate]) -> Candidate:
    """The candidate kube-scheduler's pickOneNodeForPreemption picks (see the module docstring)."""
    def key(candidate: Candidate) -> tuple:
        victims = candidate.victims
        return (candidate.pdb_violations, victims[0].priority, sum(v.priority + _INT32_SPAN for v in victims),
                len(victims), -_earliest_start_of_most_important(candidate).timestamp(), candidate.order)
    return min(candidates, key=key)
