"""Action kpy_wheelhouse: kpy's wheelhouse archive, built on the controller into a cache, once per source change -
in-process (a controller-local module run cost ~0.3 s of every site.yml run for AnsiballZ and a Python start).

Arguments: `source` (the kpy source tree, the repository root), `cache_dir` (the controller's wheelhouse cache; the
newest archives are kept, older ones removed) and `version` (MAJOR.MINOR.PATCH the kpy wheel is stamped with instead
of the source's VERSION file, so the same tree installs as another release - the upgrade scenario brings up the
previous minor from this checkout; empty: the VERSION file's).

Builds the kpy wheel from `source`, the wheels of every dependency and the wheel of pypa's installer (hosts install
with it, so they need neither python3-venv nor pip), with the pip of the controller's Python, and writes one
reproducible archive of them, so hosts receive one file (one checksum, one transfer). Everything lives in `cache_dir`,
outside any inventory, keyed by fingerprints; a new lab or inventory reuses what an earlier run built. The dependency
wheels are keyed by the declared dependencies (and the controller's Python and pip), so a change to kpy's own sources
rebuilds only the kpy wheel (a few seconds). Nothing is rebuilt while the sources (kpy_components, pyproject.toml,
VERSION) are unchanged, so the run reports no change. Check mode builds nothing.

Returns `archive` (its path), `checksum` (its SHA-1; empty in check mode before it exists) and `wheels` (the file
names in it).
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

from ansible.plugins.action import ActionBase


class WheelhouseError(Exception):
    """What stops the build, said for the user."""


KEEP_ARCHIVES = 4
VERSION_PATTERN = re.compile(r"\d+\.\d+\.\d+")
# pypa's installer (pure Python, no dependencies): what hosts install the wheels with (the kpy_venv module).
INSTALLER = "installer==1.1.0"


def digest_of(parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part + b"\0")
    return digest.hexdigest()[:16]


def dependencies_fingerprint(source: Path) -> tuple[str, list[str]]:
    """The declared dependencies, and a key that changes with them, the controller's Python/platform/pip or the
    installer's version."""
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    requirements = sorted(project.get("dependencies", []))
    key = [sys.version.encode(), platform.machine().encode(), pip_version().encode(), INSTALLER.encode()]
    key += [requirement.encode() for requirement in requirements]
    return digest_of(key), requirements


def source_fingerprint(source: Path, dependencies_key: str, version: str) -> str:
    files = sorted(source.glob("kpy_components/**/*.py")) + [source / "pyproject.toml"]
    return digest_of([dependencies_key.encode(), version.encode()]
                     + [str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() for path in files])


def stamped_source(source: Path, version: str, scratch: Path) -> Path:
    """`source` itself when its VERSION is `version`, else a copy of what the wheel is built from, stamped with it."""
    if (source / "VERSION").read_text().strip() == version:
        return source
    copy = scratch / "source"
    shutil.copytree(source / "kpy_components", copy / "kpy_components",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(source / name, copy / name)
    (copy / "VERSION").write_text(version + "\n")
    return copy


def pip_version() -> str:
    return importlib.metadata.version("pip")


def pip(args: list[str], what: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"] + args,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise WheelhouseError(f"pip could not {what}:\n{proc.stderr[-4000:]}")


def build_dependencies(target: Path, requirements: list[str]) -> None:
    """The dependencies' wheels and the installer's, built beside `target` then renamed into place: complete or
    absent."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    pip(["wheel", "--wheel-dir", str(partial)] + requirements, "build the dependencies' wheels")
    pip(["download", "--no-deps", "--only-binary=:all:", "--dest", str(partial), INSTALLER],
        "fetch the installer's wheel")
    partial.rename(target)


def write_archive(archive: Path, wheels: list[Path]) -> None:
    """Same wheels in, same bytes out: sorted members, fixed owner and time, so the archive only changes with them."""
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        for path in sorted(wheels, key=lambda p: p.name):
            info = tar.gettarinfo(path, arcname=path.name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            info.mode = 0o644
            with path.open("rb") as stream:
                tar.addfile(info, stream)
    partial.rename(archive)


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def archive_members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return sorted(tar.getnames())


def prune(cache: Path, keep: Path) -> None:
    """Keeps the newest archives (other checkouts may be using them) and the one in use."""
    archives = sorted(cache.glob("kpy-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in archives[KEEP_ARCHIVES:]:
        if old != keep:
            old.unlink(missing_ok=True)


def wheelhouse(source: Path, cache: Path, version: str, check: bool) -> dict:
    """The task's result: the archive for `source` at `version`, built into `cache` unless it is there already."""
    if not (source / "pyproject.toml").is_file():
        raise WheelhouseError(f"source {source} is not the kpy source tree: it has no pyproject.toml")
    try:
        dependencies_key, requirements = dependencies_fingerprint(source)
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        raise WheelhouseError(f"{source / 'pyproject.toml'}: no readable [project] table ({exc})") from exc
    version = version or (source / "VERSION").read_text().strip()
    if not VERSION_PATTERN.fullmatch(version):
        raise WheelhouseError(f"version {version!r} is not MAJOR.MINOR.PATCH (for example 1.31.0)")
    archive = cache / f"kpy-{version}-{source_fingerprint(source, dependencies_key, version)}.tar"
    if archive.is_file():
        archive.touch()  # newest first when pruning
        return {"changed": False, "wheels": archive_members(archive), "archive": str(archive),
                "checksum": sha1_of(archive)}
    if check:
        return {"changed": True, "wheels": [], "archive": str(archive), "checksum": ""}
    cache.mkdir(parents=True, exist_ok=True)
    dependencies = cache / f"deps-{dependencies_key}"
    if not dependencies.is_dir():
        build_dependencies(dependencies, requirements)
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        wheels = Path(scratch) / "wheels"
        pip(["wheel", "--no-deps", "--wheel-dir", str(wheels), str(stamped_source(source, version, Path(scratch)))],
            "build the kpy wheel")
        write_archive(archive, list(dependencies.glob("*.whl")) + list(wheels.glob("*.whl")))
    prune(cache, archive)
    return {"changed": True, "wheels": archive_members(archive), "archive": str(archive), "checksum": sha1_of(archive)}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec={"source": {"type": "path", "required": True},
                                                             "cache_dir": {"type": "path", "required": True},
                                                             "version": {"type": "str", "default": ""}})
        try:
            return {**result, **wheelhouse(Path(args["source"]), Path(args["cache_dir"]), str(args["version"]),
                                           bool(self._task.check_mode))}
        except (WheelhouseError, OSError) as exc:
            return {**result, "failed": True, "msg": str(exc)}
