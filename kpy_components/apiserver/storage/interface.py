"""The storage contract every backend meets (etcd, SQLite) and the watch cache offers in front of them.

Objects are JSON-able dicts. Keys look like `/registry/<resource>/<namespace>/<name>` (cluster-scoped:
`/registry/<resource>/<name>`). Every write gets a new, strictly increasing revision shared by all keys (etcd's
model); the stored object's `metadata.resourceVersion` is that revision as a string, set by the storage on the
objects it returns (never trusted from the caller). Values may be transformed on the way to the backend
(encryption at rest) by a `Transformer`; callers never see that.

All operations are coroutines. Failures are the exceptions below, never a backend's own exceptions.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol


class StorageError(Exception):
    """Base of every storage failure."""


class KeyNotFound(StorageError):
    pass


class KeyExists(StorageError):
    pass


class Conflict(StorageError):
    """A precondition (resourceVersion or uid) did not hold, or an update raced and retries ran out."""


class Compacted(StorageError):
    """The revision asked for was compacted away: list/watch callers answer 410 Gone."""

    def __init__(self, requested: int, compacted: int):
        super().__init__(f"revision {requested} is compacted (oldest available is {compacted + 1})")
        self.requested, self.compacted = requested, compacted


class Unavailable(StorageError):
    """The backend cannot be reached now; the request may be retried."""


class FutureRevision(StorageError):
    """A read asked for a revision the store has not reached yet (Kubernetes answers "Too large resource
    version", 504)."""

    def __init__(self, requested: int, current: int | None = None):
        super().__init__(f"revision {requested} is newer than the store's current revision"
                         + (f" {current}" if current is not None else ""))
        self.requested, self.current = requested, current


class InvalidContinueToken(StorageError, ValueError):
    """A continue token that no list of this prefix handed out (the client's fault: 400 Bad Request)."""


@dataclass(frozen=True)
class Preconditions:
    uid: str | None = None
    resource_version: str | None = None


@dataclass(frozen=True)
class ListResult:
    items: list[dict]
    revision: int  # the revision the list is consistent at (the List's metadata.resourceVersion)
    continue_token: str | None = None  # opaque; pass back to continue at the same revision
    remaining: int | None = None  # items left after this page, when known
    keys: list[str] | None = None  # the storage key of each item, in the same order (every backend fills it)


@dataclass(frozen=True)
class Event:
    type: Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    object: dict  # for DELETED: the last state, with resourceVersion = the deletion's revision
    revision: int
    previous: dict | None = None  # the state before this event (None for ADDED); lets filters see objects leave
    key: str = ""  # the storage key the event is about (empty for BOOKMARK)


# `update` gets the current object (a deep copy, safe to change) and returns the new one, or raises APIError to
# abort. It may be called more than once when writes race; it must not have side effects.
UpdateFunc = Callable[[dict], Awaitable[dict] | dict]


class Transformer(Protocol):
    """Turns stored bytes into bytes at rest and back (encryption at rest). Keyed so providers can bind to keys."""

    def to_storage(self, key: str, data: bytes) -> bytes: ...
    def from_storage(self, key: str, data: bytes) -> bytes: ...


class Storage(Protocol):
    async def create(self, key: str, obj: dict, ttl: int | None = None) -> dict:
        """Store a new object; KeyExists when the key is taken. Returns it with resourceVersion set."""

    async def get(self, key: str, resource_version: int | None = None) -> dict:
        """The object at key (at a revision not older than resource_version, when given); KeyNotFound."""

    async def list(self, prefix: str, *, revision: int | None = None, limit: int = 0,
                   continue_token: str | None = None) -> ListResult:
        """Objects under prefix in key order, consistent at one revision (the latest, or `revision`; Compacted
        when that revision is gone). limit 0 = all; a continue token resumes at the same revision."""

    async def guaranteed_update(self, key: str, update: UpdateFunc, *, preconditions: Preconditions | None = None,
                                ignore_not_found: bool = False, ttl: int | None = None,
                                suggestion: dict | None = None) -> dict:
        """Read-modify-write with compare-and-swap, retrying `update` on races. KeyNotFound unless
        ignore_not_found (then `update` receives {} and the result is created). Conflict when preconditions fail.
        Returns the stored object; when `update` returns an equal object nothing is written and the current
        object (same resourceVersion) is returned. `ttl` (seconds) gives the written key a new expiry; without
        it the key keeps the one it had. `suggestion`: a recent copy of the object (the watch cache's), tried
        instead of a first read; when it is stale the swap fails and the update runs again on the current
        object, and any failure or no-op decided on it is decided again on a fresh read (Kubernetes'
        cachedExistingObject)."""

    async def delete(self, key: str, *, preconditions: Preconditions | None = None) -> dict:
        """Remove the object; KeyNotFound / Conflict. Returns its last state."""

    def watch(self, prefix: str, revision: int) -> AsyncIterator[Event]:
        """Events under prefix strictly after `revision`, in order, until the iterator is closed. Compacted
        (raised on first iteration) when events after `revision` are no longer available."""

    async def current_revision(self) -> int: ...

    async def compact(self, revision: int) -> None:
        """Forget the history before `revision` (etcd's meaning): reads at revisions older than `revision` and
        watches from them raise Compacted; the state at `revision` and every later event stay available."""

    async def close(self) -> None: ...
