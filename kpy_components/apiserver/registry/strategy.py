"""What differs between resources, behind one small class the generic store calls (Kubernetes' RESTCreateStrategy,
RESTUpdateStrategy and RESTDeleteStrategy in one). Subclasses override only what their resource needs.

Order on create:  prepare_for_create (defaulting) -> admission -> validate -> store.
Order on update:  prepare_for_update (status/spec split, defaulting) -> admission -> validate_update -> store.
"""
from __future__ import annotations

from kpy_components.api import meta
from kpy_components.api.errors import Cause
from kpy_components.api.resources import ResourceInfo

from . import schema, validation

# Parts of an object that are neither metadata nor status: a change there is a spec change (bumps generation).
_NOT_SPEC = frozenset({"apiVersion", "kind", "metadata", "status"})


class Strategy:
    name_is_label = False  # DNS-1123 label names (namespaces, services) instead of subdomains
    tracks_generation = False  # metadata.generation starts at 1 and bumps on every spec change (workloads)
    allow_create_on_update = False  # PUT of a missing object creates it (leases, endpoints, events, RBAC)
    status_reset_on_create = True  # clients cannot set status when creating (for resources with /status)

    def __init__(self, info: ResourceInfo):
        self.info = info
        self.has_status = info.subresource("status") is not None

    # --- create --------------------------------------------------------------------------------------------------
    def prepare_for_create(self, obj: dict) -> None:
        """Default the object in place (and drop status the client may not set)."""
        if self.has_status and self.status_reset_on_create:
            obj.pop("status", None)
        self.default(obj)

    def default(self, obj: dict) -> None:
        """Fill in the defaults Kubernetes' defaulting functions set; called on create and update."""

    def validate(self, obj: dict) -> list[Cause]:
        """Field errors of a new object beyond metadata (checked by the store)."""
        return []

    def unknown_fields(self, obj, api_version: str, kind: str) -> list[str]:
        """Paths of fields the kind does not have (fieldValidation); DecodingError for a value of the wrong
        shape."""
        return schema.unknown_fields(obj, api_version, kind)

    # --- update --------------------------------------------------------------------------------------------------
    def prepare_for_update(self, new: dict, old: dict) -> None:
        """Main resource: status is kept from `old` (changed through /status only)."""
        if self.has_status:
            if "status" in old:
                new["status"] = meta.deep_copy(old["status"])
            else:
                new.pop("status", None)
        self.default(new)

    def prepare_for_status_update(self, new: dict, old: dict) -> dict:
        """/status: everything but status (and metadata labels/annotations) comes from `old`."""
        result = meta.deep_copy(old)
        if "status" in new:
            result["status"] = new["status"]
        else:
            result.pop("status", None)
        for key in ("labels", "annotations"):
            if key in (new.get("metadata") or {}):
                meta.metadata(result)[key] = new["metadata"][key]
        return result

    def validate_update(self, new: dict, old: dict) -> list[Cause]:
        return self.validate(new) + self.validate_immutable(new, old)

    def validate_immutable(self, new: dict, old: dict) -> list[Cause]:
        return []

    def spec_changed(self, new: dict, old: dict) -> bool:
        keys = (set(new) | set(old)) - _NOT_SPEC
        return any(new.get(k) != old.get(k) for k in keys)

    # --- resources held outside the object (service IPs, node ports) --------------------------------------------
    async def allocate(self, ctx, new: dict, old: dict | None) -> None:
        """Reserve what `new` needs and fill it in (called after validation; must be idempotent per object)."""

    async def release(self, obj: dict, kept: dict | None = None) -> None:
        """Give back what `obj` held and `kept` (its successor, None after deletion) no longer holds."""

    # --- delete --------------------------------------------------------------------------------------------------
    def grace_period(self, obj: dict, requested: int | None) -> int:
        """Seconds the object lingers with deletionTimestamp set before it is removed; 0 deletes at once."""
        return 0

    def blocks_deletion(self, obj: dict) -> bool:
        """True while something must still happen before removal (finalizers)."""
        return bool((obj.get("metadata") or {}).get("finalizers"))

    def mark_deleting(self, obj: dict) -> None:
        """Changes made when deletion starts but the object stays (a namespace turns Terminating)."""

    return_deleted_object = False  # DELETE answers with the object (pods) rather than a Success Status

    # --- metadata ------------------------------------------------------------------------------------------------
    def validate_name(self, name: str) -> list[Cause]:
        if self.name_is_label:
            return meta.validate_dns1123_label(name)
        return meta.validate_dns1123_subdomain(name)

    def validate_metadata(self, obj: dict) -> list[Cause]:
        metadata = obj.get("metadata") or {}
        causes = []
        name = metadata.get("name") or ""
        if not name:
            causes.append(meta.field_required("metadata.name", "name or generateName is required"))
        else:
            causes.extend(self.validate_name(name))
        if self.info.namespaced and not metadata.get("namespace"):
            causes.append(meta.field_required("metadata.namespace"))
        causes.extend(validation.labels(metadata.get("labels"), "metadata.labels"))
        causes.extend(validation.annotations(metadata.get("annotations"), "metadata.annotations"))
        return causes
