"""Strategies of rbac.authorization.k8s.io, coordination.k8s.io, discovery.k8s.io, policy and events.k8s.io."""
from __future__ import annotations

from kpy_components.api import meta
from kpy_components.api.meta import field_invalid, field_required

from .. import validation
from ..strategy import Strategy

_SUBJECT_KINDS = ["Group", "ServiceAccount", "User"]


def path_segment_name(name: str) -> list:
    """RBAC names only have to be usable as one URL path segment (`system:node` is fine)."""
    if name in (".", ".."):
        return [field_invalid("metadata.name", name, f"may not be '{name}'")]
    return [field_invalid("metadata.name", name, f"may not contain '{c}'") for c in ("/", "%") if c in name]


class _RBACStrategy(Strategy):
    allow_create_on_update = True

    def validate_name(self, name):
        return path_segment_name(name)


class RoleStrategy(_RBACStrategy):
    """Roles and ClusterRoles. (Escalation checks belong to the RBAC authorizer's admission.)"""

    def validate(self, obj):
        causes = []
        for index, rule in enumerate(obj.get("rules") or []):
            here = f"rules[{index}]"
            if not isinstance(rule, dict):
                causes.append(field_invalid(here, rule, "must be an object"))
                continue
            if not rule.get("verbs"):
                causes.append(field_required(f"{here}.verbs", "verbs must contain at least one value"))
            if rule.get("nonResourceURLs"):
                if self.info.namespaced:
                    causes.append(field_invalid(f"{here}.nonResourceURLs", rule["nonResourceURLs"],
                                                "namespaced rules cannot apply to non-resource URLs"))
            elif not rule.get("resources") and "resourceNames" not in rule:
                causes.append(field_required(f"{here}.resources", "resource rules must supply at least one "
                                             "api group"))
        return causes


class BindingStrategy(_RBACStrategy):
    """RoleBindings and ClusterRoleBindings: roleRef required and fixed for life."""

    def validate(self, obj):
        causes = []
        ref = obj.get("roleRef")
        if not isinstance(ref, dict):
            return [field_required("roleRef")]
        allowed = ["ClusterRole", "Role"] if self.info.namespaced else ["ClusterRole"]
        causes.extend(validation.one_of(ref.get("kind"), "roleRef.kind", allowed))
        if not ref.get("name"):
            causes.append(field_required("roleRef.name"))
        if ref.get("apiGroup") != "rbac.authorization.k8s.io":
            causes.append(meta.field_not_supported("roleRef.apiGroup", ref.get("apiGroup"),
                                                   ["rbac.authorization.k8s.io"]))
        for index, subject in enumerate(obj.get("subjects") or []):
            here = f"subjects[{index}]"
            if not isinstance(subject, dict) or not subject.get("name"):
                causes.append(field_required(f"{here}.name"))
                continue
            causes.extend(validation.one_of(subject.get("kind"), f"{here}.kind", _SUBJECT_KINDS))
            if subject.get("kind") == "ServiceAccount" and not subject.get("namespace") and not self.info.namespaced:
                causes.append(field_required(f"{here}.namespace"))
        return causes

    def validate_immutable(self, new, old):
        if new.get("roleRef") != old.get("roleRef"):
            return [field_invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
        return []


class LeaseStrategy(Strategy):
    def validate(self, obj):
        spec = obj.get("spec") or {}
        causes = validation.non_negative(spec.get("leaseTransitions"), "spec.leaseTransitions")
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            causes.append(field_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
        return causes


class EndpointSliceStrategy(Strategy):
    tracks_generation = True

    def validate(self, obj):
        causes = validation.one_of(obj.get("addressType"), "addressType", ["FQDN", "IPv4", "IPv6"])
        if not obj.get("addressType"):
            causes.append(field_required("addressType"))
        for index, port in enumerate(obj.get("ports") or []):
            if isinstance(port, dict) and port.get("port") is not None:
                causes.extend(validation.port_number(port["port"], f"ports[{index}].port"))
        return causes


class PodDisruptionBudgetStrategy(Strategy):
    tracks_generation = True

    def prepare_for_create(self, obj):
        super().prepare_for_create(obj)
        obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}

    def validate(self, obj):
        spec = obj.get("spec") or {}
        causes = []
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            causes.append(field_invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
        for field in ("minAvailable", "maxUnavailable"):
            value = spec.get(field)
            if isinstance(value, int):
                causes.extend(validation.non_negative(value, f"spec.{field}"))
            elif isinstance(value, str) and not (value.endswith("%") and value[:-1].isdigit()):
                causes.append(field_invalid(f"spec.{field}", value, "a valid percent string must be a numeric "
                                            "string followed by an ending '%' (e.g. '1%',  or '93%', regex used "
                                            "for validation is '[0-9]+%')"))
        return causes


class EventsV1Strategy(Strategy):
    """events.k8s.io/v1 Events: eventTime, reportingController and reason are required on create."""
    allow_create_on_update = True

    def validate(self, obj):
        causes = []
        for field in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
            if not obj.get(field):
                causes.append(field_required(field))
        causes.extend(validation.one_of(obj.get("type"), "type", ["Normal", "Warning"]))
        return causes
