"""Writes kpy_components/api/k8s_types.py, the one description of the Kubernetes API types that the protobuf body
decoder and field validation share, from a real kubectl binary (a development tool; nothing imports it at run time).

    python -m kpy_components.api.typesgen $(dirname $(readlink -f $(command -v kubectl)))/kubectl.1.33

A Go kubectl carries both halves of the description of every k8s.io/api type it knows:
- the protobuf file descriptors its generated packages register (gzipped FileDescriptorProtos): field numbers, names
  and types;
- the reflection data of the Go structs: each field's tag (`json:"replicas,omitempty" protobuf:"varint,1,..."`) and
  the kind of its type, which tells a pointer (`*int32`: present only when set, so a zero means something) from a
  value (always encoded, so a zero is the field's absence).
Matching them per struct (package path and type name from the reflection data) gives, for every message field:
number, JSON name, type, and the flags repeated / pointer / omitempty / inline, exactly what Go's JSON encoder needs
to write the same object kubectl <= 1.31 sent as JSON.

Only the group-versions kpy serves (catalog.py), the kinds of their subresources and the meta types are written,
with every message they reach.
"""
from __future__ import annotations

import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from google.protobuf import descriptor_pb2

from kpy_components.api import catalog
from kpy_components.api.types import proto_package

OUTPUT = Path(__file__).with_name("k8s_types.py")
_GZIP = re.compile(rb"\x1f\x8b\x08\x00\x00\x00\x00\x00")
_SCALARS = {descriptor_pb2.FieldDescriptorProto.TYPE_STRING: "string",
            descriptor_pb2.FieldDescriptorProto.TYPE_INT32: "int32",
            descriptor_pb2.FieldDescriptorProto.TYPE_INT64: "int64",
            descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: "bool",
            descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: "bytes",
            descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: "double"}
_GO_POINTER = 22  # reflect.Ptr
_META_PACKAGES = ("k8s.io.apimachinery.pkg.apis.meta.v1",)


# --- the protobuf descriptors --------------------------------------------------------------------------------------

def descriptors(binary: bytes) -> dict[str, descriptor_pb2.DescriptorProto]:
    """Every message of the k8s.io packages registered in the binary, by full name (map entries included)."""
    messages = {}
    for match in _GZIP.finditer(binary):
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(binary[match.start():match.start() + 4_000_000])
            file = descriptor_pb2.FileDescriptorProto.FromString(raw)
        except Exception:  # noqa: BLE001 - most gzip magics in a binary are not descriptors
            continue
        if file.name.startswith("k8s.io/") and file.name.endswith(".proto"):
            for message in file.message_type:
                _collect(file.package, message, messages)
    return messages


def _collect(prefix: str, message, into: dict) -> None:
    into[f"{prefix}.{message.name}"] = message
    for nested in message.nested_type:
        _collect(f"{prefix}.{message.name}", nested, into)


# --- the Go reflection data (amd64 ELF, Go >= 1.20 type layout) ---------------------------------------------------

