"""The garbage collector (pkg/controller/garbagecollector): objects whose owners are gone are deleted, and the
three propagation policies of a delete behave as in Kubernetes:

- Background: the owner goes at once; its dependents then find their owner absent and are deleted.
- Foreground: the API server gives the owner deletionTimestamp and the `foregroundDeletion` finalizer; the
  collector deletes its dependents (those with dependents of their own in foreground too) and removes the
  finalizer once no dependent with blockOwnerDeletion is left, which lets the API server remove the owner.
- Orphan: the owner gets the `orphan` finalizer; the collector removes the owner's ownerReference from every
  dependent, then the finalizer.

Every resource the API server can list, watch and delete is watched (found through discovery, events excepted).
The dependency graph is an index owner uid -> dependents kept by the informers' handlers; the work queue holds
object keys (group, kind, namespace, name) and each reconcile re-reads the object and decides from the current
state of its owners. An owner missing from the cache is looked up through the API before a dependent is deleted,
so an informer that lags never makes the collector delete something whose owner exists.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from kpy_components.api.errors import APIError
from kpy_components.api.resources import ResourceInfo
from kpy_components.client import ClientConnectionError, Informer, is_not_found, run_workers

from ..controller import Controller
from .pods import is_terminating
from .discovery import discover

log = logging.getLogger(__name__)
ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"
IGNORED = {("", "events"), ("events.k8s.io", "events")}  # as upstream: too many, never owners worth tracking
DISCOVERY_RETRY_SECONDS = 5.0
SYNC_TIMEOUT = 60.0  # seconds to wait for every watched resource before collecting with what has synced
SOLID, WAITING, ABSENT = "solid", "waiting", "absent"  # an owner that stays / is deleting its dependents / is gone

Key = tuple[str, str, str, str]  # (group, kind, namespace, name)


@dataclass(frozen=True)
class Decision:
    """What to do with an object given its owners: keep it, drop some ownerReferences, or delete it."""
    action: str  # "keep" | "unlink" | "delete"
    policy: str | None = None  # propagation of the delete
    drop: tuple[str, ...] = ()  # owner uids whose references go


def decide(owner_states: dict[str, str], has_dependents: bool, finalizers: tuple[str, ...] = ()) -> Decision:
    """attemptToDeleteItem's rules for a dependent that is not being deleted; `owner_states` maps each owner uid
    to SOLID, WAITING (being deleted in foreground) or ABSENT."""
    if not owner_states:
        return Decision("keep")
    solid = [uid for uid, state in owner_states.items() if state == SOLID]
    gone = tuple(uid for uid, state in owner_states.items() if state != SOLID)
    if solid:  # another owner keeps it: just forget the owners that are gone or going
        return Decision("unlink", drop=gone) if gone else Decision("keep")
    if has_dependents and WAITING in owner_states.values():
        return Decision("delete", "Foreground")  # so the waiting owner also waits for our dependents
    policy = "Orphan" if ORPHAN in finalizers else "Foreground" if FOREGROUND in finalizers else "Background"
    return Decision("delete", policy)


def group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers = 5

    def setup(self) -> None:
        self.by_kind: dict[tuple[str, str], Informer] = {}
        self.dependents: dict[str, set[Key]] = {}  # owner uid -> keys of objects referencing it

    # --- the graph ------------------------------------------------------------------------------------------------
    def _watch(self, info: ResourceInfo) -> Informer:
        informer = self.context.informers.informer(info)
        kind = (info.group, info.kind)
        self.by_kind[kind] = informer
        informer.add_handler(on_add=lambda obj: self._changed(kind, None, obj),
                             on_update=lambda old, new: self._changed(kind, old, new),
                             on_delete=lambda obj: self._deleted(kind, obj))
        return informer

    def _key(self, kind: tuple[str, str], obj: dict) -> Key:
        metadata = obj["metadata"]
        return (*kind, metadata.get("namespace", ""), metadata["name"])

    def owner_key(self, reference: dict, namespace: str) -> Key | None:
        """The key of an ownerReference's object (namespace "" for cluster-scoped owners); None for an unknown
        kind or a namespaced owner of a cluster-scoped object (unresolvable, as in Kubernetes)."""
        kind = (group_of(reference.get("apiVersion", "")), reference.get("kind", ""))
        informer = self.by_kind.get(kind)
        if informer is None or (informer.info.namespaced and not namespace):
            return None
        return (*kind, namespace if informer.info.namespaced else "", reference.get("name", ""))

    def _changed(self, kind: tuple[str, str], old: dict | None, new: dict) -> None:
        key = self._key(kind, new)
        if old is not None:
            self._unindex(key, old)
        for reference in _references(new):
            self.dependents.setdefault(reference.get("uid", ""), set()).add(key)
        if _references(new) or _our_finalizers(new):
            self.queue.add(key)
        if old is not None and (is_terminating(new) or _references(old) != _references(new)):
            self._enqueue_owners(old)  # a foreground owner may be waiting for this one
        if _our_finalizers(new):
            for dependent in self.dependents.get(new["metadata"].get("uid", ""), ()):
                self.queue.add(dependent)

    def _deleted(self, kind: tuple[str, str], obj: dict) -> None:
        self._unindex(self._key(kind, obj), obj)
        for dependent in self.dependents.get(obj["metadata"].get("uid", ""), ()):
            self.queue.add(dependent)
        self._enqueue_owners(obj)

    def _unindex(self, key: Key, obj: dict) -> None:
        for reference in _references(obj):
            keys = self.dependents.get(reference.get("uid", ""))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.dependents[reference.get("uid", "")]

    def _enqueue_owners(self, obj: dict) -> None:
        for reference in _references(obj):
            owner = self.owner_key(reference, obj["metadata"].get("namespace", ""))
            if owner is not None:
                self.queue.add(owner)

    def cached(self, key: Key) -> dict | None:
        informer = self.by_kind.get(key[:2])
        if informer is None:
            return None
        return informer.store.get_object(key[2] or None, key[3])

    # --- running --------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Discover what to watch (retrying until the API answers), wait for those informers, then work."""
        while True:
            try:
                discovered = await discover(self.client)
                break
            except (APIError, ClientConnectionError) as error:
                log.warning("Failed discovery error=%s retry_in=%.0fs", error, DISCOVERY_RETRY_SECONDS)
                await asyncio.sleep(DISCOVERY_RETRY_SECONDS)
        for group_version, why in discovered.failures.items():
            log.warning("Not collecting group version=%s error=%s", group_version, why)
        informers = [self._watch(info) for info in discovered.supporting("list", "watch", "delete")
                     if (info.group, info.plural) not in IGNORED]
        self.context.informers.start()
        synced = await asyncio.gather(*(informer.wait_for_sync(SYNC_TIMEOUT) for informer in informers))
        late = [informer.info.qualified for informer, done in zip(informers, synced) if not done]
        if late:  # e.g. not allowed to list them: collect elsewhere rather than nowhere (as upstream does)
            log.warning("Collecting before these resources synced resources=%s", ",".join(late))
        log.info("Garbage collector synced resources=%d", len(informers) - len(late))
        try:
            await run_workers(self.queue, self.reconcile, self.workers)
        finally:
            self.queue.shut_down()

    # --- decisions ------------------------------------------------------------------------------------------------
    async def reconcile(self, key: Key) -> None:
        obj = self.cached(key)
        if obj is None:
            return
        finalizers = tuple(obj["metadata"].get("finalizers") or ())
        if is_terminating(obj):
            if ORPHAN in finalizers:
                await self._orphan_dependents(key, obj)
            elif FOREGROUND in finalizers:
                await self._delete_dependents(key, obj)
            return
        references = _references(obj)
        if not references:
            return
        namespace = key[2]
        states = {reference.get("uid", ""): await self._owner_state(reference, namespace) for reference in references}
        decision = decide(states, bool(self.dependents.get(obj["metadata"]["uid"])), finalizers)
        if decision.action == "unlink":
            await self._drop_references(key, obj["metadata"]["uid"], set(decision.drop))
        elif decision.action == "delete":
            await self._delete(key, obj, decision.policy)

    async def _owner_state(self, reference: dict, namespace: str) -> str:
        owner_key = self.owner_key(reference, namespace)
        if owner_key is None:
            return SOLID  # unknown kind or unresolvable: never collect on a guess
        owner = self.cached(owner_key)
        if owner is None or owner["metadata"].get("uid") != reference.get("uid"):
            owner = await self._live(owner_key)  # the cache may lag behind a fresh owner
        if owner is None or owner["metadata"].get("uid") != reference.get("uid"):
            return ABSENT
        if is_terminating(owner) and FOREGROUND in (owner["metadata"].get("finalizers") or ()):
            return WAITING
        return SOLID

    async def _live(self, key: Key) -> dict | None:
        informer = self.by_kind[key[:2]]
        try:
            return await self.client.get(informer.info, key[3], key[2] or None)
        except APIError as error:
            if is_not_found(error):
                return None
            raise

    async def _delete(self, key: Key, obj: dict, policy: str) -> None:
        info = self.by_kind[key[:2]].info
        if not await self.client.delete_exactly(info, obj, propagation_policy=policy):
            return  # gone already, or a new object under the same name
        log.info("Deleted dependent resource=%s namespace=%s name=%s propagation=%s", info.qualified, key[2],
                 key[3], policy)

    async def _delete_dependents(self, key: Key, owner: dict) -> None:
        """Foreground: delete every dependent; the finalizer goes once no blocking dependent is left."""
        uid = owner["metadata"]["uid"]
        blocking = []
        for dependent_key in list(self.dependents.get(uid, ())):
            dependent = self.cached(dependent_key)
            if dependent is None:
                continue
            if any(r.get("uid") == uid and r.get("blockOwnerDeletion") for r in _references(dependent)):
                blocking.append(dependent_key)
            if not is_terminating(dependent):
                self.queue.add(dependent_key)
        if not blocking:
            await self._remove_finalizer(key, owner, FOREGROUND)

    async def _orphan_dependents(self, key: Key, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for dependent_key in list(self.dependents.get(uid, ())):
            await self._drop_references(dependent_key, None, {uid})
        await self._remove_finalizer(key, owner, ORPHAN)

    async def _drop_references(self, key: Key, uid: str | None, owners: set[str]) -> None:
        """Remove the references to `owners` from the object at `key` (re-read, with its resourceVersion as the
        precondition: a concurrent change makes this fail with a conflict and the key is retried)."""
        current = await self._live(key)
        if current is None or (uid and current["metadata"].get("uid") != uid):
            return
        kept = [r for r in _references(current) if r.get("uid") not in owners]
        if len(kept) == len(_references(current)):
            return
        patch = {"metadata": {"ownerReferences": kept or None,
                              "resourceVersion": current["metadata"]["resourceVersion"]}}
        await self._patch(key, patch)

    async def _remove_finalizer(self, key: Key, obj: dict, finalizer: str) -> None:
        current = await self._live(key)
        if current is None or current["metadata"].get("uid") != obj["metadata"]["uid"]:
            return
        finalizers = current["metadata"].get("finalizers") or []
        if finalizer not in finalizers:
            return
        kept = [f for f in finalizers if f != finalizer]
        await self._patch(key, {"metadata": {"finalizers": kept or None,
                                             "resourceVersion": current["metadata"]["resourceVersion"]}})
        log.info("Removed finalizer finalizer=%s resource=%s namespace=%s name=%s", finalizer,
                 self.by_kind[key[:2]].info.qualified, key[2], key[3])

    async def _patch(self, key: Key, patch: dict) -> None:
        try:
            await self.client.patch(self.by_kind[key[:2]].info, key[3], patch, key[2] or None)
        except APIError as error:
            if not is_not_found(error):
                raise


def _references(obj: dict) -> list[dict]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or ())


def _our_finalizers(obj: dict) -> bool:
    """Being deleted with a finalizer the collector has to act on."""
    finalizers = (obj.get("metadata") or {}).get("finalizers") or ()
    return is_terminating(obj) and (ORPHAN in finalizers or FOREGROUND in finalizers)
