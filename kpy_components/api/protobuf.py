"""Kubernetes protobuf request bodies (kubectl >= 1.32 typed writes) decoded into the JSON the same request carries
in JSON (what kubectl <= 1.31 sent).

A body is `k8s\\x00` + runtime.Unknown {1: TypeMeta{1 apiVersion, 2 kind}, 2: raw message, 3: contentEncoding,
4: contentType}. Every message is decoded from the one description of the types (types.py over k8s_types.py, the
same one field validation reads), and written as Go's JSON encoder writes the struct it stands for: a pointer field
appears only when it was sent (so `replicas: 0` stays), a value field always (its zero omitted when `omitempty`,
`null` for an unset slice, map or pointer without it), structs always, inlined members merged into their parent.

A field number the description does not know is not dropped silently: its path (`spec.template.spec.containers[0]
.#99`, # then the number) is appended to the caller's `unknown` list, which field validation treats as an unknown
JSON field (Strict refuses, Warn warns). Errors are ValueError naming what is wrong and where.
"""
from __future__ import annotations

import base64
import json
import struct
from datetime import datetime, timezone

from . import types
from .types import Field

MAGIC = b"k8s\x00"
_VARINT_SCALARS = {"int32", "int64", "bool"}
_WIRE = {"int32": 0, "int64": 0, "bool": 0, "double": 1, "string": 2, "bytes": 2}


# --- the wire format ---------------------------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: bytes, where: str):
        self.data, self.pos, self.where = data, 0, where

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise ValueError(f"truncated varint in {self.where} at byte {self.pos}")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError(f"varint too long in {self.where} at byte {self.pos}")

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError(f"field of {size} bytes runs past the end of {self.where} (byte {self.pos})")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def fields(self):
        """(field number, wire type, value): varints as int, the others as bytes."""
        while not self.done():
            key = self.varint()
            number, wire = key >> 3, key & 7
            if number == 0:
                raise ValueError(f"field number 0 in {self.where} at byte {self.pos}")
            if wire == 0:
                yield number, wire, self.varint()
            elif wire == 2:
                yield number, wire, self.take(self.varint())
            elif wire == 1:
                yield number, wire, self.take(8)
            elif wire == 5:
                yield number, wire, self.take(4)
            else:
                raise ValueError(f"unsupported wire type {wire} for field {number} in {self.where}")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{where} is not valid UTF-8") from None


def _raw_fields(data: bytes, where: str) -> dict[int, list[tuple[int, object]]]:
    found: dict[int, list] = {}
    for number, wire, value in _Reader(data, where).fields():
        found.setdefault(number, []).append((wire, value))
    return found


# --- types whose JSON is their own -------------------------------------------------------------------------------

def _seconds_nanos(raw: bytes, where: str) -> tuple[int, int]:
    seconds = nanos = 0
    for number, wire, value in _Reader(raw, where).fields():
        if number == 1 and wire == 0:
            seconds = _signed(value)
        elif number == 2 and wire == 0:
            nanos = _signed(value)
    return seconds, nanos


