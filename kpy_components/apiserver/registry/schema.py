"""Unknown fields for `fieldValidation=Strict|Warn`, read from the one description of the Kubernetes types
(kpy_components/api/types.py) that the protobuf body decoder reads too: every level of every kind kpy serves, as
upstream's strict decoder checks. Kinds the description lacks (custom resources) are checked at the top level only
(apiVersion, kind, metadata as ObjectMeta, spec and status with anything beneath).

Paths are reported as Kubernetes' strict decoder does: `spec.template.spec.containers[0].imagee`.
"""
from __future__ import annotations

from kpy_components.api import types

_OBJECT_META = f"{types.META}.ObjectMeta"
_UNDESCRIBED_TOP = ("apiVersion", "kind", "metadata", "spec", "status")


def unknown_fields(obj, api_version: str, kind: str) -> list[str]:
    """Dotted paths of the fields in `obj` (an object of `kind`) that the kind does not have, in document order."""
    if not isinstance(obj, dict):
        return []
    message = types.message_for(api_version, kind)
    if message is not None:
        return _unknown(obj, message, "", top=True)
    found = []
    for name, value in obj.items():
        if name not in _UNDESCRIBED_TOP:
            found.append(name)
        elif name == "metadata":
            found.extend(_unknown(value, _OBJECT_META, name))
    return found


def _unknown(obj, message: str, path: str, top: bool = False) -> list[str]:
    if not isinstance(obj, dict) or message in types.CUSTOM_JSON or message in types.LIST_WRAPPERS:
        return []
    known = types.json_fields(message)
    found = []
    for name, value in obj.items():
        if name.startswith("$") or (top and name in ("apiVersion", "kind")):
            continue  # strategic-merge-patch directives ($patch, $setElementOrder/...); the TypeMeta of an object
        here = f"{path}.{name}" if path else name
        field = known.get(name)
        if field is None:
            found.append(here)
        elif not field.is_message:
            continue
        elif field.map_key is not None:
            if isinstance(value, dict):
                for key, item in value.items():
                    found.extend(_unknown(item, field.type, f"{here}.{key}"))
        elif field.repeated:
            if isinstance(value, list):
                for index, item in enumerate(value):
                    found.extend(_unknown(item, field.type, f"{here}[{index}]"))
        else:
            found.extend(_unknown(value, field.type, here))
    return found
