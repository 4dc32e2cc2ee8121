"""The four PATCH content types mapped onto the object model's patch and apply code (kpy_components.api.patch,
kpy_components.api.apply), plus managedFields bookkeeping for ordinary writes."""
from __future__ import annotations

from kpy_components.api import errors, meta, patch
from kpy_components.api.resources import ResourceInfo

from .context import WriteContext

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY)


def check_patch(patch_type: str, body) -> None:
    if patch_type not in TYPES:
        raise errors.unsupported_media_type(patch_type)
    if patch_type == JSON_PATCH:
        patch.decode_json_patch(body)
    elif not isinstance(body, dict):
        raise errors.bad_request(f"the patch ({patch_type}) must be a JSON object")


def _apply_module():
    from kpy_components.api import apply  # server-side apply lives with the object model

    return apply


def apply_patch(ctx: WriteContext, info: ResourceInfo, patch_type: str, current: dict, body, subresource: str,
                kind: str = "") -> dict:
    """The object `body` asks for, from `current`. `kind` names the patched object's kind when it is not the
    resource's own (a Scale)."""
    kind = kind or info.kind
    if patch_type == JSON_PATCH:
        return patch.apply_json_patch(current, body)
    if patch_type == MERGE_PATCH:
        return patch.apply_merge_patch(current, body)
    if patch_type == STRATEGIC_MERGE_PATCH:
        return patch.apply_strategic_merge_patch(current, body, kind)
    _require_manager(ctx)
    ctx.applying = True
    return _apply_module().apply(current, body, manager=ctx.field_manager, force=ctx.force,
                                 subresource=subresource)


def apply_to_missing(ctx: WriteContext, info: ResourceInfo, namespace: str, name: str, body: dict) -> dict:
    """Server-side apply of an object that does not exist yet: it is created from the applied configuration."""
    _require_manager(ctx)
    obj = meta.deep_copy(body)
    metadata = meta.metadata(obj)
    if metadata.get("name") and metadata["name"] != name:
        raise errors.bad_request(f"the name of the object ({metadata['name']}) does not match the name on the URL "
                                 f"({name})")
    metadata["name"] = name
    if info.namespaced:
        metadata["namespace"] = namespace
    ctx.applying = True
    return _apply_module().apply({}, obj, manager=ctx.field_manager, force=ctx.force, subresource="")


def _require_manager(ctx: WriteContext) -> None:
    if not ctx.field_manager:
        raise errors.invalid("PatchOptions", "", [meta.field_required("fieldManager", "is required for apply "
                                                                      "patch")], "meta.k8s.io")


def track_update(ctx: WriteContext, old: dict | None, new: dict, subresource: str = "") -> None:
    """Record an Update-operation owner in managedFields for non-apply writes (as Kubernetes' field manager does)."""
    if not ctx.applying:
        _apply_module().record_update(old, new, manager=ctx.field_manager or "unknown", subresource=subresource)
