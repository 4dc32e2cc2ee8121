"""core/v1 PersistentVolumeClaims and PersistentVolumes, validated as pkg/apis/core/validation's
ValidatePersistentVolumeClaim(Update) and ValidatePersistentVolume(Update) word it, defaulted as SetDefaults_* do.

A claim's spec is immutable once created except resources.requests (expansion: never below the previous value),
volumeName (set once, by the binder) and a storageClassName the claim never had. A volume needs a capacity with only
`storage`, access modes and exactly one volume source; hostPath and local are checked field by field (local needs
nodeAffinity), the other sources are only counted. Upstream appends a cmp.Diff of the spec to its "immutable"
errors; kpy appends the changed top-level fields instead.
"""
from __future__ import annotations

import posixpath

from kpy_components.api import meta, selectors, storage
from kpy_components.api.errors import APIError, Cause
from kpy_components.api.meta import field_forbidden, field_invalid, field_not_supported, field_required
from kpy_components.api.quantity import Quantity, QuantityError

from .. import validation
from ..strategy import Strategy

# PersistentVolumeSource members, in the order upstream checks them ("may not specify more than 1 volume type").
VOLUME_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker", "nfs", "rbd",
                  "quobyte", "cephfs", "iscsi", "cinder", "fc", "flexVolume", "azureFile", "vsphereVolume",
                  "photonPersistentDisk", "portworxVolume", "azureDisk", "scaleIO", "local", "storageos", "csi")
_HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate",
                    "Socket"]
_CLAIM_IMMUTABLE = ("spec is immutable after creation except resources.requests and volumeAttributesClassName for "
                    "bound claims")


def _diff(old: dict, new: dict) -> str:
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"-  {key}: {meta._show(old.get(key))}\n+  {key}: {meta._show(new.get(key))}")
    return "\n".join(lines)


def _take(into: dict, source: dict, key: str) -> None:
    """into[key] = source[key], absent when absent."""
    if key in source:
        into[key] = source[key]
    else:
        into.pop(key, None)


def _positive_quantity(value, path: str) -> list[Cause]:
    """ValidatePositiveQuantityValue: nothing for a positive quantity, else the cause it is not."""
    try:
        quantity = Quantity.parse(value)
    except QuantityError as error:
        return [field_invalid(path, value, str(error))]
    if quantity.value <= 0:
        return [field_invalid(path, str(quantity), "must be greater than zero")]
    return []


