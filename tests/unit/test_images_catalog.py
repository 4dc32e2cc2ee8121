"""kpy's busybox and pause images built from the real Debian packages (fetched once into the controller's image
cache, as the registry role does): what they hold, their config, and that the same packages give the same digests."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from kpy_components.images import ImageError, build, catalog, debs

CACHE = Path.home() / ".cache/kpy/images"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Both images built into a fresh cache that reuses the shared cache's packages."""
    cache = tmp_path_factory.mktemp("images")
    (cache / "debs").mkdir()
    for recipe in catalog.RECIPES:
        package = debs.fetch(recipe.package, CACHE / "debs")
        (cache / "debs" / package.path.name).symlink_to(package.path)
    return {image.name: image for image in build.build_all(cache)}


def layer_members(built_image: build.Built) -> dict[str, tarfile.TarInfo]:
    manifest = json.loads(oci_blob(built_image, built_image.digest))
    (layer,) = manifest["layers"]
    tar = tarfile.open(fileobj=io.BytesIO(gzip.decompress(oci_blob(built_image, layer["digest"]))))
    return {member.name: member for member in tar.getmembers()}


def oci_blob(built_image: build.Built, digest: str) -> bytes:
    return (built_image.layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def image_config(built_image: build.Built) -> dict:
    manifest = json.loads(oci_blob(built_image, built_image.digest))
    return json.loads(oci_blob(built_image, manifest["config"]["digest"]))


def test_busybox_has_its_applets_as_symlinks_and_a_shell_default(built):
    busybox = built["busybox"]
    assert busybox.tags == ("latest", "1.35")
    assert busybox.references == ("docker.io/library/busybox:latest", "docker.io/library/busybox:1.35")
    members = layer_members(busybox)
    assert members["bin/busybox"].isfile() and members["bin/busybox"].mode == 0o755
    for applet in catalog.REQUIRED_APPLETS:
        assert members[f"bin/{applet}"].issym() and members[f"bin/{applet}"].linkname == "busybox"
    assert members["tmp"].mode == 0o1777
    assert members["etc/passwd"].isfile()
    config = image_config(busybox)["config"]
    assert config == {"Cmd": ["sh"], "Env": [catalog.PATH_ENV]}


def test_pause_is_catatonit_in_pause_mode_as_an_unprivileged_user(built):
    pause = built["pause"]
    assert pause.references == (f"registry.k8s.io/pause:{catalog.PAUSE_TAG}",)
    assert pause.repository == "pause"
    assert layer_members(pause)["usr/bin/catatonit"].isfile()
    assert image_config(pause)["config"] == {"Entrypoint": ["/usr/bin/catatonit", "-P"], "User": "65535:65535"}


def test_the_same_packages_give_the_same_digests(built, tmp_path):
    again = {image.name: image for image in build.build_all(built["busybox"].layout.parent.parent)}
    assert {name: image.digest for name, image in again.items()} == {
        name: image.digest for name, image in built.items()}
    assert all(image.changes == () for image in again.values())


def test_a_busybox_without_a_required_applet_is_refused():
    applets = sorted(set(catalog.REQUIRED_APPLETS) - {"httpd", "nc"})
    with pytest.raises(ImageError, match="busybox-static lacks the applets httpd, nc"):
        catalog.busybox_entries(b"", applets)


@pytest.mark.parametrize(("version", "upstream"), [("1:1.35.0-4+deb12u1+b1", "1.35.0"), ("0.1.7-1+b2", "0.1.7"),
                                                   ("2.0", "2.0")])
def test_upstream_version_drops_epoch_and_debian_revision(version, upstream):
    assert debs.Package(Path("x.deb"), "x", version, "amd64").upstream_version == upstream


def test_an_unknown_architecture_is_named():
    with pytest.raises(ImageError, match="no OCI architecture for Debian's 'mips'"):
        debs.Package(Path("x.deb"), "x", "1.0-1", "mips").oci_architecture
