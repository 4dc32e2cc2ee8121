"""Driving the scenario's cluster from the Ansible controller with the real kubectl (1.27 and 1.33: the oldest and
newest kpy supports, which differ in request bodies and streaming protocols) and the admin kubeconfig.

The same tests run against the README's lab cluster (`make cluster`) with KPY_TEST_LAB=kpy and
KPY_TEST_KUBECONFIG=inventory/lab/artifacts/admin.kubeconfig."""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

LAB = os.environ.get("KPY_TEST_LAB", "dflt")
_STATUS = json.loads(subprocess.run([shutil.which("kpy-lab") or "kpy-lab", "status", "--lab", LAB, "--json"],
                                    capture_output=True, text=True, check=True).stdout)
HOSTS = {host["name"]: host["address"] for host in _STATUS}
WORKERS = tuple(host["name"] for host in _STATUS if "workers" in host["groups"])
CONTROL_PLANE = tuple(host["name"] for host in _STATUS if "control_plane" in host["groups"])
KUBECONFIG = Path(os.environ.get("KPY_TEST_KUBECONFIG") or
                  Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")) / "artifacts" / "admin.kubeconfig")
KUBECTL_DIR = Path(os.path.realpath(shutil.which("kubectl"))).parent
VERSIONS = ("1.27", "1.33")


class Kubectl:
    def __init__(self, version: str):
        self.version = version
        self.binary = str(KUBECTL_DIR / f"kubectl.{version}")

    def run(self, *args: str, input_text: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, "--kubeconfig", str(KUBECONFIG), "--request-timeout", "30s", *args],
                              input=input_text, capture_output=True, text=True, timeout=timeout)

    def __call__(self, *args: str, input_text: str | None = None, timeout: float = 60) -> str:
        done = self.run(*args, input_text=input_text, timeout=timeout)
        assert done.returncode == 0, f"kubectl {self.version} {' '.join(args)}: {done.stderr}"
        return done.stdout

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json"))

    def apply(self, manifest: dict, namespace: str) -> None:
        self("apply", "-n", namespace, "-f", "-", input_text=json.dumps(manifest))


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"kubectl-{v}" for v in VERSIONS])
def kubectl(request) -> Kubectl:
    return Kubectl(request.param)


@pytest.fixture(scope="module")
def admin() -> Kubectl:
    return Kubectl(VERSIONS[-1])


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except AssertionError as error:
            last = error
        else:
            if last:
                return last
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


def lab_ssh(host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([shutil.which("kpy-lab") or "kpy-lab", "ssh", "--lab", LAB, host, command],
                          capture_output=True, text=True, timeout=timeout)


def namespace(admin: Kubectl, name: str) -> str:
    if admin.run("get", "namespace", name).returncode != 0:
        admin("create", "namespace", name)
    wait_for(lambda: "default" in admin("get", "serviceaccounts", "-n", name, "-o", "name"), 60,
             f"the default ServiceAccount of {name}")
    return name


def pod_phase(admin: Kubectl, ns: str, name: str) -> str:
    return admin.json("get", "pod", "-n", ns, name).get("status", {}).get("phase", "")


def container_status(admin: Kubectl, ns: str, name: str, container: str | None = None) -> dict:
    statuses = admin.json("get", "pod", "-n", ns, name).get("status", {}).get("containerStatuses") or []
    return next((s for s in statuses if container is None or s["name"] == container), {})


def wait_running(admin: Kubectl, ns: str, name: str, timeout: float = 90) -> dict:
    return wait_for(lambda: (pod := admin.json("get", "pod", "-n", ns, name))["status"].get("phase") == "Running"
                    and all(s.get("ready") for s in pod["status"].get("containerStatuses") or [{}]) and pod,
                    timeout, f"pod {ns}/{name} running and ready")
