"""Deterministic OCI images and image layouts (image-spec v1.0: oci-layout, index.json, blobs/sha256).

Every byte is a function of the inputs: layer tars list their entries sorted by path with mtime 0 and owner 0:0,
gzip streams carry no name and mtime 0, JSON is written with sorted keys and no spaces. So building again from the
same packages gives the same digests, and a layout that already holds them is left untouched.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
# The full name containerd's importer (`ctr images import`) gives a manifest of an archive's index.
CONTAINERD_NAME = "io.containerd.image.name"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
# What `created` says in every config: the build is reproducible, so there is no build time to record (ko and
# Bazel's rules_oci do the same).
EPOCH = "1970-01-01T00:00:00Z"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One path of a layer: a directory, a regular file (data) or a symbolic link (target)."""

    path: str
    kind: str  # "dir", "file" or "symlink"
    mode: int = 0o755
    data: bytes = b""
    target: str = ""


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, "dir", mode)


def file(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path, "file", mode, data=data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, "symlink", 0o777, target=target)


_TAR_TYPES = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE}


def layer_tar(entries: Iterable[Entry]) -> bytes:
    """An uncompressed layer tar of `entries`, sorted by path; every parent directory must be an entry too."""
    entries = sorted(entries, key=lambda entry: entry.path)
    paths = {entry.path for entry in entries}
    if len(paths) != len(entries):
        raise ValueError("a layer lists the same path twice")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            parent = os.path.dirname(entry.path)
            if parent and parent not in paths:
                raise ValueError(f"{entry.path}: its directory {parent} is not in the layer")
            info = tarfile.TarInfo(entry.path)
            info.type = _TAR_TYPES[entry.kind]
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = entry.mode, 0, 0, 0, "", ""
            info.linkname = entry.target
            info.size = len(entry.data)
            tar.addfile(info, io.BytesIO(entry.data) if entry.kind == "file" else None)
    return buffer.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with no file name and mtime 0, so the same data always compresses to the same bytes (same zlib)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as stream:
        stream.write(data)
    return buffer.getvalue()


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclasses.dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self, **extra) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


@dataclasses.dataclass(frozen=True)
class Image:
    """One single-platform image: its manifest, config and layer blobs, and the tags it is known by."""

    tags: tuple[str, ...]
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    def blobs(self) -> tuple[Blob, ...]:
        return (self.manifest, self.config, *self.layers)


def build_image(layers: Iterable[Iterable[Entry]], config: dict, *, architecture: str, tags: Iterable[str],
                annotations: dict[str, str] | None = None, history: str = "",
                compressed_before: Mapping[str, bytes] = MappingProxyType({})) -> Image:
    """An image from its layers (lowest first) and the `config` part of its image config (Env, Cmd, ...).
    `compressed_before` (diff_id -> compressed blob, see compressed_layers) spares compressing a layer again."""
    tars = [layer_tar(entries) for entries in layers]
    compressed = tuple(Blob(MEDIA_LAYER, compressed_before.get(sha256(tar)) or gzip_bytes(tar)) for tar in tars)
    image_config = {
        "created": EPOCH,
        "architecture": architecture,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar) for tar in tars]},
        "history": [{"created": EPOCH, "created_by": history or "kpy_components.images"} for _ in tars],
    }
    config_blob = Blob(MEDIA_CONFIG, canonical_json(image_config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [layer.descriptor() for layer in compressed],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    tags = tuple(tags)
    if not tags:
        raise ValueError("an image needs at least one tag")
    return Image(tags, Blob(MEDIA_MANIFEST, canonical_json(manifest)), config_blob, compressed)


def index_json(image: Image) -> bytes:
    """The layout's index: one manifest descriptor per tag (all the same manifest), named by the tag, which is what
    `skopeo copy oci:DIR:TAG` and `ctr images import` look up."""
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [image.manifest.descriptor(annotations={REF_NAME: tag}) for tag in image.tags],
    })


