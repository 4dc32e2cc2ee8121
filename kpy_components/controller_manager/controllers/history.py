"""ControllerRevisions: the pod-template history DaemonSets and StatefulSets keep, which `kubectl rollout
history|undo` reads (Kubernetes' controller/history package and the DaemonSet controller's constructHistory and
cleanupHistory).

A revision holds the patch that restores its owner's template, `{"spec": {"template": {..., "$patch": "replace"}}}`
(getPatch), is named `<owner>-<hash>` and labelled with the template's labels plus `controller-revision-hash:
<hash>`, carries the owner's annotations, and is controlled by its owner. The hash is pods.template_hash of the
template and the owner's status.collisionCount (FNV over canonical JSON: values differ from Kubernetes' but are as
stable). A template seen before re-uses its revision, renumbered as the newest (what a rollback does); a new one
gets the next number. A name taken by a different template is a collision: collisionCount goes up and the hash
changes. Revisions other than the update revision beyond spec.revisionHistoryLimit (default 10) are deleted oldest
first, never one that pods still run.

Pure functions first; `RevisionHistory` does the reading (a shared informer) and writing (the API).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from kpy_components.api import meta
from kpy_components.api.errors import APIError
from kpy_components.client import is_already_exists, is_not_found

from ..controller import Controller, new_controller_ref
from . import pods as podutil

log = logging.getLogger(__name__)
HASH_LABEL = "controller-revision-hash"  # apps/v1 ControllerRevisionHashLabelKey
DEFAULT_HISTORY_LIMIT = 10  # spec.revisionHistoryLimit's default for DaemonSets and StatefulSets
_PREFIX_MAX = 223  # ControllerRevisionName: 223 + "-" + hash stays within a 253-character name


# --- pure ---------------------------------------------------------------------------------------------------------

def _template(obj: dict) -> dict:
    """A comparable copy of an owner's spec.template (or of a revision's data): normalized as pods' templates are
    for hashing, without the `$patch` directive. Anything but an object there (a revision someone else wrote)
    counts as an empty template."""
    spec = obj.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    template = podutil.normalized_template(template if isinstance(template, dict) else {})
    template.pop("$patch", None)
    return template


def revision_data(owner: dict) -> dict:
    """getPatch: the strategic merge patch that puts the owner's current template back."""
    return {"spec": {"template": {**_template(owner), "$patch": "replace"}}}


def revision_hash(owner: dict, collision_count: int | None = None) -> str:
    return podutil.template_hash(_template(owner), collision_count)


def revision_name(owner_name: str, hash_value: str) -> str:
    return f"{owner_name[:_PREFIX_MAX]}-{hash_value}"


def number_of(revision: dict) -> int:
    value = revision.get("revision")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def holds_template(revision: dict, owner: dict) -> bool:
    """Match: the revision restores exactly the owner's current template."""
    data = revision.get("data")
    return isinstance(data, dict) and _template(data) == _template(owner)


def new_revision(owner: dict, number: int, collision_count: int | None = None) -> dict:
    """NewControllerRevision (not yet created) for the owner's current template."""
    hash_value = revision_hash(owner, collision_count)
    template_labels = (_template(owner).get("metadata") or {}).get("labels") or {}
    metadata = {"name": revision_name(meta.name_of(owner), hash_value), "namespace": meta.namespace_of(owner),
                "labels": {**template_labels, HASH_LABEL: hash_value},
                "ownerReferences": [new_controller_ref(owner)]}
    annotations = meta.metadata(owner).get("annotations")
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": metadata,
            "data": revision_data(owner), "revision": number}


def choose(owner: dict, revisions: list[dict]) -> tuple[str, dict | None, int]:
    """What the owner's current template needs, as (action, revision, number):
    ("keep", r, n)       the newest revision already holds it;
    ("renumber", r, n)   an older one does (a rollback): it becomes number n, the newest;
    ("create", None, n)  none does: a new revision numbered n.
    A revision holding it that shares the highest number with another one is renumbered too: two quick template
    changes can number two revisions alike when the second sync's cache has not shown the first's new revision."""
    ordered = sorted(revisions, key=number_of)
    newest = number_of(ordered[-1]) if ordered else 0
    equal = [r for r in ordered if holds_template(r, owner)]
    if not equal:
        return "create", None, newest + 1
    if number_of(equal[-1]) == newest and sum(1 for r in ordered if number_of(r) == newest) == 1:
        return "keep", equal[-1], newest
    return "renumber", equal[-1], newest + 1


