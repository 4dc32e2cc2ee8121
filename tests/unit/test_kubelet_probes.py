"""Probes: each handler against a real loopback server, and the worker's state machine on an injected clock."""
import asyncio

import grpc
import pytest
from aiohttp import web

from kpy_components.kubelet.model import (ContainerObservation, ContainerRuntimeState, PodObservation,
                                          SandboxObservation)
from kpy_components.kubelet.probes import (FAILURE, SUCCESS, UNKNOWN, WARNING, Outcome, Prober, ProbeManager,
                                           resolve_port, user_agent)

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("module_event_loop")]  # see conftest.py


# --- handlers ------------------------------------------------------------------------------------------------------

@pytest.fixture
async def http_server():
    seen = []
    never = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        path = request.path
        if path == "/ok":
            return web.Response(text="fine")
        if path == "/fail":
            return web.Response(status=500, text="secret details")
        if path == "/same-host":
            raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/ok")
        if path == "/other-host":
            raise web.HTTPFound(f"http://localhost:{request.url.port}/ok")
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/slow":
            await never.wait()
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield port, seen
    never.set()
    await runner.cleanup()


@pytest.fixture
async def prober():
    async def no_exec(*_):
        raise AssertionError("not an exec probe")

    p = Prober(no_exec)
    yield p
    await p.close()


CONTAINER = {"name": "app", "ports": [{"name": "http", "containerPort": 8080}]}


async def http_probe(prober, port, path, timeout=1, **action):
    probe = {"httpGet": {"path": path, "port": port, **action}, "timeoutSeconds": timeout}
    return await prober.run(probe, {}, CONTAINER, "c1", "127.0.0.1")


async def test_http_success_failure_and_headers(http_server, prober):
    port, seen = http_server
    assert await http_probe(prober, port, "/ok") == Outcome(SUCCESS, "fine")
    assert seen[-1].headers["User-Agent"] == user_agent() and seen[-1].headers["Accept"] == "*/*"
    assert await http_probe(prober, port, "/fail") == Outcome(FAILURE, "HTTP probe failed with statuscode: 500")
    await http_probe(prober, port, "/ok", httpHeaders=[{"name": "X-Probe", "value": "1"},
                                                       {"name": "Host", "value": "example.test"},
                                                       {"name": "Accept", "value": ""}])
    assert seen[-1].headers["X-Probe"] == "1" and seen[-1].headers["Host"] == "example.test"
    assert "Accept" not in seen[-1].headers  # an empty Accept removes it, as upstream


async def test_http_redirects(http_server, prober):
    port, _ = http_server
    assert await http_probe(prober, port, "/same-host") == Outcome(SUCCESS, "fine")
    other = await http_probe(prober, port, "/other-host")
    assert other.result == WARNING and other.output.startswith("Probe terminated redirects, Response body:")
    loop = await http_probe(prober, port, "/loop")
    assert loop == Outcome(FAILURE, f'Get "http://127.0.0.1:{port}/loop": stopped after 10 redirects')


async def test_http_timeout_and_refused(http_server, prober):
    port, _ = http_server
    slow = await http_probe(prober, port, "/slow", timeout=0.1)
    assert slow == Outcome(FAILURE, f'Get "http://127.0.0.1:{port}/slow": context deadline exceeded '
                                    "(Client.Timeout exceeded while awaiting headers)")
    closed = await free_port()
    refused = await http_probe(prober, closed, "/ok")
    assert refused == Outcome(FAILURE, f'Get "http://127.0.0.1:{closed}/ok": dial tcp 127.0.0.1:{closed}: '
                                       "connect: connection refused")


async def test_named_ports_and_bad_ports():
    assert resolve_port("http", CONTAINER) == 8080
    assert resolve_port("9090", CONTAINER) == 9090
    assert resolve_port(80, CONTAINER) == 80
    p = Prober(None)
    outcome = await p.run({"tcpSocket": {"port": "metrics"}}, {}, CONTAINER, "c1", "127.0.0.1")
    assert outcome == Outcome(UNKNOWN, "port metrics not found")
    assert (await p.run({"tcpSocket": {"port": 70000}}, {}, CONTAINER, "c1", "127.0.0.1")).result == UNKNOWN


