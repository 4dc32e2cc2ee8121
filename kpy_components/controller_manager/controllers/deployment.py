"""The Deployment controller: one ReplicaSet per pod template (named `<deployment>-<pod-template-hash>`, labelled
and selected by that hash), rolled from old to new by the strategy, with revisions that `kubectl rollout
history|undo` read and a status `kubectl rollout status` waits on. The numbers come from rollout.py; this module
reads the caches and writes through the API.

A sync (deployment_controller.go syncDeployment): claim ReplicaSets by selector; record paused/resumed; when
paused or only spec.replicas changed, scale proportionally (no rollout); else roll out (RollingUpdate: grow the
new ReplicaSet within maxSurge, shrink old ones within maxUnavailable; Recreate: old ones to 0, wait until their
pods are gone, then the new one); drop old ReplicaSets beyond revisionHistoryLimit once complete; write status.
"""
from __future__ import annotations

import logging

from kpy_components.api import meta
from kpy_components.api.errors import APIError
from kpy_components.client import is_already_exists, is_not_found

from ..controller import Controller, controller_ref, new_controller_ref
from . import pods as podutil
from . import rollout

log = logging.getLogger(__name__)


class DeploymentController(Controller):
    name = "deployment"
    workers = 5

    def setup(self) -> None:
        self.deployments = self.informer("deployments", "apps")
        self.deployments.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new),
                                     on_delete=self.enqueue)
        self.replicasets = self.informer("replicasets", "apps")
        self.replicasets.add_handler(on_add=self._rs_changed, on_update=self._rs_updated,
                                     on_delete=self._rs_changed)
        self.pods = self.informer("pods")
        self.pods.add_handler(on_delete=self._pod_deleted)  # Recreate waits for the old pods to be gone
        self.deployments_info = self.client.resource("deployments", "apps")
        self.replicasets_info = self.client.resource("replicasets", "apps")

    # --- event handlers ------------------------------------------------------------------------------------------
    def _rs_changed(self, rs: dict) -> None:
        if controller_ref(rs) is not None:
            self.enqueue_owner(rs, "Deployment")
            return
        labels = meta.labels_of(rs)
        for deployment in self.deployments.store.list(meta.namespace_of(rs)):
            if podutil.selector_of(deployment).matches(labels):
                self.enqueue(deployment)

    def _rs_updated(self, old: dict, new: dict) -> None:
        if (controller_ref(old) or {}).get("uid") != (controller_ref(new) or {}).get("uid"):
            self._rs_changed(old)
        self._rs_changed(new)

    def _pod_deleted(self, pod: dict) -> None:
        reference = controller_ref(pod)
        if reference is None or reference.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.store.get_object(meta.namespace_of(pod), reference.get("name", ""))
        if rs is not None:
            self.enqueue_owner(rs, "Deployment")

    # --- the sync ------------------------------------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        cached = self.deployments.store.get(key)
        if cached is None:
            return
        deployment = meta.deep_copy(cached)
        try:
            rollout.fenceposts(deployment)
        except podutil.IntOrPercentError as error:
            self.recorder.event(deployment, "Warning", "InvalidStrategy", f"spec.strategy.rollingUpdate: {error}")
            return
        owned = await podutil.claim(deployment, self.replicasets.store.list(meta.namespace_of(deployment)),
                                    self._patch_rs)
        replica_sets = [meta.deep_copy(rs) for rs in owned]
        if podutil.is_terminating(deployment):
            new_rs, old_rss = self._split(deployment, replica_sets)
            await self._write(deployment, rollout.calculate_status(deployment, [*old_rss, new_rs], new_rs))
            return
        paused = rollout.paused_condition(deployment)
        if paused is not None:
            status = {**(deployment.get("status") or {})}
            status["conditions"] = podutil.set_condition(status.get("conditions") or [], paused)
            deployment = await self._write(deployment, status)
        if (deployment.get("spec") or {}).get("paused") or rollout.is_scaling_event(deployment, replica_sets):
            await self._scale(key, deployment, replica_sets)
        elif rollout.is_rolling(deployment):
            await self._roll(key, deployment, replica_sets)
        else:
            await self._recreate(key, deployment, replica_sets)

    def _split(self, deployment: dict, replica_sets: list[dict]) -> tuple[dict | None, list[dict]]:
        new_rs = rollout.find_new(deployment, replica_sets)
        return new_rs, [rs for rs in replica_sets if rs is not new_rs]

    async def _scale(self, key: str, deployment: dict, replica_sets: list[dict]) -> None:
        """dc.sync: proportional scaling without a rollout (paused, or only spec.replicas changed)."""
        deployment, new_rs, old_rss = await self._new_and_old(deployment, replica_sets, create=False)
        for rs, size in rollout.scale_plan(deployment, new_rs, old_rss):
            scaled = await self._scale_rs(deployment, rs, size)
            new_rs = scaled if rs is new_rs else new_rs
            old_rss = [scaled if other is rs else other for other in old_rss]
        if (deployment.get("spec") or {}).get("paused"):
            await self._cleanup(deployment, old_rss)
        await self._write(deployment, rollout.calculate_status(deployment, [*old_rss, new_rs], new_rs))

    async def _roll(self, key: str, deployment: dict, replica_sets: list[dict]) -> None:
        """rolloutRolling: one step per sync; the ReplicaSets' status changes bring the next one."""
        deployment, new_rs, old_rss = await self._new_and_old(deployment, replica_sets, create=True)
        all_rss = [*old_rss, new_rs]
        desired = rollout.replicas(deployment)
        target = desired if rollout.replicas(new_rs) > desired else rollout.new_rs_replicas(deployment, all_rss,
                                                                                              new_rs)
        if target != rollout.replicas(new_rs):
            new_rs = await self._scale_rs(deployment, new_rs, target)
            await self._sync_rollout_status(key, deployment, [*old_rss, new_rs], new_rs)
            return
        plan = rollout.old_scale_down_plan(deployment, all_rss, old_rss, new_rs)
        for rs, size in plan:
            scaled = await self._scale_rs(deployment, rs, size)
            old_rss = [scaled if other is rs else other for other in old_rss]
        if not plan and rollout.is_complete(deployment, rollout.calculate_status(deployment, all_rss, new_rs)):
            await self._cleanup(deployment, old_rss)
        await self._sync_rollout_status(key, deployment, [*old_rss, new_rs], new_rs)

    async def _recreate(self, key: str, deployment: dict, replica_sets: list[dict]) -> None:
        """rolloutRecreate: every old ReplicaSet to 0, wait until none of their pods runs, then the new one."""
        deployment, new_rs, old_rss = await self._new_and_old(deployment, replica_sets, create=False)
        running_old = rollout.active(old_rss)
        if running_old:
            for rs in running_old:
                scaled = await self._scale_rs(deployment, rs, 0)
                old_rss = [scaled if other is rs else other for other in old_rss]
            await self._sync_rollout_status(key, deployment, [*old_rss, new_rs], new_rs)
            return
        if self._old_pods_running(old_rss):
            await self._sync_rollout_status(key, deployment, [*old_rss, new_rs], new_rs)
            return
        if new_rs is None:
            deployment, new_rs, old_rss = await self._new_and_old(deployment, replica_sets, create=True)
        if rollout.replicas(new_rs) != rollout.replicas(deployment):
            new_rs = await self._scale_rs(deployment, new_rs, rollout.replicas(deployment))
        elif rollout.is_complete(deployment, rollout.calculate_status(deployment, [*old_rss, new_rs], new_rs)):
            await self._cleanup(deployment, old_rss)
        await self._sync_rollout_status(key, deployment, [*old_rss, new_rs], new_rs)

    def _old_pods_running(self, old_rss: list[dict]) -> bool:
        if rollout.total_status(old_rss, "replicas"):
            return True
        uids = {meta.metadata(rs).get("uid") for rs in old_rss}
        return any((controller_ref(pod) or {}).get("uid") in uids and podutil.phase(pod) not in ("Succeeded",
                                                                                                    "Failed")
                   for pod in self.pods.store.list(meta.namespace_of(old_rss[0]) if old_rss else None))

    async def _sync_rollout_status(self, key: str, deployment: dict, all_rss: list[dict], new_rs: dict | None):
        status = rollout.rollout_status(deployment, rollout.calculate_status(deployment, all_rss, new_rs), new_rs)
        deployment = await self._write(deployment, status)
        left = rollout.seconds_left(deployment, status)
        if left is not None:
            self.queue.add_after(key, max(left, 0.0) + 0.5)  # to notice a missed progress deadline

    # --- the new ReplicaSet and revisions ------------------------------------------------------------------------
    async def _new_and_old(self, deployment: dict, replica_sets: list[dict], create: bool):
        """getAllReplicaSetsAndSyncRevision: the new ReplicaSet (created when asked and missing) carrying the
        next revision, and the old ones. The Deployment's own revision annotation and FoundNewReplicaSet /
        NewReplicaSetCreated conditions are written on the way: (the Deployment as written, new, old)."""
        new_rs, old_rss = self._split(deployment, replica_sets)
        new_revision = max((rollout.revision(rs) for rs in old_rss), default=0) + 1
        if new_rs is not None:
            new_rs = await self._sync_new_rs(deployment, new_rs, new_revision)
            reason, message = rollout.FOUND_NEW_RS, f'Found new replica set "{meta.name_of(new_rs)}"'
        elif create:
            new_rs = await self._create_new_rs(deployment, [*old_rss], new_revision)
            reason, message = rollout.NEW_RS_CREATED, f'Created new replica set "{meta.name_of(new_rs)}"'
        else:
            return deployment, None, old_rss
        status = {**(deployment.get("status") or {})}
        conditions = status.get("conditions") or []
        if rollout.has_progress_deadline(deployment) and (
                reason == rollout.NEW_RS_CREATED or podutil.condition(deployment, "Progressing") is None):
            status["conditions"] = podutil.set_condition(conditions, rollout.new_condition(
                "Progressing", "True", reason, message, None))
        annotations = {**meta.annotations_of(deployment),
                       rollout.REVISION: meta.annotations_of(new_rs).get(rollout.REVISION, str(new_revision))}
        return await self._write(deployment, status, annotations), new_rs, old_rss

    async def _sync_new_rs(self, deployment: dict, rs: dict, new_revision: int) -> dict:
        annotations = rollout.new_rs_annotations(deployment, meta.annotations_of(rs), new_revision)
        min_ready = (deployment.get("spec") or {}).get("minReadySeconds", 0)
        if annotations == meta.annotations_of(rs) and (rs.get("spec") or {}).get("minReadySeconds", 0) == min_ready:
            return rs
        body = meta.deep_copy(rs)
        meta.metadata(body)["annotations"] = annotations
        body["spec"]["minReadySeconds"] = min_ready
        return await self.client.update(self.replicasets_info, body)

    async def _create_new_rs(self, deployment: dict, old_rss: list[dict], new_revision: int) -> dict:
        spec = deployment.get("spec") or {}
        collisions = (deployment.get("status") or {}).get("collisionCount")
        template = meta.deep_copy(spec.get("template") or {})
        pod_hash = podutil.template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[podutil.POD_TEMPLATE_HASH] = pod_hash
        selector = meta.deep_copy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[podutil.POD_TEMPLATE_HASH] = pod_hash
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{meta.name_of(deployment)}-{pod_hash}",
                           "namespace": meta.namespace_of(deployment),
                           "labels": dict(template["metadata"]["labels"]),
                           "annotations": {**rollout.new_rs_annotations(deployment, {}, new_revision),
                                           **rollout.replicas_annotations(deployment)},
                           "ownerReferences": [new_controller_ref(deployment)]},
              "spec": {"replicas": 0, "minReadySeconds": spec.get("minReadySeconds", 0), "selector": selector,
                       "template": template}}
        rs["spec"]["replicas"] = rollout.new_rs_replicas(deployment, [*old_rss, rs], rs)
        try:
            created = await self.client.create(self.replicasets_info, rs, meta.namespace_of(deployment))
        except APIError as error:
            if not is_already_exists(error):
                raise
            return await self._existing_or_collision(deployment, rs)
        if rollout.replicas(created):
            self._scaled_event(deployment, created, 0, rollout.replicas(created))
        return created

    async def _existing_or_collision(self, deployment: dict, wanted: dict) -> dict:
        """The name is taken: ours (a cache behind our own create) is used; anyone else's is a hash collision, so
        status.collisionCount grows and the next sync picks another name."""
        existing = await self.client.get(self.replicasets_info, meta.name_of(wanted), meta.namespace_of(wanted))
        ours = (controller_ref(existing) or {}).get("uid") == meta.metadata(deployment).get("uid")
        if ours and podutil.template_without_hash(existing["spec"].get("template")) == \
                podutil.template_without_hash(wanted["spec"]["template"]):
            return existing
        status = {**(deployment.get("status") or {})}
        status["collisionCount"] = status.get("collisionCount", 0) + 1
        await self._write(deployment, status)
        raise RuntimeError(f"hash collision: ReplicaSet {meta.name_of(wanted)} exists and is not this "
                           f"Deployment's; collisionCount is now {status['collisionCount']}")

    # --- writes --------------------------------------------------------------------------------------------------
    async def _scale_rs(self, deployment: dict, rs: dict, size: int) -> dict:
        """scaleReplicaSet: spec.replicas and the desired/max-replicas annotations, with a ScalingReplicaSet
        event when the size changes."""
        wanted = rollout.replicas_annotations(deployment)
        annotations = meta.annotations_of(rs)
        if rollout.replicas(rs) == size and all(annotations.get(k) == v for k, v in wanted.items()):
            return rs
        body = meta.deep_copy(rs)
        body["spec"]["replicas"] = size
        meta.metadata(body)["annotations"] = {**annotations, **wanted}
        updated = await self.client.update(self.replicasets_info, body)
        if rollout.replicas(rs) != size:
            self._scaled_event(deployment, updated, rollout.replicas(rs), size)
        return updated

    def _scaled_event(self, deployment: dict, rs: dict, old: int, new: int) -> None:
        direction = "up" if new > old else "down"
        self.recorder.event(deployment, "Normal", "ScalingReplicaSet",
                            f"Scaled {direction} replica set {meta.name_of(rs)} to {new} from {old}")

    async def _cleanup(self, deployment: dict, old_rss: list[dict]) -> None:
        """Delete old ReplicaSets beyond revisionHistoryLimit (empty ones, lowest revision first)."""
        for rs in rollout.cleanup_candidates(deployment, old_rss):
            await self.client.delete_exactly(self.replicasets_info, rs)

    async def _write(self, deployment: dict, status: dict, annotations: dict | None = None) -> dict:
        """The Deployment's status (and revision annotation) through /status, when they changed."""
        same_annotations = annotations is None or annotations == meta.annotations_of(deployment)
        if status == (deployment.get("status") or {}) and same_annotations:
            return deployment
        body = {**meta.deep_copy(deployment), "status": status}
        if annotations is not None:
            meta.metadata(body)["annotations"] = annotations
        try:
            return await self.client.update(self.deployments_info, body, subresource="status")
        except APIError as error:
            if is_not_found(error):
                return deployment
            raise

    async def _patch_rs(self, rs: dict, patch: dict) -> None:
        await self.client.patch(self.replicasets_info, meta.name_of(rs), patch, meta.namespace_of(rs))
