"""Push built images into a registry with skopeo, only the tags whose manifest the registry does not already hold.

The check is one HEAD of the tag's manifest (the Docker-Content-Digest the registry answers against the layout's
manifest digest), so a registry that has everything costs one request per tag and reports no change. skopeo copies
with --preserve-digests: the registry stores our manifest byte for byte, so its digest is the layout's.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from kpy_components.images import ImageError, oci
from kpy_components.images.build import Built

# What the HEAD accepts: our OCI manifests, and the Docker types in case a registry holds one under the tag.
MANIFEST_TYPES = ", ".join((
    oci.MEDIA_MANIFEST, oci.MEDIA_INDEX, "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
))


def registry_digest(client: httpx.Client, registry: str, repository: str, tag: str) -> str | None:
    """The manifest digest `registry` (host:port, plain HTTP) holds for repository:tag, or None when it has none."""
    url = f"http://{registry}/v2/{repository}/manifests/{tag}"
    try:
        response = client.head(url, headers={"Accept": MANIFEST_TYPES})
    except httpx.HTTPError as exc:
        raise ImageError(f"registry {registry} did not answer {url}: {exc}") from exc
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise ImageError(f"registry {registry} answered HTTP {response.status_code} to HEAD {url}")
    return response.headers.get("Docker-Content-Digest")


def push(layout: Path, tag: str, registry: str, repository: str) -> None:
    argv = ["skopeo", "--insecure-policy", "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
            f"oci:{layout}:{tag}", f"docker://{registry}/{repository}:{tag}"]
    # --insecure-policy: the source is our own layout, built here; a signature policy has nothing to check.
    try:
        proc = subprocess.run(argv, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise ImageError("skopeo is not installed (run ./scripts/setup)") from exc
    if proc.returncode != 0:
        raise ImageError(f"pushing {repository}:{tag} to {registry} failed: {proc.stderr.strip()}")


def publish(images: list[Built], registry: str, *, check_only: bool = False, timeout: float = 10) -> list[str]:
    """Push every tag the registry lacks or holds with another digest; returns `repository:tag` of each pushed
    (with check_only, of each that would be)."""
    pushed = []
    with httpx.Client(timeout=timeout) as client:
        for image in images:
            for tag in image.tags:
                if registry_digest(client, registry, image.repository, tag) == image.digest:
                    continue
                if not check_only:
                    push(image.layout, tag, registry, image.repository)
                    held = registry_digest(client, registry, image.repository, tag)
                    if held != image.digest:
                        raise ImageError(f"{registry} holds {held} for {image.repository}:{tag} after the push, "
                                         f"not {image.digest}")
                pushed.append(f"{image.repository}:{tag}")
    return pushed
