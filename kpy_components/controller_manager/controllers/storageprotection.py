"""The pvc-protection and pv-protection controllers (pkg/controller/volume/pvcprotection, pvprotection): they remove
the finalizers StorageObjectInUseProtection admission puts on claims and volumes once the object is being deleted
and nothing uses it any more:

- a claim is in use while a pod scheduled to a node (spec.nodeName set), not Succeeded or Failed, has a
  persistentVolumeClaim volume naming it; the informer's pods are checked first, then (as upstream) a live list of
  the namespace's pods, so a pod the cache does not show yet never loses its claim;
- a volume is in use while its phase is Bound.
"""
from __future__ import annotations

from kpy_components.api import meta
from kpy_components.api.storage import PV_PROTECTION, PVC_PROTECTION, claim_names
from kpy_components.client import ignore_not_found, key_of

from ..controller import Controller
from .pods import is_terminating, phase


def uses_claim(pod: dict, name: str) -> bool:
    return bool((pod.get("spec") or {}).get("nodeName")) and phase(pod) not in ("Succeeded", "Failed") \
        and name in claim_names(pod.get("spec") or {})


def _waiting_on(obj: dict, finalizer: str) -> bool:
    return is_terminating(obj) and finalizer in (meta.metadata(obj).get("finalizers") or [])


class _FinalizerRemover(Controller):
    finalizer: str

    async def release(self, info, obj: dict) -> None:
        """PUT the object without our finalizer (a conflict retries the key; gone is done)."""
        body = meta.deep_copy(obj)
        body["metadata"]["finalizers"] = [f for f in body["metadata"]["finalizers"] if f != self.finalizer]
        await ignore_not_found(self.client.update(info, body))


class PVCProtectionController(_FinalizerRemover):
    name = "pvc-protection"
    finalizer = PVC_PROTECTION

    def setup(self) -> None:
        self.claims, self.pods = self.informer("persistentvolumeclaims"), self.informer("pods")
        self.claims_info, self.pods_info = self.client.resource("persistentvolumeclaims"), self.client.resource("pods")
        self.claims.add_handler(on_add=self._claim_changed, on_update=lambda old, new: self._claim_changed(new))
        self.pods.add_handler(on_update=lambda old, new: self._pod_changed(new), on_delete=self._pod_changed)

    def _claim_changed(self, claim: dict) -> None:
        if _waiting_on(claim, self.finalizer):
            self.enqueue(claim)

    def _pod_changed(self, pod: dict) -> None:
        for name in set(claim_names(pod.get("spec") or {})):
            self.queue.add(f"{meta.namespace_of(pod)}/{name}")

    async def reconcile(self, key: str) -> None:
        claim = self.claims.store.get(key)
        if claim is None or not _waiting_on(claim, self.finalizer):
            return
        namespace, name = meta.namespace_of(claim), meta.name_of(claim)
        if any(uses_claim(pod, name) for pod in self.pods.store.list(namespace)):
            return
        live = (await self.client.list(self.pods_info, namespace))["items"]
        if not any(uses_claim(pod, name) for pod in live):
            await self.release(self.claims_info, claim)


class PVProtectionController(_FinalizerRemover):
    name = "pv-protection"
    finalizer = PV_PROTECTION

    def setup(self) -> None:
        self.volumes = self.informer("persistentvolumes")
        self.volumes_info = self.client.resource("persistentvolumes")
        self.volumes.add_handler(on_add=self._volume_changed, on_update=lambda old, new: self._volume_changed(new))

    def _volume_changed(self, volume: dict) -> None:
        if _waiting_on(volume, self.finalizer):
            self.queue.add(key_of(volume))

    async def reconcile(self, key: str) -> None:
        volume = self.volumes.store.get(key)
        if volume is not None and _waiting_on(volume, self.finalizer) and \
                (volume.get("status") or {}).get("phase") != "Bound":
            await self.release(self.volumes_info, volume)
