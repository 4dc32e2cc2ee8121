"""Liveness, readiness and startup probes as upstream's kubelet runs them (pkg/kubelet/prober, pkg/probe).

`Prober` runs one probe once: exec (through the runtime's ExecSync), httpGet, tcpSocket or grpc (grpc.health.v1
Health/Check). `ProbeWorker` is upstream's worker: one per (pod, container, probe kind), probing every periodSeconds
after initialDelaySeconds, publishing a result only once successThreshold / failureThreshold consecutive results
agree, holding off liveness and readiness until the startup probe passed, and going quiet after a liveness or
startup failure until a new container appears. `ProbeManager` owns the workers as asyncio tasks.

Contract for the agent:
- `manager.update(pod, observation)` whenever it syncs a pod (it starts the pod's workers on first sight and tells
  them the pod's phase, deletion and each container's newest instance); `manager.remove_pod(uid)` when the pod is
  gone or terminal.
- `on_change(uid)` is called when a published result changes: re-sync the pod. Then `manager.apply(uid, states,
  observation)` fills ContainerRuntimeState.ready/started/container_id for status.py, and
  `manager.restart_message(uid, name, container_id)` says whether a container failed liveness/startup and must be
  killed (the message is the Killing event's).
- `on_event(pod, Event)`: Unhealthy / ProbeWarning events to record.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from kpy_components.version import VERSION

from .cri.expansion import expand
from .model import ContainerRuntimeState, Event, PodObservation

log = logging.getLogger(__name__)

SUCCESS, FAILURE, UNKNOWN, WARNING = "success", "failure", "unknown", "warning"
KINDS = {"liveness": "livenessProbe", "readiness": "readinessProbe", "startup": "startupProbe"}
INITIAL_RESULT = {"liveness": SUCCESS, "readiness": FAILURE, "startup": UNKNOWN}
MAX_BODY = 10 * 1024  # bytes of a response body kept (upstream's maxRespBodyLength)
MAX_REDIRECTS = 10
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
SERVING_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}

ExecSync = Callable[[str, list[str], float], Awaitable[tuple[int, str]]]


def user_agent() -> str:
    major, minor = VERSION.split(".")[:2]
    return f"kube-probe/{major}.{minor}"


@dataclass(frozen=True)
class Outcome:
    result: str  # SUCCESS | FAILURE | WARNING (success with a warning) | UNKNOWN (the probe itself errored)
    output: str


class ProbeError(Exception):
    """The probe could not be run at all (a named port the container lacks, an exec that could not start)."""


def probe_spec(container: dict, kind: str) -> dict | None:
    return container.get(KINDS[kind])


def resolve_port(port, container: dict) -> int:
    """ResolveContainerPort: a number, a container port's name, or a number written as text."""
    if isinstance(port, str):
        named = next((p.get("containerPort") for p in container.get("ports") or [] if p.get("name") == port), None)
        if named is not None:
            port = named
        elif port.isdigit():
            port = int(port)
        else:
            raise ProbeError(f"port {port} not found")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ProbeError(f"invalid port number: {port}")
    return port


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _go_seconds(seconds: float) -> str:
    return f"{seconds:g}s"


_DIAL_ERRORS = {errno.ECONNREFUSED: "connect: connection refused", errno.EHOSTUNREACH: "connect: no route to host",
                errno.ENETUNREACH: "connect: network is unreachable", errno.ETIMEDOUT: "i/o timeout"}


