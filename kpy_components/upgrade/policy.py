"""The version-skew policy of rolling upgrades (Kubernetes 1.31's limits, the design documents' order), pure: the
cluster's observed state in, refusals and the ordered plan out. No I/O here; library/kpy_upgrade_plan.py gathers.

Skew is counted in minors (patch releases of one minor are interchangeable). Every component may only move to the
target from the target's minor or the minor before it (no skipped minor, no minor downgrade; a patch downgrade only
when allowed), so a cluster that passes `refusals` stays within the limits at every step of `plan`'s order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER = "kpy-etcd", "kpy-apiserver", "kpy-controller-manager", "kpy-scheduler"
KUBELET, PROXY, DNS = "kpy-kubelet", "kpy-proxy", "kpy-dns"
UNITS = (ETCD, APISERVER, CONTROLLER_MANAGER, SCHEDULER, KUBELET, PROXY, DNS)
NODE_UNITS = (KUBELET, PROXY, DNS)
CONTROL_PLANE_GROUP = "control_plane"  # inventory group whose hosts' nodes go first
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+][0-9A-Za-z.+-]*)?")


class VersionError(ValueError):
    """Not a MAJOR.MINOR.PATCH version; the message names the text."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: object) -> Version:
        """"1.31.0" or a gitVersion like "v1.31.0" (a pre-release or build suffix is ignored)."""
        match = _VERSION.fullmatch(text.strip()) if isinstance(text, str) else None
        if not match:
            raise VersionError(f"{text!r} is not a version (expected MAJOR.MINOR.PATCH, like 1.31.0)")
        return cls(*(int(part) for part in match.groups()))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def minor_line(self) -> str:
        return f"{self.major}.{self.minor}"

    def minors_after(self, other: Version) -> int:
        """How many minors this version is ahead of `other` (negative: behind). Majors count as 1000 minors, so
        a major change is never within a skew limit."""
        return (self.major - other.major) * 1000 + self.minor - other.minor


@dataclass(frozen=True)
class Component:
    """A systemd unit on a host. `installed`: the version its /opt/kpy/components/<unit> link points at (None: no
    readable link). `running`: what the running process reports (None: not running, or `version_error` says why
    it could not be read). `problem`: why it is unhealthy (etcd member /health, API server /readyz); None: healthy
    or not checked."""
    installed: Version | None
    running: Version | None = None
    active: bool = True
    problem: str | None = None
    version_error: str | None = None

    @property
    def versions(self) -> list[Version]:
        return sorted({v for v in (self.installed, self.running) if v is not None})


@dataclass(frozen=True)
class Node:
    """The host's Node object as the API reports it."""
    name: str
    ready: bool
    kubelet_version: Version | None = None
    proxy_version: Version | None = None


@dataclass(frozen=True)
class Host:
    name: str
    components: dict[str, Component]
    groups: frozenset[str] = frozenset()
    node: Node | None = None


@dataclass(frozen=True)
class StoredObject:
    """An object whose API version (group/version) the target does not serve."""
    api_version: str
    resource: str  # plural
    name: str
    namespace: str = ""

    @property
    def webhook_configuration(self) -> bool:
        return self.api_version.startswith("admissionregistration.k8s.io/")


@dataclass(frozen=True)
class ClusterState:
    """What preflight observed. `hosts` in inventory order; `leaders`: unit -> the host holding its Lease;
    `problems`: cluster-wide ones, each a refusal (the API's /readyz through the admin kubeconfig)."""
    hosts: list[Host]
    leaders: dict[str, str | None] = field(default_factory=dict)
    stored_in_removed: list[StoredObject] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def with_unit(self, unit: str) -> list[Host]:
        return [host for host in self.hosts if unit in host.components]


def _oldest_and_newest(state: ClusterState, unit: str) -> tuple[tuple[Version, str], tuple[Version, str]] | None:
    seen = [(version, host.name) for host in state.with_unit(unit) for version in host.components[unit].versions]
    return (min(seen), max(seen)) if seen else None


def _kubelet_versions(host: Host) -> list[Version]:
    versions = set(host.components[KUBELET].versions) if KUBELET in host.components else set()
    if host.node and host.node.kubelet_version:
        versions.add(host.node.kubelet_version)
    return sorted(versions)


