"""kpy-kubelet: the node agent's entry point.

    config file + flags -> API client -> runtime (CRI) -> kubelet API (10250) and /healthz (10248) ->
    Node registration, the pod network, the pods -> until SIGTERM

Exit codes: 0 after SIGTERM/SIGINT (containers keep running: a restarted kubelet adopts them), 1 when it failed,
2 for a bad command line or config file (one line per problem naming the field; never a traceback).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys

from aiohttp import web
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from kpy_components import systemd
from kpy_components.client import (EventRecorder, KubeconfigError, RESTClient, SharedInformerFactory, load_default,
                                   load_kubeconfig)
from kpy_components.component.config import ConfigError
from kpy_components.version import VERSION

from . import config as kubelet_config
from . import server, streaming
from .agent import Agent
from .cri.client import RuntimeClient

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog="kpy-kubelet", description="kpy's node agent: runs the pods bound to "
                                     "this node through CRI (containerd) and serves the kubelet API")
    kubelet_config.add_flags(result)
    result.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    result.add_argument("--version", action="version", version=f"Kubernetes v{VERSION} (kpy-kubelet)")
    return result


async def serve(config: kubelet_config.KubeletConfig, stop: asyncio.Event) -> int:
    client_config = load_kubeconfig(config.kubeconfig) if config.kubeconfig else load_default()
    node_name = config.node_name or socket.gethostname().lower()
    metrics = CollectorRegistry()
    ProcessCollector(registry=metrics)
    PlatformCollector(registry=metrics)
    client = RESTClient(client_config, user_agent=f"kpy-kubelet/v{VERSION} ({node_name})")
    informers = SharedInformerFactory(client)
    recorder = EventRecorder(client, "kubelet", node_name)
    recorder.start()
    runtime = RuntimeClient(config.runtime_endpoint)
    agent = Agent(client, informers, runtime, config, node_name, recorder, metrics)
    guard = server.Guard(client, config, node_name)
    api = server.api_app(guard, agent.health_checks(), metrics,
                         lambda app: (agent.add_routes(app), streaming.add_routes(app, agent.stream_url)))
    runners = [await server.start(api, config.address, config.port, server.tls_context(config)),
               await server.start(server.healthz_app(agent.health_checks()), config.healthz_bind_address,
                                  config.healthz_port, None)]
    if systemd.notify_ready():
        log.info("Notified systemd ready=1")
    work = asyncio.create_task(agent.run(), name="kubelet")
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([work, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            return EXIT_OK
        log.error("Failed: %s", work.exception(), exc_info=work.exception())
        return EXIT_FAILED
    finally:
        stopping.cancel()
        for runner in runners:
            await runner.cleanup()
        await informers.stop()
        await recorder.stop()
        await runtime.close()
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = kubelet_config.load(args.config, args)
    except ConfigError as error:
        for problem in error.problems:
            print(f"kpy-kubelet: {error.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        return await serve(config, stop)

    try:
        return asyncio.run(run())
    except KubeconfigError as error:
        print(f"kpy-kubelet: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except (OSError, ValueError) as error:  # a port taken, a certificate unreadable, ...
        print(f"kpy-kubelet: cannot serve: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
