"""Bring a PKI directory to what the profiles and the inventory imply, changing only what must change.

CAs, the service-account key and the encryption key are created once and kept. A leaf certificate is re-issued
(with a fresh key) only for a reason `issue.needs_reissue` names or when its key is missing or does not match.
Kubeconfigs are re-rendered and written only when their bytes would differ.
"""
import datetime
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kpy_components.pki import cluster_keys, issue, keys, kubeconfig
from kpy_components.pki.errors import ProfileError, StateError
from kpy_components.pki.inventory import Host, Inventory
from kpy_components.pki.profiles import (
    CaProfile,
    Profiles,
    WantedCert,
    ca_common_name,
    renewal_problems,
    wanted_certificates,
)
from kpy_components.pki.store import PUBLIC, SECRET, Store


@dataclass(frozen=True)
class Change:
    path: str  # relative to the PKI directory; for a certificate, its .crt (the .key changed with it)
    action: str  # created, re-issued, written, mode fixed
    reason: str


@dataclass
class Result:
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checksums: dict[str, str] = field(default_factory=dict)  # relative path -> SHA-1 of every file in the tree


@dataclass(frozen=True)
class _Issued:
    cert_pem: bytes
    key_pem: bytes
    reissued: bool


def reconcile(
    store: Store,
    profiles: Profiles,
    inventory: Inventory,
    renewal_days: int | None = None,
    key_type: str | None = None,
    now: datetime.datetime | None = None,
) -> Result:
    """Stage every needed change in `store` (the caller commits) and return what changed and why."""
    renewal_days = profiles.renewal_days if renewal_days is None else renewal_days
    problems = renewal_problems(profiles, renewal_days)
    if problems:
        raise ProfileError.from_problems("renewal window too long for the certificate profiles", problems)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    result = Result()
    cas = {
        name: _ensure_ca(store, ca, ca_common_name(ca, inventory), now, renewal_days, result)
        for name, ca in profiles.cas.items()
    }
    issued = {
        wanted.id: _ensure_leaf(store, wanted, *cas[wanted.ca], now, renewal_days, result)
        for wanted in wanted_certificates(profiles, inventory, key_type)
    }
    _ensure_kubeconfigs(store, profiles, inventory, issued, result)
    _ensure_service_account_key(store, profiles.service_account_key_type, result)
    _ensure_encryption_config(store, result)
    result.checksums = store.checksums()
    return result


def _ensure_ca(store: Store, ca: CaProfile, common_name: str, now, renewal_days: int, result: Result):
    cert_path, key_path = f"{ca.name}.crt", f"{ca.name}.key"
    cert_pem, key_pem = store.read(cert_path), store.read(key_path)
    if cert_pem is None and key_pem is None:
        cert, key = issue.create_ca(common_name, ca.key_type, ca.lifetime_days, now)
        store.write(cert_path, _cert_pem(cert), PUBLIC)
        store.write(key_path, keys.private_pem(key), SECRET)
        result.changes.append(Change(cert_path, "created", "missing"))
        return cert, key
    where = store.root / cert_path
    if cert_pem is None or key_pem is None:
        present, absent = (cert_path, key_path) if key_pem is None else (key_path, cert_path)
        raise StateError(
            f"{store.root / present}: present but {absent} is missing; restore it, or remove {present} too to create "
            "a new CA (which re-issues every certificate it signs)"
        )
    cert, key = _load_cert(cert_pem), keys.load_private(key_pem)
    if cert is None or key is None or not keys.same_public_key(cert.public_key(), key.public_key()):
        raise StateError(f"{where}: the CA certificate or key is unreadable, or the two do not belong together")
    for path, mode in ((cert_path, PUBLIC), (key_path, SECRET)):
        _keep_mode(store, path, mode, result)
    # A CA is never replaced automatically: every certificate and kubeconfig in the cluster depends on it.
    if cert.not_valid_after_utc - now <= datetime.timedelta(days=renewal_days):
        result.warnings.append(f"{where}: the CA expires {cert.not_valid_after_utc:%Y-%m-%d}; plan a CA rotation")
    if cert.subject.rfc4514_string() != f"CN={common_name}":
        result.warnings.append(f"{where}: kept although the profile now names it CN={common_name}")
    return cert, key


