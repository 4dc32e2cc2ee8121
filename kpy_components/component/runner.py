"""The life of a component binary (kpy-scheduler, kpy-controller-manager, ...), as the real components live it:

    flags + config file -> API client -> secure port (/healthz /readyz /metrics) -> leader election ->
    component.run(context, config) while leading -> exit

Exit codes: 0 after SIGTERM/SIGINT (the Lease is released, so a standby takes over at once), 1 when leadership is
lost or the component failed (systemd restarts it, as kubelet restarts a static pod), 2 for a bad command line or
config file (one line per problem naming the field; never a traceback).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from kpy_components import systemd
from kpy_components.client import (ClientConfig, EventRecorder, KubeconfigError, LeaderElectionConfig, LeaderElector,
                                   RESTClient, SharedInformerFactory, load_default, load_kubeconfig)
from kpy_components.version import VERSION

from . import collector
from .config import ConfigError, LeaderElectionSettings, boolean_flag
from .daemon import until_stopped
from .health import Check, component_registry
from .serving import SecureServer, ServingOptions

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2
LOG_LEVELS = ("debug", "info", "warning", "error")


class ComponentConfig(Protocol):
    """What the runner needs from every component's configuration object."""
    kubeconfig: Path | None
    leader_election: LeaderElectionSettings


@dataclass(frozen=True)
class Component:
    name: str  # the binary: "kpy-scheduler"
    default_port: int  # its secure port: 10259
    lease_name: str  # its Lease in kube-system: "kube-scheduler"
    description: str
    # (config file path or None, parsed flags) -> config; raises ConfigError naming each bad field
    load_config: Callable[[str | None, argparse.Namespace], ComponentConfig]
    run: Callable[[Context, Any], Awaitable[None]]  # the work; runs while leading, cancelled when it ends
    add_flags: Callable[[argparse.ArgumentParser], None] | None = None


@dataclass
class Context:
    """What a component's work gets: one API client, shared informers, its metrics registry and readiness checks."""
    name: str
    identity: str
    client: RESTClient
    informers: SharedInformerFactory
    metrics: CollectorRegistry
    ready_checks: dict[str, Check] = field(default_factory=dict)
    _recorders: list[EventRecorder] = field(default_factory=list)

    def recorder(self, component: str) -> EventRecorder:
        """A started event recorder reporting as `component` ("default-scheduler", "deployment-controller")."""
        recorder = EventRecorder(self.client, component, socket.gethostname())
        recorder.start()
        self._recorders.append(recorder)
        return recorder

    async def close(self) -> None:
        await self.informers.stop()
        await asyncio.gather(*(recorder.stop() for recorder in self._recorders))


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number (0-65535), not {value!r}")
    return int(value)


def parser(component: Component) -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog=component.name, description=component.description)
    result.add_argument("--config", help="configuration file (YAML)")
    result.add_argument("--kubeconfig", help="kubeconfig to reach the API server (overrides the config file's "
                        "clientConnection.kubeconfig; default: $KUBECONFIG, ~/.kube/config, in-cluster)")
    result.add_argument("--leader-elect", type=boolean_flag, nargs="?", const=True, metavar="BOOL",
                        help="run only while holding the Lease (overrides leaderElection.leaderElect; default true)")
    result.add_argument("--secure-port", type=_port, default=component.default_port,
                        help=f"HTTPS port for /healthz /readyz /metrics (default {component.default_port}; 0: any)")
    result.add_argument("--bind-address", default="0.0.0.0", help="address of the secure port (default 0.0.0.0)")
    result.add_argument("--tls-cert-file", type=Path, help="serving certificate (default: self-signed at start)")
    result.add_argument("--tls-private-key-file", type=Path, help="key of --tls-cert-file")
    result.add_argument("--client-ca-file", type=Path, help="CA of clients allowed to read /metrics (default: the "
                        "kubeconfig's cluster CA)")
    result.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    result.add_argument("--version", action="version", version=f"{component.name} v{VERSION}")
    if component.add_flags:
        component.add_flags(result)
    return result


def _client_config(args: argparse.Namespace, config: ComponentConfig) -> ClientConfig:
    path = args.kubeconfig or config.kubeconfig
    return load_kubeconfig(path) if path else load_default()


def _serving(args: argparse.Namespace, client_config: ClientConfig) -> ServingOptions:
    problems = []
    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        problems.append("--tls-cert-file and --tls-private-key-file: give both or neither")
    client_ca = client_config.ca_pem
    if args.client_ca_file:
        try:
            client_ca = args.client_ca_file.read_bytes()
        except OSError as error:
            problems.append(f"--client-ca-file: cannot read {args.client_ca_file}: {error.strerror}")
    for flag, path in (("--tls-cert-file", args.tls_cert_file), ("--tls-private-key-file", args.tls_private_key_file)):
        if path is not None and not path.is_file():
            problems.append(f"{flag}: cannot read {path}")
    if problems:
        raise ConfigError(problems, "command line")
    return ServingOptions(bind_address=args.bind_address, port=args.secure_port, cert_file=args.tls_cert_file,
                          key_file=args.tls_private_key_file, client_ca_pem=client_ca)


async def serve(component: Component, config: ComponentConfig, client_config: ClientConfig,
                serving: ServingOptions, leader_elect: bool, stop: asyncio.Event) -> int:
    identity = f"{socket.gethostname()}_{uuid.uuid4()}"
    metrics = component_registry()
    client = RESTClient(client_config, user_agent=f"{component.name}/v{VERSION}")
    context = Context(component.name, identity, client, SharedInformerFactory(client), metrics)
    serving.live_checks.setdefault("ping", _ok)
    serving.ready_checks = context.ready_checks
    context.ready_checks.setdefault("ping", _ok)
    server = SecureServer(component.name, metrics, serving)
    await server.start()
    if systemd.notify_ready():  # Type=notify units: `systemctl start` returns once the secure port serves
        log.info("Notified systemd ready=1")
    try:
        return await until_stopped(_lead(component, config, context, leader_elect), stop, f"{component.name}-main",
                                   ended="leader election lost" if leader_elect else "the component's work ended")
    finally:
        await context.close()
        await server.stop()
        await client.aclose()


async def _lead(component: Component, config: ComponentConfig, context: Context, leader_elect: bool) -> None:
    if not leader_elect:
        await component.run(context, config)
        return
    settings = config.leader_election
    elector = LeaderElector(context.client, LeaderElectionConfig(
        lease_name=settings.resource_name or component.lease_name, identity=context.identity,
        lease_namespace=settings.resource_namespace, lease_duration=settings.lease_duration,
        renew_deadline=settings.renew_deadline, retry_period=settings.retry_period),
        on_started_leading=lambda: component.run(context, config),
        on_new_leader=lambda holder: log.info("New leader elected identity=%s", holder))
    await elector.run()


async def _ok() -> str | None:
    return None


def main(component: Component, argv: list[str] | None = None) -> int:
    args = parser(component).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = component.load_config(args.config, args)
        client_config = _client_config(args, config)
        serving = _serving(args, client_config)
    except ConfigError as error:
        for problem in error.problems:
            print(f"{component.name}: {error.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except KubeconfigError as error:
        print(f"{component.name}: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    leader_elect = config.leader_election.leader_elect if args.leader_elect is None else args.leader_elect
    collector.tune()

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        return await serve(component, config, client_config, serving, leader_elect, stop)

    try:
        return asyncio.run(run())
    except OSError as error:  # the port is taken, a certificate cannot be read, ...
        print(f"{component.name}: cannot serve: {error}", file=sys.stderr)
        return EXIT_FAILED
