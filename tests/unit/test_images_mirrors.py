"""containerd hosts.toml files for registry mirrors, and the checks on containerd_registry_mirrors."""

from __future__ import annotations

import tomllib

import pytest

from kpy_components.images.mirrors import hosts_toml, mirrors_problems

MIRRORS = ["http://10.0.0.5:5000", "https://mirror.example"]


def test_mirrors_in_order_then_the_first_mirror_again_without_fallback():
    parsed = tomllib.loads(hosts_toml("docker.io", MIRRORS, upstream_fallback=False, header="# managed"))
    assert parsed["server"] == "http://10.0.0.5:5000"
    assert list(parsed["host"]) == MIRRORS
    assert all(host == {"capabilities": ["pull", "resolve"]} for host in parsed["host"].values())


@pytest.mark.parametrize(("registry", "server"), [("docker.io", "https://registry-1.docker.io"),
                                                  ("registry.k8s.io", "https://registry.k8s.io")])
def test_fallback_ends_at_the_registry_itself(registry, server):
    assert tomllib.loads(hosts_toml(registry, MIRRORS, upstream_fallback=True))["server"] == server


def test_valid_mirrors_have_no_problems():
    assert mirrors_problems({"docker.io": MIRRORS, "registry.example:5000": ["http://x:1"]}, "v") == []


def test_every_problem_is_named_with_its_entry():
    problems = mirrors_problems({"docker.io": "http://x:5000", "Bad Name": ["http://x"],
                                 "registry.k8s.io": ["x:5000", 'http://a"b']}, "containerd_registry_mirrors")
    assert problems == [
        "containerd_registry_mirrors['docker.io']: must be a non-empty list of mirror URLs",
        "containerd_registry_mirrors['Bad Name']: not a registry host name (like docker.io or registry.example:5000)",
        "containerd_registry_mirrors['registry.k8s.io']: 'x:5000' is not an http:// or https:// URL",
        "containerd_registry_mirrors['registry.k8s.io']: 'http://a\"b' is not an http:// or https:// URL",
    ]
    assert mirrors_problems(["docker.io"], "m") == [
        "m: must be a mapping of registry name -> list of mirror URLs, not list"]
