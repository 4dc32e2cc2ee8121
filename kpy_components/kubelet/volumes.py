"""A pod's volumes on the node, as upstream's volume plugins set them up, and each container's mounts of them.

Layout (upstream's): `<root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<volume>` for emptyDir, configMap, secret,
downwardAPI and projected; hostPath and claims bound to hostPath/local PersistentVolumes use the host's path.
Files of configMap, secret, downwardAPI and projected volumes are written like upstream's AtomicWriter: into a fresh
`..<timestamp>` directory, published by renaming a `..data` symlink over the old one, the names users see being
symlinks through `..data` — so a reader sees the old set or the new one whole, and writing the same content again
changes nothing.

Contract for the agent:
- `await manager.prepare(pod)` on every sync before containers start (and again on re-syncs: changed ConfigMap,
  Secret or labels reach the files in place; a service-account token is re-requested once `next_refresh(uid)` has
  passed). A failure is a model.VolumeError (record FailedMount per volume, keep containers waiting).
- `manager.mounts(pod, container, env)` right before CreateContainer: the container's model.Mounts, subPath and
  subPathExpr resolved (against the resolved environment), so a subPath mount sees its file as it was at container
  start, as upstream. Failures are model.ContainerConfigError (CreateContainerConfigError).
- `await manager.teardown(uid)` once the pod's containers are gone: unmounts tmpfs, removes the pod's directory.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path

from kpy_components.api.meta import parse_rfc3339
from kpy_components.api.quantity import Quantity, QuantityError

from . import fieldpath
from .cri.expansion import expand
from .model import ContainerConfigError, Mount, ObjectSource, VolumeError

DEFAULT_MODE = 0o644  # configMap, secret, downwardAPI and projected files, as upstream's API defaults
DEFAULT_TOKEN_SECONDS = 3600
MAX_TOKEN_AGE = 24 * 3600.0  # upstream refreshes a token at 80% of its lifetime or after 24 h
PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
DATA_LINK = "..data"
MountTmpfs = Callable[[Path, int | None], Awaitable[None]]
Unmount = Callable[[Path], Awaitable[None]]
Payload = dict[str, tuple[bytes, int]]  # relative path → (content, mode)


class _Failed(Exception):
    """One volume's setup failure (upstream's message); collected into a VolumeError."""


@dataclass(frozen=True)
class PodVolume:
    name: str
    path: Path
    read_only: bool = False  # the plugin mounts it read-only whatever the volumeMount says
    size_limit: int | None = None  # emptyDir sizeLimit in bytes (noted for eviction, not enforced)


# --- AtomicWriter ------------------------------------------------------------------------------------------------

def _check_relative(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or path.startswith(".."):
        raise _Failed(f"invalid path: {path!r} must be relative, without '..' and not start with '..'")


def write_atomically(target: Path, payload: Payload) -> bool:
    """Publish `payload` under `target` as AtomicWriter does; False when it was there already, unchanged."""
    for path in payload:
        _check_relative(path)
    target.mkdir(parents=True, exist_ok=True)
    link = target / DATA_LINK
    old = os.readlink(link) if link.is_symlink() else None
    if old is not None and _holds(target / old, payload):
        _publish_names(target, payload)
        return False
    fresh = Path(tempfile.mkdtemp(dir=target, prefix=time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())))
    for path, (content, mode) in payload.items():
        file = fresh / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(content)
        file.chmod(mode)
    fresh.chmod(0o755)
    staged = target / "..data_tmp"
    staged.unlink(missing_ok=True)
    staged.symlink_to(fresh.name)
    os.replace(staged, link)
    _publish_names(target, payload)
    if old is not None and old != fresh.name:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _holds(directory: Path, payload: Payload) -> bool:
    if not directory.is_dir():
        return False
    present = {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}
    if present != set(payload):
        return False
    return all((directory / path).read_bytes() == content and stat.S_IMODE((directory / path).stat().st_mode) == mode
               for path, (content, mode) in payload.items())


def _publish_names(target: Path, payload: Payload) -> None:
    """The user-visible names: one symlink per top-level entry through ..data; stale ones removed."""
    wanted = {path.split("/")[0] for path in payload}
    for name in wanted:
        entry = target / name
        if not entry.is_symlink():
            entry.symlink_to(f"{DATA_LINK}/{name}")
    for entry in target.iterdir():
        if entry.name not in wanted and not entry.name.startswith("..") and entry.is_symlink():
            entry.unlink()


# --- service-account tokens --------------------------------------------------------------------------------------

@dataclass
class _Token:
    token: str
    issued: float
    expires: float

    def refresh_at(self) -> float:
        return self.issued + min(0.8 * (self.expires - self.issued), MAX_TOKEN_AGE)


class TokenCache:
    """Projected service-account tokens per (pod, audience, lifetime), re-requested at 80% of their lifetime or
    after 24 h (upstream's token manager, without its jitter)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._tokens: dict[tuple, _Token] = {}

    async def get(self, source: ObjectSource, pod: dict, audience: str | None, seconds: int) -> str:
        meta = pod["metadata"]
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        key = (meta["uid"], meta["namespace"], account, audience, seconds)
        cached = self._tokens.get(key)
        if cached is None or self.needs_refresh_token(cached):
            issued = self.clock()
            answer = await source.service_account_token(meta["namespace"], account, audience=audience,
                                                        expiration_seconds=seconds, pod=pod)
            expires = parse_rfc3339(answer["expirationTimestamp"]).replace(tzinfo=timezone.utc).timestamp() \
                if answer.get("expirationTimestamp") else issued + seconds
            cached = self._tokens[key] = _Token(answer["token"], issued, expires)
        return cached.token

    def needs_refresh_token(self, token: _Token) -> bool:
        return self.clock() >= token.refresh_at()

    def needs_refresh(self, uid: str) -> bool:
        return any(self.needs_refresh_token(t) for k, t in self._tokens.items() if k[0] == uid)

    def next_refresh(self, uid: str) -> float | None:
        """When the pod's earliest token wants re-requesting (unix seconds): re-sync the pod then."""
        times = [t.refresh_at() for k, t in self._tokens.items() if k[0] == uid]
        return min(times) if times else None

    def forget(self, uid: str) -> None:
        for key in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[key]


# --- payloads ------------------------------------------------------------------------------------------------------

def _key_payload(kind: str, obj: dict | None, items: list | None, mode: int, optional: bool) -> Payload:
    """configMap/secret MakePayload: every key, or the listed items (a missing key fails unless optional)."""
    if obj is None:
        return {}
    if kind == "secret":
        data = {key: _b64(value) for key, value in (obj.get("data") or {}).items()}
    else:
        data = {key: str(value).encode() for key, value in (obj.get("data") or {}).items()}
        data.update({key: _b64(value) for key, value in (obj.get("binaryData") or {}).items()})
    if not items:
        return {key: (value, mode) for key, value in data.items()}
    payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise _Failed(f"{'configmap' if kind == 'configMap' else 'secret'} references non-existent "
                          f"{'config' if kind == 'configMap' else 'secret'} key: {key}")
        payload[item.get("path") or key] = (data[key], item.get("mode") if item.get("mode") is not None else mode)
    return payload


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Failed("invalid base64 data") from None


async def _object(source: ObjectSource, kind: str, namespace: str, name: str, optional: bool) -> dict | None:
    getter = source.configmap if kind == "configMap" else source.secret
    found = await getter(namespace, name)
    if found is None and not optional:
        raise _Failed(f'{"configmap" if kind == "configMap" else "secret"} "{name}" not found')
    return found


def _downward_payload(pod: dict, items: list, mode: int, allocatable: dict | None) -> Payload:
    payload, errors = {}, []
    for item in items or []:
        try:
            if item.get("fieldRef"):
                value = fieldpath.object_field(pod, item["fieldRef"].get("fieldPath", ""))
            elif item.get("resourceFieldRef"):
                value = fieldpath.resource_value(pod, item["resourceFieldRef"], allocatable)
            else:
                value = ""
        except ValueError as error:
            errors.append(str(error))
            continue
        item_mode = item.get("mode")
        payload[os.path.normpath(item.get("path", ""))] = (value.encode(), mode if item_mode is None else item_mode)
    if errors:
        raise _Failed(_aggregate(errors))
    return payload


def _aggregate(errors: list[str]) -> str:
    """utilerrors.NewAggregate's text."""
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


# --- the volume kinds ----------------------------------------------------------------------------------------------

@dataclass
class _Context:
    pod: dict
    pod_dir: Path
    source: ObjectSource
    tokens: TokenCache
    allocatable: dict | None
    mount_tmpfs: MountTmpfs | None

    @property
    def namespace(self) -> str:
        return self.pod["metadata"]["namespace"]

    def dir(self, kind: str, name: str) -> Path:
        return self.pod_dir / "volumes" / PLUGIN_DIRS[kind] / name


def _quantity_bytes(text) -> int | None:
    try:
        return int(Quantity.parse(text).value) if text not in (None, "") else None
    except QuantityError:
        return None


def _pod_memory_limit(pod: dict) -> int | None:
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        total += _quantity_bytes(((container.get("resources") or {}).get("limits") or {}).get("memory")) or 0
    return total or None


async def _empty_dir(ctx: _Context, name: str, source: dict) -> PodVolume:
    path = ctx.dir("emptyDir", name)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    limit = _quantity_bytes(source.get("sizeLimit"))
    if source.get("medium") == "Memory":
        if ctx.mount_tmpfs is None:
            raise _Failed("emptyDir medium Memory needs a tmpfs, and this kubelet cannot mount one")
        if not os.path.ismount(path):
            # tmpfs size: the smallest of sizeLimit, the pod's memory limit and the node's allocatable memory
            sizes = [s for s in (limit, _pod_memory_limit(ctx.pod),
                                 _quantity_bytes((ctx.allocatable or {}).get("memory"))) if s]
            await ctx.mount_tmpfs(path, min(sizes) if sizes else None)
    return PodVolume(name, path, size_limit=limit)


async def _key_volume(ctx: _Context, name: str, source: dict, kind: str) -> PodVolume:
    optional = bool(source.get("optional"))
    obj = await _object(ctx.source, kind, ctx.namespace, source.get("name" if kind == "configMap" else "secretName",
                                                                    ""), optional)
    mode = source.get("defaultMode", DEFAULT_MODE)
    payload = _key_payload(kind, obj, source.get("items"), mode, optional)
    path = ctx.dir(kind, name)
    await asyncio.to_thread(write_atomically, path, payload)
    return PodVolume(name, path, read_only=True)


async def _downward_volume(ctx: _Context, name: str, source: dict) -> PodVolume:
    payload = _downward_payload(ctx.pod, source.get("items"), source.get("defaultMode", DEFAULT_MODE), ctx.allocatable)
    path = ctx.dir("downwardAPI", name)
    await asyncio.to_thread(write_atomically, path, payload)
    return PodVolume(name, path, read_only=True)


async def _projected(ctx: _Context, name: str, source: dict) -> PodVolume:
    mode = source.get("defaultMode", DEFAULT_MODE)
    payload: Payload = {}
    errors = []
    for projection in source.get("sources") or []:
        try:
            if projection.get("secret") or projection.get("configMap"):
                kind = "secret" if projection.get("secret") else "configMap"
                ref = projection[kind]
                optional = bool(ref.get("optional"))
                obj = await _object(ctx.source, kind, ctx.namespace, ref.get("name", ""), optional)
                payload.update(_key_payload(kind, obj, ref.get("items"), mode, optional))
            elif projection.get("downwardAPI"):
                payload.update(_downward_payload(ctx.pod, projection["downwardAPI"].get("items"), mode,
                                                 ctx.allocatable))
            elif projection.get("serviceAccountToken"):
                token_source = projection["serviceAccountToken"]
                token = await ctx.tokens.get(ctx.source, ctx.pod, token_source.get("audience") or None,
                                             int(token_source.get("expirationSeconds") or DEFAULT_TOKEN_SECONDS))
                payload[token_source.get("path", "token")] = (token.encode(), mode)
        except _Failed as error:
            errors.append(str(error))
    if errors:
        raise _Failed(_aggregate(errors))
    path = ctx.dir("projected", name)
    await asyncio.to_thread(write_atomically, path, payload)
    return PodVolume(name, path, read_only=True)


def check_host_path(path: Path, kind: str) -> None:
    """hostPath's type check (creating what *OrCreate asks for), with upstream's messages."""
    checks = {"Directory": (os.path.isdir, "a directory"), "File": (os.path.isfile, "a file"),
              "Socket": (lambda p: _is(p, stat.S_ISSOCK), "a socket file"),
              "CharDevice": (lambda p: _is(p, stat.S_ISCHR), "a character device"),
              "BlockDevice": (lambda p: _is(p, stat.S_ISBLK), "a block device")}
    if not kind:
        return
    if kind == "DirectoryOrCreate":
        if not os.path.exists(path):
            path.mkdir(mode=0o755, parents=True)
        kind = "Directory"
    elif kind == "FileOrCreate":
        if not os.path.exists(path):
            try:
                path.touch(mode=0o644)  # the parent is not created, as upstream
            except OSError as error:
                raise _Failed(f"hostPath type check failed: cannot create file {path}: {error.strerror}") from None
        kind = "File"
    if kind not in checks:
        raise _Failed(f"{kind} is an invalid volume type")
    test, what = checks[kind]
    if not test(path):
        raise _Failed(f"hostPath type check failed: {path} is not {what}")


def _is(path: Path, predicate) -> bool:
    try:
        return predicate(os.stat(path).st_mode)
    except OSError:
        return False


async def _host_path(ctx: _Context, name: str, source: dict) -> PodVolume:
    path = Path(source.get("path", ""))
    check_host_path(path, source.get("type") or "")
    return PodVolume(name, path)


async def _claim(ctx: _Context, name: str, source: dict) -> PodVolume:
    claim_name = source.get("claimName", "")
    where = f"{ctx.namespace}/{claim_name}"
    claim = await ctx.source.claim(ctx.namespace, claim_name)
    if claim is None:
        raise _Failed(f'error processing PVC {where}: persistentvolumeclaim "{claim_name}" not found')
    if (claim.get("metadata") or {}).get("deletionTimestamp"):
        raise _Failed(f"error processing PVC {where}: can't start pod because PVC is being deleted")
    volume_name = (claim.get("spec") or {}).get("volumeName")
    phase = (claim.get("status") or {}).get("phase")
    if phase != "Bound" or not volume_name:
        raise _Failed(f"error processing PVC {where}: PVC is not bound")
    volume = await ctx.source.volume(volume_name)
    if volume is None:
        raise _Failed(f'error processing PVC {where}: persistentvolume "{volume_name}" not found')
    spec = volume.get("spec") or {}
    if spec.get("hostPath"):
        path = Path(spec["hostPath"].get("path", ""))
        check_host_path(path, spec["hostPath"].get("type") or "")
    elif spec.get("local"):
        path = Path(spec["local"].get("path", ""))
        if not path.exists():
            raise _Failed(f"path {path} does not exist")
    else:
        raise _Failed(f"PersistentVolume {volume_name} is of a kind this kubelet cannot mount "
                      "(only hostPath and local are supported)")
    return PodVolume(name, path, read_only=bool(source.get("readOnly")))


_KINDS = {
    "emptyDir": _empty_dir,
    "configMap": lambda ctx, name, source: _key_volume(ctx, name, source, "configMap"),
    "secret": lambda ctx, name, source: _key_volume(ctx, name, source, "secret"),
    "downwardAPI": _downward_volume,
    "projected": _projected,
    "hostPath": _host_path,
    "persistentVolumeClaim": _claim,
}


async def setup_volumes(pod: dict, pod_dir: Path, source: ObjectSource, *, tokens: TokenCache,
                        node_allocatable: dict | None = None, mount_tmpfs: MountTmpfs | None = None) \
        -> dict[str, PodVolume]:
    """Materialise every volume of the pod; idempotent. Every volume is tried; all failures come in one
    VolumeError. `mount_tmpfs(path, size_bytes)` mounts a tmpfs for emptyDir medium Memory (a host effect the
    agent owns); it is called only when the path is not yet a mount point."""
    ctx = _Context(pod, Path(pod_dir), source, tokens, node_allocatable, mount_tmpfs)
    volumes, failures = {}, {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume.get("name", "")
        kind = next((k for k in _KINDS if k in volume), None)
        try:
            if kind is None:
                raise _Failed("volume type not supported by this kubelet")
            volumes[name] = await _KINDS[kind](ctx, name, volume[kind] or {})
        except _Failed as error:
            failures[name] = str(error)
        except OSError as error:
            failures[name] = f"{error.strerror or error}: {error.filename or ''}".rstrip(": ")
    if failures:
        raise VolumeError(failures)
    return volumes


# --- mounts ---------------------------------------------------------------------------------------------------

def container_mounts(pod: dict, container: dict, volumes: Mapping[str, PodVolume], env: Mapping[str, str]) \
        -> list[Mount]:
    """makeMounts for the volumeMounts of `container` (env: its resolved environment, for subPathExpr)."""
    mounts = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name", ""))
        if volume is None:
            raise ContainerConfigError(f'cannot find volume "{mount.get("name")}" to mount into container '
                                       f'"{container.get("name")}"')
        sub_path = mount.get("subPath") or ""
        if mount.get("subPathExpr"):
            missing = sorted({name for name in _references(mount["subPathExpr"]) if not env.get(name)})
            if missing:
                raise ContainerConfigError(f"missing value for {', '.join(missing)}")
            sub_path = expand(mount["subPathExpr"], env)
        host_path = str(volume.path)
        if sub_path:
            host_path = _sub_path(volume, sub_path)
        mounts.append(Mount(container_path=mount.get("mountPath", ""), host_path=host_path,
                            read_only=bool(mount.get("readOnly")) or volume.read_only, sub_path=sub_path,
                            propagation=mount.get("mountPropagation") or "None"))
    return mounts


def _references(text: str) -> list[str]:
    found = []
    expand(text, _Recorder(found))
    return found


class _Recorder(dict):
    """A mapping that records which $(VAR) names an expansion looks up."""

    def __init__(self, seen: list):
        super().__init__()
        self.seen = seen

    def __contains__(self, name) -> bool:
        self.seen.append(name)
        return False


def _sub_path(volume: PodVolume, sub_path: str) -> str:
    if os.path.isabs(sub_path):
        raise ContainerConfigError(f"error SubPath `{sub_path}` must not be an absolute path")
    if ".." in sub_path.split("/"):
        raise ContainerConfigError(f"unable to provision SubPath `{sub_path}`: must not contain '..'")
    base = os.path.realpath(volume.path)
    wanted = volume.path / sub_path
    if not os.path.lexists(wanted):
        try:
            wanted.mkdir(mode=stat.S_IMODE(os.stat(base).st_mode), parents=True)
        except OSError as error:
            raise ContainerConfigError(f"failed to create subPath directory for volumeMount of container: "
                                       f"{error}") from None
    resolved = os.path.realpath(wanted)  # a symlinked subPath (configMap keys are) binds the file it names now
    if resolved != base and not resolved.startswith(base.rstrip("/") + "/"):
        raise ContainerConfigError(f'subpath "{wanted}" not within volume path "{base}"')
    return resolved


async def teardown_volumes(pod_dir: Path, unmount: Unmount | None = None) -> None:
    """Remove the pod's volumes: tmpfs mounts unmounted first, then the directory (symlinks are not followed, so a
    hostPath or claim's data is never touched: they live outside it)."""
    empty_dirs = Path(pod_dir) / "volumes" / PLUGIN_DIRS["emptyDir"]
    if empty_dirs.is_dir():
        for path in empty_dirs.iterdir():
            if os.path.ismount(path):
                if unmount is None:
                    raise OSError(f"{path} is a mount point and no unmount was given")
                await unmount(path)
    await asyncio.to_thread(shutil.rmtree, pod_dir, True)


class VolumeManager:
    """The kubelet's volumes: one per kubelet, keeping each pod's volumes and tokens between syncs."""

    def __init__(self, pods_root: Path, source: ObjectSource, *, node_allocatable: dict | None = None,
                 mount_tmpfs: MountTmpfs | None = None, unmount: Unmount | None = None,
                 clock: Callable[[], float] = time.time):
        self.pods_root, self.source = Path(pods_root), source
        self.node_allocatable, self.mount_tmpfs, self.unmount = node_allocatable, mount_tmpfs, unmount
        self.tokens = TokenCache(clock)
        self._volumes: dict[str, dict[str, PodVolume]] = {}

    def pod_dir(self, uid: str) -> Path:
        return self.pods_root / uid

    async def prepare(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        self._volumes[uid] = await setup_volumes(pod, self.pod_dir(uid), self.source, tokens=self.tokens,
                                                 node_allocatable=self.node_allocatable,
                                                 mount_tmpfs=self.mount_tmpfs)

    def mounts(self, pod: dict, container: dict, env: Mapping[str, str]) -> list[Mount]:
        volumes = self._volumes.get(pod["metadata"]["uid"])
        if volumes is None:
            raise ContainerConfigError("the pod's volumes are not set up yet")
        return container_mounts(pod, container, volumes, env)

    def next_refresh(self, uid: str) -> float | None:
        return self.tokens.next_refresh(uid)

    async def teardown(self, uid: str) -> None:
        await teardown_volumes(self.pod_dir(uid), self.unmount)
        self._volumes.pop(uid, None)
        self.tokens.forget(uid)
