"""OCI layouts kpy writes: digests that match the bytes, deterministic builds, layouts rewritten only when the image
changed, and a real consumer (skopeo) reading them."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile

import pytest

from kpy_components.images import oci

ENTRIES = [
    oci.directory("bin"),
    oci.file("bin/tool", b"#!/bin/sh\necho hi\n", 0o755),
    oci.symlink("bin/alias", "tool"),
    oci.directory("tmp", 0o1777),
]


def image(data: bytes = b"#!/bin/sh\necho hi\n", tags=("latest", "1.0")) -> oci.Image:
    entries = [oci.file("bin/tool", data, 0o755) if entry.path == "bin/tool" else entry for entry in ENTRIES]
    return oci.build_image([entries], {"Cmd": ["sh"]}, architecture="amd64", tags=tags)


def blob(layout, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def test_layer_tar_is_sorted_and_owned_by_nobody_in_particular():
    members = tarfile.open(fileobj=io.BytesIO(oci.layer_tar(reversed(ENTRIES)))).getmembers()
    assert [member.name for member in members] == ["bin", "bin/alias", "bin/tool", "tmp"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    modes = {member.name: member.mode for member in members}
    assert modes["tmp"] == 0o1777 and modes["bin/tool"] == 0o755
    assert members[1].issym() and members[1].linkname == "tool"


@pytest.mark.parametrize(
    ("entries", "problem"),
    [([oci.file("bin/tool", b"")], "its directory bin is not in the layer"),
     ([oci.directory("bin"), oci.directory("bin")], "same path twice")],
    ids=["missing-parent", "duplicate"],
)
def test_layer_tar_refuses_inconsistent_entries(entries, problem):
    with pytest.raises(ValueError, match=problem):
        oci.layer_tar(entries)


def test_gzip_carries_no_time_or_name():
    compressed = oci.gzip_bytes(b"x" * 1000)
    assert compressed == oci.gzip_bytes(b"x" * 1000)
    assert compressed[4:8] == b"\0\0\0\0"  # MTIME
    assert not compressed[3] & 0x08  # no FNAME


def test_digests_are_the_sha256_of_the_bytes_they_name():
    built = image()
    manifest = json.loads(built.manifest.data)
    assert built.digest == "sha256:" + hashlib.sha256(built.manifest.data).hexdigest()
    assert manifest["config"] == {"mediaType": oci.MEDIA_CONFIG, "digest": built.config.digest,
                                  "size": len(built.config.data)}
    (layer,) = built.layers
    assert manifest["layers"] == [{"mediaType": oci.MEDIA_LAYER, "digest": layer.digest, "size": len(layer.data)}]
    config = json.loads(built.config.data)
    # diff_ids name the uncompressed layer.
    assert config["rootfs"] == {"type": "layers",
                                "diff_ids": [oci.sha256(gzip.decompress(layer.data))]}
    assert config["config"] == {"Cmd": ["sh"]}
    assert (config["architecture"], config["os"]) == ("amd64", "linux")


def test_same_inputs_same_digests_other_inputs_other_digests():
    assert image().digest == image().digest
    assert image(b"echo other\n").digest != image().digest


def test_layout_holds_the_image_under_each_tag(tmp_path):
    built = image()
    changes = oci.write_layout(tmp_path, built)
    assert "wrote index.json" in changes and len(changes) == 5
    assert oci.read_layout(tmp_path) == {"latest": built.digest, "1.0": built.digest}
    assert json.loads((tmp_path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["mediaType"] == oci.MEDIA_INDEX
    assert blob(tmp_path, built.digest) == built.manifest.data


def test_writing_the_same_image_again_touches_nothing(tmp_path):
    oci.write_layout(tmp_path, image())
    before = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")}
    assert oci.write_layout(tmp_path, image()) == []
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*")} == before


def test_a_new_build_replaces_the_old_blobs(tmp_path):
    old, new = image(), image(b"echo new\n")
    oci.write_layout(tmp_path, old)
    changes = oci.write_layout(tmp_path, new)
    assert f"removed blob {old.digest}" in changes
    assert {path.name for path in (tmp_path / "blobs" / "sha256").iterdir()} == {
        b.digest.removeprefix("sha256:") for b in new.blobs()}
    assert oci.read_layout(tmp_path)["latest"] == new.digest


def test_dry_run_says_what_would_change_and_writes_nothing(tmp_path):
    layout = tmp_path / "layout"
    assert len(oci.write_layout(layout, image(), dry_run=True)) == 5
    assert not layout.exists()


def test_read_layout_names_a_corrupt_blob(tmp_path):
    built = image()
    oci.write_layout(tmp_path, built)
    (tmp_path / "blobs" / "sha256" / built.layers[0].digest.removeprefix("sha256:")).write_bytes(b"tampered")
    with pytest.raises(ValueError, match=f"blob {built.layers[0].digest} does not match"):
        oci.read_layout(tmp_path)


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is installed by scripts/setup")
def test_skopeo_reads_the_layout_with_our_digest(tmp_path):
    built = image()
    oci.write_layout(tmp_path, built)
    out = subprocess.run(["skopeo", "inspect", f"oci:{tmp_path}:1.0"], capture_output=True, text=True, check=True)
    inspected = json.loads(out.stdout)
    assert inspected["Digest"] == built.digest
    assert inspected["Layers"] == [built.layers[0].digest]


def test_archive_names_each_full_reference_and_holds_every_blob():
    built = image()
    data = oci.archive_bytes(built, ["docker.io/library/tool:latest", "docker.io/library/tool:1.0"])
    assert data == oci.archive_bytes(built, ["docker.io/library/tool:latest", "docker.io/library/tool:1.0"])
    tar = tarfile.open(fileobj=io.BytesIO(data))
    index = json.load(tar.extractfile("index.json"))
    assert [(m["digest"], m["annotations"]) for m in index["manifests"]] == [
        (built.digest, {oci.CONTAINERD_NAME: "docker.io/library/tool:latest", oci.REF_NAME: "latest"}),
        (built.digest, {oci.CONTAINERD_NAME: "docker.io/library/tool:1.0", oci.REF_NAME: "1.0"}),
    ]
    for blob_ in built.blobs():
        assert tar.extractfile(f"blobs/sha256/{blob_.digest.removeprefix('sha256:')}").read() == blob_.data


def test_a_rebuild_reuses_the_compressed_layers_of_the_layout_it_replaces(tmp_path):
    built = image()
    oci.write_layout(tmp_path, built)
    diff_id = json.loads(built.config.data)["rootfs"]["diff_ids"][0]
    assert oci.compressed_layers(tmp_path) == {diff_id: built.layers[0].data}
    # What build_image takes from a previous layout is used as is (here a stand-in blob, to see that it was).
    reused = oci.build_image([ENTRIES], {"Cmd": ["sh"]}, architecture="amd64", tags=("latest",),
                             compressed_before={diff_id: b"previous blob"})
    assert reused.layers[0].data == b"previous blob"
    assert json.loads(reused.config.data)["rootfs"]["diff_ids"] == [diff_id]
    other = oci.build_image([ENTRIES[:1]], {"Cmd": ["sh"]}, architecture="amd64", tags=("latest",),
                            compressed_before={diff_id: b"previous blob"})
    assert gzip.decompress(other.layers[0].data) == oci.layer_tar(ENTRIES[:1])


def test_no_layers_are_reused_from_a_missing_or_damaged_layout(tmp_path):
    assert oci.compressed_layers(tmp_path / "none") == {}
    built = image()
    oci.write_layout(tmp_path, built)
    (tmp_path / "blobs/sha256" / built.layers[0].digest.removeprefix("sha256:")).write_bytes(b"corrupt")
    assert oci.compressed_layers(tmp_path) == {}
