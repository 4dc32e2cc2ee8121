"""When containerd received and answered each CRI call of a pod start, read from its own log (containerd 1.6 logs
every RunPodSandbox, CreateContainer and StartContainer at level info, request and answer, with nanosecond times).

    calls = pod_calls(journal_text, namespace)   # {pod name: PodCalls}
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# containerd writes these (pkg/cri/server: sandbox_run.go, container_create.go, container_start.go); the time field
# is RFC 3339 with nanoseconds, the quotes inside msg are escaped.
_TIME = re.compile(r'time="([^".]+)(?:\.(\d+))?Z"')
_SANDBOX = re.compile(r'RunPodSandbox for &PodSandboxMetadata\{Name:([^,]+),Uid:[^,]*,Namespace:([^,]+),'
                      r'.*?(?:returns sandbox id \\"([0-9a-f]+)\\")?"?$')
_CREATE = re.compile(r'CreateContainer within sandbox \\"([0-9a-f]+)\\".*?(?:returns container id \\"([0-9a-f]+)\\")?'
                     r'"?$')
_START = re.compile(r'StartContainer for \\"([0-9a-f]+)\\"( returns successfully)?')


@dataclass
class PodCalls:
    """Unix times (s) at which containerd logged each call's request and its answer; None when not logged."""
    sandbox_asked: float | None = None
    sandbox_done: float | None = None
    create_asked: float | None = None
    create_done: float | None = None
    start_asked: float | None = None
    start_done: float | None = None

    @property
    def complete(self) -> bool:
        return None not in (self.sandbox_asked, self.sandbox_done, self.create_done, self.start_done)


def _time(line: str) -> float | None:
    match = _TIME.search(line)
    if not match:
        return None
    whole = datetime.fromisoformat(match.group(1) + "+00:00").timestamp()
    return whole + float(f"0.{match.group(2) or 0}")


def pod_calls(journal: str, namespace: str) -> dict[str, PodCalls]:
    """The pods of `namespace` that containerd started, by name, from `journalctl -u containerd -o cat` text
    (the first container of each pod)."""
    pods: dict[str, PodCalls] = {}
    by_sandbox: dict[str, PodCalls] = {}
    by_container: dict[str, PodCalls] = {}
    for line in journal.splitlines():
        if (match := _SANDBOX.search(line)) and match.group(2) == namespace:
            calls = pods.setdefault(match.group(1), PodCalls())
            if match.group(3):
                calls.sandbox_done = _time(line)
                by_sandbox[match.group(3)] = calls
            else:
                calls.sandbox_asked = _time(line)
        elif (match := _CREATE.search(line)) and (calls := by_sandbox.get(match.group(1))):
            if match.group(2):
                calls.create_done = calls.create_done or _time(line)
                by_container.setdefault(match.group(2), calls)
            else:
                calls.create_asked = calls.create_asked or _time(line)
        elif (match := _START.search(line)) and (calls := by_container.get(match.group(1))):
            if match.group(2):
                calls.start_done = _time(line)
            else:
                calls.start_asked = _time(line)
    return pods


def most_in_flight(spans: list[tuple[float, float]]) -> int:
    """The most spans (start, end) open at one moment."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most
