"""Runs after test_1_services.py (files run in name order): its last test powers a host off.

From the Ansible controller, with the real kubectl and the admin kubeconfig: exactly one leader per component,
the controllers working under the real RBAC (each as its own service account), and failover when the leader's
host stops."""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

testinfra_hosts = ["loops-cp1"]  # the tests below drive the cluster from outside; one run is enough
HOSTS = {"loops-cp1": "10.213.15.11", "loops-cp2": "10.213.15.12", "loops-cp3": "10.213.15.13"}
LEASES = ("kube-controller-manager", "kube-scheduler")
LEASE_SECONDS = 15  # the roles' default leaseDuration
KUBECONFIG = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "artifacts" / "admin.kubeconfig"


def kubectl(*args: str, server: str = "loops-cp1", check: bool = True) -> str:
    done = subprocess.run([os.path.realpath(shutil.which("kubectl")), "--kubeconfig", str(KUBECONFIG),
                           "--server", f"https://{HOSTS[server]}:6443", "--request-timeout", "10s", *args],
                          capture_output=True, text=True, timeout=30)
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def holder(lease: str, server: str = "loops-cp1") -> str:
    spec = json.loads(kubectl("get", "lease", "-n", "kube-system", lease, "-o", "json", server=server))["spec"]
    return spec.get("holderIdentity") or ""


def leader_host(lease: str, server: str = "loops-cp1") -> str:
    return holder(lease, server).split("_", 1)[0]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except AssertionError as error:  # an API server busy with the change: ask again
            last = error
        if last is True or (last and not isinstance(last, AssertionError)):
            return last
        time.sleep(1)
    pytest.fail(f"not within {timeout}s: {what} (last: {last})")


@pytest.mark.parametrize("lease", LEASES)
def test_exactly_one_leader(lease):
    leader = wait_for(lambda: leader_host(lease), 60, f"{lease} has a leader")
    assert leader in HOSTS
    # every API server sees the same single holder (one Lease in the shared etcd), and it keeps renewing
    assert {holder(lease, server) for server in HOSTS} == {holder(lease)}
    first = json.loads(kubectl("get", "lease", "-n", "kube-system", lease, "-o", "json"))["spec"]["renewTime"]
    wait_for(lambda: json.loads(kubectl("get", "lease", "-n", "kube-system", lease, "-o", "json"))["spec"]
             ["renewTime"] != first, 10, f"{lease} renewed by its holder")


def test_controllers_act_under_the_real_rbac():
    """A Deployment becomes a ReplicaSet and pods (nobody runs them: there are no workers in this scenario), written
    by the deployment and replicaset controllers as their own service accounts."""
    kubectl("create", "deployment", "loops-web", "--image=registry.invalid/web:1", "--replicas=2")
    wait_for(lambda: kubectl("get", "replicasets", "-l", "app=loops-web", "-o", "name").strip(), 60,
             "the deployment controller created a ReplicaSet")
    wait_for(lambda: len(kubectl("get", "pods", "-l", "app=loops-web", "-o", "name").split()) == 2, 60,
             "the replicaset controller created 2 pods")
    kubectl("create", "namespace", "loops-ns")
    wait_for(lambda: "default" in kubectl("get", "serviceaccounts", "-n", "loops-ns", "-o", "name"), 60,
             "the serviceaccount controller created the default ServiceAccount")


def test_failover_when_the_leaders_host_stops():
    stopped = leader_host("kube-controller-manager")
    survivor = next(name for name in HOSTS if name != stopped)
    lab = subprocess.run([shutil.which("kpy-lab") or "kpy-lab", "ssh", "--lab", "loops", stopped,
                          "systemctl", "poweroff", "--no-block"], capture_output=True, text=True, timeout=30)
    assert lab.returncode in (0, 255), lab.stderr  # 255: the connection closed under us
    started = time.monotonic()
    for lease in LEASES:  # the scheduler's leader may or may not have been on the stopped host
        new = wait_for(lambda: leader_host(lease, survivor) not in ("", stopped) and leader_host(lease, survivor),
                       LEASE_SECONDS * 2 + 15, f"{lease} led from a host that still runs")
        assert new in HOSTS
    # A clean power-off stops the services first (they release their Leases); a crash would take up to a lease
    # duration plus the retry jitter. Either fits this bound, which includes the host's own shutdown.
    assert time.monotonic() - started <= LEASE_SECONDS * 2 + 15
    assert "loops-web" in kubectl("get", "deployments", "-o", "name", server=survivor)