def archive_bytes(image: Image, references: Iterable[str]) -> bytes:
    """An OCI image layout as one tar (what `ctr -n k8s.io images import` and k3s's air-gap folder take): the index
    names the manifest once per full reference (docker.io/library/busybox:1.35), as `ctr images export` writes it.
    Deterministic like the layers."""
    manifests = [image.manifest.descriptor(annotations={CONTAINERD_NAME: reference,
                                                        REF_NAME: reference.rpartition(":")[2]})
                 for reference in references]
    index = canonical_json({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests})
    entries = [directory("blobs"), directory("blobs/sha256"), file("oci-layout", canonical_json(LAYOUT_VERSION)),
               file("index.json", index)]
    entries += [file(f"blobs/sha256/{blob.digest.removeprefix('sha256:')}", blob.data) for blob in image.blobs()]
    return layer_tar(entries)


def write_layout(directory: Path, image: Image, *, dry_run: bool = False) -> list[str]:
    """Make `directory` an OCI image layout holding exactly `image`: missing blobs written, blobs of other builds
    removed, index.json and oci-layout replaced only when their content differs. Returns what changed (empty when
    the layout already held this image); with dry_run, what would change, changing nothing."""
    plan = _layout_plan(directory, image)
    if not dry_run:
        (directory / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        for _, path, data in plan:
            if data is None:
                path.unlink()
            else:
                replace_file(path, data)
    return [what for what, _, _ in plan]


def _layout_plan(directory: Path, image: Image) -> list[tuple[str, Path, bytes | None]]:
    """(what, path, new content or None to remove) for each path of the layout that differs from `image`."""
    blobs_dir = directory / "blobs" / "sha256"
    wanted = {blob.digest.removeprefix("sha256:"): blob for blob in image.blobs()}
    plan = []
    for name, blob in sorted(wanted.items()):
        path = blobs_dir / name
        if not path.exists() or sha256(path.read_bytes()) != blob.digest:
            plan.append((f"wrote blob sha256:{name}", path, blob.data))
    for path in sorted(blobs_dir.iterdir()) if blobs_dir.is_dir() else ():
        if path.name not in wanted:
            plan.append((f"removed blob sha256:{path.name}", path, None))
    for path, data in ((directory / "oci-layout", canonical_json(LAYOUT_VERSION)),
                       (directory / "index.json", index_json(image))):
        if not path.exists() or path.read_bytes() != data:
            plan.append((f"wrote {path.name}", path, data))
    return plan


def read_layout(directory: Path) -> dict[str, str]:
    """tag -> manifest digest of the layout in `directory`, after checking that every blob the index reaches is
    present and matches its digest and size; raises ValueError naming the first problem."""
    index = json.loads((directory / "index.json").read_bytes())
    tags = {}
    for descriptor in index.get("manifests", []):
        manifest = json.loads(_verified_blob(directory, descriptor))
        for child in (manifest["config"], *manifest["layers"]):
            _verified_blob(directory, child)
        tags[descriptor.get("annotations", {}).get(REF_NAME, "")] = descriptor["digest"]
    return tags


def compressed_layers(directory: Path) -> dict[str, bytes]:
    """diff_id (sha256 of the uncompressed tar) -> compressed blob, for each layer of the image the layout in
    `directory` holds; empty when there is none or it is damaged. A rebuild passes them to build_image, as image
    builders cache layers: gzip -9 of the same tar was most of the time of a build that changes nothing."""
    try:
        index = json.loads((directory / "index.json").read_bytes())
        manifest = json.loads(_verified_blob(directory, index["manifests"][0]))
        config = json.loads(_verified_blob(directory, manifest["config"]))
        return {diff_id: _verified_blob(directory, layer)
                for diff_id, layer in zip(config["rootfs"]["diff_ids"], manifest["layers"], strict=True)}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return {}


def _verified_blob(directory: Path, descriptor: dict) -> bytes:
    algorithm, _, hexdigest = descriptor["digest"].partition(":")
    path = directory / "blobs" / algorithm / hexdigest
    if not path.is_file():
        raise ValueError(f"{directory}: blob {descriptor['digest']} is missing")
    data = path.read_bytes()
    if sha256(data) != descriptor["digest"] or len(data) != descriptor["size"]:
        raise ValueError(f"{directory}: blob {descriptor['digest']} does not match its digest or size")
    return data


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (a partial file beside it, renamed over it), mode 0644."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    os.replace(partial, path)
