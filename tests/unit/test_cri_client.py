"""RuntimeClient's own logic: translating gRPC failures, turning CRI answers into observations, and grouping them by
pod. The runtime itself is tested for real in tests/lab/test_cri_runtime.py; here a small in-process gRPC server
stands in for it, answering from fixed lists, so the grouping and the races (a container gone between the list and
its status) can be set up exactly."""
import grpc
import pytest

from kpy_components.kubelet.cri import api_pb2, api_pb2_grpc
from kpy_components.kubelet.cri.client import (CRIError, CRINotFound, CRIUnavailable, RuntimeClient,
                                               container_observation)
from kpy_components.kubelet.cri.requests import IMAGE_ANNOTATION, POD_UID_LABEL

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("module_event_loop")]  # see conftest.py

S = 1_000_000_000  # nanoseconds per second



def sandbox(id_, uid, created, state=api_pb2.SANDBOX_READY, attempt=0):
    return api_pb2.PodSandbox(id=id_, metadata=api_pb2.PodSandboxMetadata(uid=uid, attempt=attempt), state=state,
                              created_at=created * S, labels={POD_UID_LABEL: uid} if uid else {})


def container(id_, uid, name, attempt, created, state=api_pb2.CONTAINER_RUNNING):
    return api_pb2.Container(id=id_, metadata=api_pb2.ContainerMetadata(name=name, attempt=attempt), state=state,
                             created_at=created * S, labels={POD_UID_LABEL: uid} if uid else {})


class Runtime(api_pb2_grpc.RuntimeServiceServicer):
    def __init__(self):
        self.sandboxes = [sandbox("s-old", "pod-a", 10, api_pb2.SANDBOX_NOTREADY), sandbox("s-new", "pod-a", 20,
                                                                                               attempt=1),
                          sandbox("s-b", "pod-b", 15), sandbox("s-foreign", "", 5)]
        self.containers = [container("c1", "pod-a", "app", 0, 11, api_pb2.CONTAINER_EXITED),
                           container("c2", "pod-a", "app", 1, 21), container("c3", "pod-a", "side", 0, 22),
                           container("c-gone", "pod-b", "app", 0, 16), container("c-foreign", "", "x", 0, 1)]
        self.filters = []

    async def ListPodSandbox(self, request, context):
        self.filters.append(dict(request.filter.label_selector))
        wanted = request.filter.label_selector
        return api_pb2.ListPodSandboxResponse(items=[
            s for s in self.sandboxes if all(s.labels.get(k) == v for k, v in wanted.items())])

    async def ListContainers(self, request, context):
        wanted = request.filter.label_selector
        return api_pb2.ListContainersResponse(containers=[
            c for c in self.containers if all(c.labels.get(k) == v for k, v in wanted.items())])

    async def PodSandboxStatus(self, request, context):
        found = next(s for s in self.sandboxes if s.id == request.pod_sandbox_id)
        return api_pb2.PodSandboxStatusResponse(status=api_pb2.PodSandboxStatus(
            id=found.id, metadata=found.metadata, state=found.state, created_at=found.created_at,
            network=api_pb2.PodSandboxNetworkStatus(ip="10.244.0.7", additional_ips=[api_pb2.PodIP(ip="fd00::7")])))

    async def ContainerStatus(self, request, context):
        if request.container_id == "c-gone":  # removed after the list
            await context.abort(grpc.StatusCode.NOT_FOUND, "an error occurred when try to find container")
        found = next(c for c in self.containers if c.id == request.container_id)
        return api_pb2.ContainerStatusResponse(status=api_pb2.ContainerStatus(
            id=found.id, metadata=found.metadata, state=found.state, created_at=found.created_at,
            started_at=found.created_at + S, exit_code=0, image=api_pb2.ImageSpec(image="docker.io/library/busybox:latest"),
            image_ref="sha256:feed", annotations={IMAGE_ANNOTATION: "busybox"}))

    async def StartContainer(self, request, context):
        await context.abort(grpc.StatusCode.UNKNOWN, "failed to start containerd task: boom")


@pytest.fixture
async def runtime(tmp_path):
    server = grpc.aio.server()
    servicer = Runtime()
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(servicer, server)
    path = tmp_path / "cri.sock"
    server.add_insecure_port(f"unix://{path}")
    await server.start()
    async with RuntimeClient(str(path), timeout=10) as client:
        yield client, servicer
    await server.stop(None)


async def test_pods_are_grouped_by_uid_with_their_newest_sandbox(runtime):
    client, _ = runtime
    pods = await client.list_pod_observations()
    assert set(pods) == {"pod-a", "pod-b"}  # objects without a pod UID label are not kpy's
    a = pods["pod-a"]
    assert (a.sandbox.id, a.sandbox.attempt, a.sandbox.ready) == ("s-new", 1, True)
    assert (a.sandbox.ip, a.sandbox.ips, a.sandbox.created_at) == ("10.244.0.7", ("10.244.0.7", "fd00::7"), 20.0)
    assert [c.id for c in a.containers] == ["c3", "c2", "c1"]  # newest first
    assert a.latest("app").id == "c2" and a.latest("nope") is None
    c2 = a.latest("app")
    assert (c2.state, c2.image, c2.image_ref, c2.created_at, c2.started_at) == ("running", "busybox", "sha256:feed",
                                                                               21.0, 22.0)
    assert pods["pod-b"].containers == ()  # its container went away between the list and its status


async def test_one_pod_is_selected_by_label(runtime):
    client, servicer = runtime
    pods = await client.list_pod_observations("pod-b")
    assert list(pods) == ["pod-b"] and servicer.filters[-1] == {POD_UID_LABEL: "pod-b"}


async def test_failures_become_cri_errors(runtime):
    client, _ = runtime
    with pytest.raises(CRINotFound) as not_found:
        await client.container_status("c-gone")
    assert (not_found.value.call, not_found.value.code) == ("ContainerStatus", "NOT_FOUND")
    with pytest.raises(CRIError) as failed:
        await client.start_container("c2")
    assert type(failed.value) is CRIError
    assert str(failed.value) == "CRI StartContainer failed: UNKNOWN: failed to start containerd task: boom"
    with pytest.raises(CRIError) as unimplemented:
        await client.version()
    assert unimplemented.value.code == "UNIMPLEMENTED"


async def test_a_missing_socket_is_unavailable(tmp_path):
    async with RuntimeClient(str(tmp_path / "absent.sock"), timeout=5) as client:
        with pytest.raises(CRIUnavailable):
            await client.version()


def test_the_image_is_the_pod_specs_when_the_runtime_does_not_echo_it():
    status = api_pb2.ContainerStatus(id="c", metadata=api_pb2.ContainerMetadata(name="app"),
                                     image=api_pb2.ImageSpec(image="docker.io/library/busybox:latest"))
    assert container_observation(status).image == "docker.io/library/busybox:latest"
    status.annotations[IMAGE_ANNOTATION] = "busybox"
    assert container_observation(status).image == "busybox"
    status.image.user_specified_image = "busybox:1.35"
    assert container_observation(status).image == "busybox:1.35"
    status.state, status.exit_code, status.reason, status.finished_at = api_pb2.CONTAINER_EXITED, 137, "OOMKilled", 5 * S
    observed = container_observation(status)
    assert (observed.state, observed.exit_code, observed.reason, observed.finished_at) == ("exited", 137, "OOMKilled",
                                                                                          5.0)
