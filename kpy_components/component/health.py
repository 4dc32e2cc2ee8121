"""Health checks and /version for every kpy component.

Health checks are named coroutines returning None when fine or a reason; /healthz, /livez and /readyz answer as
Kubernetes does (`ok`, or `[-]<check> failed: <reason>` lines and 500; `?verbose` lists every check).
"""
from __future__ import annotations

import platform
import sys
from collections.abc import Awaitable, Callable

from kpy_components.version import VERSION

Check = Callable[[], Awaitable[str | None]]


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
