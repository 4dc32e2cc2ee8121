"""A component's secure port: /healthz /livez /readyz /version and /metrics over TLS (kube-scheduler's 10259,
kube-controller-manager's 10257, ...).

Serving certificate: the files given, or — as kube-scheduler and kube-controller-manager do when none are given — a
self-signed CA and a certificate for localhost/127.0.0.1/the host name made at start and kept in memory only.
Health and version paths answer anyone (load balancers and kubelets probe them); /metrics needs a client
certificate signed by the client CA (by default the cluster CA the component's kubeconfig trusts), else 401.
"""
from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from kpy_components.pki import issue, keys
from kpy_components.pki.profiles import WantedCert

from .health import Check, run_checks, version_info

log = logging.getLogger(__name__)
SELF_SIGNED_DAYS = 365


@dataclass
class ServingOptions:
    bind_address: str = "0.0.0.0"
    port: int = 0  # 0: any free port (tests)
    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_pem: bytes | None = None  # who may read /metrics; None: nobody
    live_checks: dict[str, Check] = field(default_factory=dict)
    ready_checks: dict[str, Check] = field(default_factory=dict)


def self_signed(name: str) -> tuple[bytes, bytes]:
    """(certificate chain PEM, key PEM) for localhost, 127.0.0.1 and this host's name, under a throw-away CA."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_cert, ca_key = issue.create_ca(f"{name}-ca@{int(now.timestamp())}", "ecdsa-p256", SELF_SIGNED_DAYS, now)
    sans = frozenset({x509.DNSName("localhost"), x509.DNSName(socket.gethostname()),
                      x509.IPAddress(ipaddress.ip_address("127.0.0.1"))})
    wanted = WantedCert(id=name, path=name, ca="self", cn=f"{name}@{int(now.timestamp())}", organizations=(),
                        sans=sans, usages=frozenset({"server"}), key_type="ecdsa-p256",
                        lifetime_days=SELF_SIGNED_DAYS, host=None)
    cert, key = issue.issue(wanted, ca_cert, ca_key, now)
    return cert.public_bytes(Encoding.PEM) + ca_cert.public_bytes(Encoding.PEM), keys.private_pem(key)


def tls_context(name: str, options: ServingOptions) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if options.cert_file and options.key_file:
        context.load_cert_chain(options.cert_file, options.key_file)
    else:
        chain, key = self_signed(name)
        with tempfile.TemporaryDirectory(prefix=f"{name}-serving-") as directory:  # the stdlib loads files only
            for file_name, data in (("tls.crt", chain), ("tls.key", key)):
                descriptor = os.open(Path(directory, file_name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as output:
                    output.write(data)
            context.load_cert_chain(Path(directory, "tls.crt"), Path(directory, "tls.key"))
    if options.client_ca_pem:
        context.load_verify_locations(cadata=options.client_ca_pem.decode("ascii"))
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class SecureServer:
    def __init__(self, name: str, registry: CollectorRegistry, options: ServingOptions):
        self.name, self.registry, self.options = name, registry, options
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        probes = {"/healthz": self.options.live_checks, "/livez": self.options.live_checks,
                  "/readyz": self.options.ready_checks}

        async def probe(request: web.Request) -> web.Response:
            status, text = await run_checks(probes[request.path], "verbose" in request.query,
                                            request.path.lstrip("/"))
            return web.Response(text=text, status=status, content_type="text/plain")

        async def version(_request: web.Request) -> web.Response:
            return web.json_response(version_info())

        async def metrics(request: web.Request) -> web.Response:
            if request.transport is None or not request.transport.get_extra_info("peercert"):
                return web.Response(status=401, text="Unauthorized: /metrics needs a client certificate signed by "
                                    "the cluster CA\n", content_type="text/plain")
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        for path in probes:
            app.router.add_get(path, probe)
        app.router.add_get("/version", version)
        app.router.add_get("/metrics", metrics)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.bind_address, self.options.port,
                           ssl_context=tls_context(self.name, self.options))
        await site.start()
        sockets = site._server.sockets if site._server else []  # aiohttp exposes no public bound-port accessor
        self.port = sockets[0].getsockname()[1] if sockets else self.options.port
        log.info("Serving securely address=%s port=%d", self.options.bind_address, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