def history_limit(owner: dict) -> int:
    limit = (owner.get("spec") or {}).get("revisionHistoryLimit")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0 else DEFAULT_HISTORY_LIMIT


def expired(revisions: list[dict], update: dict, live: set[str], limit: int) -> list[dict]:
    """cleanupHistory: of the revisions other than `update`, those beyond `limit`, oldest first, skipping any
    whose name is in `live` (pods still run it, or it is the StatefulSet's current revision)."""
    update_name = meta.name_of(update)
    old = sorted((r for r in revisions if meta.name_of(r) != update_name), key=number_of)
    surplus = len(old) - limit
    doomed = []
    for revision in old:
        if surplus <= 0:
            break
        if meta.name_of(revision) in live:
            continue
        doomed.append(revision)
        surplus -= 1
    return doomed


# --- reading and writing -------------------------------------------------------------------------------------------

@dataclass
class Synced:
    update: dict  # the revision holding the owner's current template
    revisions: list[dict]  # every revision the owner controls, `update` included
    collision_count: int | None  # the owner's status.collisionCount to write

    @property
    def hash(self) -> str:
        return meta.labels_of(self.update).get(HASH_LABEL, "")


class RevisionHistory:
    """The ControllerRevisions of one owner kind: a shared informer whose events queue the owner, and the writes
    `sync` and `trim` make. Both are idempotent and safe on a cache that lags behind our own writes (a create of
    an existing revision finds it; a delete of a gone one is done)."""

    def __init__(self, controller: Controller, kind: str):
        self.controller, self.kind, self.client = controller, kind, controller.client
        self.informer = controller.informer("controllerrevisions", "apps")
        self.informer.add_handler(on_add=self._changed, on_update=lambda _old, new: self._changed(new),
                                  on_delete=self._changed)
        self.info = self.client.resource("controllerrevisions", "apps")

    def _changed(self, revision: dict) -> None:
        self.controller.enqueue_owner(revision, self.kind)

    async def sync(self, owner: dict) -> Synced:
        """constructHistory: claim the owner's revisions, then find, renumber or create the one holding its
        current template."""
        revisions = await podutil.claim(owner, self.informer.store.list(meta.namespace_of(owner)), self._patch)
        collision_count = (owner.get("status") or {}).get("collisionCount")
        action, revision, number = choose(owner, revisions)
        if action == "renumber":
            revision = await self._patch(revision, {"revision": number})
        elif action == "create":
            revision, collision_count = await self._create(owner, number, collision_count)
        return Synced(revision, [r for r in revisions if meta.name_of(r) != meta.name_of(revision)] + [revision],
                      collision_count)

    async def _create(self, owner: dict, number: int, collision_count: int | None) -> tuple[dict, int | None]:
        """CreateControllerRevision: on a name taken by a different template, count a collision and retry."""
        while True:
            revision = new_revision(owner, number, collision_count)
            try:
                created = await self.client.create(self.info, revision, meta.namespace_of(owner))
                log.info("Created ControllerRevision revision=%s/%s number=%d", meta.namespace_of(owner),
                         meta.name_of(created), number)
                return created, collision_count
            except APIError as error:
                if not is_already_exists(error):
                    raise
            existing = await self.client.get(self.info, meta.name_of(revision), meta.namespace_of(owner))
            if holds_template(existing, owner):
                return existing, collision_count  # ours from an earlier try that the cache has not shown yet
            collision_count = (collision_count or 0) + 1
            log.info("Found a ControllerRevision hash collision owner=%s/%s collisionCount=%d",
                     meta.namespace_of(owner), meta.name_of(owner), collision_count)

    async def trim(self, owner: dict, synced: Synced, live: set[str]) -> None:
        """Delete the revisions `expired` names (a revision already gone counts as deleted)."""
        for revision in expired(synced.revisions, synced.update, live, history_limit(owner)):
            await self.client.delete_exactly(self.info, revision)

    async def _patch(self, revision: dict, patch: dict) -> dict:
        return await self.client.patch(self.info, meta.name_of(revision), patch, meta.namespace_of(revision))