class _Elf:
    def __init__(self, data: bytes):
        self.data = data
        shoff, = struct.unpack_from("<Q", data, 0x28)
        entsize, count, names = struct.unpack_from("<HHH", data, 0x3A)
        headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * entsize) for i in range(count)]
        strtab = headers[names][4]
        self.sections = []
        for name, kind, _flags, addr, offset, size in headers:
            label = data[strtab + name:data.index(b"\0", strtab + name)].decode()
            if addr and kind != 8:  # 8: SHT_NOBITS (.bss)
                self.sections.append((label, addr, offset, size))
        self.rodata = next(s for s in self.sections if s[0] == ".rodata")

    def read(self, addr: int, size: int) -> bytes | None:
        for _label, start, offset, length in self.sections:
            if start <= addr < start + length:
                return self.data[offset + addr - start:offset + addr - start + size]
        return None

    def name(self, addr: int) -> tuple[int, str, str]:
        """A runtime.name: (flags, name, tag)."""
        raw = self.read(addr, 1024) or b"\0\0"
        length, pos = _varint(raw, 1)
        name = raw[pos:pos + length].decode("utf-8", "replace")
        tag = ""
        if raw[0] & 2:
            size, start = _varint(raw, pos + length)
            tag = raw[start:start + size].decode("utf-8", "replace")
        return raw[0], name, tag


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def go_structs(binary: bytes) -> dict[str, list[tuple[str, str, bool, int]]]:
    """Go struct types whose fields carry protobuf tags, by `<package path>.<type name>`: [(field name, tag,
    embedded, reflect kind of the field's type)]."""
    elf = _Elf(binary)
    _label, base, offset, size = elf.rodata
    rodata = binary[offset:offset + size]
    tagged = {}  # address of each runtime.name whose tag has a protobuf part
    for match in re.finditer(rb'protobuf:"', rodata):
        for start in range(max(0, match.start() - 600), match.start()):
            flags = rodata[start]
            if not flags & 2 or flags & 0xF4:
                continue
            try:
                length, pos = _varint(rodata, start + 1)
                if not 0 < length < 100 or not re.fullmatch(rb"[A-Za-z_][A-Za-z0-9_]*", rodata[pos:pos + length]):
                    continue
                tag_size, tag_start = _varint(rodata, pos + length)
            except IndexError:
                continue
            if tag_start <= match.start() < tag_start + tag_size:
                tagged[base + start] = True
                break
    field_addrs = set()
    for pos in range(0, len(rodata) - 8, 8):  # StructField{Name *byte, Typ *Type, Offset uintptr}
        if struct.unpack_from("<Q", rodata, pos)[0] in tagged:
            field_addrs.add(base + pos)
    candidates = {addr - 24 * k for addr in field_addrs for k in range(4)}
    structs = {}
    for pos in range(0, len(rodata) - 24, 8):  # structType{Type (48 bytes), PkgPath, Fields []StructField}
        fields_addr, length, capacity = struct.unpack_from("<QQQ", rodata, pos)
        if fields_addr not in candidates or length != capacity or not 0 < length < 256 or pos < 56:
            continue
        type_addr = base + pos - 56
        header = elf.read(type_addr, 48)
        if not header[20] & 1:  # TFlagUncommon: a named type, which has a package path
            continue
        type_name = elf.name(base + struct.unpack_from("<i", header, 40)[0])[1].lstrip("*")
        package = elf.name(base + struct.unpack_from("<i", elf.read(type_addr + 80, 4), 0)[0])[1]
        fields = []
        for index in range(length):
            name_addr, field_type, _offset = struct.unpack("<QQQ", elf.read(fields_addr + 24 * index, 24))
            flags, name, tag = elf.name(name_addr)
            kind = (elf.read(field_type, 48) or b"\0" * 48)[23] & 0x1F
            fields.append((name, tag, bool(flags & 8), kind))
        structs[f"{package}.{type_name.rpartition('.')[2]}"] = fields
    return structs


# --- the description ----------------------------------------------------------------------------------------------

def _tag(tag: str, key: str) -> list[str] | None:
    found = re.search(rf'(?:^|\s){key}:"([^"]*)"', tag)
    return found.group(1).split(",") if found else None


def describe(messages: dict, structs: dict, roots: list[str], unmatched: list[str]) -> dict[str, tuple]:
    """{message: ((number, json name, type, flags), ...)} for the roots and every message they reach; messages
    with fields but no Go struct are appended to `unmatched`."""
    out: dict[str, tuple] = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in out or name not in messages:
            continue
        message = messages[name]
        go = {}
        for field_name, tag, embedded, kind in structs.get(name.replace(".", "/").rsplit("/", 1)[0].replace(
                "k8s/io", "k8s.io", 1) + "." + name.rsplit(".", 1)[1], []):
            proto = _tag(tag, "protobuf")
            if proto and len(proto) > 1 and proto[1].isdigit():
                go[int(proto[1])] = (field_name, tag, embedded, kind)
        if message.field and not go:
            unmatched.append(name)
        fields = []
        for field in message.field:
            kind, reach = _field_type(messages, field)
            pending.extend(reach)
            flags = "r" if field.label == field.LABEL_REPEATED and not kind.startswith("map:") else ""
            json_name = field.json_name or field.name
            if field.number in go:
                go_name, tag, embedded, go_kind = go[field.number]
                json = _tag(tag, "json")
                if json is not None:
                    json_name = json[0]
                    flags += "o" if "omitempty" in json[1:] else ""
                    if json[0] == "" and ("inline" in json[1:] or embedded):
                        flags += "i"
                elif embedded:
                    flags += "i"
                    json_name = ""
                flags += "p" if go_kind == _GO_POINTER else ""
            fields.append((field.number, json_name, kind, flags))
        out[name] = tuple(fields)
    return dict(sorted(out.items()))


