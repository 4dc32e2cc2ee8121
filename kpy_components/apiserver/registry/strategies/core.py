"""Strategies of core/v1 resources (services live in services.py)."""
from __future__ import annotations

import base64
import binascii
import re

from kpy_components.api import meta
from kpy_components.api.errors import Cause
from kpy_components.api.meta import field_forbidden, field_invalid, field_required
from kpy_components.api.qos import qos_class

from .. import validation
from ..strategy import Strategy
from . import podspec

_CONFIG_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  " \
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
# Pod spec fields an update may change (Kubernetes: images, activeDeadlineSeconds, tolerations additions, ...).
_POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


class PodStrategy(Strategy):
    return_deleted_object = True

    def default(self, obj):
        podspec.default_pod_spec(obj.setdefault("spec", {}))
        obj["spec"].setdefault("enableServiceLinks", True)
        # spec.priority and spec.preemptionPolicy come from the Priority admission plugin (it refuses a pod whose
        # client-given values disagree with its class, so defaulting them here, before admission, would be wrong).

    def prepare_for_create(self, obj):
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj["spec"])}

    def validate(self, obj):
        return podspec.validate_pod_spec(obj.get("spec"), "spec")

    def validate_immutable(self, new, old):
        def masked(spec):
            spec = meta.deep_copy(spec or {})
            for field in _POD_MUTABLE:
                spec.pop(field, None)
            for field in ("containers", "initContainers"):
                for container in spec.get(field) or []:
                    if isinstance(container, dict):
                        container.pop("image", None)
            return spec
        if masked(new.get("spec")) != masked(old.get("spec")):
            return [field_forbidden("spec", "pod updates may not change fields other than "
                                    "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                                    "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if "
                                    "it was previously negative)")]
        return []

    def grace_period(self, obj, requested):
        """Unscheduled and finished pods go at once (no kubelet has to stop anything); others wait for their
        kubelet, for the requested period or spec.terminationGracePeriodSeconds."""
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = requested if requested is not None else spec.get("terminationGracePeriodSeconds", 30)
        return max(int(grace), 0)


class NamespaceStrategy(Strategy):
    """Deletion marks the namespace Terminating; it is removed once spec.finalizers (emptied through /finalize
    by the namespace controller) and metadata.finalizers are empty."""
    name_is_label = True
    return_deleted_object = True

    def default(self, obj):
        meta.metadata(obj).setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.name_of(obj)

    def prepare_for_create(self, obj):
        super().prepare_for_create(obj)
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}

    def prepare_for_update(self, new, old):
        super().prepare_for_update(new, old)
        new["spec"] = meta.deep_copy(old.get("spec") or {})  # spec.finalizers change through /finalize only

    def validate(self, obj):
        return []

    def blocks_deletion(self, obj):
        return super().blocks_deletion(obj) or bool((obj.get("spec") or {}).get("finalizers"))

    def mark_deleting(self, obj):
        obj.setdefault("status", {})["phase"] = "Terminating"


