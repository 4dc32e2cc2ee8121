"""playbooks/validate.yml end to end on this machine (localhost, no connection to any host): a bad inventory stops the
run listing its problems, without a traceback; a good one passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")

GROUP_VARS_ALL = {
    "kpy_cluster_name": "test",
    "kpy_cluster_domain": "cluster.local",
    "kpy_pod_cidr": "10.244.0.0/16",
    "kpy_service_cidr": "10.96.0.0/16",
    "kpy_node_cidr": "10.213.0.0/24",
    # A template, as in the shipped inventories: validation must evaluate it like any task would.
    "kpy_api_endpoint": "{{ hostvars[groups['control_plane'][0]]['ansible_host'] }}",
}


def write_inventory(directory: Path, groups: dict[str, dict[str, str | None]], group_vars: dict) -> Path:
    """An inventory directory: hosts.yml (group -> host -> ansible_host) and group_vars/all.yml."""
    children = {
        group: {
            "hosts": {host: None if address is None else {"ansible_host": address} for host, address in hosts.items()}
        }
        for group, hosts in groups.items()
    }
    (directory / "group_vars").mkdir(parents=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": children}}))
    (directory / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    return directory


def validate(inventory: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", inventory, REPO / "playbooks" / "validate.yml", *options],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip


def test_a_good_inventory_passes(tmp_path):
    inventory = write_inventory(
        tmp_path,
        {
            "etcd": {"cp1": None, "cp2": None, "cp3": None},
            "control_plane": {"cp1": "10.213.0.11", "cp2": "10.213.0.12", "cp3": "10.213.0.13"},
            "workers": {"w1": "10.213.0.21", "w2": "10.213.0.22"},
        },
        GROUP_VARS_ALL,
    )
    result = validate(inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "failed=0" in result.stdout


def test_the_sample_inventory_for_real_machines_passes():
    result = validate(REPO / "inventory" / "sample")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("options", [[], ["--limit", "w1"]], ids=["whole", "limited"])
def test_a_bad_inventory_stops_the_run_listing_every_problem(tmp_path, options):
    group_vars = {**GROUP_VARS_ALL, "kpy_service_cidr": "10.244.128.0/20"}
    del group_vars["kpy_cluster_domain"]
    inventory = write_inventory(
        tmp_path,
        {
            "etcd": {"cp1": None, "cp2": None},
            "control_plane": {"cp1": "10.213.0.11", "cp2": "10.213.0.12"},
            "workers": {"w1": "10.213.0.12", "w2": None},
            "monitoring": {"stray": "10.213.0.99"},
        },
        group_vars,
    )
    result = validate(inventory, *options)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "The inventory has 6 problem(s):" in output
    for expected in (
        "group etcd has 2 members (cp1, cp2): it needs an odd number",
        "host stray is in none of the groups etcd, control_plane, workers",
        "kpy_cluster_domain is not set",
        "kpy_pod_cidr 10.244.0.0/16 overlaps kpy_service_cidr 10.244.128.0/20",
        "host w2 has no ansible_host",
        "hosts cp2, w1 share the address 10.213.0.12",
    ):
        assert f"  - {expected}" in output, expected
    assert "Traceback" not in output


@pytest.mark.parametrize("control_plane", [{}, None], ids=["empty", "missing"])
def test_an_empty_control_plane_is_named_without_a_template_traceback(tmp_path, control_plane):
    groups = {"etcd": {"e1": "10.213.0.11"}, "workers": {"w1": "10.213.0.21"}}
    if control_plane is not None:
        groups["control_plane"] = control_plane
    result = validate(write_inventory(tmp_path, groups, GROUP_VARS_ALL))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "  - group control_plane is empty or missing" in output
    assert "  - kpy_api_endpoint could not be evaluated: " in output
    assert "Traceback" not in output


def test_an_empty_inventory_is_refused(tmp_path):
    (tmp_path / "hosts.yml").write_text("all: {}\n")
    result = validate(tmp_path / "hosts.yml")
    assert result.returncode != 0
    output = result.stdout
    assert "  - group etcd is empty or missing" in output
    assert "  - kpy_pod_cidr is not set" in output
