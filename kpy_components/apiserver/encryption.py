"""Encryption at rest: an EncryptionConfiguration (apiserver.config.k8s.io/v1) as a storage `Transformer`.

Wire format as Kubernetes writes it, so data moves between kpy and kube-apiserver:
    aescbc     k8s:enc:aescbc:v1:<key name>:    + 16-byte IV + AES-CBC(PKCS#7 padded plaintext)
    aesgcm     k8s:enc:aesgcm:v1:<key name>:    + 12-byte nonce + AES-GCM(plaintext, AAD = storage key) + tag
    secretbox  k8s:enc:secretbox:v1:<key name>: + 24-byte nonce + XSalsa20-Poly1305 box
    identity   the plaintext itself

Writes use the first provider's first key of the first resource entry that matches the storage key; reads pick the
provider and key named by the prefix, so after a rotation (a new first key) values written with the old keys stay
readable. Plaintext (no `k8s:enc:` prefix) is readable only when `identity` is one of the entry's providers.
Keys look like `/registry/<resource>[.<group>]/...` (api.meta); resources not named by any entry are stored as is.
"""
from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from kpy_components.apiserver.storage.interface import StorageError

API_VERSION = "apiserver.config.k8s.io/v1"
KIND = "EncryptionConfiguration"
_ENCRYPTED = b"k8s:enc:"
_AES_KEY_SIZES = (16, 24, 32)
_SECRETBOX_KEY_SIZE = 32


class EncryptionConfigError(ValueError):
    """A bad EncryptionConfiguration; `problems` holds every problem, each starting with its field path."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source}: invalid EncryptionConfiguration:\n  " + "\n  ".join(problems))


class DecryptionError(StorageError):
    """A stored value no configured key can read (wrong key, rotated away, tampered). The value is never shown."""


# --- ciphers ------------------------------------------------------------------------------------------------------

class _Key:
    """One named key of one provider: seals and opens values, with the provider's prefix handled by the caller."""
    provider = ""

    def __init__(self, name: str, secret: bytes):
        self.name = name
        self.prefix = f"k8s:enc:{self.provider}:v1:{name}:".encode()
        self._secret = secret

    def seal(self, storage_key: str, plaintext: bytes) -> bytes:
        raise NotImplementedError

    def open(self, storage_key: str, sealed: bytes) -> bytes:
        raise NotImplementedError


class _AESCBCKey(_Key):
    provider = "aescbc"
    _BLOCK = 16

    def seal(self, storage_key, plaintext):
        iv = os.urandom(self._BLOCK)
        padder = padding.PKCS7(self._BLOCK * 8).padder()
        padded = padder.update(plaintext) + padder.finalize()
        encryptor = Cipher(algorithms.AES(self._secret), modes.CBC(iv)).encryptor()
        return iv + encryptor.update(padded) + encryptor.finalize()

    def open(self, storage_key, sealed):
        if len(sealed) < 2 * self._BLOCK or len(sealed) % self._BLOCK:
            raise ValueError("the data is not a whole number of AES blocks after the IV")
        decryptor = Cipher(algorithms.AES(self._secret), modes.CBC(sealed[:self._BLOCK])).decryptor()
        padded = decryptor.update(sealed[self._BLOCK:]) + decryptor.finalize()
        unpadder = padding.PKCS7(self._BLOCK * 8).unpadder()
        return unpadder.update(padded) + unpadder.finalize()  # ValueError on bad padding (wrong key)


class _AESGCMKey(_Key):
    provider = "aesgcm"
    _NONCE = 12

    def seal(self, storage_key, plaintext):
        nonce = os.urandom(self._NONCE)
        return nonce + AESGCM(self._secret).encrypt(nonce, plaintext, storage_key.encode())

    def open(self, storage_key, sealed):
        try:  # the storage key is authenticated: a value copied under another key does not open
            return AESGCM(self._secret).decrypt(sealed[:self._NONCE], sealed[self._NONCE:], storage_key.encode())
        except InvalidTag as error:
            raise ValueError("authentication failed") from error


class _SecretboxKey(_Key):
    provider = "secretbox"

    def seal(self, storage_key, plaintext):
        return bytes(SecretBox(self._secret).encrypt(plaintext))  # nonce (24 bytes) + box, as Go's secretbox.Seal

    def open(self, storage_key, sealed):
        try:
            return SecretBox(self._secret).decrypt(sealed)
        except CryptoError as error:
            raise ValueError("authentication failed") from error


