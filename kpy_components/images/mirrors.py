"""containerd's registry host files (hosts.toml under config_path, one folder per registry) for registry mirrors.

A registry maps to the mirror URLs tried in order, each with capabilities pull and resolve (http:// ones are spoken
in plain HTTP). `server` is the last resort after the mirrors: the registry itself when falling back upstream is
wanted, else the first mirror again, so a missing image fails with the mirror's answer and nothing leaves the site.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

# Docker Hub's API host: docker.io names images, registry-1.docker.io serves them.
UPSTREAM_SERVERS = {"docker.io": "https://registry-1.docker.io"}
_REGISTRY_NAME = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?", re.ASCII)


def mirrors_problems(mirrors: object, where: str) -> list[str]:
    """Every problem with a registry -> [mirror URL, ...] mapping, naming the entry; [] when it is valid."""
    if not isinstance(mirrors, Mapping):
        return [f"{where}: must be a mapping of registry name -> list of mirror URLs, not {type(mirrors).__name__}"]
    problems = []
    for registry, urls in mirrors.items():
        here = f"{where}[{registry!r}]"
        if not isinstance(registry, str) or not _REGISTRY_NAME.fullmatch(registry):
            problems.append(f"{here}: not a registry host name (like docker.io or registry.example:5000)")
        if not isinstance(urls, list) or not urls:
            problems.append(f"{here}: must be a non-empty list of mirror URLs")
            continue
        for url in urls:
            parts = urlsplit(url) if isinstance(url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or '"' in url:
                problems.append(f"{here}: {url!r} is not an http:// or https:// URL")
    return problems


def hosts_toml(registry: str, urls: list[str], *, upstream_fallback: bool, header: str = "") -> str:
    server = UPSTREAM_SERVERS.get(registry, f"https://{registry}") if upstream_fallback else urls[0]
    lines = [header.rstrip("\n")] if header else []
    lines += [f"# Pulls of {registry} images: these mirrors in order, then {server}.", f'server = "{server}"']
    for url in urls:
        lines += ["", f'[host."{url}"]', '  capabilities = ["pull", "resolve"]']
    return "\n".join(lines) + "\n"
