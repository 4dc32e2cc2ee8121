#!/usr/bin/python
"""Ansible module kpy_converge: a host's packages, accounts, directories, links, files and services, in one call."""

DOCUMENTATION = r"""
---
module: kpy_converge
short_description: Bring a host's packages, accounts, directories, links, files and services to a wanted state
description:
  - Does in one remote call what a role would otherwise spread over one task per package list, account, directory,
    link, file and service (each task costs a round trip per host). Reports changed only for what it changed, and
    names each change in C(changes).
  - Steps run in this order, so a later one can rely on an earlier one - groups, users, directories, links,
    packages (a link can mask a unit before its package is installed), files (their validate command can use a
    package just installed), then C(systemctl daemon-reload) when a written path is under /etc/systemd, then services.
  - Supports check mode (reports what would change, changes nothing) and diff mode (before/after of files whose
    content changes).
  - Used through the kpy role's action plugin of the same name, which first runs this file on the host as a plain
    python3 script (C(--probe), arguments on stdin) and runs the module only when the probe finds something to change.
version_added: "1.31.0"
author: kpy
options:
  groups:
    description: System groups that must exist.
    type: list
    elements: str
    default: []
  users:
    description: System users that must exist, with this primary group, home and shell (created without a home
      directory).
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: User name., type: str, required: true}
      group: {description: Primary group (must exist; list it under groups)., type: str, required: true}
      home: {description: Home directory as recorded in the passwd entry., type: str, required: true}
      shell: {description: Login shell., type: str, default: /usr/sbin/nologin}
  directories:
    description: Directories that must exist with this owner, group and mode (missing parents are created 0755).
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: The directory., type: path, required: true}
      owner: {description: Owner., type: str, default: root}
      group: {description: Group., type: str, default: root}
      mode: {description: Octal mode as a string, e.g. "0755"., type: str, default: "0755"}
  links:
    description: Symbolic links I(dest) -> I(src); whatever else is at I(dest) (a file, another link) is replaced.
      A missing parent directory is created (0755).
    type: list
    elements: dict
    default: []
    suboptions:
      src: {description: What the link points to., type: str, required: true}
      dest: {description: The link., type: path, required: true}
  packages:
    description: Debian packages that must be installed; when any is missing, apt-get update then install them
      (without recommends). Their services do not start during the installation (a policy-rc.d for its duration,
      unless the host has one); list those to run under I(services).
    type: list
    elements: str
    default: []
  files:
    description: Files with exactly this content, owner, group and mode. The parent directory must exist.
    type: list
    elements: dict
    default: []
    suboptions:
      dest: {description: The file., type: path, required: true}
      content: {description: Its whole content (text). One of I(content) and I(template)., type: str}
      template:
        description: A template of the task's role, which the action renders on the controller with the task's
          variables into I(content) (the module itself never sees it).
        type: str
      owner: {description: Owner., type: str, default: root}
      group: {description: Group., type: str, default: root}
      mode: {description: Octal mode as a string., type: str, default: "0644"}
      validate:
        description: Command run on the new content before it replaces the file; C(%s) is the path of the new
          content. A non-zero exit fails the task and leaves the file as it was.
        type: str
  services:
    description: systemd services to enable and start. Running services are never restarted here (handlers do that).
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Unit name., type: str, required: true}
      no_block: {description: Start without waiting for the unit to be ready., type: bool, default: false}
      ready:
        description: An HTTPS readiness probe, run on every call once the service is started - GET I(url) until it
          answers 200, failing after I(timeout) seconds. Not run in check mode.
        type: dict
        suboptions:
          url: {description: What to GET., type: str, required: true}
          ca_path: {description: CA bundle the server's certificate must chain to., type: path}
          validate_certs: {description: Verify the server's certificate (and name)., type: bool, default: true}
          client_cert: {description: Client certificate to present., type: path}
          client_key: {description: Its key., type: path}
          timeout: {description: Seconds to wait., type: int, default: 60}
  stale:
    description: Why the services run out of date although this call may change none of their files (certificates
      another role rewrote, a reinstalled kpy). Each reason is reported as a change, so that the task's handler
      restarts them.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Configure | Packages, config, unit and service of kpy-firewall
  kpy_converge:
    packages: [nftables]
    directories:
      - {path: /etc/kpy, mode: "0755"}
    files:
      - dest: /etc/kpy/firewall.nft
        content: "{{ lookup('ansible.builtin.template', 'kpy.nft.j2') }}"
        validate: nft -c -f %s
    services:
      - {name: kpy-firewall.service}
  register: firewall_state
"""