def _field_type(messages: dict, field) -> tuple[str, list[str]]:
    if field.type != field.TYPE_MESSAGE:
        return _SCALARS[field.type], []
    name = field.type_name.lstrip(".")
    entry = messages.get(name)
    if entry is not None and entry.options.map_entry:
        key, value = entry.field
        value_kind, reach = _field_type(messages, value)
        return f"map:{_SCALARS[key.type]}:{value_kind}", reach
    return name, [name]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2):
        print("usage: python -m kpy_components.api.typesgen KUBECTL_BINARY [OUTPUT]", file=sys.stderr)
        return 2
    binary_path, output = Path(args[0]), Path(args[1]) if len(args) == 2 else OUTPUT
    binary = binary_path.read_bytes()
    messages, structs = descriptors(binary), go_structs(binary)
    registry = catalog.default_registry()
    packages = {proto_package(g, v) for g, v in registry.group_versions()} | set(_META_PACKAGES)
    roots = [name for name in messages if name.rpartition(".")[0] in packages]
    roots += [f"{proto_package(sub.group, sub.version or 'v1')}.{sub.kind}"  # Scale (autoscaling/v1), ...
              for info in registry for sub in info.subresources if sub.version]
    unmatched: list[str] = []
    described = describe(messages, structs, roots, unmatched)
    version = subprocess.run([str(binary_path), "version", "--client", "-o", "yaml"], capture_output=True,
                             text=True, check=False).stdout
    git_version = re.search(r"gitVersion: (\S+)", version)
    lines = ['"""The Kubernetes API types kpy serves, one description shared by the protobuf body decoder and field',
             "validation. GENERATED by `python -m kpy_components.api.typesgen KUBECTL` from the kubectl binary named",
             "in SOURCE: do not edit by hand, generate again.",
             "",
             "MESSAGES: protobuf message full name -> ((field number, JSON name, type, flags), ...). A type is",
             "a scalar (string int32 int64 bool bytes double), a message full name, or map:<key>:<value>. Flags:",
             "r repeated, p a Go pointer (encoded only when set), o omitempty in JSON, i inlined into the parent.",
             "LIST_WRAPPERS: messages that stand for a Go slice type (one repeated `items`): a bare list in JSON.",
             '"""',
             f"SOURCE = {binary_path.name + ' ' + (git_version.group(1) if git_version else '')!r}",
             "",
             "MESSAGES: dict[str, tuple] = {"]
    for name, fields in described.items():
        lines.append(f"    {name!r}: (")
        lines.extend(f"        {field!r}," for field in fields)
        lines.append("    ),")
    lines.append("}")
    # Go slices of a named type (`type ExtraValue []string`) travel as a message of one repeated `items`: in JSON
    # they are the bare list.
    wrappers = sorted(name for name in unmatched
                      if [(f[0], f[1], f[3]) for f in described[name]] == [(1, "items", "r")])
    lines.append("LIST_WRAPPERS = frozenset({")
    lines.extend(f"    {name!r}," for name in wrappers)
    lines.append("})")
    output.write_text("\n".join(lines) + "\n")
    print(f"{output}: {len(described)} messages from {binary_path.name}; without Go struct data: {sorted(unmatched)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
