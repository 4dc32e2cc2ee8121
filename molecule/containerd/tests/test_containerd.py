"""containerd on every host, seen working end to end: its CRI plugin loads, images pull through the cluster's
registry (the docker.io and registry.k8s.io mirror) into the k8s.io namespace with the digests kpy built, runc runs
a busybox container on the overlayfs snapshotter in the host's cgroups, and the pause image exits at once on SIGTERM.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

from kpy_components.images import catalog, oci

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
RUNNER = AnsibleRunner(INVENTORY)
# The controller's image cache (the registry role's default), holding the layouts that were pushed.
LAYOUTS = Path.home() / ".cache/kpy/images/layouts"
CTR = "ctr --namespace k8s.io"
BUSYBOX = "docker.io/library/busybox:1.35"
PAUSE = f"registry.k8s.io/pause:{catalog.PAUSE_TAG}"


@pytest.fixture(scope="module")
def registry_host():
    (name,) = RUNNER.get_hosts("control_plane")
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def built_digest(name: str, tag: str) -> str:
    return oci.read_layout(LAYOUTS / name)[tag]


def image_digest(host, reference: str) -> str:
    """The digest containerd's k8s.io namespace holds for `reference` (`ctr images ls` columns: REF TYPE DIGEST ...)."""
    (line,) = host.check_output(f"{CTR} images ls name=={reference}").splitlines()[1:]
    return line.split()[2]


def wait_for(condition, what: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_containerd_runs_with_its_cri_plugin(host):
    unit = host.service("containerd")
    assert unit.is_enabled and unit.is_running
    assert host.socket("unix:///run/containerd/containerd.sock").is_listening
    (row,) = host.check_output("ctr plugins ls id==cri").splitlines()[1:]
    assert row.split()[1:] == ["cri", "linux/amd64", "ok"]


def test_config_names_the_cgroup_driver_sandbox_image_and_mirrors(host):
    dump = host.check_output("containerd config dump")
    assert "SystemdCgroup = true" in dump
    assert f'sandbox_image = "{PAUSE}"' in dump
    assert 'config_path = "/etc/containerd/certs.d"' in dump
    assert 'snapshotter = "overlayfs"' in dump
    registry = RUNNER.get_variables(RUNNER.get_hosts("control_plane")[0])["ansible_host"]
    for name in ("docker.io", "registry.k8s.io"):
        hosts_toml = host.file(f"/etc/containerd/certs.d/{name}/hosts.toml").content_string
        assert f'[host."http://{registry}:5000"]' in hosts_toml


@pytest.mark.parametrize("key", ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"])
def test_kernel_settings_for_pods(host, key):
    assert host.sysctl(key) == 1


def test_registry_serves_on_its_host(registry_host):
    assert registry_host.service("docker-registry").is_running
    assert registry_host.socket("tcp://0.0.0.0:5000").is_listening or registry_host.socket("tcp://:::5000").is_listening


def test_image_archives_are_imported_into_the_k8s_io_namespace(host):
    """Before any test pulls: the archives the inventory lists for this host were imported by the converge."""
    archives = host.ansible.get_variables().get("containerd_image_archives", [])
    if not archives:
        pytest.skip("no image archives for this host")
    assert host.file("/var/lib/kpy/images/busybox.tar").is_file
    for tag in ("1.35", "latest"):
        assert image_digest(host, f"docker.io/library/busybox:{tag}") == built_digest("busybox", tag)


@pytest.mark.parametrize(("reference", "layout", "tag"), [(BUSYBOX, "busybox", "1.35"), (PAUSE, "pause", catalog.PAUSE_TAG),
                                                            ("docker.io/library/busybox:latest", "busybox", "latest")])
def test_images_pull_through_the_mirror_with_the_digests_kpy_built(host, reference, layout, tag):
    host.run(f"{CTR} images rm --sync {reference}")  # a real pull, not a cached image
    pull = host.run(f"{CTR} images pull --hosts-dir /etc/containerd/certs.d {reference}")
    assert pull.rc == 0, pull.stderr
    assert image_digest(host, reference) == built_digest(layout, tag)


def test_pulling_an_image_the_registry_lacks_fails_with_its_answer(host):
    pull = host.run(f"{CTR} images pull --hosts-dir /etc/containerd/certs.d docker.io/library/kpy-absent:1")
    assert pull.rc != 0
    assert "not found" in pull.stderr


def test_busybox_runs_with_its_applets(host):
    host.check_output(f"{CTR} images pull --hosts-dir /etc/containerd/certs.d {BUSYBOX}")
    name = f"kpy-verify-{uuid.uuid4().hex[:8]}"
    out = host.check_output(f"{CTR} run --rm {BUSYBOX} {name} sh -c 'echo hello from busybox; ls /bin'")
    lines = out.splitlines()
    assert lines[0] == "hello from busybox"
    assert set(catalog.REQUIRED_APPLETS) <= set(lines[1:])


def task_status(host, name: str) -> str | None:
    """RUNNING, STOPPED, ... of the task `name` (`ctr tasks ls` columns: TASK PID STATUS), None when there is none."""
    rows = (line.split() for line in host.check_output(f"{CTR} tasks ls").splitlines()[1:])
    return next((row[2] for row in rows if row[0] == name), None)


def test_pause_exits_promptly_and_cleanly_on_sigterm(host):
    host.check_output(f"{CTR} images pull --hosts-dir /etc/containerd/certs.d {PAUSE}")
    name = f"kpy-pause-{uuid.uuid4().hex[:8]}"
    host.check_output(f"{CTR} run -d {PAUSE} {name}")
    try:
        wait_for(lambda: task_status(host, name) == "RUNNING", "the pause task to run")
        host.check_output(f"{CTR} tasks kill --signal SIGTERM {name}")
        wait_for(lambda: task_status(host, name) == "STOPPED", "the pause task to stop on SIGTERM", timeout=5)
        # ctr warns "task ... exit with non-zero exit code N" when deleting a task that did not exit 0.
        deleted = host.run(f"{CTR} tasks delete {name}")
        assert deleted.rc == 0 and "non-zero exit code" not in deleted.stderr, deleted.stderr
    finally:
        host.run(f"{CTR} tasks delete --force {name}; {CTR} containers delete {name}")