RETURN = r"""
changes:
  description: What was (or in check mode would be) done, one line each.
  returned: always
  type: list
  elements: str
  sample: ["created user kube", "wrote /etc/kpy/firewall.nft", "started kpy-firewall.service"]
changed_files:
  description: Files and links whose content, target, owner, group or mode changed.
  returned: always
  type: list
  elements: str
started:
  description: Services that were (or would be) started.
  returned: always
  type: list
  elements: str
"""

import contextlib
import grp
import json
import os
import pwd
import shlex
import stat
import subprocess
import sys
import tempfile
import time

SYSTEMD_DIR = "/etc/systemd/"
POLICY_RC_D = "/usr/sbin/policy-rc.d"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def item_spec(**options):
    return {"type": "list", "elements": "dict", "default": [], "options": options}


ARGUMENT_SPEC = {
    "groups": {"type": "list", "elements": "str", "default": []},
    "users": item_spec(
        name={"type": "str", "required": True},
        group={"type": "str", "required": True},
        home={"type": "str", "required": True},
        shell={"type": "str", "default": "/usr/sbin/nologin"},
    ),
    "directories": item_spec(
        path={"type": "path", "required": True},
        owner={"type": "str", "default": "root"},
        group={"type": "str", "default": "root"},
        mode={"type": "str", "default": "0755"},
    ),
    "links": item_spec(src={"type": "str", "required": True}, dest={"type": "path", "required": True}),
    "packages": {"type": "list", "elements": "str", "default": []},
    "files": item_spec(
        dest={"type": "path", "required": True},
        content={"type": "str"},
        template={"type": "str"},
        owner={"type": "str", "default": "root"},
        group={"type": "str", "default": "root"},
        mode={"type": "str", "default": "0644"},
        validate={"type": "str"},
    ),
    "services": item_spec(
        name={"type": "str", "required": True},
        no_block={"type": "bool", "default": False},
        ready={"type": "dict", "options": {
            "url": {"type": "str", "required": True},
            "ca_path": {"type": "path"},
            "validate_certs": {"type": "bool", "default": True},
            "client_cert": {"type": "path"},
            "client_key": {"type": "path"},
            "timeout": {"type": "int", "default": 60},
        }},
    ),
    "stale": {"type": "list", "elements": "str", "default": []},
}


@contextlib.contextmanager
def services_held():
    """No service starts while packages install (Debian's policy-rc.d, exit 101 = action forbidden), unless the host
    has a policy-rc.d of its own: the services step starts them once their files are written, instead of a package's
    postinst starting them with its defaults and a handler restarting them right after."""
    if os.path.lexists(POLICY_RC_D):
        yield
        return
    with open(POLICY_RC_D, "w") as stream:
        stream.write("#!/bin/sh\n# kpy_converge: services start after their configuration is written\nexit 101\n")
    os.chmod(POLICY_RC_D, 0o755)
    try:
        yield
    finally:
        os.unlink(POLICY_RC_D)


STEPS = ("groups", "users", "directories", "links", "packages", "files", "services", "stale")


