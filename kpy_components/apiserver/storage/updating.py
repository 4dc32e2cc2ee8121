"""Read-modify-write written once for every backend that can compare-and-swap one key on its mod revision.

A backend provides three primitives; this base turns them into the interface's create, guaranteed_update and
delete (preconditions, update retries on races, no-op updates that write nothing), as Kubernetes' etcd3 store does.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

from kpy_components.apiserver.storage.codec import clone, without_resource_version
from kpy_components.apiserver.storage.interface import (
    Conflict,
    KeyExists,
    KeyNotFound,
    Preconditions,
    UpdateFunc,
)

MAX_UPDATE_ATTEMPTS = 1000  # a livelock guard only: every lost race means another writer made progress


@dataclass(frozen=True)
class Current:
    """A key's current state: the object (resourceVersion = `revision`), its mod revision, and its lease (None:
    not known, as for a suggested object: a swap then keeps whatever lease the key has)."""

    obj: dict
    revision: int
    lease: int | None = 0


def suggested(obj: dict) -> Current | None:
    """A caller's copy of the object as a Current to try first; None when it carries no usable resourceVersion."""
    try:
        revision = int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return None
    return Current(obj, revision, lease=None) if revision > 0 else None


@dataclass(frozen=True)
class Raced:
    """A swap found the key changed: `current` is its state now (None: absent), to retry against."""

    current: Current | None


def check_preconditions(obj: dict, preconditions: Preconditions | None) -> None:
    """Conflict, worded as Kubernetes words it, when `obj` does not meet `preconditions`."""
    if preconditions is None:
        return
    metadata = obj.get("metadata") or {}
    if preconditions.uid is not None and metadata.get("uid") != preconditions.uid:
        raise Conflict(f"Precondition failed: UID in precondition: {preconditions.uid}, UID in object meta: "
                       f"{metadata.get('uid', '')}")
    if preconditions.resource_version is not None \
            and metadata.get("resourceVersion") != preconditions.resource_version:
        raise Conflict(f"Precondition failed: ResourceVersion in precondition: {preconditions.resource_version}, "
                       f"ResourceVersion in object meta: {metadata.get('resourceVersion', '')}")


async def run_update(update: UpdateFunc, obj: dict) -> dict:
    result = update(clone(obj))
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, dict):
        raise TypeError(f"an update function returned {type(result).__name__}, not an object")
    return result


class CompareAndSwapStorage:
    """Base of a backend: subclasses implement `_read`, `_swap` and `_delete_if` (and the rest of Storage)."""

    async def _read(self, key: str) -> Current | None:
        raise NotImplementedError

    async def _swap(self, key: str, current: Current | None, obj: dict, ttl: int | None = None) -> dict | Raced:
        """Store `obj` at `key` if the key is still at `current.revision` (None: the key must be absent), keeping
        its lease or expiry (`ttl`: a new one, in seconds). Returns the stored object, or Raced."""
        raise NotImplementedError

    async def _delete_if(self, key: str, current: Current) -> dict | Raced:
        """Delete `key` if it is still at `current.revision`; its last state, or Raced."""
        raise NotImplementedError

    async def create(self, key: str, obj: dict, ttl: int | None = None) -> dict:
        stored = await self._swap(key, None, obj, ttl=ttl)
        if isinstance(stored, Raced):
            raise KeyExists(f"{key} already exists")
        return stored

    async def guaranteed_update(self, key: str, update: UpdateFunc, *, preconditions: Preconditions | None = None,
                                ignore_not_found: bool = False, ttl: int | None = None,
                                suggestion: dict | None = None) -> dict:
        current = suggested(suggestion) if suggestion is not None else None
        fresh = current is None  # whether `current` was read from the storage (or returned by a failed swap)
        if fresh:
            current = await self._read(key)
        for _ in range(MAX_UPDATE_ATTEMPTS):
            obj = current.obj if current else {}
            try:
                if current is None and not ignore_not_found:
                    raise KeyNotFound(f"{key} not found")
                check_preconditions(obj, preconditions)
                new = await run_update(update, obj)
            except Exception:
                if fresh:
                    raise
                current, fresh = await self._read(key), True  # decided on a suggestion: decide again
                continue
            if current is not None and without_resource_version(new) == without_resource_version(obj):
                if fresh:
                    return obj
                current, fresh = await self._read(key), True
                continue
            stored = await self._swap(key, current, new, ttl=ttl)
            if not isinstance(stored, Raced):
                return stored
            current, fresh = stored.current, True
        raise Conflict(f"{key}: gave up after {MAX_UPDATE_ATTEMPTS} attempts lost to concurrent writers")

    async def delete(self, key: str, *, preconditions: Preconditions | None = None) -> dict:
        current = await self._read(key)
        for _ in range(MAX_UPDATE_ATTEMPTS):
            if current is None:
                raise KeyNotFound(f"{key} not found")
            check_preconditions(current.obj, preconditions)
            deleted = await self._delete_if(key, current)
            if not isinstance(deleted, Raced):
                return deleted
            current = deleted.current
        raise Conflict(f"{key}: gave up after {MAX_UPDATE_ATTEMPTS} attempts lost to concurrent writers")