def _ensure_leaf(store: Store, wanted: WantedCert, ca_cert, ca_key, now, renewal_days: int, result: Result) -> _Issued:
    cert_path, key_path = f"{wanted.path}.crt", f"{wanted.path}.key"
    cert_pem, key_pem = store.read(cert_path), store.read(key_path)
    existing = _load_cert(cert_pem) if cert_pem is not None else None
    if cert_pem is not None and existing is None:
        reason = "unreadable"
    else:
        reason = issue.needs_reissue(existing, wanted, ca_cert, now, renewal_days) or _key_problem(existing, key_pem)
    if reason is None:
        for path, mode in ((cert_path, PUBLIC), (key_path, SECRET)):
            _keep_mode(store, path, mode, result)
        return _Issued(cert_pem, key_pem, reissued=False)
    cert, key = issue.issue(wanted, ca_cert, ca_key, now)
    cert_pem, key_pem = _cert_pem(cert), keys.private_pem(key)
    store.write(cert_path, cert_pem, PUBLIC)
    store.write(key_path, key_pem, SECRET)
    result.changes.append(Change(cert_path, "created" if reason == "missing" else "re-issued", reason))
    return _Issued(cert_pem, key_pem, reissued=True)


def _key_problem(cert: x509.Certificate, key_pem: bytes | None) -> str | None:
    if key_pem is None:
        return "key missing"
    key = keys.load_private(key_pem)
    if key is None:
        return "key unreadable"
    if not keys.same_public_key(cert.public_key(), key.public_key()):
        return "key does not match the certificate"
    return None


def _ensure_kubeconfigs(store: Store, profiles: Profiles, inventory: Inventory, issued, result: Result) -> None:
    for config in profiles.kubeconfigs.values():
        certificate = profiles.certificates[config.certificate]
        server = kubeconfig.LOCAL_SERVER if config.server == "local" else kubeconfig.server_url(
            inventory.cluster.api_endpoint
        )
        hosts: list[Host | None] = inventory.members(certificate.for_hosts_in) if certificate.for_hosts_in else [None]
        for host in hosts:
            cert_id = config.certificate if host is None else f"{config.certificate}/{host.name}"
            path = f"{config.name}.kubeconfig" if host is None else f"hosts/{host.name}/{config.name}.kubeconfig"
            leaf = issued[cert_id]
            user = _load_cert(leaf.cert_pem).subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
            ca_pem = store.read(f"{certificate.ca}.crt")
            content = kubeconfig.render(inventory.cluster.name, user, server, ca_pem, leaf.cert_pem, leaf.key_pem)
            why = f"certificate {cert_id} re-issued" if leaf.reissued else "server or embedded credentials differ"
            _put(store, path, content, SECRET, why, result)


def _ensure_service_account_key(store: Store, key_type: str, result: Result) -> None:
    private_path, public_path = cluster_keys.SERVICE_ACCOUNT_KEY, cluster_keys.SERVICE_ACCOUNT_PUB
    private_pem = store.read(private_path)
    if private_pem is None:
        private_pem, public_pem = cluster_keys.new_service_account_key(key_type)
        store.write(private_path, private_pem, SECRET)
        store.write(public_path, public_pem, PUBLIC)
        result.changes.append(Change(private_path, "created", "missing"))
        return
    public_pem = cluster_keys.service_account_public(private_pem)
    if public_pem is None:
        raise StateError(f"{store.root / private_path}: not a usable private key; restore it (a new one would "
                         "invalidate every service-account token)")
    _keep_mode(store, private_path, SECRET, result)
    _put(store, public_path, public_pem, PUBLIC, "derived from the existing sa.key", result)


def _ensure_encryption_config(store: Store, result: Result) -> None:
    path = cluster_keys.ENCRYPTION_CONFIG
    if store.read(path) is None:
        store.write(path, cluster_keys.new_encryption_config(), SECRET)
        result.changes.append(Change(path, "created", "missing"))
    else:
        _keep_mode(store, path, SECRET, result)


def _keep_mode(store: Store, path: str, mode: int, result: Result) -> None:
    if store.ensure_mode(path, mode):
        result.changes.append(Change(path, "mode fixed", f"set to {mode:04o}"))


def _put(store: Store, path: str, content: bytes, mode: int, why_differs: str, result: Result) -> None:
    """Stage `content` when the file lacks or differs from it (reporting why); otherwise only ensure its mode."""
    previous = store.read(path)
    if previous == content:
        _keep_mode(store, path, mode, result)
        return
    store.write(path, content, mode)
    if previous is None:
        result.changes.append(Change(path, "created", "missing"))
    else:
        result.changes.append(Change(path, "written", why_differs))


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.PEM)


def _load_cert(pem: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
