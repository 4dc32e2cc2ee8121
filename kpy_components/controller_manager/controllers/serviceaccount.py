"""Service accounts (pkg/controller/serviceaccount):

- ServiceAccountController: every active namespace has a `default` ServiceAccount (recreated when deleted), which
  pods need: the API server's ServiceAccount admission refuses pods whose account is missing.
- TokenController: Secrets of type kubernetes.io/service-account-token naming an account (annotation
  kubernetes.io/service-account.name) get `token` (a legacy JWT signed with serviceAccount.privateKeyFile),
  `namespace` and, when serviceAccount.rootCAFile is set, `ca.crt`; the account's uid is recorded in
  kubernetes.io/service-account.uid. A token Secret whose account is gone (or was recreated with another uid) is
  deleted, as its token no longer authenticates. Runs only when the private key is configured.
"""
from __future__ import annotations

import base64
import logging
from pathlib import Path

from kpy_components.api import legacy_tokens
from kpy_components.api.errors import APIError
from kpy_components.api.meta import annotations_of, deep_copy
from kpy_components.client import is_already_exists, is_conflict, is_forbidden, is_not_found, split_key

from ..controller import Controller
from .pods import is_terminating

log = logging.getLogger(__name__)
DEFAULT_ACCOUNT = "default"


class ServiceAccountController(Controller):
    name = "serviceaccount"

    def setup(self) -> None:
        self.namespaces = self.informer("namespaces")
        self.accounts = self.informer("serviceaccounts")
        self.namespaces.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new))
        self.accounts.add_handler(on_delete=self._account_deleted)

    def _account_deleted(self, account: dict) -> None:
        if account["metadata"].get("name") == DEFAULT_ACCOUNT:
            self.queue.add(account["metadata"]["namespace"])

    async def reconcile(self, key: str) -> None:
        namespace = self.namespaces.store.get(key)
        if namespace is None or (namespace.get("status") or {}).get("phase", "Active") != "Active" \
                or is_terminating(namespace):
            return
        if self.accounts.store.get_object(key, DEFAULT_ACCOUNT) is not None:
            return
        account = {"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": DEFAULT_ACCOUNT, "namespace": key}}
        try:
            await self.client.create(self.accounts.info, account)
        except APIError as error:
            # exists already (our cache is behind) or the namespace started terminating meanwhile
            if not (is_already_exists(error) or is_forbidden(error) or is_not_found(error)):
                raise
            return
        log.info("Created service account namespace=%s name=%s", key, DEFAULT_ACCOUNT)


class TokenController(Controller):
    name = "serviceaccount-token"

    @classmethod
    def wanted(cls, config) -> bool:
        return config.service_account.private_key_file is not None

    def setup(self) -> None:
        settings = self.config.service_account
        key = read_file(settings.private_key_file, "serviceAccount.privateKeyFile")
        try:
            self.signer = legacy_tokens.LegacyTokenSigner(key)
        except ValueError as error:
            raise ValueError(f"serviceAccount.privateKeyFile: {settings.private_key_file}: {error}") from None
        self.root_ca = read_file(settings.root_ca_file, "serviceAccount.rootCAFile") if settings.root_ca_file else None
        self.accounts = self.informer("serviceaccounts")
        self.secrets = self.informer("secrets")
        self.secrets.add_handler(on_add=self._secret_changed, on_update=lambda _old, new: self._secret_changed(new))
        self.accounts.add_handler(on_add=self._account_changed, on_update=lambda _old, new: self._account_changed(new),
                                  on_delete=self._account_changed)

    def _secret_changed(self, secret: dict) -> None:
        if secret.get("type") == legacy_tokens.SECRET_TYPE:
            self.enqueue(secret)

    def _account_changed(self, account: dict) -> None:
        """Its token Secrets may now be fillable (account created) or orphaned (account deleted)."""
        metadata = account["metadata"]
        for secret in self.secrets.store.list(metadata["namespace"]):
            if secret.get("type") == legacy_tokens.SECRET_TYPE and \
                    annotations_of(secret).get(legacy_tokens.NAME_ANNOTATION) == metadata["name"]:
                self.enqueue(secret)

    async def reconcile(self, key: str) -> None:
        secret = self.secrets.store.get(key)
        if secret is None or secret.get("type") != legacy_tokens.SECRET_TYPE or is_terminating(secret):
            return
        namespace, name = split_key(key)
        annotations = annotations_of(secret)
        account_name = annotations.get(legacy_tokens.NAME_ANNOTATION, "")
        account = await self._account(namespace, account_name) if account_name else None
        wanted_uid = annotations.get(legacy_tokens.UID_ANNOTATION)
        if account is None or (wanted_uid and wanted_uid != account["metadata"]["uid"]):
            await self._delete(secret)
            return
        updated = self.filled(secret, account)
        if updated is None:
            return
        try:
            await self.client.update(self.secrets.info, updated)
        except APIError as error:
            if is_conflict(error):
                self.queue.add_rate_limited(key)  # changed meanwhile: the new version comes through the informer
            elif not is_not_found(error):
                raise
            return
        log.info("Filled service account token namespace=%s secret=%s account=%s", namespace, name, account_name)

    def filled(self, secret: dict, account: dict) -> dict | None:
        """The Secret with token, namespace, ca.crt and the uid annotation filled in; None when nothing is missing."""
        metadata = secret["metadata"]
        data = dict(secret.get("data") or {})
        wanted = {"namespace": _b64(metadata["namespace"].encode())}
        if self.root_ca is not None:
            wanted["ca.crt"] = _b64(self.root_ca)
        if not data.get("token"):
            token = self.signer.sign(metadata["namespace"], account["metadata"]["name"], account["metadata"]["uid"],
                                     metadata["name"])
            wanted["token"] = _b64(token.encode())
        uid = account["metadata"]["uid"]
        if all(data.get(k) == v for k, v in wanted.items()) and \
                annotations_of(secret).get(legacy_tokens.UID_ANNOTATION) == uid:
            return None
        updated = deep_copy(secret)
        updated["data"] = {**data, **wanted}
        updated["metadata"].setdefault("annotations", {})[legacy_tokens.UID_ANNOTATION] = uid
        return updated

    async def _account(self, namespace: str, name: str) -> dict | None:
        """From the cache, else from the API (a Secret created right after its account may beat the informer)."""
        account = self.accounts.store.get_object(namespace, name)
        if account is not None:
            return account
        try:
            return await self.client.get(self.accounts.info, name, namespace)
        except APIError as error:
            if is_not_found(error):
                return None
            raise

    async def _delete(self, secret: dict) -> None:
        metadata = secret["metadata"]
        if not await self.client.delete_exactly(self.secrets.info, secret):
            return
        log.info("Deleted token secret of a missing service account namespace=%s secret=%s",
                 metadata["namespace"], metadata["name"])


def read_file(path: Path, setting: str) -> bytes:
    """A configured file's bytes; ValueError naming the setting and the file when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ValueError(f"{setting}: cannot read {path}: {error.strerror}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
