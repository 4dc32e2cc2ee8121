"""Wiring: storage (SQLite or etcd, encryption at rest) -> watch cache -> stores -> security -> aiohttp app on TLS.

`APIServer.start()` serves at once; /readyz stays failing until storage answers, the watch cache is primed and the
default objects exist. `stop()` ends every watch, finishes in-flight requests and closes storage.
"""
from __future__ import annotations

import asyncio
import faulthandler
import logging
import ssl
from pathlib import Path

from aiohttp import web

from kpy_components import systemd
from kpy_components.api import catalog
from kpy_components.apiserver.compactor import run_compactor
from kpy_components.component import collector
from kpy_components.apiserver.storage.cache import CacheSettings, WatchCache
from kpy_components.apiserver.storage.interface import Compacted, Storage, StorageError

from .client_cas import announce_client_cas
from .aggregator import Aggregator
from .config import ServerConfig, TLSConfig
from .admission.policy_typecheck import PolicyTypeChecker
from .crds.controller import CRDController
from .crds.conversion_webhook import close_callers
from .kubelet import KubeletClient
from .http import health
from .http.app import AppState, build_app
from .http.context import Security, insecure_allow_all
from .registry import bootstrap
from .registry.api import API
from .registry.instrumented import InstrumentedStorage

log = logging.getLogger(__name__)
SHUTDOWN_GRACE = 10.0  # seconds in-flight requests get to finish on shutdown
STARTUP_STACKS_AFTER = 150.0  # seconds without a finished bootstrap before the stacks are dumped (unit: 180 s)
_STORAGE_CHECK_TIMEOUT = 2.0