async def free_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


async def test_tcp(prober):
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert await prober.run({"tcpSocket": {"port": port}}, {}, CONTAINER, "c1", "127.0.0.1") == \
            Outcome(SUCCESS, "")
    finally:
        server.close()
        await server.wait_closed()
    assert await prober.run({"tcpSocket": {"port": port}}, {}, CONTAINER, "c1", "127.0.0.1") == \
        Outcome(FAILURE, f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_exec_results_timeout_and_static_env_expansion():
    calls = []

    async def exec_sync(container_id, command, timeout):
        calls.append((container_id, command, timeout))
        if command[-1] == "hang":
            raise TimeoutError
        if command[-1] == "broken":
            raise RuntimeError("container not found")
        return (0 if command[-1] == "ok" else 3), "out\n"

    p = Prober(exec_sync)
    container = {"name": "app", "env": [{"name": "WHAT", "value": "ok"},
                                        {"name": "FROM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}
    assert await p.run({"exec": {"command": ["check", "$(WHAT)"]}, "timeoutSeconds": 5}, {}, container, "c9", "") \
        == Outcome(SUCCESS, "out\n")
    assert calls[-1] == ("c9", ["check", "ok"], 5.0)
    assert await p.run({"exec": {"command": ["check", "no"]}}, {}, container, "c9", "") == Outcome(FAILURE, "out\n")
    assert calls[-1][2] == 1.0  # timeoutSeconds defaults to 1
    assert await p.run({"exec": {"command": ["sh", "-c", "hang"]}}, {}, container, "c9", "") == \
        Outcome(FAILURE, 'command "sh -c hang" timed out')
    assert (await p.run({"exec": {"command": ["broken"]}}, {}, container, "c9", "")).result == UNKNOWN
    await p.run({"exec": {"command": ["check", "$(FROM)"]}}, {}, container, "c9", "")
    assert calls[-1][1] == ["check", ""]  # only static values expand (valueFrom ones are empty), as upstream


@pytest.fixture
async def grpc_server():
    statuses = {"": 1, "db": 2}
    requests = []

    async def check(request: bytes, context) -> bytes:
        requests.append(request)
        service = request[2:].decode() if request else ""
        if service not in statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
        return b"\x08" + bytes([statuses[service]])

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port, requests
    await server.stop(None)


async def test_grpc_health_check(grpc_server, prober):
    port, requests = grpc_server

    async def run(**action):
        return await prober.run({"grpc": {"port": port, **action}}, {}, CONTAINER, "c1", "127.0.0.1")

    assert await run() == Outcome(SUCCESS, "service is healthy")
    assert requests[-1] == b""
    assert await run(service="db") == Outcome(FAILURE, 'service unhealthy (responded with "NOT_SERVING")')
    assert requests[-1] == b"\x0a\x02db"
    assert await run(service="nope") == Outcome(
        FAILURE, "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service")


async def test_grpc_unimplemented_and_unreachable(prober):
    server = grpc.aio.server()
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        outcome = await prober.run({"grpc": {"port": port}}, {}, CONTAINER, "c1", "127.0.0.1")
    finally:
        await server.stop(None)
    assert outcome.result == FAILURE and outcome.output.startswith(
        "error: this server does not implement the grpc health protocol (grpc.health.v1.Health)")
    closed = await free_port()
    outcome = await prober.run({"grpc": {"port": closed}, "timeoutSeconds": 0.2}, {}, CONTAINER, "c1", "127.0.0.1")
    assert outcome == Outcome(FAILURE, f'timeout: failed to connect service "127.0.0.1:{closed}" within 0.2s: '
                                       "context deadline exceeded")


# --- workers -------------------------------------------------------------------------------------------------------

class ScriptedProber:
    """Stands in for Prober in worker tests: answers from a script per probe kind."""

    def __init__(self):
        self.script: dict[str, list[Outcome]] = {}
        self.calls = []

    async def run(self, probe, pod, container, container_id, pod_ip):
        kind = probe["kind"]
        self.calls.append((kind, container_id, pod_ip))
        return self.script[kind].pop(0)

    async def close(self):
        pass


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def probed_pod(**probes) -> dict:
    container = {"name": "app"}
    for kind, spec in probes.items():
        container[f"{kind}Probe"] = {"kind": kind, **spec}
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"restartPolicy": "Always", "containers": [container]}, "status": {"phase": "Running"}}


def observed(cid="c1", state="running", started=1000.0) -> PodObservation:
    return PodObservation(uid="u1", sandbox=SandboxObservation(id="s", attempt=0, ready=True, ip="10.200.0.9"),
                          containers=(ContainerObservation(id=cid, name="app", attempt=0, state=state, image="",
                                                           image_ref="", started_at=started),))


@pytest.fixture
async def harness():
    clock, prober, changes, events = Clock(), ScriptedProber(), [], []
    manager = ProbeManager(prober, on_change=changes.append, on_event=lambda pod, e: events.append(e), clock=clock)
    manager._start = lambda worker: manager.workers.__setitem__((worker.uid, worker.name, worker.kind), worker)
    yield manager, clock, prober, changes, events
    await manager.close()


async def test_liveness_failure_threshold_event_wording_and_hold(harness):
    manager, clock, prober, changes, events = harness
    pod = probed_pod(liveness={"failureThreshold": 3, "initialDelaySeconds": 5})
    manager.update(pod, observed())
    worker = manager.workers[("u1", "app", "liveness")]
    prober.script["liveness"] = [Outcome(FAILURE, "HTTP probe failed with statuscode: 500")] * 3
    assert await worker.tick() and prober.calls == []  # within initialDelaySeconds
    clock.now += 5
    for _ in range(2):
        assert await worker.tick()
    assert manager.restart_message("u1", "app", "c1") is None  # two failures: below the threshold
    assert await worker.tick()
    assert manager.restart_message("u1", "app", "c1") == "Container app failed liveness probe, will be restarted"
    assert changes == ["u1", "u1"]  # the initial Success, then Failure
    assert events[0].message == "Liveness probe failed: HTTP probe failed with statuscode: 500"
    assert (events[0].type, events[0].reason, events[0].field_path) == ("Warning", "Unhealthy",
                                                                         "spec.containers{app}")
    assert await worker.tick() and len(prober.calls) == 3  # on hold: no more probing of this container
    manager.update(pod, observed(cid="c2", started=clock.now))
    prober.script["liveness"] = [Outcome(SUCCESS, "")]
    clock.now += 5
    assert await worker.tick()
    assert prober.calls[-1] == ("liveness", "c2", "10.200.0.9")
    assert manager.restart_message("u1", "app", "c2") is None


async def test_readiness_success_threshold_and_errors_thrown_away(harness):
    manager, clock, prober, changes, events = harness
    pod = probed_pod(readiness={"successThreshold": 2})
    manager.update(pod, observed())
    worker = manager.workers[("u1", "app", "readiness")]
    prober.script["readiness"] = [Outcome(SUCCESS, ""), Outcome(UNKNOWN, "port x not found"),
                                  Outcome(SUCCESS, ""), Outcome(FAILURE, "boom")]
    states = {}
    await worker.tick()
    manager.apply("u1", states, observed())
    assert states["app"].ready is False  # one success of two
    await worker.tick()  # errored: thrown away, with an event
    assert events[-1].message == "Readiness probe errored and resulted in unknown state: port x not found"
    await worker.tick()
    manager.apply("u1", states, observed())
    assert states["app"].ready is True and states["app"].container_id == "c1"
    await worker.tick()  # failureThreshold defaults to 3: still ready
    manager.apply("u1", states, observed())
    assert states["app"].ready is True
    assert events[-1].message == "Readiness probe failed: boom"


async def test_startup_gates_liveness_and_readiness(harness):
    manager, clock, prober, changes, events = harness
    pod = probed_pod(startup={"failureThreshold": 2}, liveness={}, readiness={})
    manager.update(pod, observed())
    startup, liveness, readiness = (manager.workers[("u1", "app", k)] for k in ("startup", "liveness", "readiness"))
    prober.script.update(startup=[Outcome(FAILURE, "no"), Outcome(SUCCESS, "")], liveness=[Outcome(SUCCESS, "")],
                         readiness=[Outcome(SUCCESS, "")])
    await liveness.tick()
    await readiness.tick()
    assert prober.calls == []  # not started yet
    states = {"app": ContainerRuntimeState()}
    manager.apply("u1", states, observed())
    assert states["app"].started is False
    await startup.tick()
    await startup.tick()
    assert readiness.trigger.is_set()  # startup passed: readiness runs without waiting a period
    manager.apply("u1", states, observed())
    assert states["app"].started is True
    await startup.tick()
    assert [c[0] for c in prober.calls] == ["startup", "startup"]  # no more startup probing once started
    await liveness.tick()
    await readiness.tick()
    manager.apply("u1", states, observed())
    assert states["app"].ready is True


async def test_startup_failure_restarts(harness):
    manager, clock, prober, changes, events = harness
    manager.update(probed_pod(startup={"failureThreshold": 1}), observed())
    prober.script["startup"] = [Outcome(FAILURE, "not yet")]
    await manager.workers[("u1", "app", "startup")].tick()
    assert manager.restart_message("u1", "app", "c1") == "Container app failed startup probe, will be restarted"
    assert events[-1].message == "Startup probe failed: not yet"


async def test_workers_stop_for_terminal_pods_deletion_and_exited_never_containers(harness):
    manager, clock, prober, changes, events = harness
    pod = probed_pod(liveness={}, readiness={})
    manager.update(pod, observed())
    liveness, readiness = manager.workers[("u1", "app", "liveness")], manager.workers[("u1", "app", "readiness")]
    deleting = {**pod, "metadata": {**pod["metadata"], "deletionTimestamp": "2024-01-01T00:00:00Z"}}
    manager.update(deleting, observed())
    assert await liveness.tick() is False  # quiet shutdown: Success, stop
    assert manager.restart_message("u1", "app", "c1") is None
    prober.script["readiness"] = [Outcome(SUCCESS, "")]
    assert await readiness.tick() is True  # readiness keeps probing while the pod terminates
    never = {**pod, "spec": {**pod["spec"], "restartPolicy": "Never"}}
    manager.update(never, observed(state="exited"))
    assert await readiness.tick() is False
    manager.update({**pod, "status": {"phase": "Succeeded"}}, observed())
    assert await readiness.tick() is False


async def test_run_loops_on_the_injected_sleep_and_remove_pod_stops_it():
    clock, prober, changes = Clock(), ScriptedProber(), []
    periods = []

    async def sleep(seconds):
        periods.append(seconds)
        clock.now += seconds
        if len(periods) == 3:
            manager.remove_pod("u1")
            await asyncio.Event().wait()  # cancelled by remove_pod
        await asyncio.sleep(0)

    manager = ProbeManager(prober, on_change=changes.append, on_event=lambda pod, e: None, clock=clock, sleep=sleep)
    prober.script["readiness"] = [Outcome(SUCCESS, "")] * 5
    manager.update(probed_pod(readiness={"periodSeconds": 7}), observed())
    task = manager._tasks[("u1", "app", "readiness")]
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert periods == [7, 7, 7] and len(prober.calls) == 3
    assert manager.workers == {} and manager.results == {}
    await manager.close()


async def test_host_network_pods_are_probed_on_their_status_address(harness):
    manager, clock, prober, changes, events = harness
    pod = probed_pod(readiness={})
    pod["spec"]["hostNetwork"] = True
    pod["status"]["podIP"] = "10.213.0.21"
    observation = PodObservation(uid="u1", sandbox=SandboxObservation(id="s", attempt=0, ready=True),
                                 containers=observed().containers)
    manager.update(pod, observation)
    prober.script["readiness"] = [Outcome(SUCCESS, "")]
    await manager.workers[("u1", "app", "readiness")].tick()
    assert prober.calls == [("readiness", "c1", "10.213.0.21")]
