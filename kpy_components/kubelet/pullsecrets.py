"""Registry credentials from a pod's imagePullSecrets (kubernetes.io/dockerconfigjson or the older .dockercfg), as
the kubelet's credential keyring matches them: by the image's registry host, Docker Hub's aliases included."""
from __future__ import annotations

import base64
import binascii
import json

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


def registry_of(image: str) -> str:
    """The registry host of an image reference (`busybox` → docker.io, `10.0.0.1:5000/x` → 10.0.0.1:5000)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def _host(key: str) -> str:
    host = key.split("://", 1)[-1].split("/", 1)[0]
    return DOCKER_HUB if host in _HUB_ALIASES else host


def credentials(secret: dict, image: str) -> tuple[str, str] | None:
    """(username, password) for `image` from the secret, None when it holds none for that registry or is
    unreadable (upstream skips such secrets too)."""
    data = secret.get("data") or {}
    try:
        if ".dockerconfigjson" in data:
            auths = json.loads(base64.b64decode(data[".dockerconfigjson"])).get("auths") or {}
        elif ".dockercfg" in data:
            auths = json.loads(base64.b64decode(data[".dockercfg"]))
        else:
            return None
    except (ValueError, binascii.Error):
        return None
    wanted = registry_of(image)
    wanted = DOCKER_HUB if wanted in _HUB_ALIASES else wanted
    for key, entry in auths.items():
        if _host(key) != wanted or not isinstance(entry, dict):
            continue
        if entry.get("username") or entry.get("password"):
            return entry.get("username", ""), entry.get("password", "")
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, binascii.Error):
                continue
            return user, password
    return None
