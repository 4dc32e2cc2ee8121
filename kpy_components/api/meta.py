"""Object helpers every part of kpy uses: uids, timestamps, storage keys, metadata access, name validation.

Storage key scheme (the one kpy uses everywhere; storage backends treat keys as opaque strings):
    namespaced:      /registry/<resource>/<namespace>/<name>
    cluster-scoped:  /registry/<resource>/<name>
where <resource> is `ResourceInfo.qualified`: the plural for the core group (`pods`, `namespaces`) and
`<plural>.<group>` otherwise (`deployments.apps`, `events.events.k8s.io`), so two groups serving the same plural never
share keys. `key_prefix` always ends with "/" so that namespace "a" never lists namespace "ab".
"""
from __future__ import annotations

import json
import re
import time
import uuid
from datetime import datetime, timedelta, timezone

import orjson

from .errors import Cause
from .resources import ResourceInfo

REGISTRY_ROOT = "/registry"


# --- identity and time -------------------------------------------------------------------------------------------

def new_uid() -> str:
    return str(uuid.uuid4())


_now_text = [-1, ""]  # (the second, its text): formatting costs more than a write's other timestamps together


def now_rfc3339() -> str:
    """metav1.Time as Kubernetes serialises it: UTC, second precision, `Z`."""
    second = int(time.time())
    if second != _now_text[0]:
        _now_text[:] = [second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))]
    return _now_text[1]


def now_rfc3339_micro() -> str:
    """metav1.MicroTime (events' eventTime, leases' renewTime): microsecond precision."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_RFC3339 = re.compile(r"^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


def parse_rfc3339(value: str) -> datetime:
    """An aware datetime from RFC 3339 text (`Z` or an offset, optional fraction); ValueError naming the text."""
    match = _RFC3339.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not an RFC 3339 time: {value!r}")
    fraction = (match.group(7) or ".0")[1:7].ljust(6, "0")
    zone = match.group(8)
    tz = timezone.utc
    if zone not in ("Z", "z"):
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    return datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)


# --- keys --------------------------------------------------------------------------------------------------------

def key_prefix(info: ResourceInfo, namespace: str | None = None) -> str:
    """Prefix listing every object of the resource, or those of one namespace (namespaced resources only)."""
    if namespace and info.namespaced:
        return f"{REGISTRY_ROOT}/{info.qualified}/{namespace}/"
    return f"{REGISTRY_ROOT}/{info.qualified}/"


def object_key(info: ResourceInfo, namespace: str | None, name: str) -> str:
    if info.namespaced:
        if not namespace:
            raise ValueError(f"{info.qualified} is namespaced: a namespace is required for {name!r}")
        return f"{REGISTRY_ROOT}/{info.qualified}/{namespace}/{name}"
    return f"{REGISTRY_ROOT}/{info.qualified}/{name}"


# --- metadata access ---------------------------------------------------------------------------------------------

def metadata(obj: dict) -> dict:
    """obj["metadata"], created empty when missing (for writers)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def name_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("name") or ""


def namespace_of(obj: dict) -> str:
    return (obj.get("metadata") or {}).get("namespace") or ""


def labels_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def annotations_of(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def deep_copy(value):
    """A deep copy of JSON data (dicts, lists, scalars). An orjson round trip is about three times faster than
    walking the object in Python; values orjson cannot encode (non-string keys, huge ints, non-JSON objects,
    which are then shared, not copied) take the walk."""
    try:
        return orjson.loads(orjson.dumps(value))
    except TypeError:
        return _walk_copy(value)


def _walk_copy(value):
    if isinstance(value, dict):
        return {k: _walk_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk_copy(v) for v in value]
    return value


# --- field errors worded as Kubernetes' field.Error.ErrorBody() --------------------------------------------------

def _show(value) -> str:
    """Go's `%q` for strings, plain for numbers/bools, as field errors print values."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def field_invalid(path: str, value, detail: str) -> Cause:
    return Cause(path, f"Invalid value: {_show(value)}: {detail}", "FieldValueInvalid")


def field_required(path: str, detail: str = "") -> Cause:
    return Cause(path, f"Required value: {detail}" if detail else "Required value", "FieldValueRequired")


def field_forbidden(path: str, detail: str) -> Cause:
    return Cause(path, f"Forbidden: {detail}", "FieldValueForbidden")


def field_not_found(path: str, value) -> Cause:
    return Cause(path, f"Not found: {_show(value)}", "FieldValueNotFound")


def field_duplicate(path: str, value) -> Cause:
    return Cause(path, f"Duplicate value: {_show(value)}", "FieldValueDuplicate")


def field_not_supported(path: str, value, supported: list[str]) -> Cause:
    valid = ", ".join(_show(s) for s in supported)
    return Cause(path, f"Unsupported value: {_show(value)}: supported values: {valid}", "FieldValueNotSupported")


def field_too_long(path: str, value, limit: int) -> Cause:
    return Cause(path, f"Too long: may not be more than {limit} bytes", "FieldValueTooLong")


# --- DNS names (k8s.io/apimachinery/pkg/util/validation) ---------------------------------------------------------

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_FMT = _LABEL_FMT + r"(\." + _LABEL_FMT + ")*"
_LABEL_RE = re.compile(f"^{_LABEL_FMT}$")
_SUBDOMAIN_RE = re.compile(f"^{_SUBDOMAIN_FMT}$")
_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
              "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
              f"'{_LABEL_FMT}')")
_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
                  "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
                  f"is '{_SUBDOMAIN_FMT}')")


def _validate_dns(value: str, path: str, limit: int, pattern: re.Pattern, message: str) -> list[Cause]:
    causes = []
    if len(value) > limit:
        causes.append(field_invalid(path, value, f"must be no more than {limit} characters"))
    if not pattern.match(value):
        causes.append(field_invalid(path, value, message))
    return causes


def validate_dns1123_label(value: str, path: str = "metadata.name") -> list[Cause]:
    """Namespaces, services and other DNS-label names. Returns every problem, empty when valid."""
    return _validate_dns(value, path, DNS1123_LABEL_MAX, _LABEL_RE, _LABEL_MSG)


def validate_dns1123_subdomain(value: str, path: str = "metadata.name") -> list[Cause]:
    """Most object names (configmaps, deployments, pods...). Returns every problem, empty when valid."""
    return _validate_dns(value, path, DNS1123_SUBDOMAIN_MAX, _SUBDOMAIN_RE, _SUBDOMAIN_MSG)


def is_dns1123_label(value: str) -> bool:
    return len(value) <= DNS1123_LABEL_MAX and bool(_LABEL_RE.match(value))


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= DNS1123_SUBDOMAIN_MAX and bool(_SUBDOMAIN_RE.match(value))
