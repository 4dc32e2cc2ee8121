"""From a ClientConfig to what the HTTP session needs: an SSLContext (CA, client certificate) and the bearer token.

The stdlib can only load a client certificate and key from files, so they are written to a private temporary
directory, loaded, and removed at once.
"""
from __future__ import annotations

import os
import ssl
import tempfile
import time
from pathlib import Path

from .errors import KubeconfigError
from .kubeconfig import ClientConfig

TOKEN_FILE_REREAD = 60.0  # seconds; as client-go, so a rotated service-account token is used within a minute


def ssl_context(config: ClientConfig) -> ssl.SSLContext:
    """Verifies the server against the config's CA only (the system's CAs when there is none)."""
    if config.ca_pem and not config.insecure_skip_tls_verify:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=config.ca_pem.decode("ascii"))
    else:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if config.insecure_skip_tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.cert_pem and config.key_pem:
        with tempfile.TemporaryDirectory(prefix="kpy-client-") as directory:
            cert, key = Path(directory, "client.crt"), Path(directory, "client.key")
            for path, data in ((cert, config.cert_pem), (key, config.key_pem)):
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as output:
                    output.write(data)
            try:
                context.load_cert_chain(cert, key)
            except ssl.SSLError as error:
                raise KubeconfigError(f"{config.source}: the client certificate and key do not belong together: "
                                      f"{error.reason or error}") from None
    return context


class BearerToken:
    """`Authorization: Bearer <token>`: a fixed token, or a token file re-read every TOKEN_FILE_REREAD seconds."""

    def __init__(self, token: str | None, token_file: Path | None):
        self._token, self._file = token, token_file
        self._read_at = -TOKEN_FILE_REREAD

    def current(self) -> str:
        if self._file and time.monotonic() - self._read_at >= TOKEN_FILE_REREAD:
            try:
                self._token = self._file.read_text().strip()
                self._read_at = time.monotonic()
            except OSError as error:
                if not self._token:
                    raise KubeconfigError(f"tokenFile {self._file}: cannot read: {error.strerror or error}") from None
        return self._token or ""

    def header(self) -> str:
        """The Authorization header's value for the next request."""
        return f"Bearer {self.current()}"


def auth(config: ClientConfig) -> BearerToken | None:
    return BearerToken(config.token, config.token_file) if config.token or config.token_file else None
