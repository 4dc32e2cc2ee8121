#!/usr/bin/python
"""Ansible module kpy_venv: install kpy offline from a wheelhouse archive into a versioned venv, in one call."""

DOCUMENTATION = r"""
---
module: kpy_venv
short_description: Install kpy offline from a wheelhouse archive into a versioned virtual environment
description:
  - Used through the kpy_install role's action plugin of the same name, which passes the checksum of the archive on
    the controller and transfers it only when this module answers C(archive_needed) (the host's copy is missing or
    differs), then calls the module again with I(upload).
  - Unpacks I(archive) into I(wheelhouse) when the archive changed since the last unpack, creates I(venv) when it is
    missing (C(python3 -m venv --without-pip), so the host needs no python3-venv package), installs I(requirement)
    from the wheelhouse with the pip wheel it contains (offline, C(--no-index)) when the wheelhouse is new to this
    venv, and points I(link) at I(venv).
  - A rebuilt wheel keeps its version number, so a venv that already had an older wheelhouse is reinstalled with
    C(--force-reinstall). Reports C(reinstalled) when kpy's code in the venv changed, so roles of long-running
    components can restart them.
  - Supports check mode.
version_added: "1.31.0"
author: kpy
options:
  archive:
    description: Where the host keeps the wheelhouse archive (a tar of wheels, pip's among them).
    type: path
    required: true
  checksum:
    description: SHA-1 of the wanted archive.
    type: str
    required: true
  upload:
    description: A transferred copy of the wanted archive, moved to I(archive).
    type: path
  wheelhouse:
    description: Where the archive is unpacked and kept, so the venv can be rebuilt without the controller.
    type: path
    required: true
  venv:
    description: The versioned virtual environment.
    type: path
    required: true
  link:
    description: Symbolic link made to point at I(venv) (the version in use).
    type: path
    required: true
  requirement:
    description: What pip installs, e.g. C(kpy-components==1.31.0).
    type: str
    required: true
  python:
    description: The Python the venv is made from.
    type: path
    default: /usr/bin/python3
"""

EXAMPLES = r"""
- name: Install | Install kpy into its versioned virtual environment
  kpy_venv:
    src: "{{ kpy_install_wheels.archive }}"
    archive: /opt/kpy/wheels/1.31.0.tar
    wheelhouse: /opt/kpy/wheels/1.31.0
    venv: /opt/kpy/1.31.0
    link: /opt/kpy/current
    requirement: kpy-components==1.31.0
"""

RETURN = r"""
archive_needed:
  description: The host lacks the wanted archive and no I(upload) was given.
  returned: always
  type: bool
reinstalled:
  description: Whether kpy's code in the venv was (or would be) installed or replaced, or the link moved to it.
  returned: always
  type: bool
changes:
  description: What was done, one line each.
  returned: always
  type: list
  elements: str
"""

import hashlib
import os
import shutil
import tarfile

from ansible.module_utils.basic import AnsibleModule

# Written last by each step, so an interrupted step is redone by the next run.
UNPACKED_MARKER = ".kpy-archive-sha1"
INSTALLED_MARKER = ".kpy-wheelhouse-sha1"


def sha1_of(path):
    digest = hashlib.sha1()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_marker(path):
    try:
        with open(path) as stream:
            return stream.read().strip()
    except FileNotFoundError:
        return None


def write_marker(path, value):
    with open(path, "w") as stream:
        stream.write(value + "\n")


def has_archive(archive, wheelhouse, checksum):
    """The host's archive is the wanted one; hashed only when the unpacked wheelhouse does not say so already."""
    if not os.path.isfile(archive):
        return False
    return read_marker(os.path.join(wheelhouse, UNPACKED_MARKER)) == checksum or sha1_of(archive) == checksum


def receive(upload, archive):
    os.makedirs(os.path.dirname(archive), mode=0o755, exist_ok=True)
    partial = archive + ".partial"
    shutil.copyfile(upload, partial)
    os.chmod(partial, 0o644)
    os.replace(partial, archive)


