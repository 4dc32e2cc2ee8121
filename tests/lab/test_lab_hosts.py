"""Lab hosts as users meet them: real systemd machines reached by Ansible over SSH, able to run runc containers,
and gone without a trace after `kpy-lab down`."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

LAB = "labtest"
VENV_BIN = Path(sys.executable).parent


def kpy_lab(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([VENV_BIN / "kpy-lab", *args], capture_output=True, text=True, check=check)


def ansible(inventory: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "ANSIBLE_HOST_KEY_CHECKING": "False"}
    return subprocess.run([VENV_BIN / "ansible", "all", "-i", str(inventory), *args],
                          capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    inventory = tmp_path_factory.mktemp("lab") / "hosts.yml"
    kpy_lab("up", f"--lab={LAB}", "--subnet-index=20", "--control-plane=1", "--workers=1",
            f"--inventory={inventory}")
    yield inventory
    kpy_lab("down", f"--lab={LAB}")


def on_host(host: str, command: str) -> subprocess.CompletedProcess:
    return kpy_lab("ssh", f"--lab={LAB}", host, command, check=False)


@pytest.mark.parametrize("connection", ["ssh", "paramiko"])
def test_ansible_reaches_every_host(lab, connection):
    result = ansible(lab, "-c", connection, "-m", "ansible.builtin.setup", "-a", "filter=ansible_default_ipv4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"address": "10.213.20.11"' in result.stdout
    assert '"address": "10.213.20.21"' in result.stdout


def test_status_lists_running_hosts(lab):
    hosts = json.loads(kpy_lab("status", f"--lab={LAB}", "--json").stdout)
    assert [(h["name"], h["address"], h["running"]) for h in hosts] == [
        (f"{LAB}-cp1", "10.213.20.11", True), (f"{LAB}-w1", "10.213.20.21", True)]


def test_hosts_are_systemd_machines_that_reach_each_other(lab):
    result = on_host(f"{LAB}-cp1", f"systemctl is-system-running --wait; ping -c1 -W2 {LAB}-w1")
    assert "1 received" in result.stdout, result.stdout + result.stderr


def test_runc_runs_a_container_inside_a_host(lab):
    script = """set -e
    apt-get install -y -qq runc >/dev/null 2>&1
    b=/tmp/bundle; rm -rf $b; mkdir -p $b/rootfs/usr $b/rootfs/proc $b/rootfs/dev $b/rootfs/sys
    cp -a /usr/bin /usr/lib /usr/lib64 $b/rootfs/usr/
    ln -s usr/bin $b/rootfs/bin; ln -s usr/lib $b/rootfs/lib; ln -s usr/lib64 $b/rootfs/lib64
    cd $b && runc spec
    sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo inside-runc; cat \\/proc\\/1\\/cgroup"/' config.json
    runc run kpytest"""
    result = on_host(f"{LAB}-w1", script)
    assert result.returncode == 0, result.stderr
    assert "inside-runc" in result.stdout
    assert "memory:/kpytest" in result.stdout  # the container got a memory cgroup of its own


def test_down_leaves_no_trace(lab):
    kpy_lab("down", f"--lab={LAB}")
    assert subprocess.run(["pgrep", "-f", "--", f"--machine={LAB}-"], capture_output=True).returncode == 1
    assert f"/var/lib/kpy-lab/{LAB}" not in Path("/proc/self/mountinfo").read_text()
    assert not list(Path("/sys/fs/cgroup").glob(f"*/kpy-lab/{LAB}"))
    assert not Path(f"/sys/class/net/kpylab-{LAB}").exists()
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert "kpy" not in tables
    assert kpy_lab("status", f"--lab={LAB}", check=False).returncode == 1