def tls_context(tls: TLSConfig, requestheader_ca_file: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+, client certificates optional but verified against the client CA and the requestheader CA (whose
    names the handshake announces), HTTP/1.1 only in ALPN (exec and port-forward upgrades need HTTP/1.1)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    ca_files = [tls.client_ca_file, *([requestheader_ca_file] if requestheader_ca_file else [])]
    for ca_file in ca_files:
        context.load_verify_locations(cafile=str(ca_file))
    context.verify_mode = ssl.CERT_OPTIONAL
    if not announce_client_cas(context, *ca_files):
        log.warning("the TLS handshake will not name the acceptable client CAs (no OpenSSL context found)")
    context.set_alpn_protocols(["http/1.1"])
    return context


def open_storage(config: ServerConfig) -> Storage:
    transformer = None
    if config.storage.encryption_config_file:
        from kpy_components.apiserver import encryption

        transformer = encryption.load_config(config.storage.encryption_config_file)
    if config.storage.backend == "etcd":
        from kpy_components.apiserver.storage.etcd import EtcdStorage
        from kpy_components.etcd.client import AsyncEtcdClient
        from kpy_components.etcd.transport import TLSFiles

        tls = TLSFiles(config.storage.etcd_ca_file, config.storage.etcd_cert_file, config.storage.etcd_key_file)
        return EtcdStorage(AsyncEtcdClient(list(config.storage.etcd_servers), tls), transformer)
    from kpy_components.apiserver.storage.sqlite import SqliteStorage

    return SqliteStorage(config.storage.sqlite_path, transformer)


def request_header_authenticator(config: ServerConfig):
    """The requestheader authenticator when configured (None otherwise); ValueError naming an unreadable CA file."""
    if config.requestheader is None:
        return None
    from kpy_components.apiserver.auth.requestheader import RequestHeaderAuthenticator, read_cas

    return RequestHeaderAuthenticator(config.requestheader, read_cas(config.tls.client_ca_file,
                                                                     "tls.client_ca_file"))


def build_security(config: ServerConfig, api: API, allow_all: bool):
    """(Security, runtime to start and close or None). `allow_all` (--insecure-allow-all, development only) keeps
    x509 authentication but allows every request."""
    request_header = request_header_authenticator(config)
    if allow_all:
        from kpy_components.apiserver.auth.authn import Authenticator

        log.warning("Started with --insecure-allow-all: EVERY authenticated request is allowed (development only)")
        return insecure_allow_all(Authenticator(request_header=request_header).authenticate), None
    from kpy_components.apiserver.auth.security import SecurityConfig, SecurityRuntime

    account = config.service_account
    runtime = SecurityRuntime(api, SecurityConfig.from_files(
        account.signing_key_file, account.key_files, issuer=account.issuer,
        disabled_admission_plugins=config.disabled_admission_plugins, request_header=request_header))
    return runtime.security, runtime


class APIServer:
    def __init__(self, config: ServerConfig, *, allow_all: bool = False, cache_settings: CacheSettings | None = None):
        self.config = config
        self.cache_settings = cache_settings
        self.allow_all = allow_all
        self.metrics = health.Metrics()
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task] = []
        self._bootstrapped = asyncio.Event()
        self.storage: Storage | None = None
        self.security_runtime = None
        self.cache: WatchCache | None = None
        self.kubelets: KubeletClient | None = None
        self.aggregator: Aggregator | None = None

    @property
    def address(self) -> str:
        return self.config.advertise_address or (self.config.bind_address if self.config.bind_address not in
                                                 ("0.0.0.0", "::") else "127.0.0.1")

    async def start(self) -> None:
        config = self.config
        # Evidence for a rare hang (the event loop silent after "Started serving", SIGTERM unanswered): if the
        # bootstrap has not finished before systemd's start timeout nears, every thread's stack goes to stderr.
        faulthandler.dump_traceback_later(STARTUP_STACKS_AFTER, exit=False)
        self.storage = InstrumentedStorage(open_storage(config), self.metrics.storage)
        self.cache = WatchCache(self.storage, self.cache_settings)
        api = API(catalog.default_registry(), self.storage, self.cache, config.service_cluster_ip_range)
        api.node_ports.first, api.node_ports.last = config.service_node_port_range
        security, self.security_runtime = build_security(config, api, self.allow_all)
        self.kubelets = KubeletClient(config.kubelet_client) if config.kubelet_client else None
        self.aggregator = Aggregator(api, config.proxy_client)
        state = AppState(api=api, security=security, metrics=self.metrics,
                         server_address=f"{self.address}:{config.secure_port}",
                         live_checks={"ping": _ok},
                         ready_checks={"ping": _ok, "storage": self._storage_check,
                                       "informer-sync": self._cache_check, "bootstrap": self._bootstrap_check},
                         kubelets=self.kubelets, aggregator=self.aggregator)
        state.live_checks["storage"] = self._storage_check
        app = build_app(state)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None,
                                     shutdown_timeout=SHUTDOWN_GRACE)
        await self._runner.setup()
        site = web.TCPSite(self._runner, config.bind_address, config.secure_port, ssl_context=tls_context(config.tls, config.requestheader and config.requestheader.client_ca_file),
                           backlog=1024)
        await site.start()
        log.info("Started serving address=%s port=%d storage=%s", config.bind_address, config.secure_port,
                 config.storage.backend)
        if config.storage.compaction_interval > 0:
            self._tasks.append(asyncio.create_task(run_compactor(self.storage, config.storage.compaction_interval),
                                                   name="apiserver-compactor"))
        self._tasks.append(asyncio.create_task(self._prepare(api, security), name="apiserver-bootstrap"))

    async def _prepare(self, api: API, security: Security) -> None:
        """Prime the cache and create the default objects, retrying until storage answers."""
        delay = 0.5
        while True:
            try:
                await self.cache.prime(api.prefixes())
                crds = CRDController(api)
                await crds.start()  # custom resources are served before /readyz says ready
                await bootstrap.create_defaults(api, self.config.secure_port, security.bootstrap)
                if self.security_runtime is not None:
                    revision = await self.cache.current_revision()  # events after it reach the authorizers
                    for line in await self.security_runtime.start():
                        log.info("Reconciled default policy %s", line)
                    self._tasks.append(asyncio.create_task(self._feed_authorizers(api, revision),
                                                           name="apiserver-authorizer-feed"))
                self._tasks.append(asyncio.create_task(crds.run(), name="apiserver-crd-controller"))
                self._tasks.append(asyncio.create_task(PolicyTypeChecker(api).run(), name="apiserver-policy-types"))
                self._tasks.append(asyncio.create_task(self.aggregator.run(), name="apiserver-aggregator"))
                reconciler = bootstrap.EndpointsReconciler(api, self.storage, self.address,
                                                           self.config.secure_port)
                await reconciler.reconcile()
                break
            except Exception as error:  # storage down at start: keep trying, /readyz says why
                log.warning("Failed to prepare storage (%s); retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        collector.freeze_startup_heap()  # the primed caches too: ~50,000 objects
        faulthandler.cancel_dump_traceback_later()
        self._bootstrapped.set()
        log.info("Finished bootstrap: caches primed, default objects present")
        if systemd.notify_ready():  # Type=notify units: `systemctl start` returns now
            log.info("Notified systemd ready=1")
        await reconciler.run()

    async def _feed_authorizers(self, api: API, revision: int) -> None:
        """Forward RBAC and pod watch events from the watch cache to the authorizers' views, so a granted or revoked
        permission counts within milliseconds rather than at the next periodic re-list (the re-list stays as a
        backstop). A watch that falls behind a compaction re-lists the views and goes on from there."""
        async def follow(group: str, plural: str) -> None:
            prefix, last = api.store(group, plural).prefix(), revision
            while True:
                try:
                    async for event in self.cache.watch(prefix, last):
                        self.security_runtime.observe(group, plural, event.type, event.object)
                        last = event.revision
                except Compacted:
                    last = await self.cache.current_revision()
                    await self.security_runtime.resync()
                except StorageError as error:  # storage briefly away: the periodic re-list covers the gap
                    log.warning("Authorizer feed interrupted resource=%s error=%s", plural, error)
                    await asyncio.sleep(1.0)

        await asyncio.gather(*(follow(group, plural) for group, plural in self.security_runtime.observed()))

    async def _storage_check(self) -> str | None:
        try:
            async with asyncio.timeout(_STORAGE_CHECK_TIMEOUT):
                await self.storage.current_revision()
        except Exception as error:  # any failure means not ready, with its reason
            return f"storage unreachable: {error or type(error).__name__}"
        return None

    async def _cache_check(self) -> str | None:
        return None if self.cache and self.cache.ready.is_set() else "watch cache not primed yet"

    async def _bootstrap_check(self) -> str | None:
        return None if self._bootstrapped.is_set() else "default objects not created yet"

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()  # on_shutdown ends every watch first
        if self.security_runtime is not None:
            await self.security_runtime.close()
        if self.kubelets is not None:
            await self.kubelets.close()
        if self.aggregator is not None:
            await self.aggregator.close()
        await close_callers()  # CRD conversion webhooks'
        if self.cache is not None:
            await self.cache.close()
        log.info("Stopped serving")


async def _ok() -> str | None:
    return None
