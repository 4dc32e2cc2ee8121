"""The firewall's port model: port entries as users write them, the checks they must pass, and the rules a host gets.

An entry is a mapping `{port, proto, comment, sources}`: `port` is 1-65535 or a range "first-last"; `proto` is "tcp"
(the default) or "udp"; `comment` labels the rule; `sources` lists the CIDRs or addresses allowed to connect
(absent or empty: any source).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence

from kpy_components.inventory.networks import family, parse_network

# Ports kpy never opens, whatever the inventory says.
FORBIDDEN_PORTS = {8080: "the API server's insecure port", 10255: "the kubelet's read-only port"}
PROTOCOLS = ("tcp", "udp")
ENTRY_KEYS = ("port", "proto", "comment", "sources")
# nft refuses longer rule comments; quotes and backslashes would end or escape the quoted comment.
COMMENT_MAX_LENGTH = 128
COMMENT_FORBIDDEN_CHARACTERS = '"\\\n\r'
_PORT_TEXT = re.compile(r"\d{1,5}(?:\s*-\s*\d{1,5})?", re.ASCII)


@dataclasses.dataclass(frozen=True)
class PortRange:
    first: int
    last: int

    def covers(self, port: int) -> bool:
        return self.first <= port <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


@dataclasses.dataclass(frozen=True)
class Rule:
    """One accept rule of the input chain. Two rules that match the same traffic are equal, whatever their comments."""

    proto: str
    ports: str
    comment: str = dataclasses.field(compare=False)
    family: str | None = None  # "ip" or "ip6" when the rule only accepts `saddrs`
    saddrs: tuple[str, ...] = ()


def parse_port(value: object) -> PortRange:
    """Return `value` (9100, "9100" or "9100-9102") as a port range; raise ValueError naming the problem."""
    if isinstance(value, int) and not isinstance(value, bool):
        first = last = value
    elif isinstance(value, str) and _PORT_TEXT.fullmatch(value.strip()):
        start, _, end = value.partition("-")
        first, last = int(start), int(end or start)
    else:
        raise ValueError(f"{value!r} is not a port (1-65535) or a range first-last")
    if not (1 <= first <= 65535 and 1 <= last <= 65535):
        raise ValueError(f"{value!r} is outside 1-65535")
    if first > last:
        raise ValueError(f"{value!r} starts above its end")
    return PortRange(first, last)


def port_problems(value: object, where: str) -> list[str]:
    """Problems with one port value: unparsable, or covering a port kpy never opens."""
    try:
        ports = parse_port(value)
    except ValueError as error:
        return [f"{where}: {error}"]
    problems = []
    for port, reason in FORBIDDEN_PORTS.items():
        if ports.covers(port):
            subject = f"{port} is" if ports.first == ports.last else f"{ports} includes {port},"
            problems.append(f"{where}: {subject} {reason}, which kpy never opens")
    return problems


def sources_problems(value: object, where: str) -> list[str]:
    """Problems with a list of source networks (None means any source)."""
    if value is None:
        return []
    if isinstance(value, (str, Mapping)) or not isinstance(value, Sequence):
        return [f"{where}: expected a list of CIDRs, got {value!r}"]
    problems = []
    for index, source in enumerate(value):
        try:
            parse_network(source, require_prefix=False)
        except ValueError as error:
            problems.append(f"{where}[{index}]: {error}")
    return problems


def _comment_problems(value: object, where: str) -> list[str]:
    if not isinstance(value, str):
        return [f"{where}: expected text, got {value!r}"]
    if len(value) > COMMENT_MAX_LENGTH:
        return [f"{where}: longer than {COMMENT_MAX_LENGTH} characters"]
    if any(character in value for character in COMMENT_FORBIDDEN_CHARACTERS):
        return [f"{where}: must not contain quotes, backslashes or line breaks"]
    return []


def entry_problems(entry: object, where: str) -> list[str]:
    """Problems with one port entry, each prefixed with `where` and the field at fault."""
    if not isinstance(entry, Mapping):
        return [f"{where}: expected a mapping like {{port: 9100, proto: tcp, comment: node exporter}}, got {entry!r}"]
    problems = [
        f"{where}: unknown key {key!r} (known: {', '.join(ENTRY_KEYS)})" for key in entry if key not in ENTRY_KEYS
    ]
    if "port" in entry:
        problems += port_problems(entry["port"], f"{where}.port")
    else:
        problems.append(f"{where}: port is missing")
    if entry.get("proto", "tcp") not in PROTOCOLS:
        problems.append(f"{where}.proto: {entry['proto']!r} is not one of {', '.join(PROTOCOLS)}")
    problems += _comment_problems(entry.get("comment", ""), f"{where}.comment")
    problems += sources_problems(entry.get("sources"), f"{where}.sources")
    return problems


def entries_problems(entries: object, where: str) -> list[str]:
    """Problems with a list of port entries (None counts as an empty list)."""
    if entries is None:
        return []
    if isinstance(entries, (str, Mapping)) or not isinstance(entries, Sequence):
        return [f"{where}: expected a list of port entries, got {entries!r}"]
    return [problem for index, entry in enumerate(entries) for problem in entry_problems(entry, f"{where}[{index}]")]


def sources_by_family(sources: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Group valid source networks by nftables family ("ip", "ip6"), first-seen order, duplicates dropped."""
    grouped: dict[str, list[str]] = {}
    for source in sources:
        network = parse_network(source, require_prefix=False)
        members = grouped.setdefault(family(network), [])
        if str(network) not in members:
            members.append(str(network))
    return list(grouped.items())


def entry_rules(entry: Mapping) -> list[Rule]:
    """The rules for one valid entry: one rule, or one per address family when it names sources."""
    ports = str(parse_port(entry["port"]))
    proto = entry.get("proto", "tcp")
    comment = entry.get("comment") or f"port {ports}/{proto}"
    sources = entry.get("sources") or []
    if not sources:
        return [Rule(proto, ports, comment)]
    return [Rule(proto, ports, comment, name, tuple(cidrs)) for name, cidrs in sources_by_family(sources)]


def host_rules(
    group_ports: Mapping[str, Sequence[Mapping]],
    group_names: Iterable[str],
    ssh_port: int,
    extra_entries: Sequence[Mapping] | None = None,
) -> list[Rule]:
    """The accept rules of a host in `group_names`: SSH, each of its groups' documented ports, then the extra entries.

    Entries must have passed `entries_problems`. A rule matching the same traffic as an earlier one is dropped.
    """
    member_of = set(group_names)
    entries: list[Mapping] = [{"port": ssh_port, "proto": "tcp", "comment": "SSH"}]
    entries += [entry for group, members in group_ports.items() if group in member_of for entry in members]
    entries += list(extra_entries or [])
    rules: list[Rule] = []
    for entry in entries:
        rules += [rule for rule in entry_rules(entry) if rule not in rules]
    return rules