def unpack(archive, wheelhouse, checksum):
    partial = wheelhouse + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial, mode=0o755)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            # kpy_wheelhouse writes plain files with plain names; anything else is not one of its archives.
            if not member.isfile() or os.path.basename(member.name) != member.name or member.name.startswith("."):
                raise ValueError(f"{archive}: unexpected member {member.name!r}")
            with tar.extractfile(member) as stream, open(os.path.join(partial, member.name), "wb") as out:
                shutil.copyfileobj(stream, out)
    write_marker(os.path.join(partial, UNPACKED_MARKER), checksum)
    shutil.rmtree(wheelhouse, ignore_errors=True)
    os.rename(partial, wheelhouse)


def pip_wheel(module, wheelhouse):
    wheels = sorted(name for name in os.listdir(wheelhouse) if name.startswith("pip-") and name.endswith(".whl"))
    if not wheels:
        module.fail_json(msg=f"the wheelhouse {wheelhouse} holds no pip wheel; rebuild it with kpy_wheelhouse")
    return os.path.join(wheelhouse, wheels[-1])


def main():
    module = AnsibleModule(
        argument_spec={
            "archive": {"type": "path", "required": True},
            "checksum": {"type": "str", "required": True},
            "upload": {"type": "path"},
            "wheelhouse": {"type": "path", "required": True},
            "venv": {"type": "path", "required": True},
            "link": {"type": "path", "required": True},
            "requirement": {"type": "str", "required": True},
            "python": {"type": "path", "default": "/usr/bin/python3"},
        },
        supports_check_mode=True,
    )
    p = module.params
    wheelhouse, venv = p["wheelhouse"], p["venv"]
    checksum, changes = p["checksum"], []
    if not has_archive(p["archive"], wheelhouse, checksum):
        if not p["upload"]:
            module.exit_json(changed=module.check_mode, archive_needed=True, reinstalled=module.check_mode,
                             changes=[f"received {p['archive']}"] if module.check_mode else [])
        if sha1_of(p["upload"]) != checksum:
            module.fail_json(msg=f"the transferred archive {p['upload']} does not have checksum {checksum}")
        changes.append(f"received {p['archive']}")
        receive(p["upload"], p["archive"])
    if read_marker(os.path.join(wheelhouse, UNPACKED_MARKER)) != checksum:
        changes.append(f"unpacked {p['archive']}")
        if not module.check_mode:
            try:
                unpack(p["archive"], wheelhouse, checksum)
            except (ValueError, tarfile.TarError) as exc:
                module.fail_json(msg=f"cannot unpack the wheelhouse: {exc}")
    venv_python = os.path.join(venv, "bin", "python")
    had_venv = os.path.exists(venv_python)
    if not had_venv:
        changes.append(f"created {venv}")
        if not module.check_mode:
            module.run_command([p["python"], "-m", "venv", "--without-pip", venv], check_rc=True)
    installed_marker = os.path.join(venv, INSTALLED_MARKER)
    installed = read_marker(installed_marker)
    if installed != checksum:
        changes.append(f"installed {p['requirement']} into {venv}")
        if not module.check_mode:
            # pip runs from its own wheel (a wheel is an importable zip), so the venv needs no pip of its own.
            argv = [venv_python, os.path.join(pip_wheel(module, wheelhouse), "pip"), "install", "--quiet",
                    "--disable-pip-version-check", "--no-index", "--find-links", wheelhouse]
            argv += ["--force-reinstall"] if had_venv else []
            rc, out, err = module.run_command(argv + [p["requirement"]])
            if rc != 0:
                module.fail_json(msg=f"pip could not install {p['requirement']} into {venv}", stdout=out, stderr=err)
            write_marker(installed_marker, checksum)
    link = p["link"]
    if not (os.path.islink(link) and os.readlink(link) == venv):
        changes.append(f"linked {link} -> {venv}")
        if not module.check_mode:
            partial = link + ".partial"
            if os.path.lexists(partial):
                os.unlink(partial)
            os.symlink(venv, partial)
            os.replace(partial, link)
    reinstalled = any(change.startswith(("installed", "linked")) for change in changes)
    module.exit_json(changed=bool(changes), changes=changes, reinstalled=reinstalled, archive_needed=False)


if __name__ == "__main__":
    main()
