"""storage.k8s.io/v1 StorageClasses (pkg/apis/storage/validation ValidateStorageClass(Update)): a provisioner that is
a qualified name, reclaimPolicy Delete (default) or Retain, volumeBindingMode Immediate (default) or
WaitForFirstConsumer; provisioner, parameters, reclaimPolicy and volumeBindingMode never change.
"""
from __future__ import annotations

from kpy_components.api import storage
from kpy_components.api.meta import field_forbidden, field_invalid, field_required

from .. import validation
from ..strategy import Strategy

_MAX_PARAMETERS = 512
_MAX_PARAMETERS_SIZE = 256 * 1024


def _parameters(parameters) -> list:
    if parameters is None:
        return []
    if not isinstance(parameters, dict):
        return [field_invalid("parameters", parameters, "must be a map of string keys to string values")]
    if len(parameters) > _MAX_PARAMETERS:
        return [field_invalid("parameters", len(parameters), "Provisioner Parameters exceeded max allowed")]
    if sum(len(k) + len(str(v)) for k, v in parameters.items()) > _MAX_PARAMETERS_SIZE:
        return [field_invalid("parameters", "", f"must have at most {_MAX_PARAMETERS_SIZE} bytes")]
    return [field_invalid("parameters", key, "field can not be empty.") for key in parameters if not key]


class StorageClassStrategy(Strategy):
    def default(self, obj):
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")

    def validate(self, obj):
        provisioner = obj.get("provisioner")
        if not provisioner:
            causes = [field_required("provisioner")]
        elif not isinstance(provisioner, str):
            causes = [field_invalid("provisioner", provisioner, "must be a string")]
        else:
            causes = validation.qualified_name(provisioner.lower(), "provisioner")
        causes.extend(_parameters(obj.get("parameters")))
        causes.extend(validation.one_of(obj.get("reclaimPolicy"), "reclaimPolicy", storage.SC_RECLAIM_POLICIES))
        causes.extend(validation.one_of(obj.get("volumeBindingMode"), "volumeBindingMode", storage.BINDING_MODES))
        if not isinstance(obj.get("allowVolumeExpansion", False), bool):
            causes.append(field_invalid("allowVolumeExpansion", obj.get("allowVolumeExpansion"), "must be a boolean"))
        return causes

    def validate_immutable(self, new, old):
        causes = [field_forbidden(field, f"updates to {field} are forbidden.")
                  for field in ("parameters", "provisioner", "reclaimPolicy") if new.get(field) != old.get(field)]
        if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
            causes.append(field_invalid("volumeBindingMode", new.get("volumeBindingMode"), "field is immutable"))
        return causes
