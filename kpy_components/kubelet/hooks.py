"""What the kubelet does on the host around a container's life: lifecycle hooks (postStart, preStop), the
termination-message file each container writes its last words into, and tmpfs mounts for memory-backed emptyDirs.

Termination messages: every container gets a host file `<pod dir>/containers/<name>/<attempt>` mounted at its
terminationMessagePath (default /dev/termination-log); what it holds when the container ends becomes
`state.terminated.message` (at most 4 KiB), or with FallbackToLogsOnError the log's tail when the file is empty and
the container failed.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from . import logs
from .model import Mount, PodObservation
from .probes import resolve_port
from .status import wants_log_tail

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 4096
LOG_TAIL_LINES, LOG_TAIL_BYTES = 80, 2048
ExecSync = Callable[[str, list[str], float], Awaitable[tuple[int, str]]]


async def run(handler: dict, exec_sync: ExecSync, container: dict, container_id: str, pod_ip: str,
              timeout: float) -> str | None:
    """Run a lifecycle handler (exec, httpGet, sleep); None on success, else the failure as upstream words it."""
    try:
        if "exec" in handler:
            command = (handler["exec"] or {}).get("command") or []
            code, output = await asyncio.wait_for(exec_sync(container_id, command, timeout), timeout)
            if code != 0:
                return f"Exec lifecycle hook ([{' '.join(command)}]) for Container \"{container.get('name')}\" " \
                       f"failed - error: command '{' '.join(command)}' exited with {code}: {output.strip()}"
        elif "httpGet" in handler:
            action = handler["httpGet"]
            scheme = (action.get("scheme") or "HTTP").lower()
            host = action.get("host") or pod_ip
            port = resolve_port(action.get("port"), container)
            url = f"{scheme}://{host}:{port}{action.get('path') or '/'}"
            headers = {h["name"]: h.get("value", "") for h in action.get("httpHeaders") or ()}
            async with httpx.AsyncClient(verify=False, timeout=timeout) as client:  # noqa: S501 - upstream does not verify hook TLS either
                response = await client.get(url, headers=headers)
            if response.status_code >= 400:
                return f"HTTP lifecycle hook ({action.get('path') or '/'}) for Container " \
                       f"\"{container.get('name')}\" failed - error: HTTP status {response.status_code}"
        elif "sleep" in handler:
            await asyncio.sleep(min(float((handler["sleep"] or {}).get("seconds", 0)), timeout))
    except (TimeoutError, asyncio.TimeoutError):
        return f"lifecycle hook for Container \"{container.get('name')}\" did not finish within {timeout:g}s"
    except Exception as error:  # noqa: BLE001 - any failure of a hook is reported, never raised into the sync
        return f"lifecycle hook for Container \"{container.get('name')}\" failed - error: {error}"
    return None


def termination_log_path(pod_dir: Path, name: str, attempt: int) -> Path:
    return pod_dir / "containers" / name / str(attempt)


def termination_log_mount(pod_dir: Path, container: dict, attempt: int) -> Mount:
    path = termination_log_path(pod_dir, container["name"], attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o666, exist_ok=True)
    path.chmod(0o666)  # any user the container runs as may write its last words
    return Mount(container_path=container.get("terminationMessagePath") or "/dev/termination-log",
                 host_path=str(path))


def termination_messages(pod_dir: Path, pod: dict, observation: PodObservation, logs_root: Path) -> dict[str, str]:
    """{container ID: message} for every exited container, from its file or (when the policy asks) its log."""
    spec = pod.get("spec") or {}
    containers = {c["name"]: c for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])}
    messages = {}
    meta = pod.get("metadata") or {}
    for observed in observation.containers:
        container = containers.get(observed.name)
        if observed.state != "exited" or container is None:
            continue
        path = termination_log_path(pod_dir, observed.name, observed.attempt)
        try:
            text = path.read_bytes()[:MESSAGE_LIMIT].decode(errors="replace")
        except OSError:
            text = ""
        if wants_log_tail(container, observed, text):
            folder = logs.pod_log_dir(logs_root, meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", ""))
            log_path = folder / observed.name / f"{observed.attempt}.log"
            text = _log_tail(log_path)
        if text:
            messages[observed.id] = text
    return messages


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_bytes().splitlines(keepends=True)[-LOG_TAIL_LINES:]
    except OSError:
        return ""
    text = b"".join(parsed[1] + (b"\n" if parsed[2] else b"") for line in lines
                    if (parsed := logs.parse_line(line)) is not None)
    return text[-LOG_TAIL_BYTES:].decode(errors="replace")


async def _command(*argv: str) -> None:
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE)
    _, error = await process.communicate()
    if process.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {error.decode().strip()}")


async def mount_tmpfs(path: Path, size_bytes: int | None) -> None:
    """A memory-backed emptyDir (medium: Memory); sized by its sizeLimit when it has one."""
    options = f"size={size_bytes}" if size_bytes else "size=50%"
    await _command("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path))


async def unmount(path: Path) -> None:
    await _command("umount", str(path))
