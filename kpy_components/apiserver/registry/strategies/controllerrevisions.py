"""apps/v1 ControllerRevisions: immutable snapshots of a DaemonSet's or StatefulSet's pod template, written by their
controllers and read by `kubectl rollout history|undo` (ValidateControllerRevision/ValidateControllerRevisionUpdate).
Only `data` is frozen; `revision` may change (controllers renumber a revision a rollback returns to)."""
from __future__ import annotations

from kpy_components.api.meta import field_invalid, field_required

from .. import validation
from ..strategy import Strategy


class ControllerRevisionStrategy(Strategy):
    def default(self, obj):
        obj.setdefault("revision", 0)  # int64 without omitempty: Kubernetes always has one, 0 when not given

    def validate(self, obj):
        causes = [] if obj.get("data") is not None else [field_required("data", "data is mandatory")]
        return causes + validation.non_negative(obj.get("revision"), "revision")

    def validate_immutable(self, new, old):
        if new.get("data") != old.get("data"):
            return [field_invalid("data", new.get("data"), "field is immutable")]
        return []
