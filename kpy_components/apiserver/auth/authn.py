"""Authentication: who is calling. Tried in kube-apiserver's order, the first success wins:
  0. a front proxy's client certificate (requestheader CA) with the user in its headers (requestheader.py);
  1. an x509 client certificate, already verified by the TLS layer against the client CA: user = CN, groups = O
     values (+ system:authenticated);
  2. `Authorization: Bearer <token>`: a service-account JWT, or a bootstrap token `<id>.<secret>`.
No usable credential gives None: the app answers 401 "Unauthorized" (anonymous requests are disabled).

A bearer token that authenticated is remembered for TOKEN_CACHE_SECONDS (never past its exp), as kube-apiserver's
token cache does (10 s): verifying a service-account JWT and looking up its account and bound objects tripled the
CPU of a request. A deleted account or bound pod therefore stops a token within those seconds, as upstream.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from kpy_components.apiserver.auth.bootstrap_tokens import BootstrapTokenAuthenticator, looks_like_bootstrap_token
from kpy_components.apiserver.auth.requestheader import RequestHeaderAuthenticator
from kpy_components.apiserver.auth.tokens import (AUTHENTICATED, InvalidToken, ServiceAccountTokenValidator,
                                                  TokenResult)
from kpy_components.apiserver.http.context import User

log = logging.getLogger(__name__)


def user_from_certificate(peercert: dict | None) -> User | None:
    """The user of a verified peer certificate (`ssl.SSLSocket.getpeercert()` form), None without a usable CN."""
    if not peercert:
        return None
    names, organizations = [], []
    for rdn in peercert.get("subject", ()):
        for attribute, value in rdn:
            if attribute == "commonName":
                names.append(value)
            elif attribute == "organizationName":
                organizations.append(value)
    if not names or not names[0]:
        return None
    groups = tuple(dict.fromkeys([*organizations, AUTHENTICATED]))
    return User(names[0], groups)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), None otherwise."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and " " not in token else None


def peer_certificate(request) -> dict | None:
    """The verified client certificate of an aiohttp request (None over plain HTTP or without a certificate)."""
    transport = getattr(request, "transport", None)
    return transport.get_extra_info("peercert") if transport is not None else None


def peer_certificate_der(request) -> bytes | None:
    """The verified client certificate of an aiohttp request in DER form."""
    transport = getattr(request, "transport", None)
    tls = transport.get_extra_info("ssl_object") if transport is not None else None
    return tls.getpeercert(binary_form=True) if tls is not None else None


TOKEN_CACHE_SECONDS = 10.0  # kube-apiserver's token success cache TTL
TOKEN_CACHE_SIZE = 4096  # tokens remembered at most (the least recently used go first)


@dataclass
class Authenticator:
    service_accounts: ServiceAccountTokenValidator | None = None
    bootstrap_tokens: BootstrapTokenAuthenticator | None = None
    request_header: RequestHeaderAuthenticator | None = None
    clock: Callable[[], float] = time.time  # wall clock: token expiry is in epoch seconds
    _remembered: OrderedDict = field(default_factory=OrderedDict, repr=False)  # sha256(token) -> (until, user)

    async def authenticate(self, request) -> User | None:
        """http.context.Authenticate."""
        peer = peer_certificate(request)
        if peer and self.request_header is not None and self.request_header.from_proxy(peer_certificate_der(request)):
            certificate_user = user_from_certificate(peer)
            user = self.request_header.user(certificate_user.name if certificate_user else "", request.headers)
            if user is not None:
                return user
            if not self.request_header.also_client_ca:
                peer = None  # a proxy's certificate without a proxied user is no x509 user: try the token
        user = user_from_certificate(peer)
        if user is not None:
            return user
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return None
        key, now = hashlib.sha256(token.encode()).digest(), self.clock()
        remembered = self._remembered.get(key)
        if remembered is not None and remembered[0] > now:
            self._remembered.move_to_end(key)
            return remembered[1]
        try:
            result = await self.authenticate_token(token)
        except InvalidToken as error:
            self._remembered.pop(key, None)
            log.info("Refused a bearer token reason=%r path=%s", str(error), request.path)
            return None
        until = now + TOKEN_CACHE_SECONDS if result.expires is None else min(now + TOKEN_CACHE_SECONDS, result.expires)
        self._remembered[key] = (until, result.user)
        self._remembered.move_to_end(key)
        while len(self._remembered) > TOKEN_CACHE_SIZE:
            self._remembered.popitem(last=False)
        return result.user

    async def authenticate_token(self, token: str, audiences: tuple[str, ...] | None = None) -> TokenResult:
        """The user a bearer token stands for (TokenReview uses this too); InvalidToken saying why not."""
        if self.bootstrap_tokens is not None and looks_like_bootstrap_token(token):
            user = await self.bootstrap_tokens.validate(token)
            return TokenResult(user, tuple(audiences or ()))
        if self.service_accounts is not None and ServiceAccountTokenValidator.looks_like_jwt(token):
            return await self.service_accounts.validate(token, audiences)
        raise InvalidToken("invalid bearer token")
