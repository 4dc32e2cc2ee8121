"""The etcd cluster seen from the outside: etcdctl on the controller, with the cluster's client certificate, finds
three healthy members over mutual TLS; without a certificate it is refused; the hosts run our unit, not Debian's,
and keep their keys private."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)
MEMBERS = sorted(RUNNER.get_hosts("etcd"))
PKI = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "artifacts" / "pki"  # kpy_artifacts_dir of the scenario
ETCD_PKI = "/etc/kpy/pki/etcd"

testinfra_hosts = [f"ansible://{name}?ansible_inventory={INVENTORY}" for name in MEMBERS]


def address(name: str) -> str:
    return RUNNER.get_variables(name)["ansible_host"]


def etcdctl(*args: str, client_cert: bool = True) -> subprocess.CompletedProcess:
    tls = ["--cacert", str(PKI / "etcd-ca.crt")]
    if client_cert:
        tls += ["--cert", str(PKI / "etcd-healthcheck-client.crt"), "--key", str(PKI / "etcd-healthcheck-client.key")]
    return subprocess.run(["etcdctl", "--dial-timeout=3s", "--command-timeout=10s", *tls, *args],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "ETCDCTL_API": "3"},
                          check=False)


def test_three_healthy_members_over_mutual_tls():
    done = etcdctl("--endpoints", f"https://{address(MEMBERS[0])}:2379", "endpoint", "health", "--cluster",
                   "--write-out", "json")
    assert done.returncode == 0, done.stderr
    health = json.loads(done.stdout)
    assert sorted(item["endpoint"] for item in health) == sorted(f"https://{address(m)}:2379" for m in MEMBERS)
    assert all(item["health"] for item in health)


def test_member_list_names_every_host():
    endpoints = ",".join(f"https://{address(m)}:2379" for m in MEMBERS)
    done = etcdctl("--endpoints", endpoints, "member", "list", "--write-out", "json")
    assert done.returncode == 0, done.stderr
    members = json.loads(done.stdout)["members"]
    assert sorted(m["name"] for m in members) == MEMBERS
    assert sorted(m["peerURLs"][0] for m in members) == sorted(f"https://{address(m)}:2380" for m in MEMBERS)


@pytest.mark.parametrize("name", MEMBERS)
def test_a_client_without_a_certificate_is_refused(name):
    done = etcdctl("--endpoints", f"https://{address(name)}:2379", "endpoint", "health", client_cert=False)
    assert done.returncode != 0
    assert "bad certificate" in done.stderr or "unhealthy" in done.stderr, done.stderr


def test_our_unit_runs_etcd_and_debians_is_masked(host):
    assert host.service("kpy-etcd").is_running and host.service("kpy-etcd").is_enabled
    assert host.file("/etc/systemd/system/etcd.service").linked_to == "/dev/null"
    assert not host.service("etcd").is_running
    assert not host.file("/var/lib/etcd/default").exists, "Debian's etcd.service ran at some point"
    process = host.process.get(comm="etcd")
    assert process.user == "etcd" and "--config-file /run/kpy-etcd/etcd.yaml" in process.args


def test_kpy_etcd_health_passes_on_the_host(host):
    result = host.run("/opt/kpy/current/bin/kpy-etcd health")
    assert result.rc == 0, result.stdout + result.stderr
    assert len(result.stdout.splitlines()) == len(MEMBERS)


def test_the_journal_keeps_etcds_log_without_the_per_request_gateway_warning(host):
    """`kpy-etcd health` goes through etcd's JSON gateway with a client certificate, which makes etcd 3.4 warn on
    every request; kpy-etcd relays etcd's log without that line."""
    assert host.run("/opt/kpy/current/bin/kpy-etcd health").rc == 0
    journal = host.run("journalctl -u kpy-etcd --no-pager -o cat").stdout
    assert '"msg":"serving client traffic securely"' in journal  # etcd's own log does arrive
    assert "ignoring common name in gRPC-gateway proxy request" not in journal


