"""The one generic store: Kubernetes' registry semantics over any `Storage`, specialised by a `Strategy`.

Writes: create (generateName, uid, creationTimestamp, generation, namespace must exist), update (optimistic
concurrency on resourceVersion, status/spec split, generation bump), patch (the four patch types, apply creating
missing objects), delete (graceful deletion, finalizers, propagation finalizers for the garbage collector),
deletecollection. Reads: get, list (selectors, limit/continue, resourceVersion semantics), watch. `dryRun=All` runs
everything but the write; `fieldValidation` Strict rejects unknown fields, Warn reports them as warnings.
"""
from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import datetime, timedelta, timezone

from kpy_components.api import errors, meta, selectors
from kpy_components.api.errors import Cause
from kpy_components.api.resources import ResourceInfo
from kpy_components.apiserver.storage.interface import Conflict, Event, KeyNotFound, Preconditions, Storage
from kpy_components.apiserver.storage.cache import WatchCache

from . import patching
from .context import WriteContext, storage_errors
from .schema import DecodingError
from .strategy import Strategy

# Kubernetes' generateName suffix alphabet: no vowels (no words), no look-alikes.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SYSTEM_METADATA = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                    "name", "namespace", "selfLink")
_PROPAGATION_FINALIZERS = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}


class Store:
    def __init__(self, info: ResourceInfo, strategy: Strategy, storage: Storage, *, cache: WatchCache | None = None,
                 namespaces: Store | None = None):
        """`cache` (a watch cache over the same storage) serves watches and resourceVersion=0 lists; `namespaces`
        is the namespace store used to check that a namespace exists before creating in it."""
        self.info = info
        self.strategy = strategy
        self.storage = storage
        self.cache = cache or storage
        self.namespaces = namespaces

    # --- keys and identity ---------------------------------------------------------------------------------------
    def key(self, namespace: str, name: str) -> str:
        return meta.object_key(self.info, namespace or None, name)

    def prefix(self, namespace: str = "") -> str:
        return meta.key_prefix(self.info, namespace or None)

    def _stamp_identity(self, obj: dict, namespace: str, kind: str, api_version: str) -> None:
        """apiVersion/kind must be this resource's (missing ones are filled in); the namespace must match the URL."""
        given_version, given_kind = obj.get("apiVersion"), obj.get("kind")
        if given_version and given_version != api_version:
            raise errors.bad_request(f"the API version in the data ({given_version}) does not match the expected "
                                     f"API version ({api_version})")
        if given_kind and given_kind != kind:
            raise errors.bad_request(f"the object provided is unrecognized (must be of type {kind}): the body is a "
                                     f"{given_kind} ({given_version or api_version})")
        obj["apiVersion"], obj["kind"] = api_version, kind
        metadata = meta.metadata(obj)
        if self.info.namespaced:
            if metadata.get("namespace") and namespace and metadata["namespace"] != namespace:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent "
                                         "on the request")
            metadata["namespace"] = namespace or metadata.get("namespace", "")
        else:
            metadata.pop("namespace", None)

    def check_fields(self, ctx: WriteContext, obj: dict, kind: str, api_version: str) -> None:
        """fieldValidation: Strict -> 400 naming every unknown field; Warn -> one warning each; Ignore -> nothing.
        A value of the wrong shape (labels as a string) is a 400 whatever the validation, as a decoding error."""
        version = api_version.rpartition("/")[2]
        try:
            unknown = ctx.body_unknown_fields + self.strategy.unknown_fields(obj, api_version, kind)
        except DecodingError as exc:
            raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {exc}') from exc
        if not unknown or ctx.field_validation == "Ignore":
            return
        problems = [f'unknown field "{path}"' for path in unknown]
        if ctx.field_validation == "Strict":
            raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: strict '
                                     f'decoding error: {", ".join(problems)}')
        ctx.warnings.extend(problems)

    def _invalid(self, obj: dict, causes: list[Cause]) -> None:
        if causes:
            raise errors.invalid(self.info.kind, meta.name_of(obj), causes, self.info.group)

    async def require_namespace(self, namespace: str, name: str) -> None:
        """404 when the namespace is missing; 403 when it is terminating (NamespaceLifecycle's wording)."""
        if not self.info.namespaced or self.namespaces is None:
            return
        current = await self.namespaces.peek("", namespace) or await self.namespaces.get("", namespace,
                                                                                      resource_version="0")
        if (current.get("metadata") or {}).get("deletionTimestamp"):
            raise errors.APIError(403, "Forbidden", f'{self.info.qualified} "{name}" is forbidden: unable to '
                                  f"create new content in namespace {namespace} because it is being terminated",
                                  {"causes": [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                               "message": f"namespace {namespace} is being terminated"}]})

    # --- create --------------------------------------------------------------------------------------------------
    async def create(self, ctx: WriteContext, namespace: str, obj: dict) -> dict:
        obj = meta.deep_copy(obj) if isinstance(obj, dict) else obj
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the request body must be a {self.info.kind} object")
        self._stamp_identity(obj, namespace, self.info.kind, self.info.api_version)
        self.check_fields(ctx, obj, self.info.kind, self.info.api_version)
        metadata = meta.metadata(obj)
        if not metadata.get("name") and metadata.get("generateName"):
            suffix = "".join(random.choices(_NAME_ALPHABET, k=5))
            metadata["name"] = f"{metadata['generateName']}{suffix}"
        if metadata.get("name"):
            await self.require_namespace(metadata.get("namespace", ""), metadata["name"])
        for system in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
                       "resourceVersion", "generation"):
            metadata.pop(system, None)
        metadata["uid"] = meta.new_uid()
        metadata["creationTimestamp"] = meta.now_rfc3339()
        if self.strategy.tracks_generation:
            metadata["generation"] = 1
        self.strategy.prepare_for_create(obj)
        await ctx.admission("CREATE", obj, None)
        self._invalid(obj, self.strategy.validate_metadata(obj) + self.strategy.validate(obj))
        await self.strategy.allocate(ctx, obj, None)
        patching.track_update(ctx, None, obj)
        if ctx.dry_run:
            return obj
        try:
            with storage_errors(self.info, metadata["name"]):
                return await self.storage.create(self.key(namespace, metadata["name"]), obj)
        except BaseException:
            await self.strategy.release(obj)
            raise

    # --- reads ---------------------------------------------------------------------------------------------------
    async def get(self, namespace: str, name: str, resource_version: str = "") -> dict:
        """resourceVersion "" reads from storage (quorum); "0" from the watch cache, falling back to storage when
        the cache has no such object yet (Kubernetes' listers with a live lookup on a miss)."""
        key = self.key(namespace, name)
        with storage_errors(self.info, name):
            if resource_version == "0" and self.cache is not self.storage:
                try:
                    return await self.cache.get(key, 0)
                except KeyNotFound:
                    pass
            return await self.storage.get(key)

    def matcher(self, label_selector: str, field_selector: str):
        """A predicate for the selectors (None: everything matches); 400 for malformed selectors."""
        if not label_selector and not field_selector:
            return None  # most lists and watches, and every internal one: nothing to parse
        labels = selectors.parse_label_selector(label_selector)
        fields = selectors.parse_field_selector(field_selector, self.info)
        if labels.empty() and fields.empty():
            return None
        return lambda obj: labels.matches(meta.labels_of(obj)) and fields.matches(obj)

    async def list(self, namespace: str = "", *, label_selector: str = "", field_selector: str = "", limit: int = 0,
                   continue_token: str = "", resource_version: str = "", resource_version_match: str = "") -> dict:
        """A `<Kind>List`. resourceVersion "" = a quorum read, "0" = whatever the cache has (limit ignored, as in
        Kubernetes), N with resourceVersionMatch=Exact = the state at N; selectors filter before paging."""
        matches = self.matcher(label_selector, field_selector)
        revision = None
        if resource_version_match == "Exact":
            revision = _revision(resource_version)
        elif resource_version_match not in ("", "NotOlderThan"):
            raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{resource_version_match}": '
                                     'supported values: "Exact", "NotOlderThan"')
        from_cache = resource_version == "0" and not continue_token and self.cache is not self.storage
        source = self.cache if from_cache else self.storage
        if from_cache:
            limit, revision = 0, 0
        items: list[dict] = []
        token, remaining = continue_token or None, None
        with storage_errors(self.info):
            while True:
                page = await source.list(self.prefix(namespace), revision=revision, limit=max(limit - len(items), 0)
                                         if limit else 0, continue_token=token)
                items.extend(o for o in page.items if matches is None or matches(o))
                token, remaining, list_revision = page.continue_token, page.remaining, page.revision
                if not token or not limit or len(items) >= limit:
                    break
        list_meta = {"resourceVersion": str(list_revision)}
        if token:
            list_meta["continue"] = token
            if remaining is not None and matches is None:
                list_meta["remainingItemCount"] = remaining
        return {"kind": f"{self.info.kind}List", "apiVersion": self.info.api_version, "metadata": list_meta,
                "items": items}

    async def watch(self, namespace: str = "", *, label_selector: str = "", field_selector: str = "",
                    resource_version: str = "", bookmarks: bool = False) -> AsyncIterator[Event]:
        """Events for matching objects. resourceVersion ""/"0": the current state as ADDED first, then changes;
        N: changes after N (410 Gone when N is compacted). An object that stops matching the selectors is
        reported DELETED, one that starts matching ADDED (Kubernetes' filtered watch semantics)."""
        matches = self.matcher(label_selector, field_selector) or (lambda obj: True)
        if resource_version in ("", "0"):
            initial = await self.list(namespace, resource_version=resource_version)
            start = int(initial["metadata"]["resourceVersion"])
            for obj in initial["items"]:
                if matches(obj):
                    yield Event("ADDED", obj, _revision(obj["metadata"]["resourceVersion"]))
        else:
            start = _revision(resource_version)
        options = {"bookmarks": bookmarks} if self.cache is not self.storage else {}
        last = start
        while True:  # the cache ends a watch that fell behind or re-listed: resume from the last revision seen
            with storage_errors(self.info):
                async with aclosing(self.cache.watch(self.prefix(namespace), last, **options)) as events:
                    async for event in events:
                        last = max(last, event.revision)
                        filtered = _filtered(event, matches)
                        if filtered is not None:
                            yield filtered

    # --- update and patch ----------------------------------------------------------------------------------------
    async def update(self, ctx: WriteContext, namespace: str, name: str, obj: dict,
                     subresource: str = "") -> tuple[dict, bool]:
        """PUT. Returns (stored object, created)."""
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the request body must be a {self.info.kind} object")
        obj = meta.deep_copy(obj)
        self._stamp_identity(obj, namespace, self.info.kind, self.info.api_version)
        body_name = meta.name_of(obj)
        if body_name and body_name != name:
            raise errors.bad_request(f"the name of the object ({body_name}) does not match the name on the URL "
                                     f"({name})")
        meta.metadata(obj)["name"] = name
        self.check_fields(ctx, obj, self.info.kind, self.info.api_version)
        if self.strategy.allow_create_on_update and not subresource:
            try:
                await self.get(namespace, name)
            except errors.APIError as error:
                if error.code != 404:
                    raise
                return await self.create(ctx, namespace, obj), True
        return await self.write(ctx, namespace, name, lambda current: obj, subresource), False

    async def patch(self, ctx: WriteContext, namespace: str, name: str, patch_type: str, body,
                    subresource: str = "") -> tuple[dict, bool]:
        """PATCH with one of the four patch content types. Returns (stored object, created): server-side apply
        creates a missing object; the other types answer 404."""
        patching.check_patch(patch_type, body)
        if patch_type == patching.APPLY:
            try:
                await self.get(namespace, name)
            except errors.APIError as error:
                if error.code != 404 or subresource:
                    raise
                created = patching.apply_to_missing(ctx, self.info, namespace, name, body)
                self.check_fields(ctx, created, self.info.kind, self.info.api_version)
                return await self.create(ctx, namespace, created), True

        def patched(current: dict) -> dict:
            result = patching.apply_patch(ctx, self.info, patch_type, current, body, subresource)
            if patch_type != patching.JSON_PATCH:
                self.check_fields(ctx, body if patch_type != patching.APPLY else result, self.info.kind,
                                  self.info.api_version)
            return result

        return await self.write(ctx, namespace, name, patched, subresource), False

    async def write(self, ctx: WriteContext, namespace: str, name: str, desired, subresource: str) -> dict:
        """Read-modify-write: `desired(current)` gives the object the client wants; the strategy and admission turn
        it into what is stored. A client resourceVersion that differs from the stored one is a 409 Conflict.
        `desired` gets a copy of the current object; what it returns is copied again (it may hold parts of a
        request body, used again when a write races), unless it is that copy, changed in place."""

        seen: list[dict] = []

        async def update(current: dict) -> dict:
            seen[:] = [current]
            mine = meta.deep_copy(current)
            wanted = desired(mine)
            return await self._updated(ctx, current, wanted if wanted is mine else meta.deep_copy(wanted),
                                       subresource)

        key = self.key(namespace, name)
        with storage_errors(self.info, name):
            if ctx.dry_run:
                return await update(await self.storage.get(key))
            stored = await self.storage.guaranteed_update(key, update, suggestion=await self._cached(key))
        if seen:
            await self.strategy.release(seen[0], stored)
        return await self._finish_deletion(stored)

    async def _updated(self, ctx: WriteContext, current: dict, new: dict, subresource: str) -> dict:
        if not isinstance(new, dict):
            raise errors.bad_request(f"the patched object is not a {self.info.kind} object")
        wanted_version = (new.get("metadata") or {}).get("resourceVersion")
        if wanted_version and wanted_version != current["metadata"].get("resourceVersion"):
            raise errors.conflict(self.info.plural, meta.name_of(current), self.info.group)
        new["apiVersion"], new["kind"] = current.get("apiVersion"), current.get("kind")
        if subresource == "status":
            new = self.strategy.prepare_for_status_update(new, current)
        elif subresource not in ("", "scale"):
            pass  # binding, finalize: the subresource's handler built `new` from `current` itself
        else:
            metadata, old_metadata = meta.metadata(new), current.get("metadata") or {}
            for system in _SYSTEM_METADATA:
                if system in old_metadata:
                    metadata[system] = old_metadata[system]
                else:
                    metadata.pop(system, None)
            self.strategy.prepare_for_update(new, current)
            if self.strategy.tracks_generation and self.strategy.spec_changed(new, current):
                metadata["generation"] = old_metadata.get("generation", 0) + 1
        meta.metadata(new)["resourceVersion"] = current["metadata"].get("resourceVersion")
        await ctx.admission("UPDATE", new, current)
        checks = self.strategy.validate_update(new, current) if subresource in ("", "scale", "status") else \
            self.strategy.validate(new)
        self._invalid(new, self.strategy.validate_metadata(new) + checks)
        await self.strategy.allocate(ctx, new, current)
        if subresource != "binding":  # as upstream, binding writes the pod without the field manager
            patching.track_update(ctx, current, new, subresource)
        return new

    async def peek(self, namespace: str, name: str) -> dict | None:
        """The watch cache's own object (None: not there, or no cache), for a read-only look: never change it."""
        return await self._cached(self.key(namespace, name))

    async def _cached(self, key: str) -> dict | None:
        """The watch cache's object at `key`, for a write to try instead of reading first (None: not cached). Not
        a copy: guaranteed_update only reads a suggestion (its update function gets a copy)."""
        return None if self.cache is self.storage else await self.cache.peek(key)

    async def _finish_deletion(self, stored: dict) -> dict:
        """An object being deleted whose last finalizer went away (and whose grace period is over) is removed."""
        metadata = stored.get("metadata") or {}
        if (metadata.get("deletionTimestamp") and not self.strategy.blocks_deletion(stored)
                and not metadata.get("deletionGracePeriodSeconds")):
            try:
                removed = await self.storage.delete(self.key(metadata.get("namespace", ""), metadata["name"]),
                                                    preconditions=Preconditions(resource_version=metadata.get(
                                                        "resourceVersion")))
            except (KeyNotFound, Conflict):  # someone else changed or removed it first: their write wins
                return stored
            await self.strategy.release(removed)
            return removed
        return stored

    # --- delete --------------------------------------------------------------------------------------------------
    async def delete(self, ctx: WriteContext, namespace: str, name: str, options: dict | None = None
                     ) -> tuple[dict, bool]:
        """Returns (object, deleted_now). Graceful deletion or finalizers leave the object in place with
        deletionTimestamp set; otherwise it is removed and its last state returned. A write that lands between our
        read and the removal (a controller updating status) makes us read again and decide again, as upstream's
        storage does: only the client's own preconditions (uid, resourceVersion) make a delete conflict."""
        while True:
            try:
                return await self._delete_once(ctx, namespace, name, options or {})
            except _Changed:
                continue  # the object changed under us: read it again (its preconditions are checked again)

    async def _delete_once(self, ctx: WriteContext, namespace: str, name: str, options: dict) -> tuple[dict, bool]:
        """One attempt of delete; _Changed when the object changed after it was read."""
        current = await self.get(namespace, name)
        _check_delete_preconditions(self.info, current, options.get("preconditions") or {})
        grace = self.strategy.grace_period(current, options.get("gracePeriodSeconds"))
        finalizers = list((current.get("metadata") or {}).get("finalizers") or [])
        propagation = options.get("propagationPolicy") or ("Orphan" if options.get("orphanDependents") else "")
        if propagation not in ("", "Orphan", "Foreground", "Background"):
            raise errors.bad_request(f'propagationPolicy: Unsupported value: "{propagation}": supported values: '
                                     '"Foreground", "Background", "Orphan"')
        extra = _PROPAGATION_FINALIZERS.get(propagation)
        await ctx.admission("DELETE", None, current)
        pending = grace > 0 or self.strategy.blocks_deletion(current) or (extra and not ctx.dry_run)
        if pending:
            marked = self._mark_deleting(current, grace, extra)
            if ctx.dry_run:
                return marked, False
            key = self.key(namespace, name)
            with storage_errors(self.info, name):
                stored = await self.storage.guaranteed_update(
                    key, lambda obj: self._mark_deleting(obj, grace, extra))
            if not self.strategy.blocks_deletion(stored) and grace == 0:
                return await self._finish_deletion(stored), True
            return stored, False
        if ctx.dry_run:
            return current, True
        preconditions = Preconditions(resource_version=current["metadata"]["resourceVersion"])
        with storage_errors(self.info, name):
            try:
                removed = await self.storage.delete(self.key(namespace, name), preconditions=preconditions)
            except Conflict as exc:
                raise _Changed from exc
        await self.strategy.release(removed)
        return removed, True

    def _mark_deleting(self, obj: dict, grace: int, extra_finalizer: str | None) -> dict:
        obj = meta.deep_copy(obj)
        metadata = meta.metadata(obj)
        deadline = meta.format_rfc3339(datetime.now(timezone.utc) + timedelta(seconds=grace))
        if not metadata.get("deletionTimestamp") or grace < (metadata.get("deletionGracePeriodSeconds") or 0):
            metadata["deletionTimestamp"] = deadline
            metadata["deletionGracePeriodSeconds"] = grace
        if extra_finalizer and extra_finalizer not in (metadata.get("finalizers") or []):
            metadata["finalizers"] = [*(metadata.get("finalizers") or []), extra_finalizer]
        self.strategy.mark_deleting(obj)
        return obj

    async def delete_collection(self, ctx: WriteContext, namespace: str, options: dict | None = None, *,
                                label_selector: str = "", field_selector: str = "") -> dict:
        listed = await self.list(namespace, label_selector=label_selector, field_selector=field_selector)
        deleted = []
        for obj in listed["items"]:
            try:
                result, _ = await self.delete(ctx, meta.namespace_of(obj), meta.name_of(obj), options)
            except errors.APIError as error:
                if error.code == 404:  # removed meanwhile
                    continue
                raise
            deleted.append(result)
        listed["items"] = deleted
        return listed


