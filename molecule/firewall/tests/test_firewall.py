"""The firewall seen from the outside: from the other lab host, the documented ports of a host's groups are reachable
and no other port is (8080, 10255, an arbitrary one, another group's ports), although a listener waits on each of
them; SSH still works; our table survives next to other nftables tables."""

from __future__ import annotations

import contextlib
import os
import shlex
import time

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)

# Ports with a throwaway listener on each host, and those of them the host's groups open.
CONTROL_PLANE_OPEN = {6443, 10250, 10256, 10257, 10259, 2379, 2380}
WORKER_OPEN = {10250, 10256, 30080}
LISTENERS = {
    "control_plane": CONTROL_PLANE_OPEN | {8080, 10255, 12345, 30080},
    "workers": WORKER_OPEN | {6443, 2379, 8080, 10255, 12345},
}
SSH = 22


def lab_host(group: str):
    (name,) = RUNNER.get_hosts(group)
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def address_of(host) -> str:
    return host.check_output("hostname -I").split()[0]


@contextlib.contextmanager
def listeners(host, ports: set[int], timeout: float = 20):
    """A TCP listener on each port (all addresses) while the block runs, as transient units stopped afterwards."""
    units = {port: f"kpy-probe-{port}" for port in ports}
    try:
        for port, unit in units.items():
            host.check_output(
                f"systemd-run --unit={unit} --collect python3 -m http.server --bind 0.0.0.0 --directory /tmp {port}"
            )
        deadline = time.monotonic() + timeout
        while not all(host.socket(f"tcp://0.0.0.0:{port}").is_listening for port in ports):
            assert time.monotonic() < deadline, f"listeners did not start on {host.backend.hostname}"
            time.sleep(0.2)
        yield
    finally:
        host.run(f"systemctl stop {' '.join(units.values())}")


def reachable(prober, address: str, ports: set[int]) -> set[int]:
    """The ports of `address` that accept a TCP connection from `prober`, probed in parallel (2 s timeout each)."""
    probes = " ".join(f"(nc -z -w 2 {shlex.quote(address)} {port} && echo {port}) &" for port in sorted(ports))
    return {int(line) for line in prober.check_output(f"{probes} wait").split()}


@pytest.fixture(scope="module")
def control_plane():
    return lab_host("control_plane")


@pytest.fixture(scope="module")
def worker():
    return lab_host("workers")


@pytest.mark.parametrize(
    ("target", "prober", "group", "expected"),
    [
        ("control_plane", "worker", "control_plane", CONTROL_PLANE_OPEN | {SSH}),
        ("worker", "control_plane", "workers", WORKER_OPEN | {SSH}),
    ],
    ids=["control_plane+etcd", "worker"],
)
def test_only_the_documented_ports_are_reachable_from_the_other_host(request, target, prober, group, expected):
    target, prober = request.getfixturevalue(target), request.getfixturevalue(prober)
    with listeners(target, LISTENERS[group]):
        # Every listener answers locally, so a port the other host cannot reach is closed by the firewall.
        assert reachable(target, "127.0.0.1", LISTENERS[group]) == LISTENERS[group]
        assert reachable(prober, address_of(target), LISTENERS[group] | {SSH}) == expected


@pytest.mark.parametrize(("target", "prober"), [("control_plane", "worker"), ("worker", "control_plane")])
def test_ssh_answers_from_the_other_host(request, target, prober):
    target, prober = request.getfixturevalue(target), request.getfixturevalue(prober)
    banner = prober.check_output(f"nc -w 2 {address_of(target)} {SSH} </dev/null")
    assert banner.startswith("SSH-2.0-")


def test_our_table_is_loaded_by_an_enabled_unit(host):
    assert host.run("nft list table inet kpy").rc == 0
    unit = host.service("kpy-firewall")
    assert unit.is_enabled
    assert unit.is_running


def test_reloading_replaces_our_table_and_leaves_other_tables_alone(host):
    host.check_output("nft add table inet kpy_probe_other")
    try:
        host.check_output("nft add rule inet kpy input tcp dport 12345 accept")
        host.check_output("systemctl reload kpy-firewall")
        tables = host.check_output("nft list tables").splitlines()
        assert {"table inet kpy", "table inet kpy_probe_other"} <= set(tables)
        assert "12345" not in host.check_output("nft list table inet kpy")
    finally:
        host.run("nft delete table inet kpy_probe_other")
