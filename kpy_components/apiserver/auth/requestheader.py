"""Request-header authentication (kube-apiserver's --requestheader-* flags): a front proxy, above all another API
server's aggregation layer, authenticates the user itself and says who it is in headers; the headers count only on
a connection whose client certificate was signed by the requestheader client CA and, when `allowed_names` is set,
has one of those common names.

The TLS layer trusts the client CA and the requestheader CA together (one handshake cannot ask for either), so this
decides which one signed each certificate: a certificate of the requestheader CA is never an x509 user of its own
unless that CA is also a client CA, as upstream, where each authenticator verifies against its own pool.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509

from kpy_components.apiserver.auth.tokens import AUTHENTICATED
from kpy_components.apiserver.http.context import User
from kpy_components.pki.issue import signed_by

_VERDICTS_KEPT = 1024  # certificates whose signer is remembered (a handful in practice: the front proxies)


@dataclass(frozen=True)
class RequestHeaderConfig:
    client_ca_file: Path
    allowed_names: tuple[str, ...] = ()  # empty: any certificate of the CA
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_headers_prefix: tuple[str, ...] = ("X-Remote-Extra-",)


def read_cas(path: Path, field: str) -> list[x509.Certificate]:
    """The CA certificates in a PEM file; ValueError naming `field` and the file when there are none."""
    try:
        certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as error:
        raise ValueError(f"{field}: cannot read {path}: {error.strerror}") from None
    except ValueError:
        certificates = []
    if not certificates:
        raise ValueError(f"{field}: {path} holds no PEM certificate")
    return certificates


class RequestHeaderAuthenticator:
    def __init__(self, config: RequestHeaderConfig, client_cas: list[x509.Certificate]):
        self.config = config
        self.cas = read_cas(config.client_ca_file, "requestheader.client_ca_file")
        # A CA that is both: its certificates may still be x509 users when they carry no (allowed) proxy identity.
        self.also_client_ca = any(ca in client_cas for ca in self.cas)
        self._signed_here: OrderedDict[bytes, bool] = OrderedDict()

    def from_proxy(self, der: bytes) -> bool:
        """Whether the verified peer certificate `der` was signed by the requestheader CA (remembered per
        certificate: keep-alive connections of the same proxy ask again on every request)."""
        verdict = self._signed_here.get(der)
        if verdict is None:
            certificate = x509.load_der_x509_certificate(der)
            verdict = any(signed_by(certificate, ca) for ca in self.cas)
            self._signed_here[der] = verdict
            while len(self._signed_here) > _VERDICTS_KEPT:
                self._signed_here.popitem(last=False)
        return verdict

    def user(self, common_name: str, headers) -> User | None:
        """The user the proxy names in `headers` (a multidict), None when the certificate's name is not allowed or
        no username header is set (then the request is judged by its other credentials)."""
        if self.config.allowed_names and common_name not in self.config.allowed_names:
            return None
        name = next((value for header in self.config.username_headers
                     for value in headers.getall(header, ()) if value), "")
        if not name:
            return None
        groups = [value for header in self.config.group_headers for value in headers.getall(header, ())]
        extra: dict[str, list[str]] = {}
        for prefix in self.config.extra_headers_prefix:
            for header, value in headers.items():
                if header.lower().startswith(prefix.lower()) and len(header) > len(prefix):
                    extra.setdefault(unquote(header[len(prefix):]).lower(), []).append(value)
        return User(name, tuple(dict.fromkeys([*groups, AUTHENTICATED])),
                    extra={key: tuple(values) for key, values in extra.items()})
