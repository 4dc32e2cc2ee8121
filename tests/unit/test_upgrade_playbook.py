"""playbooks/upgrade.yml's phase plays as Ansible resolves their hosts (--list-hosts: no task runs, no host is
reached): each takes the hosts the plan put in its group, and a phase the plan left empty (its group never created)
is skipped without Ansible's "Could not match supplied host pattern" warning. (--list-hosts prints a play's hosts
as a set: the plan's order is not seen here.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
# The groups the plan play adds hosts to; no kpy_upgrade_etcd, kpy_upgrade_apiserver, ...: those phases have nothing
# to do.
INVENTORY = """
[etcd]
cp1
[control_plane]
cp1
[workers]
w1
w2
[kpy_upgrade_hosts]
w2
cp1
[kpy_upgrade_node]
w2
cp1
"""


def play_hosts(stdout: str) -> dict[str, set[str]]:
    """Play name -> its hosts, from --list-hosts' listing."""
    plays, current = {}, None
    for line in stdout.splitlines():
        if match := re.match(r"\s+play #\d+ \(.*?\): (.*?)\tTAGS:", line):
            current = plays.setdefault(match.group(1), set())
        elif current is not None and re.match(r" {6}\S+$", line):
            current.add(line.strip())
    return plays


def test_each_phase_takes_its_planned_hosts_and_an_empty_phase_is_skipped_without_a_warning(tmp_path):
    (tmp_path / "hosts.ini").write_text(INVENTORY)
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    run = subprocess.run([ANSIBLE_PLAYBOOK, "-i", tmp_path / "hosts.ini", REPO / "playbooks" / "upgrade.yml",
                          "-e", "kpy_version=1.31.0", "--list-hosts"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Could not match supplied host pattern" not in run.stderr, run.stderr
    plays = play_hosts(run.stdout)
    assert plays["Upgrade | Install the target beside the running release"] == {"w2", "cp1"}
    assert plays["Upgrade | Nodes in batches, control-plane hosts first"] == {"w2", "cp1"}
    for empty in ("Upgrade | etcd members, one at a time", "Upgrade | API servers, one at a time",
                  "Upgrade | Controller managers, standbys first, the leader last",
                  "Upgrade | Schedulers, standbys first, the leader last"):
        assert plays[empty] == set(), empty
