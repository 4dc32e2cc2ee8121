"""The upgrade scenario drives its cluster with the default scenario's helpers (the real kubectl, lab_ssh, wait_for),
on its own lab (KPY_TEST_LAB=upgr, from molecule.yml), and runs playbooks/upgrade.yml as a user would."""
import importlib.util
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("default_scenario", ROOT / "molecule/default/tests/conftest.py")
default_scenario = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(default_scenario)

Kubectl, wait_for, lab_ssh = default_scenario.Kubectl, default_scenario.wait_for, default_scenario.lab_ssh
HOSTS, WORKERS, CONTROL_PLANE = default_scenario.HOSTS, default_scenario.WORKERS, default_scenario.CONTROL_PLANE
KUBECONFIG = default_scenario.KUBECONFIG
admin = default_scenario.admin  # the fixture
TARGET = (ROOT / "VERSION").read_text().strip()
_major, _minor, _ = TARGET.split(".")
PREVIOUS = f"{_major}.{int(_minor) - 1}.0"
NEXT = f"{_major}.{int(_minor) + 1}.0"
UNITS = ("kpy-etcd", "kpy-apiserver", "kpy-controller-manager", "kpy-scheduler", "kpy-kubelet", "kpy-proxy", "kpy-dns")


def playbook(name: str, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess:
    """ansible-playbook playbooks/<name> against the scenario's inventory, from the repository root."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_LIBRARY": str(ROOT / "library"),
           "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(["ansible-playbook", "-i", inventory, str(ROOT / "playbooks" / name), *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


def explain(run: subprocess.CompletedProcess) -> str:
    """The end of a failed run, and what each control-plane host's API server logged last (a step that failed on a
    host says why there)."""
    journals = [f"--- {host}\n" + lab_ssh(host, "journalctl -u kpy-apiserver -n 25 --no-pager").stdout
                for host in CONTROL_PLANE]
    return run.stdout[-4000:] + "\n" + "\n".join(journals)


def recap_changes(output: str) -> dict[str, int]:
    """Host -> changed=N of the PLAY RECAP."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)", output, re.M)}


def component_links() -> dict[str, dict[str, str]]:
    """Host -> unit -> the version its /opt/kpy/components link names."""
    links = {}
    for host in HOSTS:
        out = lab_ssh(host, "for u in /opt/kpy/components/*; do echo $(basename $u) $(basename $(readlink $u)); done")
        links[host] = dict(line.split() for line in out.stdout.splitlines() if len(line.split()) == 2)
    return links


def started_at(host: str, unit: str) -> int:
    """When the unit last became active, in µs of the monotonic clock the lab hosts share (one kernel)."""
    out = lab_ssh(host, f"systemctl show -p ActiveEnterTimestampMonotonic --value {unit}.service").stdout.strip()
    return int(out or 0)
