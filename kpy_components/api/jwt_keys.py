"""What service-account JWTs need of a signing key, shared by their issuers (the API server's TokenRequest, the
controller manager's legacy token Secrets) and the API server's validator."""
from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def key_id(public_key) -> str:
    """The `kid` header: base64url(sha256(DER SubjectPublicKeyInfo)), as kube-apiserver computes it."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def signing_algorithm(public_key) -> str:
    """RS256 for RSA keys, ES256/384/512 for ECDSA P-256/384/521; ValueError for anything else."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        algorithms = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        if public_key.curve.name in algorithms:
            return algorithms[public_key.curve.name]
    raise ValueError(f"unsupported service-account key type {type(public_key).__name__}: use RSA or ECDSA P-256/P-384")