def _access_modes(modes, path: str) -> list[Cause]:
    if not isinstance(modes, list):
        return [field_invalid(path, modes, "must be a list")]
    causes = [field_not_supported(path, mode, storage.ACCESS_MODES) for mode in modes
              if mode not in storage.ACCESS_MODES]
    known = {mode for mode in modes if mode in storage.ACCESS_MODES}
    if "ReadWriteOncePod" in known and len(known) > 1:
        causes.append(field_forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return causes


def _class_and_mode(spec: dict, path: str) -> list[Cause]:
    causes = []
    if spec.get("storageClassName"):
        causes.extend(meta.validate_dns1123_subdomain(spec["storageClassName"], f"{path}.storageClassName"))
    return causes + validation.one_of(spec.get("volumeMode"), f"{path}.volumeMode", storage.VOLUME_MODES)


def validate_claim_spec(spec, path: str = "spec") -> list[Cause]:
    """ValidatePersistentVolumeClaimSpec, for claims only: as upstream, StatefulSet validation does not check its
    volumeClaimTemplates as claims (a bad template makes the controller's claim create fail, with an event)."""
    spec = spec if isinstance(spec, dict) else {}
    causes = []
    if not spec.get("accessModes"):
        causes.append(field_required(f"{path}.accessModes", "at least 1 access mode is required"))
    if spec.get("selector") is not None:
        try:
            selectors.label_selector_from_dict(spec["selector"])
        except APIError as error:
            causes.append(field_invalid(f"{path}.selector", spec["selector"], error.message))
    causes.extend(_access_modes(spec.get("accessModes") or [], f"{path}.accessModes"))
    requests = (spec.get("resources") or {}).get("requests") or {}
    if "storage" not in requests:
        causes.append(field_required(f"{path}.resources[storage]"))
    else:
        causes.extend(_positive_quantity(requests["storage"], f"{path}.resources[storage]"))
    return causes + _class_and_mode(spec, path)


class PersistentVolumeClaimStrategy(Strategy):
    def default(self, obj):
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")

    def validate(self, obj):
        return validate_claim_spec(obj.get("spec"))

    def validate_immutable(self, new, old):
        new_spec, old_spec = meta.deep_copy(new.get("spec") or {}), meta.deep_copy(old.get("spec") or {})
        if not old_spec.get("volumeName"):
            _take(old_spec, new_spec, "volumeName")  # set once, by the binder
        old_class = storage.BETA_CLASS_ANNOTATION in meta.annotations_of(old)
        if old_spec.get("storageClassName") is None and not old_class:
            _take(old_spec, new_spec, "storageClassName")  # a class may be given later
        bound = (new.get("status") or {}).get("phase") == "Bound"
        for spec in (new_spec, old_spec):
            spec.pop("volumeAttributesClassName", None)
            if bound:  # expansion of a bound claim; never below the previous value (checked below)
                ((spec.get("resources") or {}).get("requests") or {}).pop("storage", None)
        causes = []
        if new_spec != old_spec:
            causes.append(field_forbidden("spec", f"{_CLAIM_IMMUTABLE}\n{_diff(old_spec, new_spec)}"))
        old_size, new_size = storage.requested_storage(old), storage.requested_storage(new)
        if old_size is not None and new_size is not None and new_size < old_size:
            causes.append(field_forbidden("spec.resources.requests.storage",
                                          "field can not be less than previous value"))
        if (new.get("spec") or {}).get("volumeMode") != (old.get("spec") or {}).get("volumeMode"):
            causes.append(field_invalid("volumeMode", (new.get("spec") or {}).get("volumeMode"),
                                        "field is immutable"))
        return causes


# --- PersistentVolumes --------------------------------------------------------------------------------------------

def _path_without_backsteps(value: str, path: str) -> list[Cause]:
    if ".." in value.replace("\\", "/").split("/"):
        return [field_invalid(path, value, "must not contain '..'")]
    return []


def _host_path(source, path: str) -> list[Cause]:
    source = source if isinstance(source, dict) else {}
    if not source.get("path"):
        return [field_required(f"{path}.path")]
    return (_path_without_backsteps(source["path"], f"{path}.path")
            + validation.one_of(source.get("type"), f"{path}.type", _HOST_PATH_TYPES))


def _local(source, path: str) -> list[Cause]:
    source = source if isinstance(source, dict) else {}
    if not source.get("path"):
        return [field_required(f"{path}.path")]
    return _path_without_backsteps(source["path"], f"{path}.path")


def _node_affinity(affinity, path: str) -> list[Cause]:
    required = (affinity or {}).get("required") if isinstance(affinity, dict) else None
    if required is None:
        return [field_required(f"{path}.required", "must specify required node constraints")]
    if not (required.get("nodeSelectorTerms") if isinstance(required, dict) else None):
        return [field_required(f"{path}.required.nodeSelectorTerms", "must have at least one node selector term")]
    return []


def _capacity(capacity, path: str) -> list[Cause]:
    if not capacity:
        return [field_required(path), field_not_supported(path, capacity or {}, ["storage"])]
    if not isinstance(capacity, dict):
        return [field_invalid(path, capacity, "must be a map of resource names to quantities")]
    causes = [field_not_supported(path, capacity, ["storage"])] if set(capacity) != {"storage"} else []
    for name, value in capacity.items():
        causes.extend(_positive_quantity(value, f"{path}[{name}]"))
    return causes


def validate_volume_spec(spec) -> list[Cause]:
    spec = spec if isinstance(spec, dict) else {}
    causes = []
    if not spec.get("accessModes"):
        causes.append(field_required("spec.accessModes"))
    causes.extend(_access_modes(spec.get("accessModes") or [], "spec.accessModes"))
    causes.extend(_capacity(spec.get("capacity"), "spec.capacity"))
    causes.extend(validation.one_of(spec.get("persistentVolumeReclaimPolicy"), "spec.persistentVolumeReclaimPolicy",
                                    storage.PV_RECLAIM_POLICIES))
    if spec.get("nodeAffinity") is not None:
        causes.extend(_node_affinity(spec["nodeAffinity"], "spec.nodeAffinity"))
    sources = [name for name in VOLUME_SOURCES if spec.get(name) is not None]
    causes.extend(field_forbidden(f"spec.{name}", "may not specify more than 1 volume type") for name in sources[1:])
    if not sources:
        causes.append(field_required("spec", "must specify a volume type"))
    elif sources[0] == "hostPath":
        causes.extend(_host_path(spec["hostPath"], "spec.hostPath"))
        if posixpath.normpath(spec["hostPath"].get("path") or ".") == "/" and \
                spec.get("persistentVolumeReclaimPolicy") == "Recycle":
            causes.append(field_forbidden("spec.persistentVolumeReclaimPolicy",
                                          "may not be 'recycle' for a hostPath mount of '/'"))
    elif sources[0] == "local":
        causes.extend(_local(spec["local"], "spec.local"))
        if spec.get("nodeAffinity") is None:
            causes.append(field_required("spec.nodeAffinity", "Local volume requires node affinity"))
    return causes + _class_and_mode(spec, "spec")


class PersistentVolumeStrategy(Strategy):
    def prepare_for_create(self, obj):
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": meta.now_rfc3339()}

    def default(self, obj):
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")

    def prepare_for_status_update(self, new, old):
        """A phase change stamps status.lastPhaseTransitionTime (unless the writer set a new one)."""
        result = super().prepare_for_status_update(new, old)
        status, old_status = result.get("status") or {}, old.get("status") or {}
        if status.get("phase") != old_status.get("phase") and \
                status.get("lastPhaseTransitionTime") in (None, old_status.get("lastPhaseTransitionTime")):
            status["lastPhaseTransitionTime"] = meta.now_rfc3339()
        return result

    def validate(self, obj):
        return validate_volume_spec(obj.get("spec"))

    def validate_immutable(self, new, old):
        new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        causes = []
        new_source = {k: new_spec.get(k) for k in VOLUME_SOURCES if new_spec.get(k) is not None}
        old_source = {k: old_spec.get(k) for k in VOLUME_SOURCES if old_spec.get(k) is not None}
        if new_source != old_source:
            causes.append(field_forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable "
                                          f"after creation\n{_diff(old_source, new_source)}"))
        for field in ("volumeMode", "nodeAffinity"):
            if old_spec.get(field) is not None and new_spec.get(field) != old_spec.get(field):
                causes.append(field_invalid(field, new_spec.get(field), "field is immutable"))
        return causes