def _time(raw: bytes, where: str, micro: bool):
    seconds, nanos = _seconds_nanos(raw, where)
    if seconds == 0 and nanos == 0:
        return None  # metav1.Time's zero value: null in JSON
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    if micro:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{nanos // 1000:06d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _go_duration(nanos: int) -> str:
    """time.Duration.String(): 1h0m0s, 1m30s, 1.5s, 300ms, 0s."""
    if nanos == 0:
        return "0s"
    sign, nanos = ("-", -nanos) if nanos < 0 else ("", nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return sign + _decimal(nanos, size) + unit
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _decimal(rest, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    digits = f"{fraction:0{len(str(unit)) - 1}d}".rstrip("0") if unit > 1 else ""
    return f"{whole}.{digits}" if digits else str(whole)


def _custom(message: str, raw: bytes, where: str, unknown: list[str]):
    """The JSON of a type with its own JSON form (types.CUSTOM_JSON)."""
    found = _raw_fields(raw, where)

    def first(number: int, default):
        return found.get(number, [(None, default)])[-1][1]

    if message in (types.TIME, types.MICRO_TIME):
        return _time(raw, where, message == types.MICRO_TIME)
    if message == types.QUANTITY:
        return _text(first(1, b"0"), where) or "0"
    if message == types.INT_OR_STRING:
        return _text(first(3, b""), where) if first(1, 0) == 1 else _signed(first(2, 0))
    if message == types.DURATION:
        return _go_duration(_signed(first(1, 0)))
    data = first(1, None)  # RawExtension and FieldsV1: {1: raw bytes}, JSON (or a nested protobuf object)
    if not data:
        return None
    if data.startswith(MAGIC):
        return decode(data, unknown, where)
    try:
        return json.loads(data)
    except ValueError:
        raise ValueError(f"{where}: embedded object is neither JSON nor Kubernetes protobuf") from None


# --- messages ----------------------------------------------------------------------------------------------------

def _scalar(kind: str, raw, where: str):
    if kind == "int32" or kind == "int64":
        return _signed(raw)
    if kind == "bool":
        return raw != 0
    if kind == "string":
        return _text(raw, where)
    if kind == "bytes":
        return base64.b64encode(raw).decode("ascii")
    if kind == "double":
        return struct.unpack("<d", raw)[0]
    raise ValueError(f"{where}: unsupported field type {kind}")


def _values(field: Field, entries: list, where: str, unknown: list[str]) -> list:
    """Every value of one field on the wire (packed repeated scalars unpacked), decoded."""
    values = []
    for wire, raw in entries:
        path = f"{where}[{len(values)}]" if field.repeated else where
        if field.is_message:
            if wire != 2:
                raise ValueError(f"{where}: wire type {wire} where a message was expected")
            values.append(_message_json(raw, field.type, path, unknown))
        elif field.repeated and wire == 2 and field.type in _VARINT_SCALARS:
            reader = _Reader(raw, where)
            while not reader.done():
                values.append(_scalar(field.type, reader.varint(), where))
        else:
            if wire != _WIRE[field.type]:
                raise ValueError(f"{where}: wire type {wire} where {field.type} was expected")
            values.append(_scalar(field.type, raw, path))
    return values


def _map(field: Field, entries: list, where: str, unknown: list[str]) -> dict:
    key_field = Field(1, "key", field.map_key, False, False, False, False)
    value_field = Field(2, "value", field.type, False, False, False, False)
    out = {}
    for wire, raw in entries:
        if wire != 2:
            raise ValueError(f"{where}: wire type {wire} where a map entry was expected")
        found = _raw_fields(raw, where)
        key = _values(key_field, found[1][-1:], where, unknown)[0] if 1 in found else ""
        path = f"{where}[{key}]"
        if 2 in found:
            out[key] = _values(value_field, found[2][-1:], path, unknown)[0]
        else:
            out[key] = _zero(value_field, path, unknown)
    return out


def _zero(field: Field, where: str, unknown: list[str]):
    """The JSON of a field's Go zero value (never sent, or sent without a value)."""
    if field.is_message:
        return _message_json(b"", field.type, where, unknown)
    return {"string": "", "bytes": None, "bool": False, "double": 0.0}.get(field.type, 0)


def _message_json(data: bytes, message: str, where: str, unknown: list[str]):
    if message in types.CUSTOM_JSON:
        return _custom(message, data, where, unknown)
    if message in types.LIST_WRAPPERS:
        item = types.fields(message)[1]
        return _values(item, _raw_fields(data, where).get(1, []), where, unknown) or None
    spec = types.fields(message)
    found = _raw_fields(data, where)
    for number in found:
        if number not in spec:
            unknown.append(f"{where}.#{number}" if where else f"#{number}")
    result: dict = {}
    for field in spec.values():
        if field.name == "-":
            continue
        path = f"{where}.{field.name}" if where and field.name else (where or field.name)
        present, value = _json_value(field, found.get(field.number, []), path, unknown)
        if field.inline and isinstance(value, dict):
            result.update(value)
        elif present:
            result[field.name] = value
    return result


def _json_value(field: Field, entries: list, path: str, unknown: list[str]) -> tuple[bool, object]:
    """(written, value) as Go's encoding/json writes the field: unset slices, maps, pointers and []byte are null
    (omitted with omitempty); a set pointer is written even when zero; structs are always written; a value
    scalar's zero is omitted with omitempty."""
    if field.map_key is not None or field.repeated:
        value = (_map(field, entries, path, unknown) if field.map_key is not None
                 else _values(field, entries, path, unknown)) if entries else None
        return not (field.omitempty and not value), value
    if not entries:
        if field.pointer or field.type == "bytes":
            return not field.omitempty, None
        value = _zero(field, path, unknown)
    else:
        value = _values(field, entries[-1:], path, unknown)[0]
        if field.pointer or field.is_message:
            return True, value
    return not (field.omitempty and value in ("", 0, False)), value


def decode(body: bytes, unknown: list[str] | None = None, where: str = "") -> dict:
    """A `k8s\\x00` protobuf request body as the JSON dict (with apiVersion and kind) the JSON body would be.
    Paths of field numbers the description does not know are appended to `unknown`."""
    unknown = [] if unknown is None else unknown
    if not body.startswith(MAGIC):
        raise ValueError("the body does not start with the Kubernetes protobuf prefix k8s\\x00")
    api_version = kind = encoding = ""
    raw = b""
    for number, wire, value in _Reader(body[len(MAGIC):], "runtime.Unknown").fields():
        if number == 1 and wire == 2:
            for inner, inner_wire, item in _Reader(value, "runtime.Unknown.typeMeta").fields():
                if inner == 1 and inner_wire == 2:
                    api_version = _text(item, "typeMeta.apiVersion")
                elif inner == 2 and inner_wire == 2:
                    kind = _text(item, "typeMeta.kind")
        elif number == 2 and wire == 2:
            raw = value
        elif number == 3 and wire == 2:
            encoding = _text(value, "runtime.Unknown.contentEncoding")
    if encoding:
        raise ValueError(f"content encoding {encoding!r} of the protobuf body is not supported")
    message = types.message_for(api_version, kind)
    if message is None:
        raise ValueError(f"protobuf bodies of kind {kind or '(none)'!r} ({api_version}) are not supported; "
                         "send JSON or YAML")
    return {"kind": kind, "apiVersion": api_version, **_message_json(raw, message, where, unknown)}
