"""scheduling.k8s.io/v1 PriorityClasses (pkg/apis/scheduling/validation ValidatePriorityClass and
ValidatePriorityClassUpdate): names starting with `system-` are reserved for the built-in classes, user classes may
not exceed 1000000000, value and preemptionPolicy never change. That at most one class is the global default is
the Priority admission plugin's check; that the built-in classes cannot be deleted is too (see admission/priority.py).
"""
from __future__ import annotations

from kpy_components.api import scheduling
from kpy_components.api.meta import field_forbidden, field_invalid

from .. import validation
from ..strategy import Strategy

_INT32 = (-2 ** 31, 2 ** 31 - 1)


class PriorityClassStrategy(Strategy):
    def default(self, obj):
        obj.setdefault("value", 0)  # int32 without omitempty: always present
        obj.setdefault("preemptionPolicy", scheduling.PREEMPT_LOWER_PRIORITY)

    def validate(self, obj):
        value, name = obj.get("value"), (obj.get("metadata") or {}).get("name") or ""
        if isinstance(value, bool) or not isinstance(value, int) or not _INT32[0] <= value <= _INT32[1]:
            return [field_invalid("value", value, "must be a 32-bit integer")]
        causes = []
        if not isinstance(obj.get("globalDefault", False), bool):
            causes.append(field_invalid("globalDefault", obj.get("globalDefault"), "must be a boolean"))
        if name.startswith(scheduling.SYSTEM_PREFIX):
            error = scheduling.system_class_error(name, value, obj.get("globalDefault") is True)
            if error:
                causes.append(field_forbidden("metadata.name", "priority class names with 'system-' prefix are "
                                              f"reserved for system use only. error: {error}"))
        elif value > scheduling.HIGHEST_USER_DEFINABLE_PRIORITY:
            causes.append(field_forbidden("value", "maximum allowed value of a user defined priority is "
                                          f"{scheduling.HIGHEST_USER_DEFINABLE_PRIORITY}"))
        return causes + validation.one_of(obj.get("preemptionPolicy"), "preemptionPolicy",
                                          scheduling.PREEMPTION_POLICIES)

    def validate_immutable(self, new, old):
        causes = []
        if new.get("value") != old.get("value"):
            causes.append(field_forbidden("value", "may not be changed in an update."))
        if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
            causes.append(field_invalid("preemptionPolicy", new.get("preemptionPolicy"), "field is immutable"))
        return causes
