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
import socket
import sys


from kpy_components import systemd
from kpy_components.client import EventRecorder, RESTClient, SharedInformerFactory, load_default, load_kubeconfig
from kpy_components.component import daemon
from kpy_components.component.health import component_registry
from kpy_components.version import VERSION

from . import config as kubelet_config
from . import server, streaming
from .agent import Agent
from .cri.client import RuntimeClient

log = logging.getLogger(__name__)


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
    metrics = component_registry()
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
    try:
        return await daemon.until_stopped(agent.run(), stop, "kubelet")
    finally:
        for runner in runners:
            await runner.cleanup()
        await informers.stop()
        await recorder.stop()
        await agent.close()
        await runtime.close()
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return daemon.main("kpy-kubelet", args, lambda: kubelet_config.load(args.config, args), serve)


if __name__ == "__main__":
    sys.exit(main())