class NodeStrategy(Strategy):
    status_reset_on_create = False  # kubelets register with their status

    def validate(self, obj):
        spec = obj.get("spec") or {}
        causes = []
        for index, taint in enumerate(spec.get("taints") or []):
            here = f"spec.taints[{index}]"
            if not isinstance(taint, dict) or not taint.get("key"):
                causes.append(field_required(f"{here}.key"))
                continue
            causes.extend(validation.qualified_name(taint["key"], f"{here}.key"))
            causes.extend(validation.one_of(taint.get("effect"), f"{here}.effect",
                                            ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
            if not taint.get("effect"):
                causes.append(field_required(f"{here}.effect"))
        return causes

    def validate_immutable(self, new, old):
        old_cidr = (old.get("spec") or {}).get("podCIDR")
        new_cidr = (new.get("spec") or {}).get("podCIDR")
        if old_cidr and new_cidr != old_cidr:
            return [field_forbidden("spec.podCIDR", "node updates may not change podCIDR except from \"\" to valid")]
        return []


def _validate_keys(data, path: str) -> list[Cause]:
    causes = []
    if data is None:
        return causes
    if not isinstance(data, dict):
        return [field_invalid(path, data, "must be a map of keys to values")]
    for key in data:
        if not _CONFIG_KEY_RE.match(key) or len(key) > 253:
            causes.append(field_invalid(path, key, _CONFIG_KEY_MSG))
    return causes


class _ImmutableData(Strategy):
    """ConfigMaps and Secrets: `immutable: true` freezes data."""
    DATA_FIELDS = ("data", "binaryData")

    def validate_immutable(self, new, old):
        if not old.get("immutable"):
            return []
        causes = []
        if not new.get("immutable"):
            causes.append(field_forbidden("immutable", "field is immutable when `immutable` is set"))
        for field in self.DATA_FIELDS:
            if new.get(field) != old.get(field):
                causes.append(field_forbidden(field, "field is immutable when `immutable` is set"))
        return causes


class ConfigMapStrategy(_ImmutableData):
    def validate(self, obj):
        causes = _validate_keys(obj.get("data"), "data") + _validate_keys(obj.get("binaryData"), "binaryData")
        for key, value in (obj.get("data") or {}).items() if isinstance(obj.get("data"), dict) else ():
            if not isinstance(value, str):
                causes.append(field_invalid(f"data[{key}]", value, "must be a string"))
        return causes


class SecretStrategy(_ImmutableData):
    DATA_FIELDS = ("data",)

    def default(self, obj):
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()

    def validate(self, obj):
        causes = _validate_keys(obj.get("data"), "data")
        for key, value in (obj.get("data") or {}).items() if isinstance(obj.get("data"), dict) else ():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, TypeError, ValueError):
                causes.append(field_invalid(f"data[{key}]", value, "illegal base64 data"))
        if obj.get("type") == "kubernetes.io/service-account-token" and not (
                meta.annotations_of(obj).get("kubernetes.io/service-account.name")):
            causes.append(field_required("metadata.annotations[kubernetes.io/service-account.name]"))
        return causes

    def validate_immutable(self, new, old):
        causes = super().validate_immutable(new, old)
        if new.get("type") != old.get("type"):
            causes.append(field_invalid("type", new.get("type"), "field is immutable"))
        return causes


class EndpointsStrategy(Strategy):
    allow_create_on_update = True

    def validate(self, obj):
        causes = []
        for i, subset in enumerate(obj.get("subsets") or []):
            for j, port in enumerate(subset.get("ports") or [] if isinstance(subset, dict) else []):
                causes.extend(validation.port_number((port or {}).get("port"), f"subsets[{i}].ports[{j}].port"))
        return causes


class EventStrategy(Strategy):
    """core/v1 Events (events.k8s.io Events use events.py)."""
    allow_create_on_update = True

    def validate(self, obj):
        causes = []
        involved = obj.get("involvedObject")
        if not isinstance(involved, dict) or not involved:
            causes.append(field_required("involvedObject"))
        elif involved.get("namespace") and involved["namespace"] != meta.namespace_of(obj):
            causes.append(field_invalid("involvedObject.namespace", involved["namespace"],
                                        "does not match event.namespace"))
        return causes


class ResourceQuotaStrategy(Strategy):
    def validate(self, obj):
        hard = (obj.get("spec") or {}).get("hard") or {}
        return [field_invalid(f"spec.hard[{k}]", v, "must be a quantity") for k, v in hard.items()
                if not isinstance(v, (str, int, float))]


class PlainStrategy(Strategy):
    """Resources with no rules beyond metadata (service accounts, limit ranges)."""


class ReplicationControllerStrategy(Strategy):
    tracks_generation = True

    def default(self, obj):
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        template = spec.get("template")
        podspec.default_template(template)
        if isinstance(template, dict) and not spec.get("selector"):
            spec["selector"] = dict(meta.labels_of(template))
        if isinstance(template, dict) and not meta.labels_of(obj) and meta.labels_of(template):
            meta.metadata(obj)["labels"] = dict(meta.labels_of(template))  # upstream's defaulting, as the selector

    def validate(self, obj):
        spec = obj.get("spec") or {}
        return validation.non_negative(spec.get("replicas"), "spec.replicas") + podspec.validate_pod_spec(
            (spec.get("template") or {}).get("spec"), "spec.template.spec", ["Always"])
