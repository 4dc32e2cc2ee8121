#!/usr/bin/python
"""Ansible module: build kpy's wheel and the wheels of its dependencies on the controller, once per source change."""
import hashlib
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: kpy_wheelhouse
short_description: Build a wheelhouse of kpy and its dependencies for offline installs
description:
  - Builds the kpy wheel from I(source) and downloads or builds the wheels of every dependency into I(dest)
    with pip, using the Python that runs this module (the controller's).
  - Rebuilds only when the package's sources (kpy_components, pyproject.toml, VERSION) changed since the last build,
    so a re-run reports no change.
  - Also writes I(dest).tar, a reproducible archive of the wheelhouse, so hosts receive one file (one checksum,
    one transfer) instead of one per wheel.
options:
  source:
    description: The kpy source tree (the repository root).
    type: path
    required: true
  dest:
    description: The wheelhouse directory; its previous content is replaced on a rebuild.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Build the wheelhouse
  kpy_wheelhouse:
    source: "{{ playbook_dir }}"
    dest: "{{ kpy_artifacts_dir }}/wheels/{{ kpy_version }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
wheels:
  description: File names of the wheels in the wheelhouse.
  type: list
  elements: str
  returned: always
archive:
  description: Path of the wheelhouse archive.
  type: str
  returned: always
"""

FINGERPRINT = ".source-fingerprint"


def fingerprint(source: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(source.glob("kpy_components/**/*.py")) + [source / "pyproject.toml", source / "VERSION"]
    for path in files:
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def write_archive(wheelhouse: Path) -> Path:
    """Same wheels in, same bytes out: sorted members, fixed owner and time, so the archive only changes with them."""
    archive = wheelhouse.with_name(wheelhouse.name + ".tar")
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        for path in sorted(wheelhouse.iterdir()):
            info = tar.gettarinfo(path, arcname=path.name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            info.mode = 0o644
            with path.open("rb") as stream:
                tar.addfile(info, stream)
    partial.rename(archive)
    return archive


def main():
    module = AnsibleModule(
        argument_spec={"source": {"type": "path", "required": True}, "dest": {"type": "path", "required": True}},
        supports_check_mode=True,
    )
    source, dest = Path(module.params["source"]), Path(module.params["dest"])
    if not (source / "pyproject.toml").is_file():
        module.fail_json(msg=f"source {source} is not the kpy source tree: it has no pyproject.toml")
    wanted = fingerprint(source)
    marker = dest / FINGERPRINT
    archive = dest.with_name(dest.name + ".tar")
    if marker.is_file() and marker.read_text() == wanted and archive.is_file():
        module.exit_json(changed=False, wheels=sorted(p.name for p in dest.glob("*.whl")), archive=str(archive))
    if module.check_mode:
        module.exit_json(changed=True, wheels=[], archive=str(archive))
    building = dest.with_name(dest.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                           "--wheel-dir", str(building), str(source)], capture_output=True, text=True)
    if proc.returncode != 0:
        module.fail_json(msg="pip could not build the wheelhouse", stderr=proc.stderr[-4000:])
    (building / FINGERPRINT).write_text(wanted)
    shutil.rmtree(dest, ignore_errors=True)
    building.rename(dest)
    module.exit_json(changed=True, wheels=sorted(p.name for p in dest.glob("*.whl")), archive=str(write_archive(dest)))


if __name__ == "__main__":
    main()
