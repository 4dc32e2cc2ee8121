"""`kpy-lab up|down|status|ssh NAME`: local lab hosts for kpy, as systemd-nspawn machines on a bridge of our own."""
import argparse
import json
import os
import sys
from pathlib import Path

from kpy_components.lab import lab
from kpy_components.lab.run import LabError
from kpy_components.lab.spec import LabSpec
from kpy_components.version import VERSION

DEFAULT_INVENTORY = Path("inventory/lab/hosts.yml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kpy-lab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kpy-lab {VERSION}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lab", default="kpy", help="lab name (default: kpy); host names start with it")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", parents=[common], help="boot the lab's hosts and write their inventory")
    up.add_argument("--control-plane", type=int, default=3, help="control-plane hosts, which also run etcd")
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--subnet-index", type=int, default=0, help="N of the lab's network 10.213.N.0/24")
    up.add_argument("--inventory", type=Path, default=DEFAULT_INVENTORY,
                    help=f"where to write the Ansible inventory (default: {DEFAULT_INVENTORY})")
    down = commands.add_parser("down", parents=[common], help="stop the hosts and remove every trace of the lab")
    down.add_argument("--all", action="store_true", help="every lab on this machine")
    status = commands.add_parser("status", parents=[common], help="list the lab's hosts and whether they run")
    status.add_argument("--json", action="store_true", help="machine-readable: name, address, groups, ssh key")
    ssh = commands.add_parser("ssh", parents=[common], help="open a shell (or run a command) on a host")
    ssh.add_argument("host")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except LabError as exc:
        print(f"kpy-lab: {exc}", file=sys.stderr)
        return 1


def _dispatch(args) -> int:
    if os.geteuid() != 0 and args.command in ("up", "down"):
        raise LabError("lab hosts need root (systemd-nspawn, bridges, overlay mounts)")
    if args.command == "up":
        spec = LabSpec(args.lab, args.subnet_index, args.control_plane, args.workers)
        lab.up(spec, args.inventory)
    elif args.command == "down":
        for name in (lab.labs() if args.all else [args.lab]):
            lab.down(name)
    elif args.command == "status":
        hosts = lab.status(args.lab)
        if args.json:
            key = str(lab.lab_dir(args.lab) / "id_ed25519")
            print(json.dumps([{"name": m.host.name, "address": str(m.host.address), "groups": m.host.groups,
                               "running": running, "identity_file": key, "user": "ansible"}
                              for m, running in hosts]))
            return 0 if hosts else 1
        if not hosts:
            print(f"lab {args.lab}: not up")
            return 1
        for machine, running in hosts:
            state = "running" if running else "stopped"
            print(f"{machine.host.name:12} {machine.host.address!s:15} {state:8} {','.join(machine.host.groups)}")
    elif args.command == "ssh":
        return _ssh(args.lab, args.host, args.remote_command)
    return 0


def _ssh(lab_name: str, host_name: str, command: list[str]) -> int:
    hosts = {m.host.name: m for m, _ in lab.status(lab_name)}
    if host_name not in hosts:
        raise LabError(f"no host {host_name!r} in lab {lab_name!r}; hosts: {', '.join(hosts) or 'none'}")
    key = lab.lab_dir(lab_name) / "id_ed25519"
    os.execvp("ssh", ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                      "-o", "LogLevel=ERROR", f"root@{hosts[host_name].host.address}", *command])


if __name__ == "__main__":
    sys.exit(main())