def _move_refusal(version: Version, target: Version, allow_patch_downgrade: bool) -> str | None:
    """Why a component at `version` may not move to `target` ("1.29.0 -> 1.31.0 skips minor 1.30: ..."); None: it
    may."""
    ahead = target.minors_after(version)
    if ahead > 1:
        skipped = ", ".join(f"{target.major}.{version.minor + i}" for i in range(1, ahead))
        return f"{version} -> {target} skips minor {skipped}: upgrade one minor at a time"
    if ahead < 0:
        return f"{version} -> {target} is a minor downgrade (not supported)"
    if ahead == 0 and target.patch < version.patch and not allow_patch_downgrade:
        return f"{version} -> {target} is a patch downgrade (allowed only with allow_patch_downgrade)"
    return None


def _target_rules(host: Host, target: Version, allow_patch_downgrade: bool) -> list[str]:
    """The host's components that may not move to `target`: one line per reason, naming every component it
    concerns in UNITS order ("w1: kpy-kubelet, kpy-proxy, kpy-dns 1.29.0 -> 1.31.0 skips minor 1.30: ..."), so a
    skipped minor costs a line per host, not one per component."""
    out, units_by_reason = [], {}
    for unit in sorted(host.components, key=lambda u: UNITS.index(u) if u in UNITS else len(UNITS)):
        component = host.components[unit]
        if not component.versions:
            out.append(f"{host.name}: {unit} has no known version (no /opt/kpy/components/{unit} link to a version, "
                       "not running)")
        for version in component.versions:
            if reason := _move_refusal(version, target, allow_patch_downgrade):
                units_by_reason.setdefault(reason, []).append(unit)
    return [f"{host.name}: {', '.join(units)} {reason}" for reason, units in units_by_reason.items()] + out


def refusals(state: ClusterState, target: Version, allow_patch_downgrade: bool = False,
             skip_node_ready: bool = False) -> list[str]:
    """Every reason the policy forbids upgrading this cluster to `target`, each naming its host and every component
    it concerns; empty when the upgrade (or its resumption) may go ahead."""
    out: list[str] = list(state.problems)
    for host in state.hosts:
        out += _target_rules(host, target, allow_patch_downgrade)
        for unit, component in host.components.items():
            if component.active and component.version_error:
                out.append(f"{host.name}: {unit} is running but its version could not be read: "
                           f"{component.version_error}")
    for unit, what in ((ETCD, "etcd member"), (APISERVER, "API server")):
        for host in state.with_unit(unit):
            component = host.components[unit]
            if not component.active:
                out.append(f"{host.name}: {unit}: the {what} is not running")
            elif component.problem:
                out.append(f"{host.name}: {unit}: the {what} is not healthy: {component.problem}")
    apiservers = _oldest_and_newest(state, APISERVER)
    if apiservers:
        (oldest, oldest_host), (newest, newest_host) = apiservers
        if newest.minors_after(oldest) > 1:
            out.append(f"{newest_host}: {APISERVER} {newest} is more than one minor newer than the API server "
                       f"{oldest} on {oldest_host}")
        out += _follower_rules(state, (oldest, oldest_host), (newest, newest_host))
    for host in state.hosts:
        kubelet_minors = {v.minor_line for v in _kubelet_versions(host)}
        proxy = host.components.get(PROXY)
        proxy_versions = set(proxy.versions if proxy else ())
        if host.node and host.node.proxy_version:
            proxy_versions.add(host.node.proxy_version)
        for version in sorted(proxy_versions):
            if kubelet_minors and version.minor_line not in kubelet_minors:
                out.append(f"{host.name}: {PROXY} {version} is not the kubelet's minor on its node "
                           f"({', '.join(sorted(kubelet_minors))})")
        if host.node and not host.node.ready and not skip_node_ready:
            out.append(f"{host.name}: {KUBELET}: node {host.node.name} is not Ready (skip_node_ready to go ahead)")
    objects = sorted(state.stored_in_removed, key=lambda o: (not o.webhook_configuration, o.api_version,
                                                             o.resource, o.namespace, o.name))
    for obj in objects:
        name = f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name
        out.append(f"{APISERVER} {target} does not serve {obj.api_version}: {obj.resource} {name} is stored in "
                   f"it; rewrite it in a served version first")
    return out


def _follower_rules(state: ClusterState, oldest: tuple[Version, str], newest: tuple[Version, str]) -> list[str]:
    """Controller managers and schedulers (one minor older at most) and kubelets (three) against the API servers:
    never newer than the oldest, never further behind the newest."""
    out = []
    limits = ((CONTROLLER_MANAGER, 1), (SCHEDULER, 1), (KUBELET, 3))
    for unit, behind in limits:
        for host in state.hosts:
            versions = _kubelet_versions(host) if unit == KUBELET else (
                host.components[unit].versions if unit in host.components else [])
            for version in versions:
                if version.minors_after(oldest[0]) > 0:
                    out.append(f"{host.name}: {unit} {version} is newer than the oldest API server "
                               f"({oldest[0]} on {oldest[1]})")
                elif newest[0].minors_after(version) > behind:
                    out.append(f"{host.name}: {unit} {version} is more than {_minors(behind)} older than the API "
                               f"server {newest[0]} on {newest[1]}")
    return out


