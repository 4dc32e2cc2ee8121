"""`kpy-etcd`: render etcd's config from the model, run etcd under systemd, check health, list members, and save or
restore snapshots. Exit codes: 0 success, 1 the operation failed (unhealthy, etcd error), 2 bad config or usage."""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from kpy_components.etcd import config, snapshot
from kpy_components.etcd.client import EtcdClient
from kpy_components.etcd.errors import EtcdError
from kpy_components.etcd.model import EtcdModel, ModelError, load_model
from kpy_components.etcd.results import Health
from kpy_components.etcd.supervise import supervise
from kpy_components.version import VERSION

DEFAULT_CONFIG = "/etc/kpy/etcd/kpy-etcd.yaml"
HEALTH_TIMEOUT = 5.0  # seconds per /health request
EXIT_FAILED, EXIT_BAD_CONFIG = 1, 2


class UsageError(Exception):
    """Bad input that the model does not cover (missing files, wrong arguments): exit 2."""


def _client(model: EtcdModel, endpoints: list[str] | None = None, timeout: float = 10.0) -> EtcdClient:
    return EtcdClient(endpoints or model.client_urls, model.tls.client(), timeout=timeout)


def cmd_render_config(model: EtcdModel, args: argparse.Namespace) -> int:
    text = config.render(model)
    if args.output:
        config.write_atomically(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_run(model: EtcdModel, args: argparse.Namespace) -> int:
    """Render etcd's config, then run etcd as a child whose log is relayed minus per-request noise (supervise.py);
    etcd itself tells systemd when it is ready (Type=notify, NotifyAccess=all)."""
    problems = model.tls.missing_files()
    if not os.access(model.etcd_binary, os.X_OK):
        problems.append(f"etcd_binary: {model.etcd_binary} is not an executable file")
    if problems:
        raise ModelError(problems, args.config)
    config.write_atomically(model.etcd_config_file, config.render(model), mode=0o600)
    sys.stdout.flush()
    return supervise([str(model.etcd_binary), "--config-file", str(model.etcd_config_file)])


def _health_round(model: EtcdModel) -> list[tuple[str, Health]]:
    with _client(model, timeout=HEALTH_TIMEOUT) as client:
        return [(member.name, client.health(member.client_url)) for member in model.members]


def cmd_health(model: EtcdModel, args: argparse.Namespace) -> int:
    """One line per member; exit 0 when every member is healthy (waiting up to --wait seconds for that)."""
    deadline = time.monotonic() + args.wait
    while True:
        results = _health_round(model)
        if all(health.healthy for _, health in results) or time.monotonic() >= deadline:
            break
        time.sleep(1)
    for name, health in results:
        state = "healthy" if health.healthy else f"unhealthy: {health.reason}"
        print(f"{name} {health.endpoint} {state}")
    return 0 if all(health.healthy for _, health in results) else EXIT_FAILED


def cmd_members(model: EtcdModel, args: argparse.Namespace) -> int:
    with _client(model) as client:
        members = client.members()
    for member in members:
        learner = " (learner)" if member.is_learner else ""
        print(f"{member.id:x} {member.name or '(not started)'}{learner} peer={','.join(member.peer_urls)} "
              f"client={','.join(member.client_urls)}")
    return 0


def cmd_snapshot_save(model: EtcdModel, args: argparse.Namespace) -> int:
    """Snapshot of the local member (the one this host runs)."""
    with _client(model, [model.local.client_url], timeout=60.0) as client:
        info = snapshot.save(client, Path(args.path))
    details = f", revision {info.revision}, {info.total_keys} keys" if info.revision is not None else ""
    print(f"saved {info.path}: {info.size} bytes{details}")
    return 0


def cmd_snapshot_restore(model: EtcdModel, args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.is_file():
        raise UsageError(f"snapshot {path} is not a file")
    restored = snapshot.restore(path, model, Path(args.data_dir) if args.data_dir else None, force=args.force)
    aside = f" (the previous data dir was moved to {restored.moved_aside})" if restored.moved_aside else ""
    print(f"restored {path} into {restored.data_dir} as member {model.member}{aside}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kpy-etcd", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kpy-etcd {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable, help_text: str, parent=commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", "--model", default=DEFAULT_CONFIG,
                         help=f"the kpy-etcd config file holding the model (default: {DEFAULT_CONFIG})")
        sub.set_defaults(handler=handler)
        return sub

    render = command("render-config", cmd_render_config, "print etcd's config file rendered from the model")
    render.add_argument("--output", "-o", help="write it to this file instead of standard output")
    command("run", cmd_run, "render etcd's config, then run etcd with it (for the systemd unit)")
    health = command("health", cmd_health, "check every member's /health; exit 0 only if all are healthy")
    health.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                        help="keep checking up to this long until all members are healthy")
    command("members", cmd_members, "list the cluster's members as etcd reports them")
    snapshots = commands.add_parser("snapshot", help="save or restore a snapshot").add_subparsers(
        dest="snapshot_command", required=True, metavar="ACTION")
    save = command("save", cmd_snapshot_save, "save a verified snapshot of the local member", snapshots)
    save.add_argument("path", help="the file to write (mode 0600)")
    restore = command("restore", cmd_snapshot_restore,
                      "restore a snapshot into this member's data dir (etcd stopped)", snapshots)
    restore.add_argument("path", help="the snapshot file")
    restore.add_argument("--data-dir", help="restore here instead of the model's data_dir")
    restore.add_argument("--force", action="store_true", help="move an existing data dir aside instead of refusing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        model = load_model(args.config)
        return args.handler(model, args)
    except ModelError as error:
        print(f"kpy-etcd: invalid config {error.source}:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except UsageError as error:
        print(f"kpy-etcd: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except EtcdError as error:
        print(f"kpy-etcd: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        print(f"kpy-etcd: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
