"""Bootstrap tokens (`<id>.<secret>`, 6 + 16 characters of [a-z0-9]) backed by Secrets `bootstrap-token-<id>` of type
bootstrap.kubernetes.io/token in kube-system, as kubeadm joins use them. User `system:bootstrap:<id>`, groups
system:bootstrappers plus the secret's auth-extra-groups."""
from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from kpy_components.api.meta import parse_rfc3339
from kpy_components.apiserver.auth.tokens import AUTHENTICATED, Clock, InvalidToken, Lookup
from kpy_components.apiserver.http.context import User

TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_NAMESPACE = "kube-system"
BOOTSTRAPPERS = "system:bootstrappers"
_EXTRA_GROUP_RE = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")


def looks_like_bootstrap_token(token: str) -> bool:
    return bool(TOKEN_RE.match(token))


def _decoded(data: dict, field: str) -> str:
    try:
        return base64.b64decode(data.get(field) or "", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ""


@dataclass
class BootstrapTokenAuthenticator:
    lookup: Lookup
    clock: Clock = time.time

    async def validate(self, token: str) -> User:
        match = TOKEN_RE.match(token)
        if not match:
            raise InvalidToken("invalid bearer token")
        token_id, token_secret = match.groups()
        secret = await self.lookup("secrets", SECRET_NAMESPACE, f"bootstrap-token-{token_id}")
        if secret is None or (secret.get("metadata") or {}).get("deletionTimestamp"):
            raise InvalidToken(f"no bootstrap token with id {token_id}")
        data = secret.get("data") or {}
        if secret.get("type") != SECRET_TYPE or _decoded(data, "token-id") != token_id:
            raise InvalidToken(f"secret bootstrap-token-{token_id} is not a bootstrap token")
        if not hmac.compare_digest(_decoded(data, "token-secret").encode(), token_secret.encode()):
            raise InvalidToken(f"bootstrap token {token_id}: the secret does not match")
        if _decoded(data, "usage-bootstrap-authentication") != "true":
            raise InvalidToken(f"bootstrap token {token_id} is not usable for authentication")
        expiration = _decoded(data, "expiration")
        if expiration and self._expired(expiration):
            raise InvalidToken(f"bootstrap token {token_id} has expired")
        extra = [g.strip() for g in _decoded(data, "auth-extra-groups").split(",") if g.strip()]
        if not all(_EXTRA_GROUP_RE.match(g) for g in extra):
            raise InvalidToken(f"bootstrap token {token_id}: auth-extra-groups must start with system:bootstrappers:")
        return User(f"system:bootstrap:{token_id}", (BOOTSTRAPPERS, *extra, AUTHENTICATED))

    def _expired(self, expiration: str) -> bool:
        try:
            return parse_rfc3339(expiration) < datetime.fromtimestamp(self.clock(), timezone.utc)
        except ValueError:
            return True  # an unreadable expiration never grants access