_KEYED_PROVIDERS: dict[str, tuple[type[_Key], tuple[int, ...]]] = {
    "aescbc": (_AESCBCKey, _AES_KEY_SIZES),
    "aesgcm": (_AESGCMKey, _AES_KEY_SIZES),
    "secretbox": (_SecretboxKey, (_SECRETBOX_KEY_SIZE,)),
}


# --- configuration ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResourceEncryption:
    """One `resources[]` entry: which resources, and their providers' keys in order (write key first)."""
    resources: tuple[str, ...]
    keys: tuple[_Key, ...]  # every key of every keyed provider, in configuration order
    identity: bool  # plaintext readable (and written, when identity is the first provider)
    write_identity: bool

    def matches(self, resource: str) -> bool:
        """`resource` as in storage keys: `secrets`, `deployments.apps`. Patterns: exact, `*.<group>`, `*.` (core
        group), `*.*` (everything)."""
        group = resource.partition(".")[2]
        return any(p == resource or p == "*.*" or (p.startswith("*.") and p[2:] == group) for p in self.resources)


def _parse_keys(provider: str, spec, path: str, problems: list[str]) -> list[_Key]:
    key_class, sizes = _KEYED_PROVIDERS[provider]
    entries = spec.get("keys") if isinstance(spec, dict) else None
    if not isinstance(entries, list) or not entries:
        problems.append(f"{path}.keys: Required value: at least one key")
        return []
    keys, names = [], set()
    for index, entry in enumerate(entries):
        at = f"{path}.keys[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{at}: must be a mapping with name and secret")
            continue
        name, secret = entry.get("name"), entry.get("secret")
        if not isinstance(name, str) or not name:
            problems.append(f"{at}.name: Required value")
        elif ":" in name:
            problems.append(f'{at}.name: Invalid value: "{name}": may not contain ":"')
        elif name in names:
            problems.append(f'{at}.name: Duplicate value: "{name}"')
        names.add(name)
        raw = _decode_secret(secret, f"{at}.secret", sizes, problems)
        if raw is not None and isinstance(name, str) and name and ":" not in name:
            keys.append(key_class(name, raw))
    return keys


def _decode_secret(secret, path: str, sizes: tuple[int, ...], problems: list[str]) -> bytes | None:
    """The key bytes; the secret's value is never echoed into a message."""
    if not isinstance(secret, str) or not secret:
        problems.append(f"{path}: Required value")
        return None
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        problems.append(f'{path}: Invalid value: "REDACTED": secrets must be base64 encoded')
        return None
    if len(raw) not in sizes:
        expected = " ".join(str(s) for s in sizes)
        problems.append(f'{path}: Invalid value: "REDACTED": secret is not of the expected length, got '
                        f"{len(raw)}, expected one of [{expected}]")
        return None
    return raw


def _parse_entry(entry, path: str, problems: list[str]) -> ResourceEncryption | None:
    if not isinstance(entry, dict):
        problems.append(f"{path}: must be a mapping with resources and providers")
        return None
    resources = entry.get("resources")
    if not isinstance(resources, list) or not resources or not all(isinstance(r, str) and r for r in resources):
        problems.append(f"{path}.resources: Required value: a list of resource names such as secrets")
        resources = []
    providers = entry.get("providers")
    if not isinstance(providers, list) or not providers:
        problems.append(f"{path}.providers: Required value: at least one provider")
        return None
    keys: list[_Key] = []
    identity = write_identity = False
    for index, provider in enumerate(providers):
        at = f"{path}.providers[{index}]"
        kinds = list(provider) if isinstance(provider, dict) else []
        if len(kinds) != 1:
            problems.append(f"{at}: must set exactly one of aescbc, aesgcm, secretbox, identity"
                            + (f" (found {', '.join(kinds)})" if kinds else ""))
            continue
        kind = kinds[0]
        if kind == "identity":
            identity = True
            write_identity = write_identity or index == 0
        elif kind in _KEYED_PROVIDERS:
            keys.extend(_parse_keys(kind, provider[kind], f"{at}.{kind}", problems))
        elif kind == "kms":
            problems.append(f"{at}.kms: Unsupported value: kpy supports aescbc, aesgcm, secretbox and identity")
        else:
            problems.append(f'{at}: Unsupported value: "{kind}": supported values: "aescbc", "aesgcm", '
                            f'"secretbox", "identity"')
    return ResourceEncryption(tuple(resources), tuple(keys), identity, write_identity)


