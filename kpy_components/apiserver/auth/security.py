"""Wires authentication, authorization, reviews, token issuing and admission into the http.context.Security the
API server calls. The server builds one `SecurityRuntime(api, config)`, hands `runtime.security` to its app,
awaits `runtime.start()` once storage is up (default policy reconciled, authorizer views primed, periodic re-list
started) and `runtime.close()` at shutdown; it may forward watch events with `runtime.observe(...)` so that
permission changes apply at once rather than at the next re-list.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kpy_components.api.errors import APIError
from kpy_components.apiserver.admission import policies, webhooks
from kpy_components.apiserver.admission.chain import AdmissionChain
from kpy_components.apiserver.admission.claim_resize import PersistentVolumeClaimResize
from kpy_components.apiserver.admission.default_storage_class import DefaultStorageClass
from kpy_components.apiserver.admission.default_tolerations import DefaultTolerationSeconds
from kpy_components.apiserver.admission.limit_ranger import LimitRanger
from kpy_components.apiserver.admission.namespace_lifecycle import NamespaceLifecycle
from kpy_components.apiserver.admission.node_restriction import NodeRestriction
from kpy_components.apiserver.admission.priority import PriorityAdmission
from kpy_components.apiserver.admission.rbac_escalation import RBACEscalation
from kpy_components.apiserver.admission.resource_quota import ResourceQuotaAdmission, WriteStatus
from kpy_components.apiserver.admission.service_account import ServiceAccountAdmission
from kpy_components.apiserver.admission.storage_protection import StorageObjectInUseProtection
from kpy_components.apiserver.auth.authn import Authenticator
from kpy_components.apiserver.auth.authz import PrivilegedGroups, Rules, Union
from kpy_components.apiserver.auth.bootstrap import default_policy
from kpy_components.apiserver.auth.bootstrap_tokens import BootstrapTokenAuthenticator
from kpy_components.apiserver.auth.requestheader import RequestHeaderAuthenticator
from kpy_components.apiserver.auth.node import NodeAuthorizer, NodeGraph, node_name
from kpy_components.apiserver.auth.policy_cache import PolicyCache
from kpy_components.apiserver.auth.rbac import RBACAuthorizer, RBACIndex
from kpy_components.apiserver.auth.reconcile import reconcile
from kpy_components.apiserver.auth.reviews import Reviews
from kpy_components.apiserver.auth.token_request import TokenIssuer
from kpy_components.apiserver.auth.tokens import (DEFAULT_ISSUER, Lookup, ServiceAccountTokenSigner,
                                                  ServiceAccountTokenValidator, load_public_keys)
from kpy_components.apiserver.http.context import InternalAPI, RequestInfo, Security, User

log = logging.getLogger(__name__)


class SecurityConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SecurityConfig:
    """kube-apiserver's --service-account-signing-key-file, --service-account-key-file (extra verification keys,
    for rotation), --service-account-issuer and --api-audiences (default: the issuer)."""
    service_account_signing_key: bytes
    service_account_keys: tuple[bytes, ...] = ()
    issuer: str = DEFAULT_ISSUER
    api_audiences: tuple[str, ...] = ()
    bootstrap_tokens: bool = True
    rbac_resync_seconds: float = 30.0  # re-list of RBAC objects: a backstop to the watch events the server forwards
    pods_resync_seconds: float = 30.0  # re-list of pods for the Node authorizer's graph
    disabled_admission_plugins: frozenset[str] = frozenset()  # names of admission.chain.PLUGINS not to run
    request_header: RequestHeaderAuthenticator | None = None  # front proxies' users (requestheader config)

    @property
    def audiences(self) -> tuple[str, ...]:
        return self.api_audiences or (self.issuer,)

    @classmethod
    def from_files(cls, signing_key_file: str | Path, key_files: tuple[str | Path, ...] = (), **options
                   ) -> SecurityConfig:
        """Read the key files; SecurityConfigError naming the file that is missing or not a key."""
        def read(path) -> bytes:
            try:
                data = Path(path).read_bytes()
            except OSError as error:
                raise SecurityConfigError(f"{path}: cannot read the service-account key: {error.strerror}") from None
            try:
                load_public_keys([data])
            except (ValueError, TypeError) as error:
                raise SecurityConfigError(f"{path}: not a PEM public or private key ({error})") from None
            return data
        return cls(read(signing_key_file), tuple(read(p) for p in key_files), **options)


def object_lookup(api: InternalAPI) -> Lookup:
    """(plural, namespace, name) -> the core-group object or None: what token validation needs."""
    async def lookup(plural: str, namespace: str, name: str) -> dict | None:
        try:
            return await api.get("", plural, namespace, name)
        except APIError as error:
            if error.code == 404:
                return None
            raise
    return lookup


def quota_status_writer(api: InternalAPI) -> WriteStatus | None:
    """Writes ResourceQuota status through the InternalAPI's `update_status(group, plural, namespace, obj)` when it
    has one (the main resource's update keeps status as it was)."""
    update_status = getattr(api, "update_status", None)
    if update_status is None:
        log.warning("The internal API has no update_status: ResourceQuota usage is enforced but not written to "
                    "quota status")
        return None

    async def write(quota: dict) -> dict:
        return await update_status("", "resourcequotas", quota["metadata"]["namespace"], quota)
    return write


class SecurityRuntime:
    def __init__(self, api: InternalAPI, config: SecurityConfig, clock: Callable[[], float] = time.monotonic):
        self.api, self.config = api, config
        lookup = object_lookup(api)
        signer = ServiceAccountTokenSigner(config.service_account_signing_key, config.issuer)
        public_keys = load_public_keys([config.service_account_signing_key, *config.service_account_keys])
        self.authenticator = Authenticator(
            ServiceAccountTokenValidator(public_keys, (config.issuer,), config.audiences, lookup),
            BootstrapTokenAuthenticator(lookup) if config.bootstrap_tokens else None, config.request_header)
        self.cache = PolicyCache(api, RBACIndex(), NodeGraph(), clock)
        self.authorizers = Union([PrivilegedGroups(), NodeAuthorizer(self.cache.graph),
                                  RBACAuthorizer(self.cache.rbac)])
        self.reviews = Reviews(self.authorize, self.rules_for, self.authenticator.authenticate_token)
        limit_ranger = LimitRanger(api)
        escalation = RBACEscalation(api, self.authorize, self.rules_for, self._refresh_rbac)
        priority = PriorityAdmission(api)
        self.webhook_caller = webhooks.Caller(api)
        off = config.disabled_admission_plugins
        self.admission = AdmissionChain(  # kube-apiserver's plugin order; RBAC escalation checks always run
            mutating=[plugin for name, plugin in (
                ("NamespaceLifecycle", NamespaceLifecycle(api)), ("LimitRanger", limit_ranger),
                ("ServiceAccount", ServiceAccountAdmission(api)), ("Priority", priority),
                ("DefaultTolerationSeconds", DefaultTolerationSeconds()),
                ("DefaultStorageClass", DefaultStorageClass(api)),
                ("StorageObjectInUseProtection", StorageObjectInUseProtection()),
                ("MutatingAdmissionWebhook", webhooks.MutatingWebhooks(api, self.webhook_caller))) if name not in off],
            validating=[plugin for name, plugin in (
                ("LimitRanger", limit_ranger), ("NodeRestriction", NodeRestriction(api)), ("Priority", priority),
                ("PersistentVolumeClaimResize", PersistentVolumeClaimResize(api)), ("", escalation),
                ("ValidatingAdmissionPolicy", policies.ValidatingAdmissionPolicies(api, self.authorizers.decide)),
                ("ValidatingAdmissionWebhook", webhooks.ValidatingWebhooks(api, self.webhook_caller)),
                ("ResourceQuota", ResourceQuotaAdmission(api, quota_status_writer(api)))) if name not in off])
        self.token_issuer = TokenIssuer(signer, config.audiences, lookup)
        self.security = Security(authenticate=self.authenticator.authenticate, authorize=self.authorize,
                                 admit=self.admission.admit, virtual=self.reviews.handlers(),
                                 issue_token=self.token_issuer.issue, bootstrap=default_policy())
        self._resync: asyncio.Task | None = None

    async def start(self) -> list[str]:
        """Reconcile the default RBAC policy, prime the authorizers' views, start re-listing. Returns the
        reconciliation report (one line per object created or updated) for the server to log."""
        report = await reconcile(self.api)
        await self.cache.start()
        self._resync = asyncio.create_task(self.cache.run_periodic(self.config.rbac_resync_seconds,
                                                                   self.config.pods_resync_seconds))
        return report

    async def close(self) -> None:
        await self.webhook_caller.close()
        if self._resync is not None:
            self._resync.cancel()
            await asyncio.gather(self._resync, return_exceptions=True)
            self._resync = None

    def observe(self, group: str, plural: str, event_type: str, obj: dict) -> None:
        """Forward a watch event (any resource; those the authorizers hold are applied at once)."""
        self.cache.observe(group, plural, event_type, obj)

    @staticmethod
    def observed() -> list[tuple[str, str]]:
        """(group, plural) of every resource whose watch events the server should forward."""
        return PolicyCache.observed()

    async def resync(self) -> None:
        """Re-list every view (after forwarded events were lost, e.g. to a compaction)."""
        await self.cache.start()

    async def authorize(self, user: User, info: RequestInfo) -> tuple[bool, str]:
        """http.context.Authorize. Before denying, the views are re-listed once (shared with concurrent requests)
        unless a list newer than this request exists, so permissions granted just before are honoured."""
        asked = self.cache.clock()
        allowed, reason = self.authorizers.decide(user, info)
        if allowed:
            return allowed, reason
        sources = [self.cache.rbac_source] + ([self.cache.pods_source] if node_name(user) else [])
        try:
            await asyncio.gather(*(source.refresh_after(asked) for source in sources))
        except (APIError, OSError) as error:
            log.warning("Could not refresh the authorization views before a denial error=%r", str(error))
            return allowed, reason
        return self.authorizers.decide(user, info)

    def rules_for(self, user: User, namespace: str) -> Rules:
        return self.authorizers.rules_for(user, namespace)

    async def _refresh_rbac(self) -> None:
        await self.cache.rbac_source.refresh_after(self.cache.clock())
