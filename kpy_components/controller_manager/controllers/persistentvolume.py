"""The persistent-volume binder (kube-controller-manager's `persistentvolume-binder`, events from
`persistentvolume-controller`): it binds PersistentVolumeClaims to existing PersistentVolumes and reclaims volumes
whose claim is gone. kpy does NO dynamic provisioning: a claim that no volume fits stays Pending with upstream's
event (FailedBinding "no persistent volumes available for this claim and no storage class is set" without a class,
ExternalProvisioning naming the class's provisioner with one, ProvisioningFailed when the class does not exist).
Claims of a WaitForFirstConsumer class are left Pending ("waiting for first consumer to be created before binding"):
kpy's scheduler has a VolumeBinding filter but no delayed binding, so such claims never bind.

Binding (pvmatching.py picks the volume) writes, in upstream's order: the volume's claimRef (+ annotation
pv.kubernetes.io/bound-by-controller when kpy chose it), its phase Bound, the claim's spec.volumeName with
pv.kubernetes.io/bind-completed (+ bound-by-controller), the claim's phase Bound with the volume's access modes and
capacity. Every write is a PUT of the cached object, so a stale cache loses with a conflict and the key is retried.
Volumes: no claimRef -> Available; claim gone (not in the cache, nor in the API, or a different uid) -> Released,
then persistentVolumeReclaimPolicy: Retain keeps it Released, Delete deletes the PersistentVolume object (no volume
plugin deletes the data behind it), Recycle -> Failed. Not done: claims that lose their volume become Lost only when
the volume object disappears. An unbound claim that never had a class gets the default class once one exists
(retroactive default StorageClass, GA in 1.28).
"""
from __future__ import annotations

from kpy_components.api import meta, storage
from kpy_components.client import ignore_not_found, key_of

from ..controller import Controller
from . import pvmatching

RESYNC_SECONDS = 15.0  # --pvclaimbinder-sync-period: a pending claim looks again this often
_YES = "yes"
_EXTERNAL = ("Waiting for a volume to be created either by the external provisioner '{}' or manually by the system "
             "administrator. If volume creation is delayed, please verify that the provisioner is running and "
             "correctly registered.")


def _claim_ref(claim: dict) -> dict:
    metadata = claim["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": metadata["namespace"], "name": metadata["name"],
            "uid": metadata["uid"], "apiVersion": "v1", "resourceVersion": metadata.get("resourceVersion", "")}


def _phase(obj: dict) -> str:
    return (obj.get("status") or {}).get("phase", "")


