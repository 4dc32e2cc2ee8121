"""Unknown fields for `fieldValidation=Strict|Warn`, read from the one description of the Kubernetes types
(kpy_components/api/types.py) that the protobuf body decoder reads too: every level of every kind kpy serves, as
upstream's strict decoder checks. Kinds the description lacks (custom resources) are checked at the top level only
(apiVersion, kind, metadata as ObjectMeta, spec and status with anything beneath).

Paths are reported as Kubernetes' strict decoder does: `spec.template.spec.containers[0].imagee`. A value of the
wrong shape where the type has an object, a map or a list (labels given as a string) is a DecodingError worded as
upstream's converter words it (`cannot restore map from string`), whatever the field validation.
"""
from __future__ import annotations

from kpy_components.api import types

_OBJECT_META = f"{types.META}.ObjectMeta"
_GO_KINDS = {str: "string", bool: "bool", int: "int64", float: "float64", list: "slice", dict: "map"}


class DecodingError(ValueError):
    """A value whose JSON type cannot be what the field is."""


def _expect(value, wanted: type, what: str) -> bool:
    """True when `value` is a `wanted` to walk into; None is fine (an unset field); anything else is refused."""
    if value is None:
        return False
    if not isinstance(value, wanted):
        raise DecodingError(f"cannot restore {what} from {_GO_KINDS.get(type(value), type(value).__name__)}")
    return True
_UNDESCRIBED_TOP = ("apiVersion", "kind", "metadata", "spec", "status")


def unknown_fields(obj, api_version: str, kind: str) -> list[str]:
    """Dotted paths of the fields in `obj` (an object of `kind`) that the kind does not have, in document order;
    DecodingError for a value of the wrong shape."""
    if not isinstance(obj, dict):
        return []
    message = types.message_for(api_version, kind)
    if message is not None:
        return _unknown(obj, message, "", top=True)
    found = []
    for name, value in obj.items():
        if name not in _UNDESCRIBED_TOP:
            found.append(name)
        elif name == "metadata" and _expect(value, dict, "struct"):
            found.extend(_unknown(value, _OBJECT_META, name))
    return found


def _unknown(obj: dict, message: str, path: str, top: bool = False) -> list[str]:
    known = types.json_fields(message)
    found = []
    for name, value in obj.items():
        if name.startswith("$") or (top and name in ("apiVersion", "kind")):
            continue  # strategic-merge-patch directives ($patch, $setElementOrder/...); the TypeMeta of an object
        here = f"{path}.{name}" if path else name
        field = known.get(name)
        if field is None:
            found.append(here)
        elif field.map_key is not None:
            if _expect(value, dict, "map") and _is_struct(field.type):
                for key, item in value.items():
                    if _expect(item, dict, "struct"):
                        found.extend(_unknown(item, field.type, f"{here}.{key}"))
        elif field.repeated and field.type not in types.LIST_WRAPPERS:
            if _expect(value, list, "slice") and _is_struct(field.type):
                for index, item in enumerate(value):
                    if _expect(item, dict, "struct"):
                        found.extend(_unknown(item, field.type, f"{here}[{index}]"))
        elif _is_struct(field.type) and _expect(value, dict, "struct"):
            found.extend(_unknown(value, field.type, here))
    return found


def _is_struct(kind: str) -> bool:
    """A message that is a JSON object of its fields (not a scalar, nor a type with its own JSON form)."""
    return "." in kind and kind not in types.CUSTOM_JSON and kind not in types.LIST_WRAPPERS
