"""Operational endpoints: /version, /healthz, /livez, /readyz and the Prometheus metrics behind /metrics.

Health checks are named coroutines returning None when fine or a reason; the endpoints answer as Kubernetes does
(`ok`, or `[-]<check> failed: <reason>` lines and 500; `?verbose` lists every check).
"""
from __future__ import annotations

import platform
import sys
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector

from kpy_components.version import VERSION

Check = Callable[[], Awaitable[str | None]]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def version_info() -> dict:
    major, minor, *_ = VERSION.split(".")
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {"major": major, "minor": minor, "gitVersion": f"v{VERSION}", "gitCommit": "", "gitTreeState": "clean",
            "buildDate": "", "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
            "compiler": sys.implementation.name, "platform": f"{sys.platform}/{machine}"}


async def run_checks(checks: dict[str, Check], verbose: bool, name: str) -> tuple[int, str]:
    """(HTTP status, text body) for /healthz, /livez or /readyz (`name`)."""
    lines, failed = [], False
    for check_name, check in checks.items():
        try:
            reason = await check()
        except Exception as exc:  # a check that crashes counts as failing, with its reason
            reason = f"{type(exc).__name__}: {exc}"
        if reason:
            failed = True
            lines.append(f"[-]{check_name} failed: {reason}")
        else:
            lines.append(f"[+]{check_name} ok")
    if failed:
        return 500, "\n".join([*lines, f"{name} check failed"]) + "\n"
    if verbose:
        return 200, "\n".join([*lines, f"{name} check passed"]) + "\n"
    return 200, "ok"


class Metrics:
    """The API server's Prometheus metrics, in a registry of its own (several servers may share a process in
    tests). Names follow kube-apiserver's."""

    def __init__(self):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
        PlatformCollector(registry=self.registry)
        self.requests = Counter("apiserver_request", "Counter of apiserver requests broken out for each verb, "
                                "resource and HTTP response code.", ["verb", "resource", "code"],
                                registry=self.registry)
        self.duration = Histogram("apiserver_request_duration_seconds", "Response latency distribution in "
                                  "seconds for each verb and resource.", ["verb", "resource"],
                                  buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.watchers = Gauge("apiserver_registered_watchers", "Number of currently registered watchers for a "
                              "given resource.", ["resource"], registry=self.registry)
        self.watch_events = Counter("apiserver_watch_events", "Number of events sent in watch clients.",
                                    ["resource"], registry=self.registry)
        self.storage = Histogram("etcd_request_duration_seconds", "Storage request latency in seconds for each "
                                 "operation and resource.", ["operation", "type"], buckets=_LATENCY_BUCKETS,
                                 registry=self.registry)