def parse_config(document, source: str = "EncryptionConfiguration") -> list[ResourceEncryption]:
    """The entries of a parsed EncryptionConfiguration; EncryptionConfigError naming every bad field."""
    if not isinstance(document, dict):
        raise EncryptionConfigError(source, ["the document must be a mapping"])
    problems = []
    if document.get("apiVersion") != API_VERSION:
        problems.append(f'apiVersion: Unsupported value: {document.get("apiVersion")!r}: supported values: '
                        f'"{API_VERSION}"')
    if document.get("kind") != KIND:
        problems.append(f'kind: Unsupported value: {document.get("kind")!r}: supported values: "{KIND}"')
    entries = document.get("resources")
    if not isinstance(entries, list) or not entries:
        problems.append("resources: Required value: at least one entry")
        entries = []
    parsed = [_parse_entry(entry, f"resources[{index}]", problems) for index, entry in enumerate(entries)]
    if problems:
        raise EncryptionConfigError(source, problems)
    return [entry for entry in parsed if entry is not None]


def load_config(path: str | Path) -> EncryptionTransformer:
    """An EncryptionTransformer from a configuration file; EncryptionConfigError for a missing/bad file."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise EncryptionConfigError(str(path), [f"cannot read the file: {error.strerror}"]) from error
    except yaml.YAMLError as error:
        raise EncryptionConfigError(str(path), [f"not valid YAML: {error}"]) from error
    return EncryptionTransformer(parse_config(document, str(path)))


# --- the transformer ----------------------------------------------------------------------------------------------

def resource_of(storage_key: str) -> str:
    """`secrets` from `/registry/secrets/ns/name`; `deployments.apps` from `/registry/deployments.apps/...`."""
    parts = storage_key.lstrip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "registry" else parts[0]


class EncryptionTransformer:
    """storage.interface.Transformer over an EncryptionConfiguration's entries (first matching entry wins)."""

    def __init__(self, entries: list[ResourceEncryption]):
        self._entries = entries
        self._by_resource: dict[str, ResourceEncryption | None] = {}

    def _entry(self, storage_key: str) -> ResourceEncryption | None:
        resource = resource_of(storage_key)
        if resource not in self._by_resource:
            self._by_resource[resource] = next((e for e in self._entries if e.matches(resource)), None)
        return self._by_resource[resource]

    def to_storage(self, key: str, data: bytes) -> bytes:
        entry = self._entry(key)
        if entry is None or entry.write_identity or not entry.keys:
            return data
        write_key = entry.keys[0]
        return write_key.prefix + write_key.seal(key, data)

    def from_storage(self, key: str, data: bytes) -> bytes:
        entry = self._entry(key)
        if not data.startswith(_ENCRYPTED):
            if entry is None or entry.identity:
                return data
            raise DecryptionError(f"{key}: the stored value is not encrypted and identity is not a configured "
                                  "provider for this resource")
        candidates = entry.keys if entry else ()
        for candidate in candidates:
            if data.startswith(candidate.prefix):
                try:
                    return candidate.open(key, data[len(candidate.prefix):])
                except ValueError as error:
                    raise DecryptionError(f"{key}: {candidate.provider} key {candidate.name!r} cannot decrypt "
                                          f"the stored value ({error})") from None
        label = data[len(_ENCRYPTED):].split(b":", 3)
        named = ":".join(part.decode("ascii", "replace") for part in label[:3])
        raise DecryptionError(f"{key}: no configured key matches the stored value's prefix k8s:enc:{named}:")

    def is_stale(self, key: str, data: bytes) -> bool:
        """True when `data` was not written with the current write key (a rewrite would re-encrypt it): what a
        storage migration after a key rotation looks for."""
        entry = self._entry(key)
        if entry is None or entry.write_identity or not entry.keys:
            return data.startswith(_ENCRYPTED)
        return not data.startswith(entry.keys[0].prefix)

