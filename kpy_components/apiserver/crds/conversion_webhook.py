"""CRD conversion strategy `Webhook`: objects are converted between a CRD's versions by POSTing a ConversionReview
(apiextensions.k8s.io/v1) to the CRD's conversion webhook, over TLS trusted through its caBundle, at its `url` or
its `service` (reached through the API server's service resolution, as admission webhooks are: the same Caller).

As upstream's webhook converter: only objects not already in the desired version are sent (in one review); the
answer must carry the request's uid, result.status Success and as many objects as were sent, each in the desired
apiVersion; of the metadata only labels and annotations may change (the rest is kept from the object sent).
Failures are 500 InternalError worded `conversion webhook for <group/version>, Kind=<kind> failed: <why>`.
"""
from __future__ import annotations

import uuid

from kpy_components.api import errors
from kpy_components.api.resources import ResourceInfo

from ..admission.webhooks import Caller
from ..http.context import resolve

_DEFAULT_TIMEOUT = 30  # seconds: upstream's conversion webhook client timeout
_callers: dict[int, Caller] = {}  # one per API (its aiohttp session), for every webhook-converted CRD


def caller_for(api) -> Caller:
    caller = _callers.get(id(api))
    if caller is None:
        caller = _callers[id(api)] = Caller(api)
    return caller


async def close_callers() -> None:
    """Close the conversion webhooks' HTTP sessions (at server stop)."""
    callers = list(_callers.values())
    _callers.clear()
    for caller in callers:
        await caller.close()


def webhook_of(info: ResourceInfo) -> dict | None:
    """A served version's conversion webhook (spec.conversion.webhook), or None when its strategy is not Webhook."""
    conversion = info.extra.get("conversion") or {}
    return conversion.get("webhook") or {} if conversion.get("strategy") == "Webhook" else None


class ConversionWebhook:
    def __init__(self, caller, info: ResourceInfo, webhook: dict):
        self.caller, self.info, self.webhook = caller, info, webhook

    def _failed(self, api_version: str, why: str) -> errors.APIError:
        return errors.APIError(500, "InternalError", f"Internal error occurred: conversion webhook for "
                                                      f"{api_version}, Kind={self.info.kind} failed: {why}")

    async def convert(self, objects: list[dict], api_version: str) -> list[dict]:
        """`objects` as `api_version` (a new list; objects already in it are returned as they are)."""
        indexes = [i for i, obj in enumerate(objects) if obj and obj.get("apiVersion") != api_version]
        if not indexes:
            return list(objects)
        sent = [objects[i] for i in indexes]
        source = sent[0].get("apiVersion", "")
        if "v1" not in (self.webhook.get("conversionReviewVersions") or ["v1"]):
            raise self._failed(source, "no supported conversion review versions")
        uid = str(uuid.uuid4())
        review = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
                  "request": {"uid": uid, "desiredAPIVersion": api_version, "objects": sent}}
        try:
            response = await self.caller.call({"clientConfig": self.webhook.get("clientConfig") or {},
                                               "timeoutSeconds": _DEFAULT_TIMEOUT}, review)
        except RuntimeError as error:  # the Caller words call failures for admission: upstream's have no prefix
            raise self._failed(source, str(error).removeprefix("failed to call webhook: ")) from error
        result = response.get("result") or {}
        if result.get("status") != "Success":
            raise self._failed(source, result.get("message") or
                               f"response.result.status was '{result.get('status', '')}', not 'Success'")
        converted = response.get("convertedObjects")
        if not isinstance(converted, list) or len(converted) != len(sent):
            count = len(converted) if isinstance(converted, list) else 0
            raise self._failed(source, f"returned {count} objects, expected {len(sent)}")
        out = list(objects)
        for index, original, new in zip(indexes, sent, converted, strict=True):
            out[index] = self._checked(index, original, new, api_version, source)
        return out

    def _checked(self, index: int, original: dict, new, api_version: str, source: str) -> dict:
        if not isinstance(new, dict):
            raise self._failed(source, f"invalid converted object at index {index}: not an object")
        if new.get("apiVersion") != api_version:
            raise self._failed(source, f'invalid converted object at index {index}: invalid apiVersion '
                                       f'"{new.get("apiVersion", "")}", expected "{api_version}"')
        if new.get("kind") != original.get("kind"):
            raise self._failed(source, f'invalid converted object at index {index}: invalid kind '
                                       f'"{new.get("kind", "")}", expected "{original.get("kind")}"')
        metadata = dict(original.get("metadata") or {})
        changed = new.get("metadata") or {}
        for field in ("labels", "annotations"):
            if changed.get(field):
                metadata[field] = changed[field]
            else:
                metadata.pop(field, None)
        return dict(new, metadata=metadata)


class ConvertingStorage:
    """A storage as one served version sees it: objects go in converted to the storage version and come out
    converted to the served one, so the generic store validates, admits and patches in the served version."""

    def __init__(self, storage, converter: ConversionWebhook, stored_version: str, served_version: str):
        self._storage, self._converter = storage, converter
        self._stored, self._served = stored_version, served_version

    async def _to(self, obj, api_version: str):
        return (await self._converter.convert([obj], api_version))[0] if isinstance(obj, dict) and obj else obj

    async def create(self, key: str, obj: dict, ttl: int | None = None) -> dict:
        stored = await self._storage.create(key, await self._to(dict(obj, apiVersion=obj.get("apiVersion") or
                                                                      self._served), self._stored), ttl)
        return await self._to(stored, self._served)

    async def get(self, key: str, *args, **kwargs) -> dict:
        return await self._to(await self._storage.get(key, *args, **kwargs), self._served)

    async def guaranteed_update(self, key: str, update, **kwargs) -> dict:
        kwargs.pop("suggestion", None)  # the watch cache's copy is in the storage version

        async def converted(current: dict) -> dict:
            new = await resolve(update(await self._to(current, self._served)))
            return await self._to(new, self._stored)
        return await self._to(await self._storage.guaranteed_update(key, converted, **kwargs), self._served)

    async def delete(self, key: str, **kwargs) -> dict:
        return await self._to(await self._storage.delete(key, **kwargs), self._served)

    def __getattr__(self, name: str):
        return getattr(self._storage, name)
