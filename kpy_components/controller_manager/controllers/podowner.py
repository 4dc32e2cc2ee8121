"""The base of controllers that own pods directly (ReplicaSet, DaemonSet, StatefulSet, Job): the owner and pod
informers wired to the queue, expectations lowered as the pod informer catches up, claiming pods, creating pods in
slow-start batches and deleting them, and writing status only when it changed.

Pod events map to owner keys as Kubernetes' controllers map them: a pod with a controller ownerReference of our
kind queues that owner; an orphan queues every owner whose selector matches it (one of them may adopt it).
"""
from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from kpy_components.api import meta
from kpy_components.api.errors import APIError
from kpy_components.client import is_not_found, key_of

from ..controller import Controller, controller_ref
from . import pods as podutil

log = logging.getLogger(__name__)
BURST_REPLICAS = 500  # at most this many creates or deletes per sync (Kubernetes' burstReplicas)


class PodOwnerController(Controller):
    kind: ClassVar[str]  # "ReplicaSet"
    plural: ClassVar[str]  # "replicasets"
    group: ClassVar[str]  # "apps"

    def setup(self) -> None:
        self.owners = self.informer(self.plural, self.group)
        self.owners.add_handler(on_add=self.enqueue, on_update=self._owner_updated, on_delete=self._owner_deleted)
        self.pods = self.informer("pods")
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)
        self.pods_info = self.client.resource("pods")
        self.owners_info = self.client.resource(self.plural, self.group)
        self.expectations = podutil.Expectations()

    # --- event handlers (quick: they only queue keys) ------------------------------------------------------------
    def _owner_updated(self, old: dict, new: dict) -> None:
        self.enqueue(new)

    def _owner_deleted(self, owner: dict) -> None:
        self.expectations.forget(key_of(owner))
        self.enqueue(owner)

    def _owner_key(self, pod: dict) -> str | None:
        reference = controller_ref(pod)
        if reference is None or reference.get("kind") != self.kind:
            return None
        owner = self.owners.store.get_object(meta.namespace_of(pod), reference.get("name", ""))
        if owner is None or meta.metadata(owner).get("uid") != reference.get("uid"):
            return None
        return key_of(owner)

    def _enqueue_matching(self, pod: dict) -> None:
        labels = meta.labels_of(pod)
        for owner in self.owners.store.list(meta.namespace_of(pod)):
            if podutil.selector_of(owner).matches(labels):
                self.enqueue(owner)

    def _pod_added(self, pod: dict) -> None:
        if podutil.is_terminating(pod):
            self._pod_deleted(pod)  # restarted controller: a pod being deleted is no new pod
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif controller_ref(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if podutil.is_terminating(new) and not podutil.is_terminating(old):
            key = self._owner_key(new)
            if key is not None:  # it left the active set: what the owner waited for
                self.expectations.deletion_observed(key, key_of(new))
        old_key, key = self._owner_key(old), self._owner_key(new)
        if old_key is not None and old_key != key:
            self.queue.add(old_key)
        if key is not None:
            self.queue.add(key)
            self.pod_changed(key, old, new)
        elif controller_ref(new) is None:
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.queue.add(key)

    def pod_changed(self, key: str, old: dict, new: dict) -> None:
        """Hook for subclasses (ReplicaSet looks again after minReadySeconds when a pod became ready)."""

    # --- reading -------------------------------------------------------------------------------------------------
    async def claimed_pods(self, owner: dict, include_inactive: bool = False) -> list[dict]:
        """The pods `owner` controls (adopting and releasing by selector): active ones, or also the finished and
        terminating ones when asked."""
        candidates = [pod for pod in self.pods.store.list(meta.namespace_of(owner))
                      if include_inactive or podutil.is_active(pod)]
        return await podutil.claim(owner, candidates, self._patch_pod)

    async def _patch_pod(self, pod: dict, patch: dict) -> None:
        await self.client.patch(self.pods_info, meta.name_of(pod), patch, meta.namespace_of(pod))

    # --- writing -------------------------------------------------------------------------------------------------
    async def create_pods(self, owner: dict, key: str, new_pods: list[dict]) -> APIError | None:
        """Create pods in slow-start batches (1, 2, 4, ...), stopping after a batch with a failure, so a quota or
        admission refusal costs one request, not hundreds. Expectations are raised first and lowered for every pod
        that will never appear. Returns the first error (also recorded as a FailedCreate event)."""
        new_pods = new_pods[:BURST_REPLICAS]
        self.expectations.expect_creations(key, len(new_pods))
        done, batch, first_error = 0, 1, None
        while done < len(new_pods) and first_error is None:
            chunk = new_pods[done:done + batch]
            results = await asyncio.gather(*(self._create_pod(owner, pod) for pod in chunk))
            for error in results:
                if error is not None:
                    self.expectations.creation_observed(key)
                    first_error = first_error or error
            done += len(chunk)
            batch *= 2
        for _ in new_pods[done:]:
            self.expectations.creation_observed(key)
        return first_error

    async def _create_pod(self, owner: dict, pod: dict) -> APIError | None:
        try:
            created = await self.client.create(self.pods_info, pod, meta.namespace_of(owner))
        except APIError as error:
            if error.code == 409 and error.reason == "AlreadyExists":
                return None  # ours from an earlier try (stable names): the informer will show it
            self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {error.message}")
            return error
        self.recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {meta.name_of(created)}")
        return None

    async def delete_pods(self, owner: dict, key: str, doomed: list[dict]) -> None:
        """Delete pods (all at once), expecting to see each go; a pod already gone counts as seen."""
        doomed = doomed[:BURST_REPLICAS]
        self.expectations.expect_deletions(key, [key_of(pod) for pod in doomed])
        errors = await asyncio.gather(*(self._delete_pod(owner, key, pod) for pod in doomed))
        failed = [error for error in errors if error is not None]
        if failed:
            raise failed[0]

    async def _delete_pod(self, owner: dict, key: str, pod: dict) -> APIError | None:
        try:
            deleted = await self.client.delete_exactly(self.pods_info, pod)
        except APIError as error:
            self.expectations.deletion_observed(key, key_of(pod))
            self.recorder.event(owner, "Warning", "FailedDelete", f"Error deleting: {error.message}")
            return error
        if not deleted:  # gone already, or its name belongs to a newer pod: no deletion to wait for
            self.expectations.deletion_observed(key, key_of(pod))
            return None
        self.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {meta.name_of(pod)}")
        return None

    async def write_status(self, owner: dict, status: dict) -> dict:
        """PUT the status subresource when it differs (a conflict raises: the key is retried with a fresh
        object). Returns the owner as it now is."""
        if owner.get("status") == status:
            return owner
        body = {**meta.deep_copy(owner), "status": status}
        try:
            return await self.client.update(self.owners_info, body, subresource="status")
        except APIError as error:
            if is_not_found(error):
                return owner
            raise
