"""Lookups over the one description of the Kubernetes API types (k8s_types.py, generated from a kubectl binary by
typesgen.py): which protobuf message a kind is, and a message's fields by number (protobuf bodies) or by JSON name
(field validation)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from . import k8s_types

META = "k8s.io.apimachinery.pkg.apis.meta.v1"
TIME, MICRO_TIME, DURATION, FIELDS_V1 = f"{META}.Time", f"{META}.MicroTime", f"{META}.Duration", f"{META}.FieldsV1"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"
# Types whose JSON is their own (a string, a number, embedded JSON), not an object of their protobuf fields.
CUSTOM_JSON = frozenset({TIME, MICRO_TIME, DURATION, FIELDS_V1, QUANTITY, INT_OR_STRING, RAW_EXTENSION})
LIST_WRAPPERS = k8s_types.LIST_WRAPPERS


@dataclass(frozen=True)
class Field:
    number: int
    name: str  # the JSON name ("" for an inlined field)
    type: str  # scalar name, message full name, or the value type of a map
    repeated: bool
    pointer: bool  # a Go pointer: encoded only when set, so a zero on the wire is a value the client chose
    omitempty: bool
    inline: bool
    map_key: str | None = None  # the key type of a map field

    @property
    def is_message(self) -> bool:
        return "." in self.type


def proto_package(group: str, version: str) -> str:
    """The protobuf package of an API group-version: core -> k8s.io.api.core.v1, apps -> k8s.io.api.apps.v1,
    rbac.authorization.k8s.io -> k8s.io.api.rbac.v1, internal.apiserver.k8s.io -> k8s.io.api.apiserverinternal.*"""
    short = {"": "core", "internal.apiserver.k8s.io": "apiserverinternal"}.get(group, group.split(".")[0])
    return f"k8s.io.api.{short}.{version}"


def message_for(api_version: str, kind: str) -> str | None:
    """The message of a kind in an apiVersion (meta.k8s.io kinds such as DeleteOptions from any group), or None."""
    group, _, version = api_version.rpartition("/")
    for name in (f"{proto_package(group, version)}.{kind}", f"{META}.{kind}"):
        if name in k8s_types.MESSAGES:
            return name
    return None


@functools.lru_cache(maxsize=None)
def fields(message: str) -> dict[int, Field]:
    """A message's fields by number (empty for a message the description lacks)."""
    out = {}
    for number, name, kind, flags in k8s_types.MESSAGES.get(message, ()):
        key = None
        if kind.startswith("map:"):
            _, key, kind = kind.split(":", 2)
        out[number] = Field(number, name, kind, "r" in flags, "p" in flags, "o" in flags, "i" in flags, key)
    return out


@functools.lru_cache(maxsize=None)
def json_fields(message: str) -> dict[str, Field]:
    """A message's fields by JSON name, with the fields of inlined members in place of the member."""
    out = {}
    for field in fields(message).values():
        if field.inline and field.is_message:
            out.update(json_fields(field.type))
        elif field.name and field.name != "-":
            out[field.name] = field
    return out


def known(message: str) -> bool:
    return message in k8s_types.MESSAGES
