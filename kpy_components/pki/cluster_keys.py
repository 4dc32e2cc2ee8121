"""Cluster-wide secrets that are generated once and then kept forever: rotating them is a deliberate operation
(a new service-account key invalidates every token; a new encryption key makes stored Secrets unreadable)."""
import base64
import os

import yaml

from kpy_components.pki import keys

SERVICE_ACCOUNT_KEY = "sa.key"
SERVICE_ACCOUNT_PUB = "sa.pub"
ENCRYPTION_CONFIG = "encryption-config.yaml"
_AESCBC_KEY_BYTES = 32  # AES-256


def service_account_public(private_pem: bytes) -> bytes | None:
    """The public half of an existing service-account key, or None when the file is not a usable key."""
    key = keys.load_private(private_pem)
    return keys.public_pem(key) if key else None


def new_service_account_key(key_type: str) -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of a fresh signing key."""
    key = keys.generate(key_type)
    return keys.private_pem(key), keys.public_pem(key)


def new_encryption_config() -> bytes:
    """An EncryptionConfiguration that encrypts Secrets with aescbc and a fresh 32-byte key; `identity` last so
    Secrets written before encryption was turned on stay readable."""
    secret = base64.b64encode(os.urandom(_AESCBC_KEY_BYTES)).decode()
    config = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": ["secrets"],
                "providers": [{"aescbc": {"keys": [{"name": "key1", "secret": secret}]}}, {"identity": {}}],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False).encode()
