"""The scheduling framework: one small interface per extension point, and a profile that runs enabled plugins.

Expected outcomes are values (`Status`), not exceptions. To keep the per-node hot path cheap:
- `Filter.filter` returns None for success and a Status only for a rejection;
- a PreFilter/PreScore returning `SKIP` removes that plugin's Filter/Score from this pod's cycle (as
  kube-scheduler's Skip status does), so plugins with nothing to check for a pod cost nothing per node;
- `CycleState` is a plain dict per cycle, keyed by plugin name.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from .cache import NodeInfo
from .podinfo import PodInfo

MAX_NODE_SCORE = 100

# Status codes (kube-scheduler's framework.Code).
SUCCESS, ERROR, UNSCHEDULABLE, UNSCHEDULABLE_AND_UNRESOLVABLE, SKIP = (
    "Success", "Error", "Unschedulable", "UnschedulableAndUnresolvable", "Skip")

# Cluster events that can make an unschedulable pod schedulable (queue.py moves pods on them).
NODE_ADD, NODE_UPDATE, NODE_DELETE = "NodeAdd", "NodeUpdate", "NodeDelete"
ASSIGNED_POD_ADD, ASSIGNED_POD_UPDATE, ASSIGNED_POD_DELETE = "AssignedPodAdd", "AssignedPodUpdate", "AssignedPodDelete"

CycleState = dict
# Set in the cycle state only when no node fitted: the filter checks the cycle ran (its active Filter plugins), for
# PostFilter plugins to re-run them (preemption's dry runs).
FILTERS_KEY = "framework/filters"


@dataclass(frozen=True)
class Status:
    code: str = SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""
    # PostFilter only (kube-scheduler's PostFilterResult): the node to nominate the pod to, "" to clear its
    # nomination, None to leave it as it is.
    nominated_node: str | None = None

    @property
    def success(self) -> bool:
        return self.code == SUCCESS

    @property
    def rejected(self) -> bool:
        return self.code in (UNSCHEDULABLE, UNSCHEDULABLE_AND_UNRESOLVABLE)

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)


OK = Status()
SKIPPED = Status(SKIP)


def unschedulable(plugin: str, *reasons: str, resolvable: bool = True) -> Status:
    """A rejection; `resolvable=False` means preempting pods on the node would not help."""
    return Status(UNSCHEDULABLE if resolvable else UNSCHEDULABLE_AND_UNRESOLVABLE, reasons, plugin)


class Plugin(Protocol):
    name: ClassVar[str]
    events: ClassVar[frozenset[str]]  # cluster events after which a pod this plugin rejected may fit


@runtime_checkable
class PreFilterPlugin(Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status: ...


@runtime_checkable
class FilterPlugin(Protocol):
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None: ...


@runtime_checkable
class PostFilterPlugin(Protocol):
    def post_filter(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                    statuses: dict[str, Status]) -> Status:
        """Runs when no node fits. Success (with `nominated_node`) when it made room for the pod; otherwise a
        Status whose message explains what was tried (kube-scheduler: preemption). `state[FILTERS_KEY]` holds the
        cycle's filter checks."""


@runtime_checkable
class PreScorePlugin(Protocol):
    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status: ...


@runtime_checkable
class ScorePlugin(Protocol):
    """A plugin may also offer `score_all(state, pod, nodes) -> list[int]`, the same scores for many nodes at once,
    which the framework prefers: one call instead of one per node matters in Python's hot path."""

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int: ...

    def normalize(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], scores: list[int]) -> None:
        """Rewrite `scores` in place to 0..MAX_NODE_SCORE (plugins whose raw scores already are may do nothing)."""


@runtime_checkable
class ReservePlugin(Protocol):
    def reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        """Must be idempotent, and may be called even if `reserve` was not."""


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """kube-scheduler's helper.DefaultNormalizeScore: scale so the highest score is 100 (reverse: lowest is 100)."""
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    for index, score in enumerate(scores):
        value = MAX_NODE_SCORE * score // top
        scores[index] = MAX_NODE_SCORE - value if reverse else value


@dataclass
class Profile:
    """One scheduler profile: its plugins per extension point, in order, with score weights."""
    scheduler_name: str
    pre_filters: list
    filters: list
    post_filters: list
    pre_scores: list
    scores: list[tuple[object, int]]  # (plugin, weight)
    reserves: list

    def run_pre_filters(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> tuple[Status, set]:
        """(first rejection or OK, names of plugins that asked to be skipped)."""
        skipped = set()
        for plugin in self.pre_filters:
            status = plugin.pre_filter(state, pod, nodes)
            if status.code == SKIP:
                skipped.add(plugin.name)
            elif not status.success:
                return Status(status.code, status.reasons, plugin.name), skipped
        return OK, skipped

    def active_filters(self, skipped: set) -> list:
        return [plugin.filter for plugin in self.filters if plugin.name not in skipped]

    def run_post_filters(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo],
                         statuses: dict[str, Status]) -> Status:
        """The first successful PostFilter's status (its message empty, as kube-scheduler's), else the plugins'
        messages joined, with the last nomination change asked for."""
        messages, nominated = [], None
        for plugin in self.post_filters:
            status = plugin.post_filter(state, pod, nodes, statuses)
            if status.success:
                return status
            if status.message:
                messages.append(status.message)
            if status.nominated_node is not None:
                nominated = status.nominated_node
        return Status(UNSCHEDULABLE, (" ".join(messages),) if messages else (), nominated_node=nominated)

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """Weighted sum of every active score plugin's normalised scores, one total per node."""
        skipped = {plugin.name for plugin in self.pre_scores
                   if plugin.pre_score(state, pod, nodes).code == SKIP}
        totals = [0] * len(nodes)
        for plugin, weight in self.scores:
            if plugin.name in skipped:
                continue
            batch = getattr(plugin, "score_all", None)
            if batch is not None:
                scores = batch(state, pod, nodes)
            else:
                score = plugin.score
                scores = [score(state, pod, node) for node in nodes]
            plugin.normalize(state, pod, nodes, scores)
            totals = [total + value * weight for total, value in zip(totals, scores)]
        return totals

    def run_reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status:
        for done, plugin in enumerate(self.reserves):
            status = plugin.reserve(state, pod, node)
            if not status.success:
                for reserved in reversed(self.reserves[:done + 1]):
                    reserved.unreserve(state, pod, node)
                return status
        return OK

    def plugins(self) -> list:
        seen, result = set(), []
        for plugin in [*self.pre_filters, *self.filters, *self.post_filters, *self.pre_scores,
                       *(p for p, _ in self.scores), *self.reserves]:
            if id(plugin) not in seen:
                seen.add(id(plugin))
                result.append(plugin)
        return result
