"""The in-tree plugins kpy implements, by name (kube-scheduler's registry), and the default profile's plugin sets.

A factory takes the plugin's `pluginConfig` args (a dict, already validated by config.py) and returns the plugin.
"""
from __future__ import annotations

from ..framework import Profile
from .default_preemption import DefaultPreemption
from .interpodaffinity import DEFAULT_HARD_POD_AFFINITY_WEIGHT, InterPodAffinity
from .node_affinity import NodeAffinity
from .node_name import NodeName
from .node_ports import NodePorts
from .node_resources import DEFAULT_RESOURCES, NodeResourcesBalancedAllocation, NodeResourcesFit
from .node_unschedulable import NodeUnschedulable
from .pod_topology_spread import PodTopologySpread
from .taint_toleration import TaintToleration
from .volume_binding import VolumeBinding


def _resources(args: dict) -> tuple[tuple[str, int], ...]:
    resources = args.get("resources")
    return tuple((r["name"], int(r.get("weight", 1))) for r in resources) if resources else DEFAULT_RESOURCES


def _fit(args: dict) -> NodeResourcesFit:
    strategy = args.get("scoringStrategy") or {}
    return NodeResourcesFit(strategy.get("type", "LeastAllocated"), _resources(strategy),
                            tuple(args.get("ignoredResources") or ()))


REGISTRY = {
    "NodeUnschedulable": lambda args: NodeUnschedulable(),
    "NodeName": lambda args: NodeName(),
    "TaintToleration": lambda args: TaintToleration(),
    "NodeAffinity": lambda args: NodeAffinity(),
    "NodePorts": lambda args: NodePorts(),
    "NodeResourcesFit": _fit,
    "VolumeBinding": lambda args: VolumeBinding(),
    "PodTopologySpread": lambda args: PodTopologySpread(),
    "InterPodAffinity": lambda args: InterPodAffinity(
        args.get("hardPodAffinityWeight", DEFAULT_HARD_POD_AFFINITY_WEIGHT),
        bool(args.get("ignorePreferredTermsOfExistingPods", False))),
    "NodeResourcesBalancedAllocation": lambda args: NodeResourcesBalancedAllocation(_resources(args)),
    "DefaultPreemption": lambda args: DefaultPreemption(args.get("minCandidateNodesPercentage", 10),
                                                         args.get("minCandidateNodesAbsolute", 100)),
}

# kube-scheduler v1 defaults (pkg/scheduler/apis/config/v1/default_plugins.go), restricted to kpy's plugins: the
# order is the order plugins run in; the number is the score weight.
DEFAULT_PLUGINS: tuple[tuple[str, int], ...] = (
    ("NodeUnschedulable", 0), ("NodeName", 0), ("TaintToleration", 3), ("NodeAffinity", 2), ("NodePorts", 0),
    ("NodeResourcesFit", 1), ("VolumeBinding", 0), ("PodTopologySpread", 2), ("InterPodAffinity", 2),
    ("NodeResourcesBalancedAllocation", 1), ("DefaultPreemption", 0),
)

# Extension points each plugin implements (config.py refuses enabling a plugin at a point it lacks).
EXTENSION_POINTS = ("preFilter", "filter", "postFilter", "preScore", "score", "reserve")
_METHODS = {"preFilter": "pre_filter", "filter": "filter", "postFilter": "post_filter", "preScore": "pre_score",
            "score": "score", "reserve": "reserve"}


def implements(plugin_class, point: str) -> bool:
    return hasattr(plugin_class, _METHODS[point])


PLUGIN_CLASSES = {cls.name: cls for cls in (
    NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, VolumeBinding,
    PodTopologySpread, InterPodAffinity, NodeResourcesBalancedAllocation, DefaultPreemption)}


def build_profile(scheduler_name: str, points: dict[str, tuple[tuple[str, int], ...]],
                  plugin_args: dict[str, dict]) -> Profile:
    """A Profile from validated config: one plugin instance per name, shared by its extension points."""
    instances = {}

    def plugin(name: str):
        if name not in instances:
            instances[name] = REGISTRY[name](plugin_args.get(name) or {})
        return instances[name]

    def at(point: str) -> list:
        return [plugin(name) for name, _ in points.get(point, ())]

    return Profile(scheduler_name, pre_filters=at("preFilter"), filters=at("filter"), post_filters=at("postFilter"),
                   pre_scores=at("preScore"), scores=[(plugin(name), weight) for name, weight in points.get("score", ())],
                   reserves=at("reserve"))
