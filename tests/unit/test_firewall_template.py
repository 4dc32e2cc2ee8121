"""The firewall role's nftables file, rendered by Ansible for hosts of each group (on this machine, nothing loaded):
exactly the documented ports per group, never 8080 or 10255, and a file nft accepts (`nft -c`, check only)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
NODE_CIDR = "10.213.0.0/24"

# Renders the role's template with the role's own defaults, vars, filters and checks (tasks_from: assert); the role's
# handlers are loaded but nothing notifies them, so no rule is ever loaded on this machine.
RENDER_PLAYBOOK = [
    {
        "name": "Render the firewall rules of each host",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Load the firewall role's settings and check them",
                "ansible.builtin.include_role": {"name": "firewall", "tasks_from": "assert", "public": True},
            },
            {
                "name": "Render the rules file",
                "ansible.builtin.template": {
                    "src": str(REPO / "roles/firewall/templates/kpy.nft.j2"),
                    "dest": "{{ render_dir }}/{{ inventory_hostname }}.nft",
                    "mode": "0644",
                },
            },
        ],
    }
]

CLUSTER_VARS = {
    "ansible_connection": "local",
    "ansible_python_interpreter": sys.executable,
    "kpy_pod_cidr": "10.244.0.0/16",
    "kpy_service_cidr": "10.96.0.0/16",
    "kpy_node_cidr": NODE_CIDR,
}


def inventory(extra_group_vars: dict | None = None) -> dict:
    """Hosts covering each group and the combinations: cp (control_plane+etcd), e (etcd only), w (workers),
    cpw (control_plane+workers)."""
    groups = {"control_plane": ["cp", "cpw"], "etcd": ["cp", "e"], "workers": ["w", "cpw"]}
    children = {group: {"hosts": {host: None for host in hosts}} for group, hosts in groups.items()}
    for group, group_vars in (extra_group_vars or {}).items():
        children[group]["vars"] = group_vars
    return {"all": {"vars": CLUSTER_VARS, "children": children}}


def render(tmp_path: Path, inventory_data: dict) -> subprocess.CompletedProcess:
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory_data))
    (tmp_path / "render.yml").write_text(yaml.safe_dump(RENDER_PLAYBOOK, sort_keys=False))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", tmp_path / "hosts.yml", tmp_path / "render.yml", "-e", f"render_dir={tmp_path}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
    )  # fmt: skip


# An accept rule for ports: optional "<family> saddr { ... }", then "<proto> dport <ports> accept".
PORT_RULE = re.compile(r"^(?:(ip6?) saddr \{ ([^}]*) \} )?(tcp|udp) dport (\S+) accept\b")
# The accept rules every host has, whatever its groups.
COMMON_RULES = [
    "ct state established,related accept",
    'iifname "lo" accept',
    re.compile(r"^icmp type \{ [a-z, -]+ \} accept$"),
    re.compile(r"^icmpv6 type \{ [a-z, -]+ \} accept$"),
    'ip saddr { 10.244.0.0/16, 10.96.0.0/16 } accept comment "trusted network"',
]


def open_ports(text: str) -> set[tuple[str, str, str]]:
    """(proto, ports, sources or "any") of every port rule; fails on an accept rule it does not recognise."""
    found = set()
    for line in (line.strip() for line in text.splitlines()):
        if not line.endswith("accept") and " accept " not in line:
            continue
        if match := PORT_RULE.match(line):
            family, saddrs, proto, ports = match.groups()
            found.add((proto, ports, saddrs if family else "any"))
        else:
            assert any(
                rule == line or (isinstance(rule, re.Pattern) and rule.match(line)) for rule in COMMON_RULES
            ), line
    return found


CONTROL_PLANE = {("tcp", port, "any") for port in ("6443", "10250", "10257", "10259", "10256")} | {
    ("udp", "53", NODE_CIDR), ("tcp", "53", NODE_CIDR), ("tcp", "9153", NODE_CIDR)}  # kpy-dns, from the nodes
ETCD = {("tcp", "2379-2380", NODE_CIDR)}
WORKERS = {
    ("tcp", "10250", "any"),
    ("tcp", "10256", "any"),
    ("tcp", "30000-32767", "any"),
    ("udp", "30000-32767", "any"),
}
SSH = {("tcp", "22", "any")}
# The image registry, on kpy_registry_host only (the first control-plane host, cp), from the nodes' network.
REGISTRY = {("tcp", "5000", NODE_CIDR)}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
    tmp_path = tmp_path_factory.mktemp("firewall")
    result = render(tmp_path, inventory())
    assert result.returncode == 0, result.stdout + result.stderr
    return {host: (tmp_path / f"{host}.nft").read_text() for host in ("cp", "e", "w", "cpw")}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("cp", SSH | CONTROL_PLANE | ETCD | REGISTRY),
        ("e", SSH | ETCD),
        ("w", SSH | WORKERS),
        ("cpw", SSH | CONTROL_PLANE | WORKERS),
    ],
    ids=["control_plane+etcd", "etcd", "workers", "control_plane+workers"],
)
def test_each_group_opens_exactly_its_documented_ports(rendered, host, expected):
    assert open_ports(rendered[host]) == expected


@pytest.mark.parametrize("host", ["cp", "e", "w", "cpw"])
def test_insecure_ports_never_appear(rendered, host):
    assert not re.search(r"\b(8080|10255)\b", rendered[host])


@pytest.mark.parametrize("host", ["cp", "e", "w", "cpw"])
def test_only_our_table_with_a_drop_policy(rendered, host):
    text = rendered[host]
    assert "flush ruleset" not in text
    assert set(re.findall(r"^table (\S+ \S+)", text, re.MULTILINE)) == {"inet kpy"}
    assert "type filter hook input priority filter; policy drop;" in text


@pytest.mark.skipif(shutil.which("nft") is None or os.geteuid() != 0, reason="nft -c needs nft and root")
@pytest.mark.parametrize("host", ["cp", "e", "w", "cpw"])
def test_nft_accepts_the_file(rendered, host, tmp_path):
    path = tmp_path / "rules.nft"
    path.write_text(rendered[host])
    result = subprocess.run(["nft", "-c", "-f", path], capture_output=True, text=True, check=False)  # check only
    assert result.returncode == 0, result.stderr


def test_extra_ports_open_on_their_group_only(tmp_path):
    extra = [
        {"port": 9100, "comment": "node exporter", "sources": [NODE_CIDR, "fd00::/64"]},
        {"port": "4789", "proto": "udp", "comment": "vxlan"},
    ]
    result = render(tmp_path, inventory({"workers": {"firewall_extra_ports": extra}}))
    assert result.returncode == 0, result.stdout + result.stderr
    added = {("tcp", "9100", NODE_CIDR), ("tcp", "9100", "fd00::/64"), ("udp", "4789", "any")}
    assert open_ports((tmp_path / "w.nft").read_text()) == SSH | WORKERS | added
    assert open_ports((tmp_path / "e.nft").read_text()) == SSH | ETCD


# One bad firewall_extra_ports per worker, all rendered in one run: each host fails naming its own entry.
BAD_EXTRA_PORTS = {
    "bad8080": ([{"port": 8080}], "firewall_extra_ports[0].port: 8080 is the API server's insecure port"),
    "badrange": ([{"port": 22}, {"port": "10000-11000"}], "firewall_extra_ports[1].port: 10000-11000 includes 10255"),
    "badsource": ([{"port": 9100, "sources": ["10.0.0.0/33"]}], "firewall_extra_ports[0].sources[0]: '10.0.0.0/33'"),
}
# A host Ansible reaches on another port than the firewall's SSH port.
LOCKED_OUT = {"lockout": {"ansible_port": 2222}}


@pytest.fixture(scope="module")
def refused(tmp_path_factory) -> tuple[Path, str]:
    tmp_path = tmp_path_factory.mktemp("firewall-refused")
    data = inventory()
    data["all"]["children"]["workers"]["hosts"] = {
        host: {"firewall_extra_ports": extra} for host, (extra, _) in BAD_EXTRA_PORTS.items()
    } | LOCKED_OUT
    result = render(tmp_path, data)
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    return tmp_path, result.stdout


@pytest.mark.parametrize("host", BAD_EXTRA_PORTS)
def test_bad_extra_ports_stop_the_role_naming_the_entry(refused, host):
    tmp_path, output = refused
    assert re.search(rf"fatal: \[{host}\]: FAILED!.*{re.escape(BAD_EXTRA_PORTS[host][1])}", output)
    assert not (tmp_path / f"{host}.nft").exists()
    assert (tmp_path / "cp.nft").exists()


def test_a_firewall_that_would_close_the_ansible_port_is_refused(refused):
    tmp_path, output = refused
    assert re.search(
        r"fatal: \[lockout\]: FAILED!.*ansible_port is 2222 but the firewall opens SSH on firewall_ssh_port 22", output
    )
    assert not (tmp_path / "lockout.nft").exists()
