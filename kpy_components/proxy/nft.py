"""The kernel side: the `nft` binary, scripts in its input language on stdin (`nft -f -`).

Why the binary and its text language: a script is one transaction (all or nothing), which is what a sync needs;
the text is what `nft list ruleset` shows and what kube-proxy's own library (knftables) writes, so logs, tests and
a person debugging a node read the same thing; and the hosts run kpy in a venv, where Debian's python3-nftables
bindings (for the system Python) are not importable. JSON input would say the same things at several times the
size. `Runner` is injectable so the lab test can drive a host's nft from this machine.
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from .rules import FAMILY, TABLE

CANARY_CHAIN = "nat-postrouting"  # one rule, always present while the table is
from .script import Existing

# (argv, stdin text or None) -> stdout; raises NftError when the command fails.
Runner = Callable[[list[str], "str | None"], str]


class NftError(Exception):
    """nft refused a command or a script; the message holds what nft printed."""


def run_local(argv: list[str], stdin: str | None = None) -> str:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    except OSError as error:
        raise NftError(f"{argv[0]}: {error.strerror}") from None
    if done.returncode != 0:
        raise NftError(f"{' '.join(argv[:3])}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


class Nft:
    def __init__(self, runner: Runner = run_local, binary: str = "nft"):
        self.runner, self.binary = runner, binary

    def apply(self, script: str) -> None:
        """Load `script` as one transaction (nothing changes when nft refuses any line of it)."""
        self.runner([self.binary, "-f", "-"], script)

    def existing(self) -> Existing:
        """The chains, sets and maps of our table as the kernel has them (nothing when the table is missing).
        Listed by kind and tersely (no rules, no elements): the whole table of 5,000 Services is 13 MB of JSON
        and takes nft ~3 s to print, these lists ~0.2 s."""
        listings = [self.runner([self.binary, "-t", "-j", "list", kind, FAMILY], None)
                    for kind in ("chains", "sets", "maps")]
        return parse_listing(*listings)


    def table_present(self) -> bool:
        """Whether our table is still there (someone may flush the ruleset: `systemctl restart nftables`, an
        admin's `nft flush ruleset`). Reads one small chain, so it stays cheap however many Services there are."""
        try:
            self.runner([self.binary, "list", "chain", FAMILY, TABLE, CANARY_CHAIN], None)
        except NftError:
            return False
        return True


def parse_listing(*texts: str) -> Existing:
    """Existing names of our table from `nft -j list ...` outputs (other tables' objects are ignored)."""
    chains, containers = set(), {}
    for text in texts:
        for item in json.loads(text or "{}").get("nftables", ()):
            for kind in ("chain", "set", "map"):
                if kind in item and item[kind].get("table") == TABLE and item[kind].get("family") == FAMILY:
                    if kind == "chain":
                        chains.add(item[kind]["name"])
                    else:
                        containers[item[kind]["name"]] = kind
    return Existing(frozenset(chains), containers)
