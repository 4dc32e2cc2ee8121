"""Content negotiation: what the client accepts (Table, aggregated discovery) and what its body is written in.

Responses are always JSON: every protobuf Accept kubectl sends also lists application/json, and answering 406 would
fail the command (kubectl-contract §5).
"""
from __future__ import annotations

from dataclasses import dataclass

import yaml

from kpy_components.api import errors
from kpy_components.apiserver.storage.codec import loads

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)


@dataclass(frozen=True)
class MediaType:
    type: str  # "application/json"
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str:
        return next((v for k, v in self.params if k == name), "")

    def __str__(self) -> str:
        return ";".join([self.type, *(f"{k}={v}" for k, v in self.params)])


def parse_media_type(text: str) -> MediaType:
    kind, *params = (p.strip() for p in text.split(";"))
    pairs = []
    for param in params:
        key, _, value = param.partition("=")
        if key and key != "q":
            pairs.append((key.strip().lower(), value.strip().strip('"')))
    return MediaType(kind.lower(), tuple(pairs))


def parse_accept(header: str | None) -> list[MediaType]:
    """Media ranges in the order the client listed them (kubectl lists its preference first, without q-values)."""
    return [parse_media_type(part) for part in (header or "").split(",") if part.strip()]


def wants_table(accept: list[MediaType]) -> bool:
    """True when the first JSON-ish media range asks for `as=Table` (meta.k8s.io v1 or v1beta1)."""
    for media in accept:
        if media.type in (JSON, "*/*", "application/*") or media.type == PROTOBUF:
            if media.param("as") == "Table" and media.param("g") == "meta.k8s.io":
                return True
            if media.type == JSON and not media.param("as"):
                return False
    return False


def table_version(accept: list[MediaType]) -> str:
    for media in accept:
        if media.param("as") == "Table":
            return media.param("v") or "v1"
    return "v1"


def aggregated_discovery(accept: list[MediaType]) -> tuple[str, str] | None:
    """(version, exact Content-Type) when the client offers aggregated discovery ahead of plain JSON: the reply's
    Content-Type must repeat the offered media type exactly, or kubectl treats the reply as legacy discovery."""
    for media in accept:
        if media.param("as") == "APIGroupDiscoveryList" and media.param("g") == "apidiscovery.k8s.io":
            version = media.param("v")
            if version in ("v2", "v2beta1"):
                return version, f"{JSON};g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
        elif media.type == JSON:
            return None
    return None


def decode_body(content_type: str | None, body: bytes, unknown: list[str] | None = None) -> dict:
    """A request body (JSON, YAML or Kubernetes protobuf) as a dict; 400/415 with a clear message otherwise.
    Protobuf field numbers the type description lacks are appended to `unknown` by path, for field validation."""
    media = parse_media_type(content_type or JSON).type
    if media == PROTOBUF:
        from kpy_components.api import protobuf  # imported late: only kubectl >= 1.32 typed writes need it
        try:
            return protobuf.decode(body, unknown)
        except ValueError as exc:
            raise errors.bad_request(f"the protobuf request body could not be decoded: {exc}") from exc
    if media in (JSON, MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH):
        return _decode_json(body)
    if media in (YAML, "application/x-yaml", "text/yaml", APPLY_PATCH):
        return _decode_yaml(body)
    raise errors.unsupported_media_type(media)


def _decode_json(body: bytes):
    """JSON; a YAML object sent as JSON (`kubectl create --raw -f x.yaml`) is taken too."""
    try:
        return loads(body or b"null")
    except ValueError as exc:  # orjson's JSONDecodeError, also for bytes that are not UTF-8
        try:
            as_yaml = yaml.safe_load(body)
        except (yaml.YAMLError, ValueError):
            as_yaml = None
        if isinstance(as_yaml, dict):
            return as_yaml
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from exc


def _decode_yaml(body: bytes):
    try:
        return yaml.safe_load(body or b"")
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"the request body is not valid YAML: {exc}") from exc