class Converger:
    """Applies each step, recording what changed; in check mode only records."""

    def __init__(self, module, probe=False):
        self.module = module
        self.check = module.check_mode
        self.probe = probe  # check mode that also asks each ready probe once (see probe())
        self.changes, self.changed_files, self.started, self.diffs = [], [], [], []

    def run(self, argv, what, env=None):
        rc, out, err = self.module.run_command(argv, environ_update=env or {})
        if rc != 0:
            self.module.fail_json(msg=f"{what} failed: {' '.join(argv)} exited {rc}", stdout=out, stderr=err,
                                  changes=self.changes)
        return out

    def record(self, change, path=None):
        self.changes.append(change)
        if path is not None:
            self.changed_files.append(path)
        return not self.check

    def ownership(self, owner, group, where):
        try:
            return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid
        except KeyError:
            if self.check:  # an account this run would create does not exist yet
                return None, None
            self.module.fail_json(msg=f"{where}: owner {owner!r} or group {group!r} does not exist",
                                  changes=self.changes)

    def fix_attributes(self, path, owner, group, mode, where):
        """chown/chmod `path` (existing) to owner/group/mode; True when anything differed."""
        uid, gid = self.ownership(owner, group, where)
        now = os.stat(path)
        differs = (uid, gid) != (now.st_uid, now.st_gid) or stat.S_IMODE(now.st_mode) != int(mode, 8)
        if differs and not self.check:
            os.chown(path, uid, gid)
            os.chmod(path, int(mode, 8))
        return differs

    def groups(self, names):
        for name in names:
            if self.gid(name) is None and self.record(f"created group {name}"):
                self.run(["groupadd", "--system", name], "groupadd")

    def users(self, items):
        for item in items:
            try:
                entry = pwd.getpwnam(item["name"])
            except KeyError:
                if self.record(f"created user {item['name']}"):
                    self.run(["useradd", "--system", "--gid", item["group"], "--home-dir", item["home"],
                              "--no-create-home", "--shell", item["shell"], item["name"]], "useradd")
                continue
            updates = []
            if entry.pw_gid != self.gid(item["group"]):
                updates += ["--gid", item["group"]]
            if entry.pw_dir != item["home"]:
                updates += ["--home", item["home"]]
            if entry.pw_shell != item["shell"]:
                updates += ["--shell", item["shell"]]
            if updates and self.record(f"changed user {item['name']}: {' '.join(updates)}"):
                self.run(["usermod"] + updates + [item["name"]], "usermod")

    @staticmethod
    def gid(name):
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            return None

    def directories(self, items):
        for item in items:
            path = item["path"]
            if os.path.isdir(path):
                if self.fix_attributes(path, item["owner"], item["group"], item["mode"], path):
                    self.record(f"set {item['owner']}:{item['group']} {item['mode']} on {path}")
            elif os.path.lexists(path):
                self.module.fail_json(msg=f"{path} exists and is not a directory", changes=self.changes)
            elif self.record(f"created directory {path}"):
                os.makedirs(path, mode=0o755)
                self.fix_attributes(path, item["owner"], item["group"], item["mode"], path)

    def links(self, items):
        for item in items:
            dest, src = item["dest"], item["src"]
            if os.path.islink(dest) and os.readlink(dest) == src:
                continue
            if os.path.isdir(dest) and not os.path.islink(dest):
                self.module.fail_json(msg=f"{dest} is a directory, not a link to {src}", changes=self.changes)
            if self.record(f"linked {dest} -> {src}", dest):
                os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
                partial = f"{dest}.kpy-partial"
                if os.path.lexists(partial):
                    os.unlink(partial)
                os.symlink(src, partial)
                os.replace(partial, dest)

    def packages(self, names):
        if not names:
            return
        # dpkg-query exits 1 when a name is unknown to dpkg; such a package is simply missing.
        out = self.module.run_command(["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n"] + names)[1]
        installed = {line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["ii"]}
        missing = [name for name in names if name not in installed]
        if missing and self.record(f"installed {' '.join(missing)}"):
            self.run(["apt-get", "update", "-q"], "apt-get update", APT_ENV)
            with services_held():
                self.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "-o",
                          "Dpkg::Options::=--force-confold"] + missing, "apt-get install", APT_ENV)

    def files(self, items):
        for item in items:
            if item["content"] is None:
                self.module.fail_json(msg=f"{item['dest']}: no content (a template is rendered into content by the "
                                          f"kpy_converge action)", changes=self.changes)
            dest, wanted = item["dest"], item["content"].encode()
            if not os.path.isdir(os.path.dirname(dest)) and not self.check:
                self.module.fail_json(msg=f"{dest}: directory {os.path.dirname(dest)} does not exist",
                                      changes=self.changes)
            try:
                with open(dest, "rb") as stream:
                    before = stream.read()
            except FileNotFoundError:
                before = None
            if before == wanted:
                if self.fix_attributes(dest, item["owner"], item["group"], item["mode"], dest):
                    self.record(f"set {item['owner']}:{item['group']} {item['mode']} on {dest}", dest)
                continue
            if self.module._diff:
                self.diffs.append({"before_header": dest, "after_header": dest,
                                   "before": (before or b"").decode(errors="replace"), "after": item["content"]})
            if self.record(f"{'wrote' if before is not None else 'created'} {dest}", dest):
                self.write(item)

    def write(self, item):
        """New content into a temporary file beside dest, validated, then renamed over dest (atomic)."""
        dest = item["dest"]
        fd, partial = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=f".{os.path.basename(dest)}.")
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(item["content"].encode())
            self.fix_attributes(partial, item["owner"], item["group"], item["mode"], dest)
            if item["validate"]:
                if "%s" not in item["validate"]:
                    self.module.fail_json(msg=f"{dest}: validate must contain %s: {item['validate']!r}")
                argv = [arg.replace("%s", partial) for arg in shlex.split(item["validate"])]
                rc, out, err = self.module.run_command(argv)
                if rc != 0:
                    self.module.fail_json(msg=f"{dest}: the new content failed validation ({item['validate']})",
                                          stdout=out, stderr=err, changes=self.changes)
            os.replace(partial, dest)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)

    def services(self, items):
        if any(path.startswith(SYSTEMD_DIR) for path in self.changed_files) and self.record("reloaded systemd"):
            self.run(["systemctl", "daemon-reload"], "systemctl daemon-reload")
        for item in items:
            name = item["name"]
            enabled = self.module.run_command(["systemctl", "is-enabled", name])[1].strip()
            if enabled not in ("enabled", "static") and self.record(f"enabled {name}"):
                self.run(["systemctl", "enable", name], f"enabling {name}")
            active = self.module.run_command(["systemctl", "is-active", name])[1].strip()
            if active != "active":
                self.started.append(name)
                if self.record(f"started {name}"):
                    self.run(["systemctl", "start"] + (["--no-block"] if item["no_block"] else []) + [name],
                             f"starting {name}")
            if item["ready"] and (self.probe or not self.check):
                self.wait_ready(name, dict(item["ready"], timeout=0) if self.probe else item["ready"])

    def stale(self, reasons):
        for reason in reasons:
            self.record(f"out of date: {reason}")

    def wait_ready(self, name, ready):
        import ssl  # here: ~25 ms to import, which the probe of a host without a ready probe need not pay
        import urllib.error
        import urllib.request

        if ready["validate_certs"]:
            context = ssl.create_default_context(cafile=ready["ca_path"])
        else:
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if ready["client_cert"]:
            context.load_cert_chain(ready["client_cert"], ready["client_key"])
        deadline = time.monotonic() + ready["timeout"]
        while True:
            try:
                with urllib.request.urlopen(ready["url"], context=context, timeout=5) as response:
                    if response.status == 200:
                        return
                    answer = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                answer = f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
            except OSError as exc:  # refused, timed out, TLS errors (URLError is an OSError)
                answer = str(exc)
            if time.monotonic() >= deadline:
                self.module.fail_json(msg=f"{name} is not ready: {ready['url']} answered {answer} for "
                                          f"{ready['timeout']} s", changes=self.changes)
            time.sleep(1)