def _dial_error(addr: str, error: BaseException) -> str:
    """Go's net error text for a failed dial, which probe outputs quote (the OS error found down the cause chain:
    httpx wraps it twice)."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException)):
            return f"dial tcp {addr}: i/o timeout"
        if isinstance(cause, OSError) and cause.errno in _DIAL_ERRORS:
            return f"dial tcp {addr}: {_DIAL_ERRORS[cause.errno]}"
        cause = cause.__cause__ or cause.__context__
    return f"dial tcp {addr}: {error}"


def _grpc_code(code) -> str:
    return "Canceled" if code.name == "CANCELLED" else code.name.title().replace("_", "")


class Prober:
    """Runs probes. `exec_sync(container_id, command, timeout)` runs a command in the container through CRI
    ExecSync and returns (exit code, combined output); it raises TimeoutError when the runtime reports the
    deadline passed."""

    def __init__(self, exec_sync: ExecSync):
        self.exec_sync = exec_sync
        self._http: httpx.AsyncClient | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def run(self, probe: dict, pod: dict, container: dict, container_id: str, pod_ip: str) -> Outcome:
        timeout = float(probe.get("timeoutSeconds") or 1)
        try:
            if "exec" in probe:
                return await self.exec(probe["exec"], container, container_id, timeout)
            if "httpGet" in probe:
                return await self.http(probe["httpGet"], container, pod_ip, timeout)
            if "tcpSocket" in probe:
                action = probe["tcpSocket"]
                return await self.tcp(action.get("host") or pod_ip, resolve_port(action.get("port"), container),
                                      timeout)
            if "grpc" in probe:
                action = probe["grpc"]
                return await self.grpc(pod_ip, resolve_port(action.get("port"), container),
                                       action.get("service") or "", timeout)
        except ProbeError as error:
            return Outcome(UNKNOWN, str(error))
        return Outcome(UNKNOWN, "missing probe handler")

    async def exec(self, action: dict, container: dict, container_id: str, timeout: float) -> Outcome:
        static = {var.get("name", ""): var.get("value") or "" for var in container.get("env") or []}
        command = [expand(str(part), static) for part in action.get("command") or []]
        try:
            code, output = await self.exec_sync(container_id, command, timeout)
        except (TimeoutError, asyncio.TimeoutError):
            return Outcome(FAILURE, f'command "{" ".join(command)}" timed out')
        except Exception as error:  # the runtime could not run it: no verdict on the container
            raise ProbeError(str(error)) from error
        return Outcome(SUCCESS if code == 0 else FAILURE, output)

    def _client(self) -> httpx.AsyncClient:
        # No keep-alive (a probe must see a fresh connection, as upstream's DisableKeepAlives); TLS not verified.
        if self._http is None:
            self._http = httpx.AsyncClient(verify=False, trust_env=False,
                                           limits=httpx.Limits(max_keepalive_connections=0))
        return self._http

    async def http(self, action: dict, container: dict, pod_ip: str, timeout: float) -> Outcome:
        scheme = (action.get("scheme") or "HTTP").lower()
        host, port = action.get("host") or pod_ip, resolve_port(action.get("port"), container)
        path = action.get("path") or ""
        url = f"{scheme}://{_join(host, port)}{path if not path or path.startswith('/') else '/' + path}"
        client = self._client()
        headers = httpx.Headers([(h.get("name", ""), h.get("value", "")) for h in action.get("httpHeaders") or []])
        request = client.build_request("GET", url, headers=headers)
        if "user-agent" not in headers:
            request.headers["User-Agent"] = user_agent()
        if "accept" not in headers:
            request.headers["Accept"] = "*/*"
        elif not headers.get("accept"):
            del request.headers["Accept"]  # set but empty: none is sent, as upstream
        request.headers["Connection"] = "close"
        try:
            async with asyncio.timeout(timeout):
                response, body = await self._get(request)
        except (TimeoutError, asyncio.TimeoutError):
            return Outcome(FAILURE, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while '
                                    "awaiting headers)")
        except httpx.TooManyRedirects:
            return Outcome(FAILURE, f'Get "{url}": stopped after {MAX_REDIRECTS} redirects')
        except (httpx.HTTPError, OSError) as error:
            return Outcome(FAILURE, f'Get "{url}": {_dial_error(_join(host, port), error)}')
        if 200 <= response.status_code < 400:
            if response.status_code >= 300:  # a redirect to another host is not followed
                return Outcome(WARNING, f"Probe terminated redirects, Response body: {body}")
            return Outcome(SUCCESS, body)
        return Outcome(FAILURE, f"HTTP probe failed with statuscode: {response.status_code}")

    async def _get(self, request: httpx.Request) -> tuple[httpx.Response, str]:
        """GET following redirects to the same host only (upstream's followNonLocalRedirects=false)."""
        client = self._client()
        for _ in range(MAX_REDIRECTS + 1):
            response = await client.send(request, stream=True, follow_redirects=False)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) >= MAX_BODY:
                        break
            finally:
                await response.aclose()
            following = response.next_request
            if following is None or following.url.host != request.url.host:
                return response, bytes(body[:MAX_BODY]).decode("utf-8", errors="replace")
            request = following
        raise httpx.TooManyRedirects("stopped", request=request)

    async def tcp(self, host: str, port: int, timeout: float) -> Outcome:
        addr = _join(host, port)
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError, asyncio.TimeoutError) as error:
            return Outcome(FAILURE, _dial_error(addr, error))
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # the peer closing first is fine: the connection was made
        return Outcome(SUCCESS, "")

    async def grpc(self, host: str, port: int, service: str, timeout: float) -> Outcome:
        import grpc  # imported when a pod uses a grpc probe

        addr = _join(host, port)
        request = service.encode()
        request = (b"\x0a" + _varint(len(request)) + request) if request else b""
        deadline = time.monotonic() + timeout
        async with grpc.aio.insecure_channel(addr, options=[("grpc.primary_user_agent", user_agent())]) as channel:
            try:
                await asyncio.wait_for(channel.channel_ready(), timeout)
            except (TimeoutError, asyncio.TimeoutError):
                return Outcome(FAILURE, f'timeout: failed to connect service "{addr}" within {_go_seconds(timeout)}:'
                                        " context deadline exceeded")
            check = channel.unary_unary(HEALTH_CHECK)
            try:
                answer = await check(request, timeout=max(deadline - time.monotonic(), 0.001))
            except grpc.aio.AioRpcError as error:
                code = error.code()
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    return Outcome(FAILURE, "error: this server does not implement the grpc health protocol "
                                            f"(grpc.health.v1.Health): {error.details()}")
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return Outcome(FAILURE, f"timeout: health rpc did not complete within {_go_seconds(timeout)}")
                return Outcome(FAILURE, "error: health rpc probe failed: "
                                        f"rpc error: code = {_grpc_code(code)} desc = {error.details()}")
        status = _serving_status(answer)
        if status != 1:
            return Outcome(FAILURE, f'service unhealthy (responded with "{SERVING_STATUS.get(status, status)}")')
        return Outcome(SUCCESS, "service is healthy")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _serving_status(message: bytes) -> int:
    """HealthCheckResponse.status (field 1, varint); other fields skipped; absent → 0 (UNKNOWN)."""
    pos, status = 0, 0
    while pos < len(message):
        key, pos = _read_varint(message, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _read_varint(message, pos)
            if key >> 3 == 1:
                status = value
        elif wire == 2:
            size, pos = _read_varint(message, pos)
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            break
    return status


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
    return result, pos


def restart_message(kind: str, name: str) -> str:
    return f"Container {name} failed {kind} probe, will be restarted"


@dataclass(frozen=True)
class Target:
    """A container's newest instance as a worker sees it at a tick."""
    container_id: str
    state: str  # running | exited | created | unknown
    started_at: float
    pod_ip: str


class ProbeWorker:
    """One probe of one container (upstream's worker.doProbe). `tick()` is one probe period; `run()` loops."""

    def __init__(self, manager: ProbeManager, uid: str, container: dict, kind: str):
        self.manager, self.uid, self.container, self.kind = manager, uid, container, kind
        self.spec = probe_spec(container, kind) or {}
        self.container_id = ""
        self.on_hold = False
        self.last_result, self.run_length = UNKNOWN, 0
        self.trigger = asyncio.Event()

    @property
    def name(self) -> str:
        return self.container["name"]

    def _threshold(self, key: str) -> int:
        return int(self.spec.get(key) or 1) if key == "successThreshold" else int(self.spec.get(key) or 3)

    async def run(self) -> None:
        period = float(self.spec.get("periodSeconds") or 10)
        while await self.tick():
            sleeper = asyncio.ensure_future(self.manager.sleep(period))
            triggered = asyncio.ensure_future(self.trigger.wait())
            try:
                await asyncio.wait({sleeper, triggered}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                triggered.cancel()
            self.trigger.clear()

    async def tick(self) -> bool:
        """One doProbe; False when the worker should stop."""
        manager = self.manager
        pod = manager.pods.get(self.uid)
        if pod is None or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return False
        target = manager.targets.get((self.uid, self.name))
        if target is None or not target.container_id:
            return True  # not created yet: wait
        if target.container_id != self.container_id:
            if self.container_id:
                manager.results.pop((self.container_id, self.kind), None)
            self.container_id = target.container_id
            manager.publish(self, INITIAL_RESULT[self.kind])
            self.on_hold = False  # a new container: probing resumes
        if self.on_hold:
            return True
        if target.state != "running":
            manager.publish(self, FAILURE)
            return target.state != "exited" or (pod.get("spec") or {}).get("restartPolicy") != "Never"
        if (pod.get("metadata") or {}).get("deletionTimestamp") and self.kind in ("liveness", "startup"):
            manager.publish(self, SUCCESS)  # a quiet shutdown
            return False
        if manager.clock() - target.started_at < int(self.spec.get("initialDelaySeconds") or 0):
            return True
        started = manager.is_started(self.uid, self.container, target.container_id)
        if started == (self.kind == "startup"):
            return True  # startup probes stop once started; the others wait for it
        result = await self._probe(pod, target)
        if result is None:
            return True
        if result == self.last_result:
            self.run_length += 1
        else:
            self.last_result, self.run_length = result, 1
        threshold = self._threshold("failureThreshold" if result == FAILURE else "successThreshold")
        if self.run_length < threshold:
            return True
        manager.publish(self, result)
        if result == FAILURE and self.kind in ("liveness", "startup"):
            self.on_hold, self.run_length = True, 0  # until the container is replaced
        return True

    async def _probe(self, pod: dict, target: Target) -> str | None:
        """prober.probe: the result to count, or None when the probe errored (thrown away, as upstream)."""
        label = self.kind.capitalize()
        field_path = f"spec.{'initContainers' if self._is_init(pod) else 'containers'}{{{self.name}}}"
        try:
            outcome = await self.manager.prober.run(self.spec, pod, self.container, target.container_id,
                                                    target.pod_ip)
        except Exception as error:  # a bug or the runtime failing: no verdict on the container
            log.warning("Probe errored pod=%s container=%s probe=%s: %s", self.uid, self.name, self.kind, error)
            outcome = Outcome(UNKNOWN, str(error))
        if outcome.result == UNKNOWN:
            self.manager.emit(pod, Event("Warning", "Unhealthy", f"{label} probe errored and resulted in unknown "
                                                                 f"state: {outcome.output}", field_path))
            return None
        if outcome.result == WARNING:
            self.manager.emit(pod, Event("Warning", "ProbeWarning", f"{label} probe warning: {outcome.output}",
                                         field_path))
            return SUCCESS
        if outcome.result == FAILURE:
            self.manager.emit(pod, Event("Warning", "Unhealthy", f"{label} probe failed: {outcome.output}",
                                         field_path))
        return outcome.result

    def _is_init(self, pod: dict) -> bool:
        return any(c.get("name") == self.name for c in (pod.get("spec") or {}).get("initContainers") or [])


class ProbeManager:
    def __init__(self, prober: Prober, *, on_change: Callable[[str], None],
                 on_event: Callable[[dict, Event], None], clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.prober, self.on_change, self.on_event = prober, on_change, on_event
        self.clock, self.sleep = clock, sleep
        self.pods: dict[str, dict] = {}
        self.targets: dict[tuple[str, str], Target] = {}
        self.results: dict[tuple[str, str], str] = {}  # (container ID, kind) → published result
        self.workers: dict[tuple[str, str, str], ProbeWorker] = {}
        self._tasks: dict[tuple[str, str, str], asyncio.Task] = {}

    # --- fed by the agent ----------------------------------------------------------------------------------
    def update(self, pod: dict, observation: PodObservation) -> None:
        uid = pod["metadata"]["uid"]
        self.pods[uid] = pod
        sandbox = observation.sandbox
        # a hostNetwork sandbox has no address of its own: its pod IP (status.podIP) is the node's
        pod_ip = (sandbox.ip if sandbox else "") or (pod.get("status") or {}).get("podIP", "")
        spec = pod.get("spec") or {}
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            latest = observation.latest(container["name"])
            if latest is not None:
                self.targets[(uid, container["name"])] = Target(latest.id, latest.state, latest.started_at, pod_ip)
            for kind in KINDS:
                if probe_spec(container, kind) and (uid, container["name"], kind) not in self.workers:
                    self._start(ProbeWorker(self, uid, container, kind))

    def _start(self, worker: ProbeWorker) -> None:
        key = (worker.uid, worker.name, worker.kind)
        self.workers[key] = worker
        self._tasks[key] = asyncio.create_task(worker.run(), name=f"probe {key}")
        self._tasks[key].add_done_callback(lambda task: self._done(key, task))

    def _done(self, key: tuple, task: asyncio.Task) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled() and task.exception() is not None:
            log.error("Probe worker crashed worker=%s", key, exc_info=task.exception())

    def remove_pod(self, uid: str) -> None:
        for key in [k for k in self.workers if k[0] == uid]:
            worker = self.workers.pop(key)
            task = self._tasks.pop(key, None)
            if task is not None:
                task.cancel()
            self.results.pop((worker.container_id, worker.kind), None)
        self.pods.pop(uid, None)
        for key in [k for k in self.targets if k[0] == uid]:
            del self.targets[key]

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.prober.close()

    # --- published by workers ------------------------------------------------------------------------------
    def publish(self, worker: ProbeWorker, result: str) -> None:
        key = (worker.container_id, worker.kind)
        if self.results.get(key) == result:
            return
        self.results[key] = result
        if worker.kind == "startup" and result == SUCCESS:
            readiness = self.workers.get((worker.uid, worker.name, "readiness"))
            if readiness is not None:
                readiness.trigger.set()  # judge readiness now rather than a period later
        self.on_change(worker.uid)

    def emit(self, pod: dict, event: Event) -> None:
        self.on_event(pod, event)

    # --- read by the agent ---------------------------------------------------------------------------------
    def is_started(self, uid: str, container: dict, container_id: str) -> bool:
        """isContainerStarted for a running container: its startup probe passed, or it has none."""
        if (uid, container["name"], "startup") not in self.workers:
            return True
        return self.results.get((container_id, "startup")) == SUCCESS

    def apply(self, uid: str, states: dict, observation: PodObservation) -> None:
        """Fill ContainerRuntimeState.ready/started/container_id for every container that has an instance."""
        pod = self.pods.get(uid) or {}
        spec = pod.get("spec") or {}
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            latest = observation.latest(container["name"])
            if latest is None:
                continue
            state = states.setdefault(container["name"], ContainerRuntimeState())
            state.container_id = latest.id
            state.started = self.is_started(uid, container, latest.id)
            state.ready = self.results.get((latest.id, "readiness")) == SUCCESS

    def restart_message(self, uid: str, name: str, container_id: str) -> str | None:
        """The Killing message when this running container failed its liveness or startup probe, else None (ask
        only about a running container: workers also publish a failure for one that exited)."""
        for kind in ("liveness", "startup"):
            if self.results.get((container_id, kind)) == FAILURE and (uid, name, kind) in self.workers:
                return restart_message(kind, name)
        return None
