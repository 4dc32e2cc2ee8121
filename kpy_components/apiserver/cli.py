"""`kpy-apiserver`: serve the Kubernetes API.

    kpy-apiserver --config /etc/kpy/apiserver.yaml [--secure-port N] [--bind-address IP]
    kpy-apiserver --dev DIR [--secure-port N]        # self-contained: PKI, admin kubeconfig, SQLite in DIR

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 when serving failed, 2 for bad configuration or usage
(one message naming each problem, never a traceback).
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
import sys

from kpy_components.component import collector
from kpy_components.version import VERSION

from . import config as config_module
from . import dev
from .server import APIServer, request_header_authenticator

EXIT_FAILED, EXIT_BAD_CONFIG = 1, 2
DEV_PORT = 6443


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kpy-apiserver", description="Serve the Kubernetes API over TLS.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="YAML configuration file (see kpy_components/apiserver/config.py)")
    source.add_argument("--dev", metavar="DIR", help="single process: generate PKI and an admin kubeconfig in DIR, "
                        "store in DIR/apiserver.db, listen on 127.0.0.1")
    parser.add_argument("--secure-port", type=int, help="HTTPS port (default: the config's, 6443)")
    parser.add_argument("--bind-address", help="address to listen on (overrides the config)")
    parser.add_argument("--log-level", choices=config_module.LOG_LEVELS, help="overrides the config's log_level")
    parser.add_argument("--insecure-allow-all", action="store_true",
                        help="DEVELOPMENT ONLY: authenticate, then allow every request (no RBAC, no admission)")
    parser.add_argument("--version", action="version", version=f"kpy-apiserver v{VERSION}")
    return parser


def _configure(args: argparse.Namespace) -> config_module.ServerConfig:
    if args.secure_port is not None and not 1 <= args.secure_port <= 65535:
        raise config_module.ConfigError([f"--secure-port: must be a port number (1-65535), not {args.secure_port}"],
                                        "command line")
    if args.dev:
        loaded = dev.prepare(args.dev, args.secure_port or DEV_PORT)
    else:
        loaded = config_module.load(args.config)
        problems = config_module.missing_files(loaded)
        try:
            request_header_authenticator(loaded)  # the requestheader CA file holds certificates
        except ValueError as error:
            problems.append(str(error))
        if problems:
            raise config_module.ConfigError(problems, args.config)
    overrides = {}
    if args.secure_port is not None:
        overrides["secure_port"] = args.secure_port
    if args.bind_address:
        overrides["bind_address"] = args.bind_address
    if args.log_level:
        overrides["log_level"] = args.log_level
    return dataclasses.replace(loaded, **overrides)


async def _serve(server: APIServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        configured = _configure(args)
    except config_module.ConfigError as error:
        for problem in error.problems:
            print(f"kpy-apiserver: {error.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    logging.basicConfig(level=configured.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.dev:
        print(f"kpy-apiserver: admin kubeconfig at {args.dev}/{dev.ADMIN_KUBECONFIG}", file=sys.stderr, flush=True)
    collector.tune()
    try:
        asyncio.run(_serve(APIServer(configured, allow_all=args.insecure_allow_all)))
    except OSError as error:  # the port is taken, a certificate cannot be read, ...
        print(f"kpy-apiserver: cannot serve: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
