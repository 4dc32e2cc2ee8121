"""Health checks and /version for every kpy component.

Health checks are named coroutines returning None when fine or a reason; /healthz, /livez and /readyz answer as
Kubernetes does (`ok`, or `[-]<check> failed: <reason>` lines and 500; `?verbose` lists every check).
"""
from __future__ import annotations

import platform
import sys
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector

from kpy_components.version import VERSION

Check = Callable[[], Awaitable[str | None]]


def version_info() -> dict:
    major, minor, *_ = VERSION.split(".")
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {"major": major, "minor": minor, "gitVersion": f"v{VERSION}", "gitCommit": "", "gitTreeState": "clean",
            "buildDate": "", "goVersion": f"python{sys.version_info.major}.{sys.version_info.minor}",
            "compiler": sys.implementation.name, "platform": f"{sys.platform}/{machine}"}


def component_registry() -> CollectorRegistry:
    """A component's own metrics registry: process and platform metrics, and `kubernetes_build_info` (the version
    the running code reports, as every Kubernetes component's /metrics does)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # process_cpu_seconds_total, process_resident_memory_bytes, ...
    PlatformCollector(registry=registry)
    info = version_info()
    labels = {"major": info["major"], "minor": info["minor"], "git_version": info["gitVersion"],
              "git_commit": info["gitCommit"], "git_tree_state": info["gitTreeState"], "build_date": info["buildDate"],
              "go_version": info["goVersion"], "compiler": info["compiler"], "platform": info["platform"]}
    Gauge("kubernetes_build_info", "A metric with a constant '1' value labeled by major, minor, git version, git "
          "commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform "
          "on which it is running.", list(labels), registry=registry).labels(**labels).set(1)
    return registry


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