def _minors(count: int) -> str:
    return "one minor" if count == 1 else f"{count} minors"


@dataclass(frozen=True)
class Step:
    phase: str  # "etcd", "apiserver", "controller-manager", "scheduler", "node"
    host: str
    component: str
    current: Version | None
    target: Version

    def as_dict(self) -> dict:
        return {"phase": self.phase, "host": self.host, "component": self.component,
                "from": str(self.current) if self.current else None, "to": str(self.target)}


PHASES = ("etcd", "apiserver", "controller-manager", "scheduler", "node")


@dataclass(frozen=True)
class Plan:
    """`steps` in the order they run; `rows` every component on every host (component, host, current, target) for
    the table; `at_target` the hosts with nothing to do."""
    target: Version
    steps: list[Step]
    rows: list[tuple[str, str, str, str]]
    at_target: list[str]

    def hosts(self, phase: str) -> list[str]:
        """The hosts of one phase, in order, each once."""
        return list(dict.fromkeys(step.host for step in self.steps if step.phase == phase))

    def text(self) -> str:
        """Like `kubeadm upgrade plan`: the table of every component, then the order."""
        header = ("COMPONENT", "HOST", "CURRENT", "TARGET")
        widths = [max(len(row[i]) for row in (header, *self.rows)) for i in range(4)]
        lines = [f"Upgrade plan to {self.target}:", ""]
        lines += ["   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                  for row in (header, *self.rows)]
        lines += ["", "Order:"]
        if not self.steps:
            lines.append("  nothing to do: every component is at the target")
        titles = {"etcd": "etcd members, one at a time", "apiserver": "API servers, one at a time, each ready first",
                  "controller-manager": "controller managers, standbys first, the leader last",
                  "scheduler": "schedulers, standbys first, the leader last",
                  "node": "nodes (drain, switch, Ready, uncordon), control-plane hosts first"}
        number = 0
        for phase in PHASES:
            hosts = self.hosts(phase)
            if not hosts:
                continue
            number += 1
            lines.append(f"  {number}. {titles[phase]}:")
            for host in hosts:
                moves = [f"{s.component} {s.current or '?'} -> {s.target}" for s in self.steps
                         if s.phase == phase and s.host == host]
                lines.append(f"     {host}: {', '.join(moves)}")
        if self.at_target:
            lines += ["", f"Already at {self.target}: {', '.join(self.at_target)}"]
        return "\n".join(lines) + "\n"


def _needs_step(component: Component, target: Version) -> bool:
    return component.installed != target or (component.running is not None and component.running != target)


def _current(component: Component) -> Version | None:
    return component.running or component.installed


def plan(state: ClusterState, target: Version) -> Plan:
    """The steps from the observed state to `target`, in the only safe order; components already at the target
    have none (so a resumed upgrade continues where it stopped, and a finished one plans nothing)."""
    steps: list[Step] = []

    def add(phase: str, hosts: list[Host], units: tuple[str, ...]) -> None:
        for host in hosts:
            for unit in units:
                component = host.components.get(unit)
                if component is not None and _needs_step(component, target):
                    steps.append(Step(phase, host.name, unit, _current(component), target))

    add("etcd", state.hosts, (ETCD,))
    add("apiserver", state.hosts, (APISERVER,))
    for phase, unit in (("controller-manager", CONTROLLER_MANAGER), ("scheduler", SCHEDULER)):
        leader = state.leaders.get(unit)
        add(phase, [h for h in state.hosts if h.name != leader] + [h for h in state.hosts if h.name == leader], (unit,))
    node_hosts = [h for h in state.hosts if any(unit in h.components for unit in NODE_UNITS)]
    add("node", [h for h in node_hosts if CONTROL_PLANE_GROUP in h.groups]
        + [h for h in node_hosts if CONTROL_PLANE_GROUP not in h.groups], NODE_UNITS)
    rows = [(unit, host.name, str(_current(host.components[unit]) or "?"), str(target))
            for unit in UNITS for host in state.with_unit(unit)]
    busy = {step.host for step in steps}
    return Plan(target, steps, rows, [host.name for host in state.hosts if host.name not in busy])
