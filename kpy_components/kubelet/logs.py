"""Container logs as the kubelet serves them (/containerLogs): read from the CRI log files containerd writes,
`/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`, one line per chunk:

    2024-05-01T10:00:00.123456789Z stdout F the text      (F: a full line, P: a partial one continued next line)

Options are PodLogOptions': follow, previous, timestamps, tailLines, sinceSeconds/sinceTime, limitBytes. Following
stops once the container no longer runs and its file has been read to the end (as upstream).
"""
from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kpy_components.api.meta import parse_rfc3339

FOLLOW_POLL = 0.2  # seconds between looks at a followed file
_ATTEMPT = re.compile(r"^(\d+)\.log$")


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since: datetime | None = None
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, query) -> LogOptions:
        """From the query string (the API server checked the values already; bad ones raise ValueError)."""
        def flag(name: str) -> bool:
            return str(query.get(name, "")).lower() in ("true", "1")

        since = None
        if query.get("sinceTime"):
            since = parse_rfc3339(query["sinceTime"])
        elif query.get("sinceSeconds"):
            since = datetime.now(timezone.utc).timestamp() - int(query["sinceSeconds"])
            since = datetime.fromtimestamp(since, timezone.utc)
        return cls(follow=flag("follow"), previous=flag("previous"), timestamps=flag("timestamps"),
                   tail_lines=int(query["tailLines"]) if query.get("tailLines") else None, since=since,
                   limit_bytes=int(query["limitBytes"]) if query.get("limitBytes") else None)


def pod_log_dir(root: Path, namespace: str, name: str, uid: str) -> Path:
    return root / f"{namespace}_{name}_{uid}"


def log_file(pod_dir: Path, container: str, previous: bool) -> Path | None:
    """The newest restart's file (or the one before it with `previous`); None when there is none."""
    folder = pod_dir / container
    attempts = sorted(int(m.group(1)) for p in (folder.iterdir() if folder.is_dir() else ())
                      if (m := _ATTEMPT.match(p.name)))
    index = -2 if previous else -1
    if len(attempts) < (2 if previous else 1):
        return None
    return folder / f"{attempts[index]}.log"


def parse_line(line: bytes) -> tuple[str, bytes, bool] | None:
    """(timestamp, text, full) of one CRI log line; None for a line that is not in the format."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    return parts[0].decode(), parts[3] if len(parts) == 4 else b"", parts[2] == b"F"


def _render(timestamp: str, text: bytes, full: bool, options: LogOptions) -> bytes | None:
    if options.since is not None:
        try:
            if parse_rfc3339(timestamp) < options.since:
                return None
        except ValueError:
            pass
    prefix = f"{timestamp} ".encode() if options.timestamps else b""
    return prefix + text + (b"\n" if full else b"")


async def stream(path: Path, options: LogOptions, running: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
    """The log's chunks as kubectl shows them; with follow, new lines as they come until the container stops."""
    budget = options.limit_bytes
    async for line in _lines(path, options, running):
        chunk = _chunk(line, options)
        if not chunk:
            continue
        if budget is not None:
            chunk = chunk[:budget]
            budget -= len(chunk)
        yield chunk
        if budget == 0:
            return


async def _lines(path: Path, options: LogOptions, running: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
    """The file's lines (the tail asked for), then with follow each line as it is completed; once the container
    no longer runs, whatever is left (a last line without its newline included)."""
    with path.open("rb") as handle:
        lines = [line for line in handle.readlines() if not line.endswith(b"\n") or parse_line(line)]
        if options.tail_lines is not None:
            lines = list(deque(lines, maxlen=options.tail_lines)) if options.tail_lines else []
        pending = b""
        for line in lines:
            if not line.endswith(b"\n"):  # a line still being written: read it again while following
                pending = line
                break
            yield line
        if not options.follow:
            return
        while True:
            line = pending + handle.readline()
            pending = b""
            if line.endswith(b"\n"):
                yield line
                continue
            if await running():
                pending = line
                await asyncio.sleep(FOLLOW_POLL)
                continue
            for rest in (line + handle.read()).splitlines(keepends=True):  # the container stopped: the rest
                yield rest
            return


def _chunk(line: bytes, options: LogOptions) -> bytes | None:
    parsed = parse_line(line)
    if parsed is None:
        return None
    return _render(*parsed, options)
