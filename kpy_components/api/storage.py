"""PersistentVolumes, PersistentVolumeClaims and StorageClasses: the names and small helpers the API server (printing,
validation, DefaultStorageClass admission) and the persistent-volume binder share, as Kubernetes' storage helpers
(pkg/apis/core/helper, component-helpers/storage/volume) define them.
"""
from __future__ import annotations

from .meta import annotations_of
from .quantity import Quantity, QuantityError

STORAGE_GROUP = "storage.k8s.io"
ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]  # sorted, as upstream lists
_SHORT_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                ("ReadWriteOncePod", "RWOP"))
VOLUME_MODES = ["Block", "Filesystem"]
PV_RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
SC_RECLAIM_POLICIES = ["Delete", "Retain"]
BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]

# Annotations (k8s.io/api/core/v1 and component-helpers/storage/volume)
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
PVC_PROTECTION, PV_PROTECTION = "kubernetes.io/pvc-protection", "kubernetes.io/pv-protection"  # finalizers


def access_modes_text(modes) -> str:
    """GetAccessModesAsString: `RWO,ROX,RWX,RWOP` in that order, duplicates and unknown modes dropped."""
    present = set(modes or ())
    return ",".join(short for mode, short in _SHORT_MODES if mode in present)


def volume_class(pv: dict) -> str:
    """GetPersistentVolumeClass: the beta annotation wins over spec.storageClassName."""
    annotations = annotations_of(pv)
    if BETA_CLASS_ANNOTATION in annotations:
        return annotations[BETA_CLASS_ANNOTATION]
    return (pv.get("spec") or {}).get("storageClassName") or ""


def claim_class(pvc: dict) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation, else spec.storageClassName, else "" (no class)."""
    return volume_class(pvc)


def has_no_class(pvc: dict) -> bool:
    """The claim never had a class, not even "": spec.storageClassName nil and no beta class annotation (what
    DefaultStorageClass admission and the retroactive default StorageClass fill in)."""
    return (pvc.get("spec") or {}).get("storageClassName") is None and BETA_CLASS_ANNOTATION not in annotations_of(pvc)


def claim_names(pod_spec: dict) -> list[str]:
    """The claims a pod spec's persistentVolumeClaim volumes name, in volume order ("" for one without a name)."""
    return [volume["persistentVolumeClaim"].get("claimName", "") for volume in pod_spec.get("volumes") or ()
            if isinstance(volume.get("persistentVolumeClaim"), dict)]


def storage_quantity(values: dict | None) -> Quantity | None:
    """The `storage` entry of a ResourceList, None when absent or unreadable."""
    try:
        return Quantity.parse((values or {})["storage"])
    except (KeyError, QuantityError):
        return None


def requested_storage(claim: dict) -> Quantity | None:
    """A claim's spec.resources.requests.storage, None when absent or unreadable."""
    return storage_quantity(((claim.get("spec") or {}).get("resources") or {}).get("requests"))


def is_default_class(sc: dict) -> bool:
    """IsDefaultAnnotation: either annotation set to "true"."""
    annotations = annotations_of(sc)
    return "true" in (annotations.get(DEFAULT_CLASS_ANNOTATION), annotations.get(BETA_DEFAULT_CLASS_ANNOTATION))


def default_class(classes: list[dict]) -> dict | None:
    """GetDefaultClass: of the classes marked default, the newest (then the first by name), None without any."""
    defaults = [sc for sc in classes if is_default_class(sc)]
    if not defaults:
        return None
    defaults.sort(key=lambda sc: (sc.get("metadata") or {}).get("name") or "")
    return max(defaults, key=lambda sc: (sc.get("metadata") or {}).get("creationTimestamp") or "")
