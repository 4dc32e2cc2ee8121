"""The etcd backend: objects at their keys in etcd (v3 API over mutual TLS), revisions are etcd's mod revisions.

create = txn(mod_revision == 0 → put); updates and deletes compare-and-swap on the mod revision they read
(updating.py retries the losers); lists are ranges at one revision; watches are etcd watches from revision + 1 with
prev_kv. Every etcd error is translated into the storage's exceptions here.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

from kpy_components.apiserver.storage.codec import (
    ObjectCodec,
    clone,
    decode_continue,
    encode_continue,
    prefix_end,
    stamped,
    with_resource_version,
)
from kpy_components.apiserver.storage.interface import (
    Compacted,
    Event,
    FutureRevision,
    KeyNotFound,
    ListResult,
    StorageError,
    Transformer,
    Unavailable,
)
from kpy_components.apiserver.storage.updating import CompareAndSwapStorage, Current, Raced
from kpy_components.etcd.calls import Compare, DeleteOp, GetOp, PutOp
from kpy_components.etcd.client import AsyncEtcdClient
from kpy_components.etcd.errors import (
    EtcdCompacted,
    EtcdError,
    EtcdFutureRevision,
    EtcdUnavailable,
)
from kpy_components.etcd.results import KeyValue, RangeResult, WatchEvent
from kpy_components.etcd.transport import TLSFiles


@contextmanager
def etcd_errors(requested: int = 0) -> Iterator[None]:
    """The etcd client's errors as the storage's; `requested` is the revision a read or watch asked for."""
    try:
        yield
    except EtcdCompacted as error:
        raise Compacted(requested, max(error.compact_revision - 1, 0)) from error
    except EtcdFutureRevision as error:
        raise FutureRevision(requested) from error
    except EtcdUnavailable as error:
        raise Unavailable(f"etcd is unavailable: {error}") from error
    except EtcdError as error:
        raise StorageError(f"etcd failed: {error}") from error


class EtcdStorage(CompareAndSwapStorage):
    """Storage in etcd through `client` (closed with the storage when `owns_client`)."""

    def __init__(self, client: AsyncEtcdClient, transformer: Transformer | None = None, *, owns_client: bool = True):
        self.client = client
        self.codec = ObjectCodec(transformer)
        self._owns_client = owns_client

    @classmethod
    def connect(cls, endpoints: str | list[str], tls: TLSFiles, transformer: Transformer | None = None,
                timeout: float = 10.0) -> EtcdStorage:
        return cls(AsyncEtcdClient(endpoints, tls, timeout=timeout), transformer)

    def _current(self, key: str, kvs: list[KeyValue]) -> Current | None:
        if not kvs:
            return None
        kv = kvs[0]
        return Current(self.codec.decode(key, kv.value, kv.mod_revision), kv.mod_revision, kv.lease)

    async def _range(self, key: str, **options) -> RangeResult:
        try:
            with etcd_errors(options.get("revision", 0)):
                return await self.client.range(key, **options)
        except FutureRevision as error:  # etcd does not say how far it is: ask, for the 504's message
            raise FutureRevision(error.requested, await self.current_revision()) from error.__cause__

    async def _read(self, key: str) -> Current | None:
        return self._current(key, (await self._range(key)).kvs)

    async def get(self, key: str, resource_version: int | None = None) -> dict:
        result = await self._range(key)
        if resource_version and resource_version > result.revision:
            raise FutureRevision(resource_version, result.revision)
        current = self._current(key, result.kvs)
        if current is None:
            raise KeyNotFound(f"{key} not found")
        return current.obj

    async def list(self, prefix: str, *, revision: int | None = None, limit: int = 0,
                   continue_token: str | None = None) -> ListResult:
        start = prefix
        if continue_token:
            revision, start = decode_continue(prefix, continue_token)
        result = await self._range(start, range_end=prefix_end(prefix), revision=revision or 0, limit=limit)
        at = revision or result.revision
        keys = [kv.key.decode() for kv in result.kvs]
        items = [self.codec.decode(key, kv.value, kv.mod_revision) for key, kv in zip(keys, result.kvs)]
        if not result.more:
            return ListResult(items, at, keys=keys)
        token = encode_continue(prefix, at, keys[-1] + "\0")
        return ListResult(items, at, token, result.count - len(result.kvs), keys)

    async def _swap(self, key: str, current: Current | None, obj: dict, ttl: int | None = None) -> dict | Raced:
        keep_lease = not ttl and current is not None and current.lease is None  # a suggestion: lease unknown
        with etcd_errors():
            lease = (await self.client.lease_grant(ttl)).id if ttl else (current.lease or 0 if current else 0)
            plain = self.codec.plain(obj)
            txn = await self.client.txn([Compare.mod_revision(key, "=", current.revision if current else 0)],
                                        [PutOp(key, self.codec.seal(key, plain), lease=lease,
                                               ignore_lease=keep_lease)], [GetOp(key)])
        if not txn.succeeded:
            return Raced(self._current(key, txn.responses[0].kvs))
        return stamped(obj, txn.revision)

    async def _delete_if(self, key: str, current: Current) -> dict | Raced:
        with etcd_errors():
            txn = await self.client.txn([Compare.mod_revision(key, "=", current.revision)], [DeleteOp(key)],
                                        [GetOp(key)])
        if not txn.succeeded:
            return Raced(self._current(key, txn.responses[0].kvs))
        return current.obj

    def _event(self, change: WatchEvent) -> Event:
        key, revision = change.kv.key.decode(), change.kv.mod_revision
        previous = None
        if change.prev_kv is not None:
            previous = self.codec.decode(key, change.prev_kv.value, change.prev_kv.mod_revision)
        if change.type == "DELETE":
            return Event("DELETED", with_resource_version(clone(previous) if previous else {}, revision), revision,
                         previous, key)
        obj = self.codec.decode(key, change.kv.value, revision)
        if change.kv.create_revision == revision:
            return Event("ADDED", obj, revision, key=key)
        return Event("MODIFIED", obj, revision, previous, key)

    async def watch(self, prefix: str, revision: int) -> AsyncIterator[Event]:
        with etcd_errors(revision):
            async with self.client.watch(prefix, range_end=prefix_end(prefix), start_revision=revision + 1,
                                         prev_kv=True) as responses:
                async for response in responses:
                    for change in response.events:
                        yield self._event(change)

    async def current_revision(self) -> int:
        return (await self._range("/", count_only=True)).revision

    async def compact(self, revision: int) -> None:
        try:
            with etcd_errors(revision):
                await self.client.compact(revision)
        except Compacted:
            return  # already compacted at or past `revision`

    async def close(self) -> None:
        if self._owns_client:
            await self.client.aclose()
