"""What goes into each of kpy's images, and the names they are known by.

- busybox (`docker.io/library/busybox`, tags `latest` and the upstream MAJOR.MINOR, e.g. `1.35`): Debian's
  busybox-static, one layer laid out as the official image is (`/bin/busybox` and one symlink per applet in
  `/bin`), root and nobody in /etc/passwd, Cmd `sh`.
- pause (`registry.k8s.io/pause:3.6`, the sandbox image containerd 1.6 defaults to): Debian's catatonit, run as
  `catatonit -P`, its pause mode, the process podman runs in its pod infra containers. It is a static binary made
  to be a container's PID 1: it reaps every child (a pod with a shared PID namespace leaves its orphans to it),
  and exits 0 at once on SIGTERM or SIGINT, where a shell loop would first have to be woken from its sleep.
  Runs as 65535:65535 like the upstream pause image: it needs no privilege.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Callable

from kpy_components.images import ImageError, oci
from kpy_components.images.debs import Package, read_files

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Applets kpy's tests and docs rely on (httpd for web pods, nc/wget/nslookup for network checks, tar for kubectl
# cp); the image carries every applet the binary has, and refuses a binary that lacks one of these.
REQUIRED_APPLETS = (
    "httpd", "sh", "wget", "nc", "nslookup", "tar", "ls", "cat", "echo", "sleep", "env", "id", "mkdir", "date",
    "ps", "kill", "true", "false", "dd", "head", "grep", "tail", "rm", "cp", "mv", "touch", "hostname", "ip",
)
PAUSE_TAG = "3.6"
ETC_PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n"
ETC_GROUP = b"root:x:0:\nnobody:x:65534:\n"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One image: the Debian package it is made of, where it lives in a registry (repository path, as in
    `<registry>/<repository>:<tag>`) and the upstream registry it stands in for, and how to build it."""

    name: str
    package: str
    upstream_registry: str
    repository: str
    build: Callable[..., oci.Image]  # (package, compressed_before=...) -> the image

    def references(self, image: oci.Image) -> list[str]:
        return [f"{self.upstream_registry}/{self.repository}:{tag}" for tag in image.tags]


def busybox_applets(binary: bytes) -> list[str]:
    """The applets `binary` (a busybox) provides, asked from the binary itself (`busybox --list`)."""
    with tempfile.TemporaryDirectory(prefix="kpy-busybox-") as scratch:
        path = os.path.join(scratch, "busybox")
        with open(path, "wb") as stream:
            stream.write(binary)
        os.chmod(path, 0o755)
        try:
            listed = subprocess.run([path, "--list"], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise ImageError(f"cannot list the applets of busybox-static (is it for this machine's "
                             f"architecture?): {exc}") from exc
    return sorted(set(listed.split()) - {"busybox"})


def busybox_entries(binary: bytes, applets: list[str]) -> list[oci.Entry]:
    missing = sorted(set(REQUIRED_APPLETS) - set(applets))
    if missing:
        raise ImageError(f"busybox-static lacks the applets {', '.join(missing)}")
    return [
        *(oci.directory(path) for path in ("bin", "etc", "home", "usr", "var")),
        oci.directory("root", 0o700),
        oci.directory("tmp", 0o1777),
        oci.file("bin/busybox", binary, 0o755),
        *(oci.symlink(f"bin/{applet}", "busybox") for applet in applets),
        oci.file("etc/passwd", ETC_PASSWD),
        oci.file("etc/group", ETC_GROUP),
    ]


def _annotations(package: Package) -> dict[str, str]:
    return {
        "org.opencontainers.image.title": package.name,
        "org.opencontainers.image.version": package.version,
        "org.opencontainers.image.description": f"built by kpy from Debian's {package.name} {package.version}",
    }


def build_busybox(package: Package, **build_options) -> oci.Image:
    binary = read_files(package, ["bin/busybox"])["bin/busybox"][0]
    major_minor = ".".join(package.upstream_version.split(".")[:2])
    return oci.build_image(
        [busybox_entries(binary, busybox_applets(binary))],
        {"Env": [PATH_ENV], "Cmd": ["sh"]},
        architecture=package.oci_architecture,
        tags=("latest", major_minor),
        annotations=_annotations(package),
        history=f"{package.name} {package.version}: /bin/busybox and its applets",
        **build_options,
    )


def build_pause(package: Package, **build_options) -> oci.Image:
    binary, _ = read_files(package, ["usr/bin/catatonit"])["usr/bin/catatonit"]
    return oci.build_image(
        [[oci.directory("usr"), oci.directory("usr/bin"), oci.file("usr/bin/catatonit", binary, 0o755)]],
        {"Entrypoint": ["/usr/bin/catatonit", "-P"], "User": "65535:65535"},
        architecture=package.oci_architecture,
        tags=(PAUSE_TAG,),
        annotations=_annotations(package),
        history=f"{package.name} {package.version}: catatonit in pause mode",
        **build_options,
    )


RECIPES = (
    Recipe("busybox", "busybox-static", "docker.io", "library/busybox", build_busybox),
    Recipe("pause", "catatonit", "registry.k8s.io", "pause", build_pause),
)
