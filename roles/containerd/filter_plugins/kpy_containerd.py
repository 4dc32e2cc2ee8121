"""Filters of the containerd role; the mirror model lives in kpy_components.images.mirrors."""

from __future__ import annotations

import posixpath

from ansible.errors import AnsibleFilterError

from kpy_components.images.mirrors import hosts_toml, mirrors_problems


def containerd_mirror_files(mirrors, config_dir, upstream_fallback, header="") -> list[dict]:
    """kpy_converge file items {dest, content}: one hosts.toml per registry of `mirrors`; fails naming every
    problem of containerd_registry_mirrors."""
    problems = mirrors_problems(mirrors, "containerd_registry_mirrors")
    if problems:
        raise AnsibleFilterError("\n".join(problems))
    return [
        {"dest": posixpath.join(config_dir, registry, "hosts.toml"),
         "content": hosts_toml(registry, list(urls), upstream_fallback=bool(upstream_fallback), header=header)}
        for registry, urls in sorted(mirrors.items())
    ]


def containerd_directory_items(paths) -> list[dict]:
    """kpy_converge directory items {path}, each path once, in the order given."""
    return [{"path": path} for path in dict.fromkeys(paths)]


class FilterModule:
    def filters(self):
        return {"containerd_mirror_files": containerd_mirror_files,
                "containerd_directory_items": containerd_directory_items}
