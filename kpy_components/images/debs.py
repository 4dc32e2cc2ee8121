"""The Debian packages images are made of: fetched once into a cache with apt (which checks them against the
signed archive index), then read with dpkg-deb.

A package already in the cache is used as it is, so later builds use the same bytes and give the same digests even
after Debian publishes a newer version; delete the cached .deb to take the newer one.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import subprocess
import tarfile
from pathlib import Path

from kpy_components.images import ImageError

# Debian architecture -> (OCI architecture, variant)
ARCHITECTURES = {
    "amd64": ("amd64", ""), "arm64": ("arm64", "v8"), "armhf": ("arm", "v7"), "i386": ("386", ""),
    "ppc64el": ("ppc64le", ""), "s390x": ("s390x", ""), "riscv64": ("riscv64", ""),
}


@dataclasses.dataclass(frozen=True)
class Package:
    path: Path
    name: str
    version: str
    architecture: str  # Debian's

    @property
    def upstream_version(self) -> str:
        """The version without epoch and Debian revision: 1:1.35.0-4+deb12u1 -> 1.35.0."""
        without_epoch = self.version.split(":", 1)[-1]
        return without_epoch.rpartition("-")[0] or without_epoch

    @property
    def oci_architecture(self) -> str:
        try:
            return ARCHITECTURES[self.architecture][0]
        except KeyError:
            raise ImageError(f"{self.path.name}: no OCI architecture for Debian's {self.architecture!r}") from None


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(argv, capture_output=True, cwd=cwd)
    except FileNotFoundError as exc:
        raise ImageError(f"{argv[0]} is not installed (run ./scripts/setup)") from exc
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise ImageError(f"`{' '.join(argv)}` failed with exit code {proc.returncode}: {' / '.join(detail)}")
    return proc


def inspect(path: Path) -> Package:
    fields = dict(
        line.split(": ", 1)
        for line in _run("dpkg-deb", "--show", "--showformat=Package: ${Package}\nVersion: ${Version}\n"
                         "Architecture: ${Architecture}\n", str(path)).stdout.decode().splitlines()
    )
    return Package(path, fields["Package"], fields["Version"], fields["Architecture"])


def _newer(a: Package, b: Package) -> int:
    if a.version == b.version:
        return 0
    newer = subprocess.run(["dpkg", "--compare-versions", a.version, "gt", b.version]).returncode == 0
    return 1 if newer else -1


def fetch(name: str, cache_dir: Path) -> Package:
    """The package `name` from `cache_dir`, downloaded there with `apt-get download` when the cache has none."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = [inspect(path) for path in sorted(cache_dir.glob(f"{name}_*.deb"))]
    if not cached:
        try:
            _run("apt-get", "download", "-q", name, cwd=cache_dir)
        except ImageError as exc:
            raise ImageError(f"{exc} (is there an apt source with {name}, and has `apt-get update` run?)") from exc
        cached = [inspect(path) for path in sorted(cache_dir.glob(f"{name}_*.deb"))]
        if not cached:
            raise ImageError(f"apt-get download {name} left no {name}_*.deb in {cache_dir}")
    return max(cached, key=functools.cmp_to_key(_newer))


def read_files(package: Package, paths: list[str]) -> dict[str, tuple[bytes, int]]:
    """path -> (content, mode) of regular files of the package (paths without a leading '/'); raises ImageError
    naming what the package lacks."""
    tar_stream = _run("dpkg-deb", "--fsys-tarfile", str(package.path)).stdout
    wanted, found = set(paths), {}
    with tarfile.open(fileobj=io.BytesIO(tar_stream)) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if name in wanted and member.isfile():
                found[name] = (tar.extractfile(member).read(), member.mode)
    missing = sorted(wanted - found.keys())
    if missing:
        raise ImageError(f"{package.path.name} has no regular file {', '.join(missing)}")
    return found
