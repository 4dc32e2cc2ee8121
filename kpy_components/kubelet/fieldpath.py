"""The downward API's values, shared by env.py (fieldRef/resourceFieldRef env vars) and volumes.py (downwardAPI files):
upstream's fieldpath.ExtractFieldPathAsString and resource.ExtractResourceValueByContainerNameAndNodeAllocatable.

Errors are ValueError with upstream's wording; callers turn them into their own kind of failure."""
from __future__ import annotations

import json
import math
import re
from fractions import Fraction

from kpy_components.api.quantity import Quantity, QuantityError

_SUBSCRIPT = re.compile(r"^(metadata\.(?:labels|annotations))\['(.*)'\]$")
_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def format_map(values: dict) -> str:
    """Upstream's FormatMap: `key="value"` lines sorted by key (Go's %q; JSON's escaping matches it for the text
    labels and annotations hold)."""
    return "\n".join(f"{key}={json.dumps(str(values[key]), ensure_ascii=False)}" for key in sorted(values))


def object_field(pod: dict, path: str) -> str:
    """A metadata field of the pod (what downwardAPI volume files may read): name, namespace, uid, labels,
    annotations, and one label or annotation as `metadata.labels['key']` (absent → "")."""
    meta = pod.get("metadata") or {}
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        field, key = subscript.groups()
        return str((meta.get(field.split(".")[1]) or {}).get(key, ""))
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".")[1]) or {})
    if path in ("metadata.name", "metadata.namespace", "metadata.uid"):
        return str(meta.get(path.split(".")[1], ""))
    raise ValueError(f"unsupported fieldPath: {path}")


def find_container(pod: dict, name: str) -> dict | None:
    spec = pod.get("spec") or {}
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if container.get("name") == name:
            return container
    return None


def _quantity(text, where: str) -> Quantity:
    try:
        return Quantity.parse(text)
    except QuantityError as error:
        raise ValueError(f"{where}: {error}") from None


def resource_value(pod: dict, ref: dict, allocatable: dict | None, default_container: str = "") -> str:
    """A resourceFieldRef's value: the container's request or limit divided by `divisor` (default 1) and rounded
    up — cpu in millicores (MilliValue), the others in units (Value). A limit the container does not set is the
    node's allocatable amount, as upstream; an unset request is 0."""
    name = ref.get("containerName") or default_container
    container = find_container(pod, name)
    if container is None:
        raise ValueError(f"container {name} not found")
    resource = ref.get("resource") or ""
    kind, _, resource_name = resource.partition(".")
    if kind not in ("limits", "requests") or not (resource_name in _RESOURCES or
                                                   resource_name.startswith("hugepages-")):
        raise ValueError(f"unsupported container resource : {resource}")
    values = dict((container.get("resources") or {}).get(kind) or {})
    if kind == "limits" and resource_name not in values and resource_name in (allocatable or {}):
        values[resource_name] = allocatable[resource_name]
    amount = _quantity(values.get(resource_name, "0"), f"{kind}.{resource_name}").value
    divisor = _quantity(ref.get("divisor") or "0", "divisor").value or Fraction(1)  # unset or zero: 1
    if resource_name == "cpu":  # MilliValue() of each, both rounded up to whole millicores
        return str(math.ceil(Fraction(math.ceil(amount * 1000)) / math.ceil(divisor * 1000)))
    return str(math.ceil(Fraction(math.ceil(amount)) / math.ceil(divisor)))
