"""A Storage that times every call of the one it wraps into `etcd_request_duration_seconds{operation, type}`
(type = the resource part of the key, as kube-apiserver labels it)."""
from __future__ import annotations

import time
from collections.abc import AsyncIterator

from prometheus_client import Histogram

from kpy_components.apiserver.storage.interface import Event, ListResult, Preconditions, Storage, UpdateFunc


def _type(key: str) -> str:
    parts = key.split("/")
    return parts[2] if len(parts) > 2 and parts[2] else "-"


class InstrumentedStorage:
    def __init__(self, storage: Storage, histogram: Histogram):
        self.storage, self.histogram = storage, histogram

    def _observe(self, operation: str, key: str, started: float) -> None:
        self.histogram.labels(operation, _type(key)).observe(time.perf_counter() - started)

    async def create(self, key: str, obj: dict, ttl: int | None = None) -> dict:
        started = time.perf_counter()
        try:
            return await self.storage.create(key, obj, ttl)
        finally:
            self._observe("create", key, started)

    async def get(self, key: str, resource_version: int | None = None) -> dict:
        started = time.perf_counter()
        try:
            return await self.storage.get(key, resource_version)
        finally:
            self._observe("get", key, started)

    async def list(self, prefix: str, *, revision: int | None = None, limit: int = 0,
                   continue_token: str | None = None) -> ListResult:
        started = time.perf_counter()
        try:
            return await self.storage.list(prefix, revision=revision, limit=limit, continue_token=continue_token)
        finally:
            self._observe("list", prefix, started)

    async def guaranteed_update(self, key: str, update: UpdateFunc, *, preconditions: Preconditions | None = None,
                                ignore_not_found: bool = False, ttl: int | None = None,
                                suggestion: dict | None = None) -> dict:
        started = time.perf_counter()
        try:
            return await self.storage.guaranteed_update(key, update, preconditions=preconditions,
                                                        ignore_not_found=ignore_not_found, ttl=ttl,
                                                        suggestion=suggestion)
        finally:
            self._observe("update", key, started)

    async def delete(self, key: str, *, preconditions: Preconditions | None = None) -> dict:
        started = time.perf_counter()
        try:
            return await self.storage.delete(key, preconditions=preconditions)
        finally:
            self._observe("delete", key, started)

    def watch(self, prefix: str, revision: int) -> AsyncIterator[Event]:
        return self.storage.watch(prefix, revision)

    async def current_revision(self) -> int:
        return await self.storage.current_revision()

    async def compact(self, revision: int) -> None:
        await self.storage.compact(revision)

    async def close(self) -> None:
        await self.storage.close()
