"""The scheduler's configuration file, in the KubeSchedulerConfiguration shape (kubescheduler.config.k8s.io/v1):

    apiVersion: kubescheduler.config.k8s.io/v1
    kind: KubeSchedulerConfiguration
    clientConnection: {kubeconfig: /etc/kpy/scheduler.kubeconfig}
    leaderElection: {leaderElect: true, leaseDuration: 15s, renewDeadline: 10s, retryPeriod: 2s}
    percentageOfNodesToScore: 0        # 0: adaptive (50% - nodes/125, at least 5%; every node below 100 nodes)
    podInitialBackoffSeconds: 1
    podMaxBackoffSeconds: 10
    profiles:
    - schedulerName: default-scheduler
      percentageOfNodesToScore: 0      # optional, overrides the global value for this profile
      plugins:                         # multiPoint or one extension point: enabled [{name, weight}], disabled
        score: {disabled: [{name: NodeResourcesBalancedAllocation}], enabled: [{name: NodeAffinity, weight: 5}]}
      pluginConfig:
      - name: NodeResourcesFit
        args: {scoringStrategy: {type: MostAllocated, resources: [{name: cpu, weight: 1}]}}

Every problem is reported at once with its field path (`profiles[0].plugins.score.enabled[1].name: ...`) in a
ConfigError. Plugins kpy does not implement may be disabled (kube-scheduler's defaults include some) but not enabled.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kpy_components.component.config import (ConfigError, LeaderElectionSettings, Reader, load_yaml,
                                             parse_client_connection, parse_leader_election)

from .plugins import DEFAULT_PLUGINS, EXTENSION_POINTS, PLUGIN_CLASSES, implements
from .plugins.node_resources import STRATEGIES

API_VERSION = "kubescheduler.config.k8s.io/v1"
KIND = "KubeSchedulerConfiguration"
DEFAULT_SCHEDULER_NAME = "default-scheduler"
LEASE_NAME = "kube-scheduler"
_TOP_FIELDS = ("apiVersion", "kind", "clientConnection", "leaderElection", "parallelism", "percentageOfNodesToScore",
               "podInitialBackoffSeconds", "podMaxBackoffSeconds", "profiles", "extenders", "delayCacheUntilActive",
               "enableProfiling", "enableContentionProfiling")
_PROFILE_FIELDS = ("schedulerName", "percentageOfNodesToScore", "plugins", "pluginConfig")
# Extension points kube-scheduler knows; kpy runs its plugins only at EXTENSION_POINTS (plus multiPoint).
_KNOWN_POINTS = ("multiPoint", "preEnqueue", "queueSort", "preFilter", "filter", "postFilter", "preScore", "score",
                 "reserve", "permit", "preBind", "bind", "postBind")


@dataclass(frozen=True)
class ProfileConfig:
    scheduler_name: str
    points: dict[str, tuple[tuple[str, int], ...]]  # extension point -> (plugin, weight) in order
    plugin_args: dict[str, dict]
    percentage_of_nodes_to_score: int | None = None


@dataclass(frozen=True)
class SchedulerConfig:
    kubeconfig: Path | None = None
    leader_election: LeaderElectionSettings = LeaderElectionSettings(resource_name=LEASE_NAME)
    percentage_of_nodes_to_score: int = 0
    pod_initial_backoff_seconds: float = 1.0
    pod_max_backoff_seconds: float = 10.0
    profiles: tuple[ProfileConfig, ...] = field(default_factory=lambda: (default_profile(),))


def default_profile(name: str = DEFAULT_SCHEDULER_NAME) -> ProfileConfig:
    return ProfileConfig(name, {point: tuple(plugins) for point, plugins in _default_points().items()}, {})


def _default_points() -> dict[str, list[tuple[str, int]]]:
    return {point: [(name, weight if point == "score" else 0) for name, weight in DEFAULT_PLUGINS
                    if implements(PLUGIN_CLASSES[name], point)] for point in EXTENSION_POINTS}


def load(path: str | Path | None, args=None) -> SchedulerConfig:
    """The configuration in `path` (defaults when None); ConfigError with every problem otherwise. (`args`, the
    parsed command line, is accepted for the runner: the scheduler has no flags beyond the common ones.)"""
    if path is None:
        return SchedulerConfig()
    return parse(load_yaml(path), str(path))


def parse(data: Any, source: str = "config") -> SchedulerConfig:
    problems: list[str] = []
    top = Reader(data, "", problems, _TOP_FIELDS)
    top.string("apiVersion", API_VERSION, (API_VERSION,))
    top.string("kind", KIND, (KIND,))
    kubeconfig = parse_client_connection(top)
    leader_election = parse_leader_election(top, LEASE_NAME)
    top.integer("parallelism", 16, minimum=1)
    percentage = top.integer("percentageOfNodesToScore", 0, minimum=0, maximum=100)
    initial = top.integer("podInitialBackoffSeconds", 1, minimum=1)
    maximum = top.integer("podMaxBackoffSeconds", 10, minimum=1)
    if maximum < initial:
        top.problem("podMaxBackoffSeconds", f"must be greater than or equal to podInitialBackoffSeconds ({initial})")
    if top.data.get("extenders"):
        top.problem("extenders", "scheduler extenders are not supported by kpy-scheduler")
    profiles = _profiles(top, problems)
    if problems:
        raise ConfigError(problems, source)
    return SchedulerConfig(kubeconfig, leader_election, percentage, float(initial), float(maximum), profiles)


def _profiles(top: Reader, problems: list[str]) -> tuple[ProfileConfig, ...]:
    items = top.data.get("profiles")
    if items is None:
        return (default_profile(),)
    if not isinstance(items, list) or not items:
        top.problem("profiles", "must be a non-empty list of profiles")
        return ()
    result, names = [], set()
    for index, item in enumerate(items):
        reader = Reader(item, f"profiles[{index}].", problems, _PROFILE_FIELDS)
        name = reader.string("schedulerName", DEFAULT_SCHEDULER_NAME) or DEFAULT_SCHEDULER_NAME
        if name in names:
            reader.problem("schedulerName", f"Duplicate value: {name!r}")
        names.add(name)
        percentage = (reader.integer("percentageOfNodesToScore", 0, minimum=0, maximum=100)
                      if reader.data.get("percentageOfNodesToScore") is not None else None)
        points = _plugins(reader.child("plugins", _KNOWN_POINTS))
        args = _plugin_config(reader, problems)
        result.append(ProfileConfig(name, points, args, percentage))
    return tuple(result)


def _plugins(reader: Reader) -> dict[str, tuple[tuple[str, int], ...]]:
    points = _default_points()
    multi = reader.child("multiPoint", ("enabled", "disabled"))
    for name in _disabled(multi):
        for point in EXTENSION_POINTS:
            points[point] = [] if name == "*" else [p for p in points[point] if p[0] != name]
    for name, weight in _enabled(multi, None):
        for point in EXTENSION_POINTS:
            if implements(PLUGIN_CLASSES[name], point):
                points[point] = [p for p in points[point] if p[0] != name] + [(name, weight)]
    for point in _KNOWN_POINTS[1:]:
        if point not in reader.data:
            continue
        section = reader.child(point, ("enabled", "disabled"))
        if point not in EXTENSION_POINTS:
            built_in = {name for name, at in _BUILT_IN.items() if at == point}
            if {name for _, name in _entries(section, "enabled")} - built_in:
                section.problem("enabled", f"kpy-scheduler has no plugins for the {point} extension point"
                                + (f" but its built-in {', '.join(sorted(built_in))}" if built_in else ""))
            continue
        for name in _disabled(section):
            points[point] = [] if name == "*" else [p for p in points[point] if p[0] != name]
        for name, weight in _enabled(section, point):
            points[point] = [p for p in points[point] if p[0] != name] + [(name, weight)]
    for name, needs in _NEEDS.items():
        for point, needed in needs.items():
            enabled = {plugin for plugin, _ in points[point]}
            if name in enabled and name not in {plugin for plugin, _ in points[needed]}:
                reader.problem(needed, f"{name} is enabled at {point} but not at {needed} (its {point} works on "
                               f"what its {needed} computes)")
    return {point: tuple(plugins) for point, plugins in points.items()}


# kube-scheduler plugins whose behaviour is built into kpy-scheduler (queue order, binding): enabling them is
# accepted and changes nothing.
_BUILT_IN = {"PrioritySort": "queueSort", "DefaultBinder": "bind"}

# Plugins whose extension point depends on another of theirs having run in the same cycle.
_NEEDS = {"PodTopologySpread": {"filter": "preFilter", "score": "preScore"},
          "InterPodAffinity": {"filter": "preFilter", "score": "preScore"}}


def _entries(section: Reader, key: str) -> list[tuple[Reader, str]]:
    items = section.data.get(key) or []
    if not isinstance(items, list):
        section.problem(key, "must be a list of {name: ...} entries")
        return []
    entries = []
    for index, item in enumerate(items):
        entry = Reader(item, f"{section.prefix}{key}[{index}].", section.problems, ("name", "weight"))
        name = entry.string("name")
        if name is None:
            if isinstance(item, dict):  # a non-mapping was reported already
                entry.problem("name", "is required")
        else:
            entries.append((entry, name))
    return entries


def _disabled(section: Reader) -> list[str]:
    return [name for _, name in _entries(section, "disabled")]


def _enabled(section: Reader, point: str | None) -> list[tuple[str, int]]:
    result = []
    for entry, name in _entries(section, "enabled"):
        if name in _BUILT_IN and point in (None, _BUILT_IN[name]):
            continue  # what kpy-scheduler always does
        plugin_class = PLUGIN_CLASSES.get(name)
        if plugin_class is None:
            entry.problem("name", f"unknown plugin {name!r} (kpy-scheduler has: {', '.join(PLUGIN_CLASSES)})")
            continue
        if point is not None and not implements(plugin_class, point):
            entry.problem("name", f"plugin {name!r} does not implement the {point} extension point")
            continue
        default = dict(DEFAULT_PLUGINS).get(name, 1) or 1
        weight = entry.integer("weight", default, minimum=1, maximum=100)
        result.append((name, weight))
    return result


def _plugin_config(profile: Reader, problems: list[str]) -> dict[str, dict]:
    items = profile.data.get("pluginConfig") or []
    if not isinstance(items, list):
        profile.problem("pluginConfig", "must be a list of {name, args} entries")
        return {}
    result: dict[str, dict] = {}
    for index, item in enumerate(items):
        entry = Reader(item, f"{profile.prefix}pluginConfig[{index}].", problems, ("name", "args"))
        name = entry.string("name")
        if name is None:
            entry.problem("name", "is required")
            continue
        if name in result:
            entry.problem("name", f"Duplicate value: {name!r}")
        validator = _ARGS.get(name)
        if validator is None:
            entry.problem("name", f"no configurable plugin {name!r} (kpy-scheduler configures: {', '.join(_ARGS)})")
            continue
        args = entry.child("args", validator[0])
        validator[1](args)
        result[name] = args.data
    return result


def _resources(reader: Reader) -> None:
    items = reader.data.get("resources")
    if items is None:
        return
    if not isinstance(items, list) or not items:
        reader.problem("resources", "must be a non-empty list of {name, weight}")
        return
    for index, item in enumerate(items):
        resource = Reader(item, f"{reader.prefix}resources[{index}].", reader.problems, ("name", "weight"))
        if resource.string("name") is None and isinstance(item, dict):
            resource.problem("name", "is required")
        resource.integer("weight", 1, minimum=1, maximum=100)


def _fit_args(args: Reader) -> None:
    strategy = args.child("scoringStrategy", ("type", "resources", "requestedToCapacityRatio"))
    kind = strategy.string("type", "LeastAllocated")
    if kind not in STRATEGIES:
        strategy.problem("type", f"must be one of {', '.join(STRATEGIES)} (RequestedToCapacityRatio is not "
                         f"supported by kpy-scheduler), not {kind!r}")
    _resources(strategy)
    args.strings("ignoredResources", ())
    args.strings("ignoredResourceGroups", ())


def _spread_args(args: Reader) -> None:
    args.string("defaultingType", "System", ("System", "List"))
    if args.data.get("defaultConstraints"):
        args.problem("defaultConstraints", "default topology spread constraints are not supported by kpy-scheduler")


def _affinity_args(args: Reader) -> None:
    """InterPodAffinityArgs: hardPodAffinityWeight 0..100 (ValidateInterPodAffinityArgs)."""
    args.integer("hardPodAffinityWeight", 1, minimum=0, maximum=100)
    args.boolean("ignorePreferredTermsOfExistingPods", False)


def _preemption_args(args: Reader) -> None:
    """DefaultPreemptionArgs: percentage 0..100, absolute >= 0, not both 0 (ValidateDefaultPreemptionArgs)."""
    percentage = args.integer("minCandidateNodesPercentage", 10, minimum=0, maximum=100)
    absolute = args.integer("minCandidateNodesAbsolute", 100, minimum=0)
    if percentage == 0 and absolute == 0:
        args.problem("minCandidateNodesAbsolute", "cannot be zero at the same time as minCandidateNodesPercentage")


_ARGS = {
    "NodeResourcesFit": (("scoringStrategy", "ignoredResources", "ignoredResourceGroups"), _fit_args),
    "NodeResourcesBalancedAllocation": (("resources",), _resources),
    "PodTopologySpread": (("defaultConstraints", "defaultingType"), _spread_args),
    "InterPodAffinity": (("hardPodAffinityWeight", "ignorePreferredTermsOfExistingPods"), _affinity_args),
    "DefaultPreemption": (("minCandidateNodesPercentage", "minCandidateNodesAbsolute"), _preemption_args),
}
