"""Custom resources through the one generic store: the strategy of a CRD's served version (pruning, defaulting and
validation from its structural schema, CEL rules, generation) and what its printer columns and scale subresource
read from objects (JSONPath, as upstream's table convertor and scale code do)."""
from __future__ import annotations

import json
from datetime import datetime

from kpy_components.api import meta, tables
from kpy_components.api.errors import Cause
from kpy_components.api.resources import ResourceInfo

from ..registry.strategy import Strategy
from . import jsonpath, rules, structural


class CustomResourceStrategy(Strategy):
    """Every CR tracks generation: a change outside metadata (and outside status when /status exists) bumps it."""
    tracks_generation = True

    def __init__(self, info: ResourceInfo):
        super().__init__(info)
        self.schema = info.extra.get("schema") or {}
        self.rules = rules.compile_schema(self.schema)

    def unknown_fields(self, obj, api_version: str, kind: str) -> list[str]:
        """What pruning would drop (fieldValidation Strict refuses it, Warn reports it); `kind` Scale bodies are
        the scale subresource's, checked by the kind's own rules."""
        if kind != self.info.kind:
            return super().unknown_fields(obj, api_version, kind)
        return structural.prune(meta.deep_copy(obj), self.schema) if isinstance(obj, dict) else []

    def default(self, obj: dict) -> None:
        structural.prune(obj, self.schema)
        structural.default(obj, self.schema)

    def validate(self, obj: dict) -> list[Cause]:
        causes = structural.validate(obj, self.schema)
        if not causes:  # CEL runs on values of the declared types only, as upstream
            causes = self.rules.check(obj, None)
        return causes

    def validate_update(self, new: dict, old: dict) -> list[Cause]:
        causes = structural.validate(new, self.schema)
        if not causes:
            causes = self.rules.check(new, old)
        return causes

    def spec_changed(self, new: dict, old: dict) -> bool:
        ignored = {"metadata", "status"} if self.has_status else {"metadata"}
        keys = (set(new) | set(old)) - ignored
        return any(new.get(k) != old.get(k) for k in keys)


# --- Table cells -----------------------------------------------------------------------------------------------

def _cell(kind: str, value, now: datetime):
    if value is None:
        return None
    if kind == "date" and isinstance(value, str):
        return tables.since(value, now)
    if kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)


def cells(info: ResourceInfo, obj: dict, now: datetime) -> list:
    """Name, then each additionalPrinterColumn's value (None when its path finds nothing: kubectl prints
    `<none>`), or Name and Age when the version declares no columns."""
    row = [meta.name_of(obj)]
    if not info.extra.get("columns_declared"):
        return row + [tables.since((obj.get("metadata") or {}).get("creationTimestamp"), now)]
    for column, path in zip(info.columns[1:], info.extra.get("column_paths") or (), strict=False):
        try:
            value = jsonpath.first(obj, path)
        except jsonpath.JSONPathError:
            value = None
        row.append(_cell(column.type, value, now))
    return row


# --- the scale subresource -------------------------------------------------------------------------------------

def _set(obj: dict, path: str, value) -> None:
    steps = [s[1] for s in jsonpath.parse(path)]
    target = obj
    for step in steps[:-1]:
        child = target.get(step)
        if not isinstance(child, dict):
            child = target[step] = {}
        target = child
    target[steps[-1]] = value


def to_scale(info: ResourceInfo, obj: dict) -> dict:
    """autoscaling/v1 Scale of a custom resource from its CRD's scale paths (missing replicas read as 0)."""
    scale = info.extra.get("scale") or {}
    metadata = obj.get("metadata") or {}
    selector = jsonpath.first(obj, scale["labelSelectorPath"]) if scale.get("labelSelectorPath") else None
    spec_replicas = jsonpath.first(obj, scale.get("specReplicasPath", ".spec.replicas"))
    status_replicas = jsonpath.first(obj, scale.get("statusReplicasPath", ".status.replicas"))
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: metadata[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in metadata},
            "spec": {"replicas": spec_replicas if isinstance(spec_replicas, int) else 0},
            "status": {"replicas": status_replicas if isinstance(status_replicas, int) else 0,
                       "selector": selector if isinstance(selector, str) else ""}}


def set_replicas(info: ResourceInfo, obj: dict, replicas: int) -> None:
    _set(obj, (info.extra.get("scale") or {}).get("specReplicasPath", ".spec.replicas"), replicas)
