"""A CRD version other than the storage version, served from the same objects (conversion strategy None, as
upstream: only apiVersion differs). Objects are written in the storage version and read back as the version asked
for; requests are validated with the served version's own schema (its strategy)."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from kpy_components.api.resources import ResourceInfo
from kpy_components.apiserver.storage.interface import Event, Storage

from ..registry.store import Store
from ..registry.strategy import Strategy


class _StoredAs:
    """The storage, with new objects written as the storage version (every other write keeps what is stored)."""

    def __init__(self, storage: Storage, api_version: str):
        self._storage, self._api_version = storage, api_version

    async def create(self, key: str, obj: dict, ttl: int | None = None) -> dict:
        return await self._storage.create(key, dict(obj, apiVersion=self._api_version), ttl)

    def __getattr__(self, name: str):
        return getattr(self._storage, name)


class ServedVersion(Store):
    def __init__(self, stored: Store, info: ResourceInfo, strategy: Strategy):
        super().__init__(info, strategy, _StoredAs(stored.storage, stored.info.api_version), cache=stored.cache,
                         namespaces=stored.namespaces)

    def _out(self, obj):
        """The object as this version (a shallow copy: cached objects are never changed)."""
        if isinstance(obj, dict) and obj.get("apiVersion") not in (None, self.info.api_version):
            return dict(obj, apiVersion=self.info.api_version)
        return obj

    async def create(self, ctx, namespace: str, obj: dict) -> dict:
        return self._out(await super().create(ctx, namespace, obj))

    async def get(self, namespace: str, name: str, resource_version: str = "") -> dict:
        return self._out(await super().get(namespace, name, resource_version))

    async def peek(self, namespace: str, name: str) -> dict | None:
        return self._out(await super().peek(namespace, name))

    async def list(self, namespace: str = "", **options) -> dict:
        listed = await super().list(namespace, **options)
        listed["items"] = [self._out(item) for item in listed["items"]]
        return listed

    async def watch(self, namespace: str = "", **options) -> AsyncIterator[Event]:
        async for event in super().watch(namespace, **options):
            if event.type == "BOOKMARK":
                yield event
            else:
                yield dataclasses.replace(event, object=self._out(event.object))

    async def write(self, ctx, namespace: str, name: str, desired, subresource: str) -> dict:
        return self._out(await super().write(ctx, namespace, name, desired, subresource))

    async def delete(self, ctx, namespace: str, name: str, options: dict | None = None) -> tuple[dict, bool]:
        obj, deleted_now = await super().delete(ctx, namespace, name, options)
        return self._out(obj), deleted_now
