"""The kubelet's small host-side rules: the QoS cgroup parent, imagePullSecrets matching, termination messages."""
import asyncio
import base64
import json

import pytest

from kpy_components.kubelet import cgroups, hooks, pullsecrets
from kpy_components.kubelet.model import ContainerObservation, PodObservation


def _pod(resources: dict, uid: str = "1234-abcd") -> dict:
    return {"metadata": {"uid": uid, "name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}}


@pytest.mark.parametrize("resources, systemd, cgroupfs", [
    ({}, "kubepods-besteffort-pod1234_abcd.slice", "/kubepods/besteffort/pod1234-abcd"),
    ({"requests": {"cpu": "100m"}}, "kubepods-burstable-pod1234_abcd.slice", "/kubepods/burstable/pod1234-abcd"),
    ({"limits": {"cpu": "1", "memory": "64Mi"}}, "kubepods-pod1234_abcd.slice", "/kubepods/pod1234-abcd"),
], ids=["BestEffort", "Burstable", "Guaranteed"])
def test_pods_sit_in_their_qos_class_cgroup(resources, systemd, cgroupfs):
    assert cgroups.pod_cgroup_parent(_pod(resources), "systemd") == systemd
    assert cgroups.pod_cgroup_parent(_pod(resources), "cgroupfs") == cgroupfs


def _secret(auths: dict, key: str = ".dockerconfigjson") -> dict:
    payload = {"auths": auths} if key == ".dockerconfigjson" else auths
    return {"data": {key: base64.b64encode(json.dumps(payload).encode()).decode()}}


@pytest.mark.parametrize("image, registry", [("busybox", "docker.io"), ("library/busybox:1", "docker.io"),
                                             ("10.0.0.1:5000/app", "10.0.0.1:5000"),
                                             ("registry.example/a/b@sha256:00", "registry.example"),
                                             ("localhost/app", "localhost")])
def test_an_image_names_its_registry(image, registry):
    assert pullsecrets.registry_of(image) == registry


def test_pull_credentials_match_the_registry_and_docker_hub_aliases():
    secret = _secret({"https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
                      "registry.example": {"username": "u", "password": "p"}})
    assert pullsecrets.credentials(secret, "busybox") == ("hub", "pw")
    assert pullsecrets.credentials(secret, "registry.example/app:1") == ("u", "p")
    assert pullsecrets.credentials(secret, "other.example/app") is None
    legacy = _secret({"registry.example": {"auth": base64.b64encode(b"old:pw").decode()}}, ".dockercfg")
    assert pullsecrets.credentials(legacy, "registry.example/x") == ("old", "pw")
    assert pullsecrets.credentials({"data": {".dockerconfigjson": "not base64!"}}, "busybox") is None


def test_termination_messages_come_from_the_file_or_the_log_tail(tmp_path):
    pod = {"metadata": {"uid": "u", "name": "p", "namespace": "ns"},
           "spec": {"containers": [{"name": "file", "image": "x"},
                                   {"name": "logs", "image": "x",
                                    "terminationMessagePolicy": "FallbackToLogsOnError"}]}}
    mount = hooks.termination_log_mount(tmp_path / "pod", pod["spec"]["containers"][0], 2)
    assert mount.container_path == "/dev/termination-log"
    with open(mount.host_path, "w") as handle:
        handle.write("bye" + "x" * 5000)
    logs_root = tmp_path / "logs"
    log_dir = logs_root / "ns_p_u" / "logs"
    log_dir.mkdir(parents=True)
    (log_dir / "0.log").write_text("2026-01-01T00:00:00Z stderr F boom\n2026-01-01T00:00:01Z stderr F last\n")
    observation = PodObservation("u", None, (
        ContainerObservation("id1", "file", 2, "exited", "x", "x", exit_code=0),
        ContainerObservation("id2", "logs", 0, "exited", "x", "x", exit_code=1),
        ContainerObservation("id3", "file", 3, "running", "x", "x")))
    messages = hooks.termination_messages(tmp_path / "pod", pod, observation, logs_root)
    assert messages["id1"].startswith("bye") and len(messages["id1"]) == hooks.MESSAGE_LIMIT
    assert messages["id2"] == "boom\nlast\n"
    assert "id3" not in messages


def test_a_failing_exec_hook_is_reported_in_upstreams_words():
    async def exec_sync(container_id, command, timeout):
        return 2, "no such file\n"

    async def slow(container_id, command, timeout):
        await asyncio.sleep(10)

    container = {"name": "c"}
    failure = asyncio.run(hooks.run({"exec": {"command": ["cat", "/x"]}}, exec_sync, container, "id", "", 5))
    assert failure == ('Exec lifecycle hook ([cat /x]) for Container "c" failed - error: command \'cat /x\' '
                       'exited with 2: no such file')
    assert asyncio.run(hooks.run({"exec": {"command": ["true"]}}, lambda *a: _ok(), container, "id", "", 5)) is None
    late = asyncio.run(hooks.run({"exec": {"command": ["sleep"]}}, slow, container, "id", "", 0.05))
    assert "did not finish within" in late


async def _ok():
    return 0, ""