class PersistentVolumeBinder(Controller):
    name = "persistentvolume-binder"
    workers = 1  # upstream syncs claims and volumes one at a time: two binds never race for one volume here

    def __init__(self, context):
        super().__init__(context)
        self.recorder = context.recorder("persistentvolume-controller")

    def setup(self) -> None:
        self.volumes = self.informer("persistentvolumes")
        self.claims = self.informer("persistentvolumeclaims")
        self.classes = self.informer("storageclasses", storage.STORAGE_GROUP)
        self.volumes_info = self.client.resource("persistentvolumes")
        self.claims_info = self.client.resource("persistentvolumeclaims")
        self.volumes.add_handler(on_add=self._volume_changed, on_update=lambda old, new: self._volume_changed(new),
                                 on_delete=self._volume_deleted)
        self.claims.add_handler(on_add=self._claim_changed, on_update=lambda old, new: self._claim_changed(new),
                                on_delete=self._claim_deleted)
        self.classes.add_handler(on_add=lambda sc: self._pending_claims())

    # --- event handlers -------------------------------------------------------------------------------------------
    def _volume_changed(self, volume: dict) -> None:
        self.queue.add(f"pv:{meta.name_of(volume)}")
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref:
            self.queue.add(f"pvc:{ref.get('namespace')}/{ref.get('name')}")
        elif _phase(volume) == "Available":
            self._pending_claims()  # a volume became free: claims waiting for one may fit now

    def _volume_deleted(self, volume: dict) -> None:
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref:
            self.queue.add(f"pvc:{ref.get('namespace')}/{ref.get('name')}")

    def _claim_changed(self, claim: dict) -> None:
        self.queue.add(f"pvc:{key_of(claim)}")

    def _claim_deleted(self, claim: dict) -> None:
        for volume in self.volumes.store.list():
            if pvmatching.is_bound_to(volume, claim):
                self.queue.add(f"pv:{meta.name_of(volume)}")

    def _pending_claims(self) -> None:
        for claim in self.claims.store.list():
            if not (claim.get("spec") or {}).get("volumeName"):
                self._claim_changed(claim)

    async def reconcile(self, key: str) -> None:
        kind, _, rest = key.partition(":")
        if kind == "pvc":
            claim = self.claims.store.get(rest)
            if claim is not None:
                await self._sync_claim(claim, key)
        else:
            volume = self.volumes.store.get(rest)
            if volume is not None:
                await self._sync_volume(volume)

    # --- claims ---------------------------------------------------------------------------------------------------
    async def _sync_claim(self, claim: dict, key: str) -> None:
        name = (claim.get("spec") or {}).get("volumeName")
        if name:
            await self._sync_named_claim(claim, name)
            return
        if await self._assign_default_class(claim):
            return  # the update brings the claim back with its class
        class_name = storage.claim_class(claim)
        sc = self.classes.store.get(class_name) if class_name else None
        if sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer":
            self.recorder.event(claim, "Normal", "WaitForFirstConsumer",
                                "waiting for first consumer to be created before binding")
            return
        volume = pvmatching.find_match(claim, self.volumes.store.list())
        if volume is not None:
            await self._bind(volume, claim)
            return
        if not class_name:
            self.recorder.event(claim, "Normal", "FailedBinding",
                                "no persistent volumes available for this claim and no storage class is set")
        elif sc is None:
            self.recorder.event(claim, "Warning", "ProvisioningFailed",
                                f'storageclass.storage.k8s.io "{class_name}" not found')
        else:
            self.recorder.event(claim, "Normal", "ExternalProvisioning", _EXTERNAL.format(sc.get("provisioner", "")))
        self.queue.add_after(key, RESYNC_SECONDS)

    async def _assign_default_class(self, claim: dict) -> bool:
        """Retroactive default StorageClass: an unbound claim that never had a class (not even "") gets the
        default class once there is one. True when it was given one."""
        if not storage.has_no_class(claim):
            return False
        default = storage.default_class(self.classes.store.list())
        if default is None:
            return False
        body = meta.deep_copy(claim)
        body["spec"]["storageClassName"] = meta.name_of(default)
        await self.client.update(self.claims_info, body)
        return True

    async def _sync_named_claim(self, claim: dict, name: str) -> None:
        volume = self.volumes.store.get(name)
        annotations = meta.annotations_of(claim)
        if volume is None:
            if annotations.get(storage.BIND_COMPLETED) and _phase(claim) != "Lost":
                await self._set_phase(self.claims_info, claim, "Lost")
                self.recorder.event(claim, "Warning", "ClaimLost",
                                    "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        if not (volume.get("spec") or {}).get("claimRef"):
            reason = pvmatching.unsuitable(volume, claim)
            if reason is None:
                await self._bind(volume, claim)
            else:
                self.recorder.event(claim, "Warning", "FailedBinding",
                                    f'Cannot bind to requested volume "{name}": {reason}')
        elif pvmatching.is_bound_to(volume, claim):
            await self._bind(volume, claim)  # finish what an interrupted bind left
        elif not annotations.get(storage.BIND_COMPLETED):
            self.recorder.event(claim, "Warning", "FailedBinding",
                                f'volume "{name}" already bound to a different claim.')

    async def _bind(self, volume: dict, claim: dict) -> None:
        if ((volume.get("spec") or {}).get("claimRef") or {}).get("uid") != claim["metadata"]["uid"]:
            body = meta.deep_copy(volume)
            if not body["spec"].get("claimRef"):
                meta.metadata(body).setdefault("annotations", {})[storage.BOUND_BY_CONTROLLER] = _YES
            body["spec"]["claimRef"] = _claim_ref(claim)
            volume = await self.client.update(self.volumes_info, body)
        if _phase(volume) != "Bound":
            volume = await self._set_phase(self.volumes_info, volume, "Bound")
        spec = claim.get("spec") or {}
        if spec.get("volumeName") != meta.name_of(volume) or not meta.annotations_of(claim).get(
                storage.BIND_COMPLETED):
            body = meta.deep_copy(claim)
            annotations = meta.metadata(body).setdefault("annotations", {})
            if not spec.get("volumeName"):
                annotations[storage.BOUND_BY_CONTROLLER] = _YES
            annotations[storage.BIND_COMPLETED] = _YES
            body["spec"]["volumeName"] = meta.name_of(volume)
            claim = await self.client.update(self.claims_info, body)
        volume_spec = volume.get("spec") or {}
        status = {**(claim.get("status") or {}), "phase": "Bound",
                  "accessModes": volume_spec.get("accessModes") or [], "capacity": volume_spec.get("capacity") or {}}
        if claim.get("status") != status:
            await self.client.update(self.claims_info, {**meta.deep_copy(claim), "status": status},
                                     subresource="status")

    # --- volumes --------------------------------------------------------------------------------------------------
    async def _sync_volume(self, volume: dict) -> None:
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or not ref.get("uid"):  # free, or pre-bound by the user to a claim that may come
            if _phase(volume) in ("Pending", ""):
                await self._set_phase(self.volumes_info, volume, "Available")
            return
        claim = await self._claim_of(ref)
        if claim is not None:
            if (claim.get("spec") or {}).get("volumeName") == meta.name_of(volume) and _phase(volume) != "Bound":
                await self._set_phase(self.volumes_info, volume, "Bound")
            return
        if _phase(volume) not in ("Released", "Failed"):
            volume = await self._set_phase(self.volumes_info, volume, "Released")
        await self._reclaim(volume)

    async def _claim_of(self, ref: dict) -> dict | None:
        """The claim a claimRef names, if it still exists with that uid (the API decides when the cache has none)."""
        claim = self.claims.store.get_object(ref.get("namespace"), ref.get("name", ""))
        if claim is None:
            claim = await ignore_not_found(self.client.get(self.claims_info, ref.get("name", ""),
                                                           ref.get("namespace")))
            if claim is None:
                return None
        return claim if meta.metadata(claim).get("uid") == ref.get("uid") else None

    async def _reclaim(self, volume: dict) -> None:
        policy = (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy", "Retain")
        if policy == "Delete":
            await self.client.delete_exactly(self.volumes_info, volume)
        elif policy == "Recycle" and _phase(volume) != "Failed":
            await self._set_phase(self.volumes_info, volume, "Failed")
            self.recorder.event(volume, "Warning", "VolumeFailedRecycle", "No recycler plugin found for the volume!")

    async def _set_phase(self, info, obj: dict, phase: str) -> dict:
        body = meta.deep_copy(obj)
        body["status"] = {**(body.get("status") or {}), "phase": phase}
        return await ignore_not_found(self.client.update(info, body, subresource="status"), gone=obj)
