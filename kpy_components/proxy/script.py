"""Rulesets -> `nft -f` scripts. Each script is one netlink transaction: it applies whole or not at all.

Full sync (at start, after a failure, and every full-sync period): declare the table, every chain and container;
flush and refill every chain and every container but the affinity sets (their elements are clients' affinity,
kept across restarts); then flush and delete what exists but is no longer wanted (`stale`: read from the kernel
at start, else what the previous sync left). The table is never deleted, and nothing here touches conntrack, so
established connections keep their translation across restarts and syncs.

Partial sync (everything else): only the chains whose rules changed (flushed and refilled), the elements that
were added, removed or changed, and the chains and sets that went away. An empty diff gives an empty script: no
nft call at all.

Order inside a script matters to nft: chains and sets exist before a rule or an element names them, elements
are deleted before the chain they point at, chains are flushed before any of them is deleted.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .rules import BASE_CHAINS, FAMILY, TABLE, Container, Ruleset

TABLE_COMMENT = "rules for kube-proxy"
ELEMENTS_PER_LINE = 1000  # keeps each line short enough for nft's parser while staying a single transaction


@dataclass(frozen=True)
class Existing:
    """The names present in the kernel's table (`nft.list_names`), or left by the previous sync."""
    chains: frozenset[str] = frozenset()
    containers: dict[str, str] = field(default_factory=dict)  # name -> "set" or "map"

    @classmethod
    def of(cls, ruleset: Ruleset) -> Existing:
        return cls(frozenset(ruleset.chains), {name: c.kind for name, c in ruleset.containers.items()})


def _object(kind: str, name: str) -> str:
    return f"{kind} {FAMILY} {TABLE} {name}"


def _add_chain(name: str) -> str:
    hook = BASE_CHAINS.get(name)
    return f"add {_object('chain', name)}" + (f" {{ {hook} }}" if hook else "")


def _add_container(name: str, container: Container) -> str:
    return f"add {_object(container.kind, name)} {{ {container.declaration} }}"


def _element_lines(verb: str, name: str, container: Container, keys: list[str]) -> list[str]:
    """`add element` lines (key : value in maps) or `delete element` lines (keys only)."""
    items = [key if verb == "delete" or container.elements.get(key) is None else f"{key} : {container.elements[key]}"
             for key in keys]
    return [f"{verb} element {FAMILY} {TABLE} {name} {{ {', '.join(items[i:i + ELEMENTS_PER_LINE])} }}"
            for i in range(0, len(items), ELEMENTS_PER_LINE)]


def _rules(name: str, rules: tuple[str, ...]) -> list[str]:
    return [f"add rule {FAMILY} {TABLE} {name} {rule}" for rule in rules]


def _removals(chains: Iterable[str], containers: dict[str, str]) -> list[str]:
    chains = sorted(chains)
    lines = [f"flush {_object('chain', name)}" for name in chains]
    lines += [f"delete {_object('chain', name)}" for name in chains]
    lines += [f"delete {_object(kind, name)}" for name, kind in sorted(containers.items())]
    return lines


def full(ruleset: Ruleset, existing: Existing = Existing()) -> str:
    lines = [f'add table {FAMILY} {TABLE} {{ comment "{TABLE_COMMENT}" ; }}']
    for name in ruleset.chains:
        lines += [_add_chain(name), f"flush {_object('chain', name)}"]
    for name, container in ruleset.containers.items():
        lines.append(_add_container(name, container))
        if not container.keep:
            lines.append(f"flush {_object(container.kind, name)}")
    for name, rules in ruleset.chains.items():
        lines += _rules(name, rules)
    for name, container in ruleset.containers.items():
        lines += _element_lines("add", name, container, list(container.elements))
    stale_containers = {n: k for n, k in existing.containers.items() if n not in ruleset.containers}
    lines += _removals(existing.chains - set(ruleset.chains), stale_containers)
    return "\n".join(lines) + "\n"


def partial(old: Ruleset, new: Ruleset) -> str:
    """What turns `old` (what the kernel holds) into `new`; "" when they are alike."""
    lines = []
    changed = [name for name, rules in new.chains.items() if old.chains.get(name) != rules]
    for name in changed:
        lines.append(_add_chain(name))
        if name in old.chains:
            lines.append(f"flush {_object('chain', name)}")
    for name, container in new.containers.items():
        if name not in old.containers:
            lines.append(_add_container(name, container))
    for name in changed:
        lines += _rules(name, new.chains[name])
    for name, container in new.containers.items():
        if container.keep:
            continue
        before = old.containers.get(name, Container(container.kind, container.declaration)).elements
        gone = [key for key, value in before.items() if container.elements.get(key, ...) != value]
        added = [key for key, value in container.elements.items() if before.get(key, ...) != value]
        if gone:
            lines += _element_lines("delete", name, container, gone)
        if added:
            lines += _element_lines("add", name, container, added)
    stale_containers = {n: c.kind for n, c in old.containers.items() if n not in new.containers}
    lines += _removals(set(old.chains) - set(new.chains), stale_containers)
    return "\n".join(lines) + "\n" if lines else ""