class _Changed(Exception):
    """The object changed between a delete's read and its removal: read it again."""


def _revision(resource_version: str) -> int:
    try:
        value = int(resource_version)
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{resource_version}": must be a non-negative '
                                 "integer")
    return value


def _filtered(event: Event, matches) -> Event | None:
    """Kubernetes' filtered watch: objects entering the selection are ADDED, leaving it DELETED."""
    if event.type == "BOOKMARK":
        return event
    now = event.type != "DELETED" and matches(event.object)
    before = event.previous is not None and matches(event.previous)
    if event.type == "DELETED":
        return event if matches(event.object) else None
    if event.type == "ADDED":
        return event if now else None
    if now and before:
        return event
    if now:
        return Event("ADDED", event.object, event.revision, event.previous)
    if before:
        return Event("DELETED", event.object, event.revision, event.previous)
    return None


def _check_delete_preconditions(info: ResourceInfo, current: dict, preconditions: dict) -> None:
    metadata = current.get("metadata") or {}
    name = metadata.get("name", "")
    uid, version = preconditions.get("uid"), preconditions.get("resourceVersion")
    if uid and uid != metadata.get("uid"):
        raise errors.conflict(info.plural, name, info.group, f"Precondition failed: UID in precondition: {uid}, "
                              f"UID in object meta: {metadata.get('uid')}")
    if version and version != metadata.get("resourceVersion"):
        raise errors.conflict(info.plural, name, info.group, "Precondition failed: ResourceVersion in "
                              f"precondition: {version}, ResourceVersion in object meta: "
                              f"{metadata.get('resourceVersion')}")