def test_keys_are_private_to_etcd(host):
    for key in ("server.key", "peer.key", "healthcheck-client.key"):
        file = host.file(f"{ETCD_PKI}/{key}")
        assert (key, file.mode, file.user) == (key, 0o600, "etcd")


def test_data_dir_is_private_to_etcd(host):
    data_dir = host.file("/var/lib/etcd/molecule")
    assert (data_dir.mode, data_dir.user) == (0o700, "etcd")
    assert host.file("/var/lib/etcd/molecule/member").is_directory


def test_snapshot_save_on_a_member(host):
    result = host.run("/opt/kpy/current/bin/kpy-etcd snapshot save /root/kpy-test.db && stat -c %a /root/kpy-test.db")
    assert result.rc == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "600"
    host.run("rm -f /root/kpy-test.db")


def _down_window(name: str) -> tuple[int, int]:
    """When kpy-etcd last stopped and next reported ready (µs of the clock the lab hosts share with the machine)."""
    host = testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")
    shown = host.check_output(
        "systemctl show kpy-etcd -p ActiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic")
    values = dict(line.split("=", 1) for line in shown.splitlines())
    return int(values["ActiveExitTimestampMonotonic"]), int(values["ActiveEnterTimestampMonotonic"])


def test_restarts_after_a_config_change_kept_quorum():
    """side_effect.yml changed every member's config: each member restarted, and no two were down at once (with 3
    members at most one may be), so the cluster kept a majority throughout."""
    windows = sorted(_down_window(name) for name in MEMBERS)
    assert all(stopped > 0 and ready > stopped for stopped, ready in windows), windows
    for (_, ready), (next_stopped, _) in zip(windows, windows[1:]):
        assert next_stopped >= ready, f"two members were down at once: {windows}"
    assert "log-level: warn" in testinfra.get_host(
        f"ansible://{MEMBERS[0]}?ansible_inventory={INVENTORY}").check_output("cat /run/kpy-etcd/etcd.yaml")


def test_restore_every_member_from_one_snapshot(tmp_path):
    """The procedure of roles/etcd/README.md: a snapshot taken with kpy-etcd on one member, restored on every member,
    the cluster started again: what was written before the snapshot is back, what came after is gone. Runs last."""
    hosts = {name: testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}") for name in MEMBERS}
    endpoints = ",".join(f"https://{address(m)}:2379" for m in MEMBERS)
    assert etcdctl("--endpoints", endpoints, "put", "/kpy-test/before", "kept").returncode == 0
    first = hosts[MEMBERS[0]]
    first.check_output("/opt/kpy/current/bin/kpy-etcd snapshot save /root/restore.db")
    assert etcdctl("--endpoints", endpoints, "put", "/kpy-test/after", "lost").returncode == 0
    first.ansible("fetch", f"src=/root/restore.db dest={tmp_path}/ flat=true", check=False)
    for host in hosts.values():
        host.ansible("copy", f"src={tmp_path}/restore.db dest=/root/restore.db mode=0600", check=False)
    for host in hosts.values():
        host.check_output("systemctl stop kpy-etcd")
    for host in hosts.values():
        restored = host.check_output("/opt/kpy/current/bin/kpy-etcd snapshot restore /root/restore.db --force")
        assert "previous data dir was moved to /var/lib/etcd/molecule.before-restore-" in restored
        assert host.file("/var/lib/etcd/molecule/member").user == "etcd"
    for host in hosts.values():
        host.check_output("systemctl start --no-block kpy-etcd")
    health = first.run("/opt/kpy/current/bin/kpy-etcd health --wait 60")
    assert health.rc == 0, health.stdout + health.stderr
    got = etcdctl("--endpoints", endpoints, "get", "/kpy-test/", "--prefix", "--print-value-only")
    assert got.returncode == 0 and got.stdout.split() == ["kept"], got.stdout + got.stderr
