"""HTTPS to etcd's client port with a client certificate, and the translation of the HTTP libraries' errors (httpx
for the blocking client, aiohttp for the asyncio one) and of the gateway's error answers into kpy's etcd exceptions
(nothing of either library escapes this module's callers)."""
from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import orjson

from kpy_components.etcd.errors import (
    EtcdConnectionError,
    EtcdError,
    EtcdProtocolError,
    EtcdTimeout,
    server_error,
)
from kpy_components.etcd.results import Json


@dataclass(frozen=True)
class TLSFiles:
    """The CA that signed etcd's server certificates, and our client certificate and key (PEM files).
    Without `cert_file` the client presents no certificate (etcd with client-cert-auth refuses it)."""

    ca_file: Path | str
    cert_file: Path | str | None = None
    key_file: Path | str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            if self.cert_file:
                context.load_cert_chain(str(self.cert_file), str(self.key_file) if self.key_file else None)
        except (OSError, ssl.SSLError) as error:
            raise EtcdConnectionError(f"cannot load TLS files ({self.describe()}): {error}") from error
        return context

    def describe(self) -> str:
        return f"ca={self.ca_file} cert={self.cert_file} key={self.key_file}"


def normalize_endpoints(endpoints: str | list[str] | tuple[str, ...]) -> list[str]:
    """Endpoint URLs without a trailing slash; a comma-separated string is accepted too."""
    items = endpoints.split(",") if isinstance(endpoints, str) else list(endpoints)
    urls = [item.strip().rstrip("/") for item in items if item.strip()]
    if not urls:
        raise ValueError("no etcd endpoint given")
    for url in urls:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"etcd endpoint {url!r} is not an http(s) URL")
    return urls


class RequestNotSent(EtcdConnectionError):
    """No connection could be made, so the request never reached etcd: safe to retry on another member."""


def _describe(error: BaseException) -> str:
    """The error's message, or that of the first error under it that has one (httpx's async transport raises
    ReadError without a message, caused by the ssl error that tells what happened)."""
    chain, cause = [], error
    while cause is not None and len(chain) < 5:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = next((str(e) for e in chain if str(e)), type(error).__name__)
    if any(marker in str(e) for e in chain for marker in ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE")):
        text += " (etcd refused our client certificate)"
    return text


@contextmanager
def translated_errors(endpoint: str) -> Iterator[None]:
    """Turn httpx's exceptions raised inside the block into kpy's etcd exceptions, naming the endpoint."""
    try:
        yield
    except httpx.ConnectTimeout as error:
        raise RequestNotSent(f"{endpoint}: timed out connecting") from error
    except httpx.ConnectError as error:
        raise RequestNotSent(f"{endpoint}: cannot connect: {_describe(error)}") from error
    except httpx.TimeoutException as error:
        raise EtcdTimeout(f"{endpoint}: no answer in time ({type(error).__name__})") from error
    except httpx.TransportError as error:  # read/write errors, closed connections, protocol errors
        raise EtcdConnectionError(f"{endpoint}: connection failed: {_describe(error)}") from error
    except httpx.HTTPError as error:
        raise EtcdError(f"{endpoint}: {error}") from error
    except OSError as error:  # httpx's asyncio transport lets some ssl.SSLError (a TLS alert) through unwrapped
        raise EtcdConnectionError(f"{endpoint}: connection failed: {_describe(error)}") from error


@contextmanager
def translated_aiohttp_errors(endpoint: str) -> Iterator[None]:
    """As translated_errors, for aiohttp's exceptions."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as error:
        raise RequestNotSent(f"{endpoint}: timed out connecting") from error
    except aiohttp.ClientConnectorError as error:  # refused, unreachable, or the TLS handshake failed
        raise RequestNotSent(f"{endpoint}: cannot connect: {_describe(error)}") from error
    except TimeoutError as error:  # aiohttp's ServerTimeoutError and the total timeout of a call
        raise EtcdTimeout(f"{endpoint}: no answer in time ({type(error).__name__})") from error
    except aiohttp.ClientError as error:  # disconnects, resets, malformed answers
        raise EtcdConnectionError(f"{endpoint}: connection failed: {_describe(error)}") from error
    except OSError as error:  # an ssl.SSLError (a TLS alert after the handshake) on a read
        raise EtcdConnectionError(f"{endpoint}: connection failed: {_describe(error)}") from error


def decode_answer(endpoint: str, status_code: int, content: bytes) -> Json:
    """The JSON body of a unary answer; an error answer raises the matching EtcdServerError."""
    try:
        body = orjson.loads(content)
    except ValueError:
        hint = " (is the gRPC gateway enabled on this member?)" if status_code == 404 else ""
        raise EtcdProtocolError(
            f"{endpoint}: HTTP {status_code} answer is not JSON: {content[:100]!r}{hint}") from None
    if not isinstance(body, dict):
        raise EtcdProtocolError(f"{endpoint}: HTTP {status_code} answer is not a JSON object")
    if status_code >= 400 or ("error" in body and "code" in body):
        message = str(body.get("message") or body.get("error") or f"HTTP {status_code}")
        raise server_error(int(body.get("code", 0) or 0), f"{endpoint}: {message}")
    return body
