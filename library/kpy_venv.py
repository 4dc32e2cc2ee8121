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
  - Unpacks I(archive) into I(wheelhouse) when the archive changed since the last unpack. When I(venv) was not
    built from this wheelhouse (new, or an older wheelhouse - a rebuilt wheel keeps its version number), builds it
    anew - C(python3 -m venv --without-pip), so the host needs no python3-venv package, then every wheel of the
    wheelhouse installed with pypa's installer from the installer wheel the wheelhouse holds (no resolver, no index;
    about half pip's CPU). The previous venv is put back if that fails. Then points I(link) at I(venv).
  - Reports C(reinstalled) when kpy's code in the venv changed or the link moved, so roles of long-running
    components can restart them.
  - Supports check mode. The action also runs this file on the host as a plain python3 script first (C(--probe)) and
    skips the module run when nothing would change.
version_added: "1.31.0"
author: kpy
options:
  archive:
    description: Where the host keeps the wheelhouse archive (a tar of wheels, the installer's among them).
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
  python:
    description: The Python the venv is made from.
    type: path
    default: /usr/bin/python3
  components_dir:
    description: Where each component's link to the venv it runs lives (/opt/kpy/components/<unit>). Unless
      I(allow_version_change), a host whose components run another version than I(venv) is refused before anything
      changes - site.yml never moves a running cluster to another version; playbooks/upgrade.yml does, in order.
    type: path
  allow_version_change:
    description: Install beside components that run another version (what the upgrade does).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Install | Install kpy into its versioned virtual environment
  kpy_venv:
    src: "{{ kpy_install_wheels.archive }}"
    archive: /opt/kpy/wheels/1.31.0.tar
    wheelhouse: /opt/kpy/wheels/1.31.0
    venv: /opt/kpy/1.31.0
    link: /opt/kpy/current
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
import json
import os
import shutil
import sys
import tarfile

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


# Run by the venv's Python: installs wheels into its scheme with pypa's installer (imported from its wheel), with
# bytecode compiled as pip would. No resolver: the wheelhouse is already the resolved set, one version per project.
INSTALL_SCRIPT = """
import sys, sysconfig
sys.path.insert(0, sys.argv[1])
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
destination = SchemeDictionaryDestination(sysconfig.get_paths(), interpreter=sys.executable, script_kind="posix",
                                          bytecode_optimization_levels=(0,))
for wheel in sys.argv[2:]:
    with WheelFile.open(wheel) as source:
        install(source, destination, {"INSTALLER": b"kpy_venv\\n"})
"""


def wheels_of(module, wheelhouse):
    """(installer's wheel, the wheels to install): every wheel but the installer's."""
    wheels = sorted(os.path.join(wheelhouse, name) for name in os.listdir(wheelhouse) if name.endswith(".whl"))
    installers = [path for path in wheels if os.path.basename(path).startswith("installer-")]
    if not installers:
        module.fail_json(msg=f"the wheelhouse {wheelhouse} holds no installer wheel; rebuild it with kpy_wheelhouse")
    return installers[-1], [path for path in wheels if path not in installers]


def rebuild_venv(module, python, venv, wheelhouse, checksum):
    """A new venv holding exactly the wheelhouse; the previous one is put back if that fails."""
    previous = venv + ".previous"
    shutil.rmtree(previous, ignore_errors=True)
    if os.path.lexists(venv):
        os.rename(venv, previous)
    installer, wheels = wheels_of(module, wheelhouse)
    for argv, what in (([python, "-m", "venv", "--without-pip", venv], "create the venv"),
                       ([os.path.join(venv, "bin", "python"), "-c", INSTALL_SCRIPT, installer] + wheels,
                        "install the wheelhouse")):
        rc, out, err = module.run_command(argv)
        if rc != 0:
            shutil.rmtree(venv, ignore_errors=True)
            if os.path.lexists(previous):
                os.rename(previous, venv)
            module.fail_json(msg=f"could not {what} in {venv} (the previous venv is kept)", stdout=out, stderr=err)
    write_marker(os.path.join(venv, INSTALLED_MARKER), checksum)
    shutil.rmtree(previous, ignore_errors=True)


def components_on_other_versions(components_dir, venv):
    """`<unit> <version>` for each component link in `components_dir` that points elsewhere than `venv`."""
    if not os.path.isdir(components_dir):
        return []
    others = []
    for unit in sorted(os.listdir(components_dir)):
        target = os.readlink(os.path.join(components_dir, unit)) if os.path.islink(
            os.path.join(components_dir, unit)) else None
        if target and os.path.normpath(target) != os.path.normpath(venv):
            others.append(f"{unit} {os.path.basename(os.path.normpath(target))}")
    return others


def probe(stdin, stdout):
    """Whether a run would change nothing (the module's arguments as JSON on stdin), without Ansible on the host:
    the archive unpacked and the venv built from this checksum, the link pointing at the venv, no component on another
    version. Prints {"in_sync": bool, "why": [...]} (see kpy_components.host_probe)."""
    p = json.load(stdin)
    venv, checksum = p["venv"], p["checksum"]
    why = [f"{what} is not from archive {checksum}" for what, marker in (
        (p["wheelhouse"], os.path.join(p["wheelhouse"], UNPACKED_MARKER)), (venv, os.path.join(venv, INSTALLED_MARKER)))
        if read_marker(marker) != checksum]
    if not os.path.isfile(p["archive"]):
        why.append(f"{p['archive']} is missing")
    if not (os.path.islink(p["link"]) and os.readlink(p["link"]) == venv):
        why.append(f"{p['link']} does not point at {venv}")
    if p.get("components_dir") and str(p.get("allow_version_change")).lower() not in ("true", "yes", "on", "1"):
        why += [f"{other} runs another version" for other in components_on_other_versions(p["components_dir"], venv)]
    json.dump({"in_sync": not why, "why": why}, stdout)


def main():
    if sys.argv[1:] == ["--probe"]:
        return probe(sys.stdin, sys.stdout)
    from ansible.module_utils.basic import AnsibleModule  # not needed (nor on the host) for the probe

    module = AnsibleModule(
        argument_spec={
            "archive": {"type": "path", "required": True},
            "checksum": {"type": "str", "required": True},
            "upload": {"type": "path"},
            "wheelhouse": {"type": "path", "required": True},
            "venv": {"type": "path", "required": True},
            "link": {"type": "path", "required": True},
            "python": {"type": "path", "default": "/usr/bin/python3"},
            "components_dir": {"type": "path"},
            "allow_version_change": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    wheelhouse, venv = p["wheelhouse"], p["venv"]
    if p["components_dir"] and not p["allow_version_change"]:
        others = components_on_other_versions(p["components_dir"], venv)
        if others:
            module.fail_json(msg=f"this host runs another kpy version ({', '.join(others)}), not "
                                 f"{os.path.basename(venv)}: site.yml never changes a running component's version; "
                                 f"upgrade with playbooks/upgrade.yml -e kpy_version={os.path.basename(venv)}")
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
    if read_marker(os.path.join(venv, INSTALLED_MARKER)) != checksum:
        changes.append(f"installed the wheelhouse into a new {venv}")
        if not module.check_mode:
            rebuild_venv(module, p["python"], venv, wheelhouse, checksum)
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