class NotInSync(Exception):
    """The probe cannot vouch that nothing would change."""


class ProbeHost:
    """What Converger needs of AnsibleModule, for probe(): check mode, commands run directly, failures raised."""
    check_mode, _diff = True, False

    @staticmethod
    def run_command(argv, environ_update=None):
        proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **(environ_update or {})})
        return proc.returncode, proc.stdout, proc.stderr

    @staticmethod
    def fail_json(msg, **_details):
        raise NotInSync(msg)


def with_defaults(spec, params):
    """`params` completed and converted as AnsibleModule would for ARGUMENT_SPEC's option types (NotInSync on
    anything it does not know, so that the module itself reports it)."""
    unknown = set(params) - set(spec)
    if unknown:
        raise NotInSync(f"unsupported parameters {sorted(unknown)}")
    done = {}
    for name, option in spec.items():
        value = params.get(name, option.get("default"))
        if value is None:
            if option.get("required"):
                raise NotInSync(f"missing {name}")
        elif option["type"] == "list":
            if not isinstance(value, list):
                raise NotInSync(f"{name} is not a list")
            value = [with_defaults(option["options"], item) if "options" in option else str(item) for item in value]
        elif option["type"] == "dict":
            value = with_defaults(option["options"], value)
        elif option["type"] == "bool":
            value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        elif option["type"] == "int":
            value = int(value)
        elif option["type"] == "path":
            value = os.path.expanduser(os.path.expandvars(str(value)))
        else:
            value = str(value)
        done[name] = value
    return done


def probe(stdin, stdout):
    """Whether the host is already in the wanted state (JSON arguments on stdin), without Ansible on the host: the
    converger in check mode, each ready probe asked once. Prints {"in_sync": bool, "why": [...]} (see
    kpy_components.host_probe, which the kpy_converge action runs it with)."""
    try:
        params = with_defaults(ARGUMENT_SPEC, json.load(stdin))
        converger = Converger(ProbeHost(), probe=True)
        for step in STEPS:
            getattr(converger, step)(params[step])
        answer = {"in_sync": not converger.changes, "why": converger.changes}
    except (NotInSync, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        answer = {"in_sync": False, "why": [f"{type(exc).__name__}: {exc}"]}
    json.dump(answer, stdout)


def main():
    if sys.argv[1:] == ["--probe"]:
        return probe(sys.stdin, sys.stdout)
    from ansible.module_utils.basic import AnsibleModule  # not needed (nor on the host) for the probe

    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    converger = Converger(module)
    for step in STEPS:
        getattr(converger, step)(module.params[step])
    result = {"changed": bool(converger.changes), "changes": converger.changes,
              "changed_files": converger.changed_files, "started": converger.started}
    if converger.diffs:
        result["diff"] = converger.diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
