"""The life of a node daemon (kpy-kubelet, kpy-proxy, kpy-dns), which runs on every host without leader election:

    flags -> config file -> serve(config, stop) until SIGTERM/SIGINT sets `stop` or the work fails -> exit code

Exit codes as the control-loop components' (runner.py): 0 after SIGTERM/SIGINT, 1 when the work failed or cannot
serve (a port taken, a certificate unreadable), 2 for a bad command line, config file or kubeconfig (one line per
problem naming the field; never a traceback).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from kpy_components.client import KubeconfigError

from .config import ConfigError

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


async def until_stopped(work: Awaitable[None], stop: asyncio.Event, name: str, ended: str = "the work ended") -> int:
    """Run `work` until it ends or `stop` is set (then cancel it); EXIT_OK when stopped, EXIT_FAILED when the work
    ended by itself (it is meant to run for ever: `ended` says why it would) or failed."""
    task = asyncio.ensure_future(work)
    task.set_name(name)
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return EXIT_OK
        if task.exception() is not None:
            log.error("Failed: %s", task.exception(), exc_info=task.exception())
        else:
            log.error("Stopped: %s", ended)
        return EXIT_FAILED
    finally:
        stopping.cancel()


def main(name: str, args: argparse.Namespace, load: Callable[[], Any],
         serve: Callable[[Any, asyncio.Event], Awaitable[int]]) -> int:
    """Configure logging from args.log_level, load the config, serve it until a signal; the exit code."""
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load()
    except ConfigError as error:
        for problem in error.problems:
            print(f"{name}: {error.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except KubeconfigError as error:
        print(f"{name}: {error}", file=sys.stderr)
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
        print(f"{name}: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except (OSError, ValueError) as error:  # a port taken, a certificate unreadable, ...
        print(f"{name}: cannot serve: {error}", file=sys.stderr)
        return EXIT_FAILED
