"""StorageObjectInUseProtection admission (plugin/pkg/admission/storage/storageobjectinuseprotection): every new
PersistentVolumeClaim gets the `kubernetes.io/pvc-protection` finalizer and every new PersistentVolume
`kubernetes.io/pv-protection`, so deleting a claim a pod still uses, or a volume still bound, waits until the
pvc-protection / pv-protection controllers see it unused and remove the finalizer.
"""
from __future__ import annotations

from kpy_components.api.storage import PV_PROTECTION, PVC_PROTECTION
from kpy_components.apiserver.admission.chain import Attributes

_FINALIZERS = {"persistentvolumeclaims": PVC_PROTECTION, "persistentvolumes": PV_PROTECTION}


class StorageObjectInUseProtection:
    async def admit(self, attributes: Attributes) -> None:
        info = attributes.info
        finalizer = _FINALIZERS.get(info.resource) if not info.api_group else None
        if attributes.operation != "CREATE" or info.subresource or finalizer is None or attributes.obj is None:
            return
        finalizers = attributes.obj.setdefault("metadata", {}).setdefault("finalizers", [])
        if finalizer not in finalizers:
            finalizers.append(finalizer)
