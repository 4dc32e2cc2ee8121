"""Snapshots: save one member's database to a file atomically and verified; restore it into a fresh data dir.

A snapshot streamed from etcd ends with the sha256 of the database before it; `verify_checksum` checks that, and
`etcdctl snapshot status` (when installed) reads the database itself. Restore uses etcd 3.4's
`etcdctl snapshot restore`, which writes a new member directory for this member's name, peer URL and the
initial cluster of the model: every member restores the same snapshot, then all start as a new cluster.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kpy_components.etcd.client import EtcdClient
from kpy_components.etcd.errors import SnapshotError
from kpy_components.etcd.model import EtcdModel

SHA256_SIZE = 32
ETCDCTL_TIMEOUT = 120  # seconds; restoring a large database takes a while


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    size: int
    revision: int | None = None  # from etcdctl snapshot status, when etcdctl is installed
    total_keys: int | None = None


def verify_checksum(path: Path) -> None:
    """Raise SnapshotError unless the file ends with the sha256 of everything before it."""
    size = path.stat().st_size
    if size <= SHA256_SIZE:
        raise SnapshotError(f"{path}: {size} bytes is too small to be an etcd snapshot")
    digest = hashlib.sha256()
    with path.open("rb") as file:
        remaining = size - SHA256_SIZE
        while remaining:
            chunk = file.read(min(remaining, 1 << 20))
            if not chunk:
                raise SnapshotError(f"{path}: the file shrank while it was being read")
            digest.update(chunk)
            remaining -= len(chunk)
        if file.read() != digest.digest():
            raise SnapshotError(f"{path}: sha256 checksum mismatch: the snapshot is incomplete or corrupt")


def _etcdctl(etcdctl: str, *args: str) -> str:
    try:
        done = subprocess.run([etcdctl, *args], capture_output=True, text=True, timeout=ETCDCTL_TIMEOUT,
                              env={**os.environ, "ETCDCTL_API": "3"}, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SnapshotError(f"cannot run {etcdctl} {args[0]} {args[1]}: {error}") from error
    if done.returncode != 0:
        raise SnapshotError(f"{etcdctl} {args[0]} {args[1]} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def inspect(path: Path, etcdctl: str | None = None) -> SnapshotInfo:
    """Verify the checksum and, when etcdctl is installed, let it read the database (revision, key count)."""
    verify_checksum(path)
    etcdctl = etcdctl or shutil.which("etcdctl")
    if not etcdctl:
        return SnapshotInfo(path, path.stat().st_size)
    try:
        status = json.loads(_etcdctl(etcdctl, "snapshot", "status", str(path), "--write-out", "json"))
    except ValueError as error:
        raise SnapshotError(f"etcdctl snapshot status {path}: answer is not JSON") from error
    return SnapshotInfo(path, path.stat().st_size, int(status["revision"]), int(status["totalKey"]))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save(client: EtcdClient, path: Path, etcdctl: str | None = None) -> SnapshotInfo:
    """Stream a snapshot into `path` (mode 0600: it holds every secret) via a temporary file in the same directory,
    verify it, then rename it into place; `path` is never left half-written."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            client.snapshot(file)
            file.flush()
            os.fsync(file.fileno())
        info = inspect(partial, etcdctl)
        os.replace(partial, path)
        _fsync_dir(path.parent)
    except OSError as error:
        raise SnapshotError(f"cannot write snapshot {path}: {error}") from error
    finally:
        partial.unlink(missing_ok=True)
    return SnapshotInfo(path, info.size, info.revision, info.total_keys)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _refuse_if_in_use(data_dir: Path) -> None:
    """etcd holds a write lock (an open-file-description lock, which conflicts with POSIX locks) on its WAL files while
    it runs; restoring under a running member would corrupt it."""
    for wal in sorted(data_dir.glob("member/wal/*.wal")):
        with wal.open("r+b") as file:
            try:
                fcntl.lockf(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # EAGAIN or EACCES: someone holds it
                raise SnapshotError(f"etcd is running on {data_dir} (it holds {wal.name}); stop it first "
                                    "(systemctl stop kpy-etcd)") from None
            fcntl.lockf(file, fcntl.LOCK_UN)


def _chown_like_parent(path: Path) -> None:
    """Give the restored tree the owner of its parent directory (/var/lib/etcd belongs to etcd) when run as root."""
    if os.geteuid() != 0:
        return
    parent = path.parent.stat()
    for root, dirs, files in os.walk(path):
        os.chown(root, parent.st_uid, parent.st_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), parent.st_uid, parent.st_gid)


@dataclass(frozen=True)
class Restored:
    data_dir: Path
    moved_aside: Path | None  # where the data dir that was there before went (with force=True)


def restore(snapshot: Path, model: EtcdModel, data_dir: Path | None = None, force: bool = False,
            etcdctl: str | None = None) -> Restored:
    """Restore `snapshot` into the local member's data dir (or `data_dir`). An existing non-empty data dir is
    refused unless `force`, and then moved aside (never deleted). etcd must not be running on that data dir."""
    snapshot, target = Path(snapshot), Path(data_dir or model.data_dir)
    etcdctl = etcdctl or shutil.which("etcdctl")
    if not etcdctl:
        raise SnapshotError("etcdctl is not installed (Debian package etcd-client); it restores etcd 3.4 snapshots")
    occupied = target.exists() and not _is_empty_dir(target)
    _refuse_if_in_use(target)
    if occupied and not force:
        raise SnapshotError(f"data dir {target} already holds data; refusing to overwrite it (use --force to move "
                            "it aside, after stopping etcd)")
    verify_checksum(snapshot)
    staging = target.with_name(f"{target.name}.restoring")
    shutil.rmtree(staging, ignore_errors=True)  # a leftover of an interrupted restore
    local = model.local
    _etcdctl(etcdctl, "snapshot", "restore", str(snapshot), "--name", local.name,
             "--initial-cluster", model.initial_cluster, "--initial-cluster-token", model.cluster_token,
             "--initial-advertise-peer-urls", local.peer_url, "--data-dir", str(staging))
    moved_aside = None
    if occupied:
        moved_aside = target.with_name(f"{target.name}.before-restore-{time.strftime('%Y%m%dT%H%M%S')}")
        target.rename(moved_aside)
    elif target.exists():
        target.rmdir()
    os.chmod(staging, 0o700)
    _chown_like_parent(staging)
    staging.rename(target)
    _fsync_dir(target.parent)
    return Restored(target, moved_aside)
