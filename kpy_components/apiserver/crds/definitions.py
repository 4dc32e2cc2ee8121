"""CustomResourceDefinition objects (apiextensions.k8s.io/v1): defaulting, validation worded as upstream's CRD
validator, the deletion finalizer, the status conditions the naming and establishing controllers set, and the
ResourceInfo of every served version (what discovery, the generic store and the printers read).
"""
from __future__ import annotations

import re

from kpy_components.api import meta
from kpy_components.api.errors import Cause
from kpy_components.api.resources import ALL_VERBS, PrinterColumn, ResourceInfo, Subresource

from ..registry import validation
from ..registry.strategy import Strategy
from . import custom, jsonpath, rules, structural

GROUP = "apiextensions.k8s.io"
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_KIND_RE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_COLUMN_TYPES = ["integer", "number", "string", "boolean", "date"]
_GPU = ("get", "patch", "update")
_AGE = PrinterColumn("Age", type="date", description="CreationTimestamp is a timestamp representing the server time "
                     "when this object was created. It is not guaranteed to be set in happens-before order across "
                     "separate operations. Clients may not set this value. It is represented in RFC3339 form and is "
                     "in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
                     "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
_NAME = PrinterColumn("Name", format="name", description="Name must be unique within a namespace. Is required when "
                      "creating resources, although some resources may allow a client to request the generation of "
                      "an appropriate name automatically. Name is primarily intended for creation idempotence and "
                      "configuration definition. Cannot be updated. More info: "
                      "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")


def spec_of(crd: dict) -> dict:
    spec = crd.get("spec")
    return spec if isinstance(spec, dict) else {}


def storage_version(crd: dict) -> str:
    return next((v.get("name", "") for v in spec_of(crd).get("versions") or [] if v.get("storage")), "")


def condition(crd: dict, kind: str) -> dict | None:
    return next((c for c in (crd.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def is_established(crd: dict) -> bool:
    found = condition(crd, "Established")
    return bool(found and found.get("status") == "True")


def set_condition(status: dict, kind: str, state: str, reason: str, message: str) -> None:
    """Add or replace a condition; lastTransitionTime moves only when the status flips."""
    conditions = status.setdefault("conditions", [])
    old = next((c for c in conditions if c.get("type") == kind), None)
    when = old["lastTransitionTime"] if old and old.get("status") == state else meta.now_rfc3339()
    new = {"type": kind, "status": state, "lastTransitionTime": when, "reason": reason, "message": message}
    if old is None:
        conditions.append(new)
    else:
        conditions[conditions.index(old)] = new


class CRDStrategy(Strategy):
    """Deleting a CRD first marks it Terminating with the cleanup finalizer (its custom resources are then removed
    by the controller, which drops the finalizer), as upstream's CRD storage does."""

    def prepare_for_create(self, obj: dict) -> None:
        super().prepare_for_create(obj)
        version = storage_version(obj)
        obj["status"] = {"conditions": [], "acceptedNames": {"kind": "", "plural": ""},
                         "storedVersions": [version] if version else []}

    def prepare_for_update(self, new: dict, old: dict) -> None:
        super().prepare_for_update(new, old)
        status = new.setdefault("status", {})
        version = storage_version(new)
        stored = status.setdefault("storedVersions", [])
        if version and version not in stored:
            stored.append(version)

    def default(self, obj: dict) -> None:
        spec = spec_of(obj)
        names = spec.get("names")
        if isinstance(names, dict) and isinstance(names.get("kind"), str):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", f"{names['kind']}List")
        if isinstance(spec, dict) and "spec" in obj:
            conversion = spec.setdefault("conversion", {"strategy": "None"})
            if isinstance(conversion, dict):
                conversion.setdefault("strategy", "None")

    def blocks_deletion(self, obj: dict) -> bool:
        metadata = obj.get("metadata") or {}
        return bool(metadata.get("finalizers")) or not metadata.get("deletionTimestamp")

    def mark_deleting(self, obj: dict) -> None:
        metadata = meta.metadata(obj)
        if CLEANUP_FINALIZER not in (metadata.get("finalizers") or []):
            metadata["finalizers"] = [*(metadata.get("finalizers") or []), CLEANUP_FINALIZER]
        set_condition(obj.setdefault("status", {}), "Terminating", "True", "InstanceDeletionInProgress",
                      "CustomResource deletion is in progress")

    def validate(self, obj: dict) -> list[Cause]:
        return validate_definition(obj)

    def validate_immutable(self, new: dict, old: dict) -> list[Cause]:
        scope = spec_of(new).get("scope")
        if spec_of(old).get("scope") and scope != spec_of(old).get("scope"):
            return [meta.field_invalid("spec.scope", scope, "field is immutable")]
        return []


def validate_definition(crd: dict) -> list[Cause]:
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [meta.field_required("spec")]
    causes: list[Cause] = []
    group, names = spec.get("group") or "", spec.get("names") if isinstance(spec.get("names"), dict) else {}
    plural = names.get("plural") or ""
    if meta.name_of(crd) != f"{plural}.{group}":
        causes.append(meta.field_invalid("metadata.name", meta.name_of(crd),
                                         'must be spec.names.plural+"."+spec.group'))
    if not group:
        causes.append(meta.field_required("spec.group"))
    elif "." not in group:
        causes.append(meta.field_invalid("spec.group", group, "should be a domain with at least one dot"))
    else:
        causes.extend(meta.validate_dns1123_subdomain(group, "spec.group"))
    if not spec.get("scope"):
        causes.append(meta.field_required("spec.scope"))
    else:
        causes.extend(validation.one_of(spec["scope"], "spec.scope", ["Cluster", "Namespaced"]))
    causes.extend(_validate_names(names))
    conversion = spec.get("conversion") or {}
    causes.extend(validation.one_of(conversion.get("strategy"), "spec.conversion.strategy", ["None", "Webhook"]))
    causes.extend(_validate_conversion(conversion))
    causes.extend(_validate_versions(spec.get("versions")))
    return causes


def _validate_conversion(conversion: dict) -> list[Cause]:
    """A Webhook strategy names its webhook (one of url or service) and a ConversionReview version kpy speaks."""
    webhook = conversion.get("webhook")
    if conversion.get("strategy") != "Webhook":
        return [meta.field_forbidden("spec.conversion.webhook", "should not be set when strategy is not set to "
                                     "Webhook")] if webhook else []
    if not isinstance(webhook, dict):
        return [meta.field_required("spec.conversion.webhook", "required when strategy is set to Webhook")]
    causes = []
    config = webhook.get("clientConfig")
    if not isinstance(config, dict):
        causes.append(meta.field_required("spec.conversion.webhook.clientConfig",
                                          "required when strategy is set to Webhook"))
    elif bool(config.get("url")) == bool(config.get("service")):
        causes.append(meta.field_required("spec.conversion.webhook.clientConfig",
                                          "exactly one of url or service is required"))
    versions = webhook.get("conversionReviewVersions") or []
    if not versions:
        causes.append(meta.field_required("spec.conversion.webhook.conversionReviewVersions",
                                          "must contain at least one of v1, v1beta1"))
    elif not {"v1", "v1beta1"} & set(versions):
        causes.append(meta.field_invalid("spec.conversion.webhook.conversionReviewVersions", versions,
                                         "must include at least one of v1, v1beta1"))
    return causes


def _validate_names(names: dict) -> list[Cause]:
    causes = []
    for field in ("plural", "singular"):
        value = names.get(field) or ""
        if not value and field == "plural":
            causes.append(meta.field_required("spec.names.plural"))
        elif value:
            causes.extend(meta.validate_dns1123_label(value, f"spec.names.{field}"))
    for index, short in enumerate(names.get("shortNames") or []):
        causes.extend(meta.validate_dns1123_label(short, f"spec.names.shortNames[{index}]"))
    for field in ("kind", "listKind"):
        value = names.get(field) or ""
        if not value:
            causes.append(meta.field_required(f"spec.names.{field}"))
        elif not _KIND_RE.match(value.lower()):
            causes.append(meta.field_invalid(f"spec.names.{field}", value, "may have mixed case, but should "
                                             "otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?"))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        causes.append(meta.field_invalid("spec.names.listKind", names["listKind"], "kind and listKind may not be "
                                         "the same"))
    return causes


def _validate_versions(versions) -> list[Cause]:
    if not versions:
        return [meta.field_invalid("spec.versions", versions, "must have exactly one version marked as storage "
                                   "version")]
    causes, seen = [], set()
    if sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        causes.append(meta.field_invalid("spec.versions", versions, "must have exactly one version marked as "
                                         "storage version"))
    if not any(isinstance(v, dict) and v.get("served") for v in versions):
        causes.append(meta.field_invalid("spec.versions", versions, "must have at least one version marked as "
                                         "served"))
    for index, version in enumerate(versions):
        path = f"spec.versions[{index}]"
        if not isinstance(version, dict):
            causes.append(meta.field_invalid(path, version, "must be an object"))
            continue
        name = version.get("name") or ""
        if name in seen:
            causes.append(meta.field_duplicate(f"{path}.name", name))
        seen.add(name)
        causes.extend(meta.validate_dns1123_label(name, f"{path}.name") if name else
                      [meta.field_required(f"{path}.name")])
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            causes.append(meta.field_required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
        else:
            causes.extend(structural.structural_problems(schema, f"{path}.schema.openAPIV3Schema"))
            causes.extend(rules.compile_problems(schema, f"{path}.schema.openAPIV3Schema"))
        causes.extend(_validate_columns(version.get("additionalPrinterColumns") or [], path))
        causes.extend(_validate_scale(((version.get("subresources") or {}).get("scale")), path))
    return causes


def _validate_columns(columns: list, path: str) -> list[Cause]:
    causes = []
    for index, column in enumerate(columns):
        here = f"{path}.additionalPrinterColumns[{index}]"
        if not isinstance(column, dict):
            causes.append(meta.field_invalid(here, column, "must be an object"))
            continue
        if not column.get("name"):
            causes.append(meta.field_required(f"{here}.name"))
        if not column.get("type"):
            causes.append(meta.field_required(f"{here}.type"))
        else:
            causes.extend(validation.one_of(column["type"], f"{here}.type", _COLUMN_TYPES))
        causes.extend(_validate_path(column.get("jsonPath"), f"{here}.jsonPath"))
    return causes


def _validate_path(path, where: str, under: str = "") -> list[Cause]:
    if not path:
        return [meta.field_required(where)]
    try:
        jsonpath.parse(path)
    except jsonpath.JSONPathError:
        return [meta.field_invalid(where, path, "must be a simple json path")]
    if under and not path.startswith(under):
        return [meta.field_invalid(where, path, f"should be a json path under {under.rstrip('.')}")]
    return []


def _validate_scale(scale, path: str) -> list[Cause]:
    if not isinstance(scale, dict):
        return []
    here = f"{path}.subresources.scale"
    causes = _validate_path(scale.get("specReplicasPath"), f"{here}.specReplicasPath", ".spec.")
    causes += _validate_path(scale.get("statusReplicasPath"), f"{here}.statusReplicasPath", ".status.")
    if scale.get("labelSelectorPath"):
        causes += _validate_path(scale["labelSelectorPath"], f"{here}.labelSelectorPath")
    return causes


# --- what the served versions look like to the rest of the API server ----------------------------------------------

def _columns(version: dict) -> tuple[PrinterColumn, ...]:
    declared = version.get("additionalPrinterColumns")
    if not declared:
        return (_NAME, _AGE)
    return (_NAME, *(PrinterColumn(c["name"], type=c.get("type", "string"), format=c.get("format", ""),
                                   description=c.get("description", ""), priority=c.get("priority", 0))
                     for c in declared))


def served_resources(crd: dict) -> list[ResourceInfo]:
    """One ResourceInfo per served version of an established CRD (none otherwise). `extra` carries what the custom
    resource strategy and printers need: the version's schema, printer column paths, scale paths, the CRD's name
    and storage version."""
    if not is_established(crd):  # a terminating CRD stays served: its objects are deleted through it
        return []
    spec = spec_of(crd)
    names = spec.get("names") or {}
    infos = []
    for version in spec.get("versions") or []:
        if not version.get("served"):
            continue
        subresources = version.get("subresources") or {}
        subs = []
        if "scale" in subresources:
            subs.append(Subresource("scale", "Scale", _GPU, group="autoscaling", version="v1"))
        if "status" in subresources:
            subs.append(Subresource("status", names["kind"], _GPU))
        selectable = tuple(f.get("jsonPath", "").lstrip(".") for f in version.get("selectableFields") or [])
        extra = {"crd": meta.name_of(crd), "cells": custom.cells, "schema": (version.get("schema") or {}).get("openAPIV3Schema") or {},
                 "storage_version": storage_version(crd), "scale": subresources.get("scale"),
                 "column_paths": [c.get("jsonPath", "") for c in version.get("additionalPrinterColumns") or []],
                 "columns_declared": bool(version.get("additionalPrinterColumns")),
                 "validations": bool(version.get("schema")), "deprecated": version.get("deprecated", False),
                 "deprecation_warning": version.get("deprecationWarning"), "conversion": spec.get("conversion")}
        infos.append(ResourceInfo(group=spec["group"], version=version["name"], kind=names["kind"],
                                  plural=names["plural"], singular=names.get("singular") or names["kind"].lower(),
                                  namespaced=spec.get("scope") == "Namespaced",
                                  short_names=tuple(names.get("shortNames") or ()),
                                  categories=tuple(names.get("categories") or ()), verbs=ALL_VERBS,
                                  subresources=tuple(subs), columns=_columns(version),
                                  field_selectors=("metadata.name", "metadata.namespace") + selectable,
                                  extra=extra))
    return infos
