"""A CRD version other than the storage version, served from the same objects. Conversion strategy None (as
upstream): only apiVersion differs. Strategy Webhook: the CRD's conversion webhook converts (conversion_webhook.py),
objects going to storage and coming back, so the store validates, admits and patches in the served version.
Objects are written in the storage version and read back as the version asked for; requests are validated with the
served version's own schema (its strategy)."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from kpy_components.api.resources import ResourceInfo
from kpy_components.apiserver.storage.interface import Event, Storage

from ..registry.store import Store
from ..registry.strategy import Strategy
from .conversion_webhook import ConversionWebhook, ConvertingStorage, caller_for, webhook_of


class _StoredAs:
    """The storage, with new objects written as the storage version (every other write keeps what is stored)."""

    def __init__(self, storage: Storage, api_version: str):
        self._storage, self._api_version = storage, api_version

    async def create(self, key: str, obj: dict, ttl: int | None = None) -> dict:
        return await self._storage.create(key, dict(obj, apiVersion=self._api_version), ttl)

    def __getattr__(self, name: str):
        return getattr(self._storage, name)


class ServedVersion(Store):
    def __init__(self, stored: Store, info: ResourceInfo, strategy: Strategy, api=None):
        webhook = webhook_of(info)
        self.converter = None if webhook is None else ConversionWebhook(caller_for(api), info, webhook)
        storage = _StoredAs(stored.storage, stored.info.api_version) if self.converter is None else \
            ConvertingStorage(stored.storage, self.converter, stored.info.api_version, info.api_version)
        super().__init__(info, strategy, storage, cache=stored.cache, namespaces=stored.namespaces)

    def _as_served(self, obj):
        """The object as this version (a shallow copy: cached objects are never changed)."""
        if isinstance(obj, dict) and obj.get("apiVersion") not in (None, self.info.api_version):
            return dict(obj, apiVersion=self.info.api_version)
        return obj

    async def _out(self, obj):
        if self.converter is None or not isinstance(obj, dict):
            return self._as_served(obj)
        return (await self.converter.convert([obj], self.info.api_version))[0]

    async def create(self, ctx, namespace: str, obj: dict) -> dict:
        return await self._out(await super().create(ctx, namespace, obj))

    async def get(self, namespace: str, name: str, resource_version: str = "") -> dict:
        return await self._out(await super().get(namespace, name, resource_version))

    async def peek(self, namespace: str, name: str) -> dict | None:
        return await self._out(await super().peek(namespace, name))

    async def list(self, namespace: str = "", **options) -> dict:
        listed = await super().list(namespace, **options)
        if self.converter is None:
            listed["items"] = [self._as_served(item) for item in listed["items"]]
        else:  # one review for the page
            listed["items"] = await self.converter.convert(listed["items"], self.info.api_version)
        return listed

    async def watch(self, namespace: str = "", **options) -> AsyncIterator[Event]:
        async for event in super().watch(namespace, **options):
            if event.type == "BOOKMARK":
                yield event
            else:
                yield dataclasses.replace(event, object=await self._out(event.object))

    async def write(self, ctx, namespace: str, name: str, desired, subresource: str) -> dict:
        return await self._out(await super().write(ctx, namespace, name, desired, subresource))

    async def delete(self, ctx, namespace: str, name: str, options: dict | None = None) -> tuple[dict, bool]:
        obj, deleted_now = await super().delete(ctx, namespace, name, options)
        return await self._out(obj), deleted_now
