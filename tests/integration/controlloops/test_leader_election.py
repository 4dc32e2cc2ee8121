"""Two replicas of each control-plane binary against a real kpy-apiserver: exactly one leads; when the leader is
killed (SIGKILL: no chance to release) the standby takes over within one lease duration (plus the retry jitter a
candidate waits between attempts); when it stops gracefully (SIGTERM) it releases the Lease and the standby takes
over at once. Short leases keep the test quick: 4 s / 3 s / 0.5 s."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apiserver.conftest import free_port
from kpy_components.client.leaderelection import JITTER_FACTOR

LEASE, RENEW, RETRY = 4.0, 3.0, 0.5
# A loaded 2-core machine runs a process's timers and this test's polling up to about a second late; the bounds
# still tell "after one lease duration" and "at once" apart from the 4 s lease and the next lease duration.
SLACK = 1.0
TAKEOVER_BOUND = LEASE + RETRY * (1 + JITTER_FACTOR) + SLACK
BINARIES = {"kpy-controller-manager": ("kube-controller-manager", ["--controllers="]),
            "kpy-scheduler": ("kube-scheduler", [])}


def _lease(cluster, name: str) -> dict:
    status, body = cluster.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}")
    return json.loads(body) if status == 200 else {}


def _holder(cluster, name: str) -> str:
    return _lease(cluster, name).get("spec", {}).get("holderIdentity") or ""


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"not within {timeout:g}s: {what}")


class Replica:
    def __init__(self, binary: str, extra: list[str], cluster, directory: Path, index: int):
        config = directory / f"{binary}-{index}.yaml"
        config.write_text(f"leaderElection: {{leaseDuration: {LEASE}s, renewDeadline: {RENEW}s, "
                          f"retryPeriod: {RETRY}s}}\n")
        self.log = directory / f"{binary}-{index}.log"
        command = [str(Path(sys.executable).parent / binary), "--kubeconfig", str(cluster.admin_kubeconfig),
                   "--config", str(config), "--secure-port", str(free_port()), "--bind-address", "127.0.0.1",
                   *extra]
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)

    def identity(self) -> str | None:
        for line in self.log.read_text().splitlines():
            if "Started leading" in line:
                return line.rsplit("identity=", 1)[1].strip()
        return None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.mark.parametrize("binary", sorted(BINARIES))
def test_one_leader_and_failover(cluster, tmp_path, binary):
    lease_name, extra = BINARIES[binary]
    replicas = [Replica(binary, extra, cluster, tmp_path, 0)]
    try:
        first = _wait(replicas[0].identity, 20, f"{binary} replica 0 leading")
        replicas.append(Replica(binary, extra, cluster, tmp_path, 1))
        replicas.append(Replica(binary, extra, cluster, tmp_path, 2))
        time.sleep(LEASE + 1)  # long enough for a standby to (wrongly) take an un-renewed Lease
        assert _holder(cluster, lease_name) == first
        assert [r.identity() for r in replicas[1:]] == [None, None], "a standby leads beside the leader"

        renewed = _lease(cluster, lease_name)["spec"]["renewTime"]
        os.kill(replicas[0].process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        second = _wait(lambda: (_holder(cluster, lease_name) not in ("", first)) and _holder(cluster, lease_name),
                       TAKEOVER_BOUND + 2, "a standby taking over")
        took = time.monotonic() - killed_at
        assert took <= TAKEOVER_BOUND, f"takeover took {took:.1f}s (lease {LEASE}s, last renewal {renewed})"
        leader = next(r for r in replicas[1:] if r.identity() == second)
        standby = next(r for r in replicas[1:] if r is not leader)

        leader.process.send_signal(signal.SIGTERM)  # graceful: the Lease is released ...
        assert leader.process.wait(timeout=15) == 0
        released_at = time.monotonic()
        third = _wait(standby.identity, LEASE, "the last standby taking over")
        took = time.monotonic() - released_at
        assert third == _holder(cluster, lease_name) and third not in (first, second)
        assert took <= RETRY * (1 + JITTER_FACTOR) + 1.0 + SLACK, f"took {took:.1f}s after a release"  # ... at once
    finally:
        for replica in replicas:
            replica.stop()
