"""Creating CAs and issuing leaf certificates, and deciding when an existing certificate must be re-issued."""
import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kpy_components.pki import keys
from kpy_components.pki.profiles import WantedCert

# Backdate notBefore so hosts whose clocks run slightly behind the controller accept a fresh certificate.
_CLOCK_SKEW = datetime.timedelta(minutes=5)
_EKU = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}


def create_ca(common_name: str, key_type: str, lifetime_days: int, now: datetime.datetime):
    """A self-signed CA that signs leaves only (path length 0). Returns (certificate, private key)."""
    key = keys.generate(key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        _validity(x509.CertificateBuilder(), now, datetime.timedelta(days=lifetime_days))
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256()), key


def issue(wanted: WantedCert, ca_cert: x509.Certificate, ca_key, now: datetime.datetime):
    """A fresh key and a certificate for it as `wanted` describes, signed by the CA. Returns (certificate, key)."""
    key = keys.generate(wanted.key_type)
    names = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in wanted.organizations]
    names.append(x509.NameAttribute(NameOID.COMMON_NAME, wanted.cn))
    cert = sign_leaf(key.public_key(), x509.Name(names), wanted.sans, wanted.usages,
                     isinstance(key, rsa.RSAPrivateKey), datetime.timedelta(days=wanted.lifetime_days),
                     ca_cert, ca_key, now)
    return cert, key


def sign_leaf(public_key, subject: x509.Name, sans, usages, encipherment: bool, lifetime: datetime.timedelta,
              ca_cert: x509.Certificate, ca_key, now: datetime.datetime) -> x509.Certificate:
    """A leaf certificate for someone else's `public_key` (usages: "server"/"client"), signed by the CA; also used
    by the controller manager's CSR signer."""
    builder = (
        _validity(x509.CertificateBuilder(), now, lifetime)
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(encipherment=encipherment), critical=True)
        .add_extension(x509.ExtendedKeyUsage([_EKU[u] for u in sorted(usages)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_sorted_names(sans)), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def needs_reissue(
    existing: x509.Certificate | None,
    wanted: WantedCert,
    ca_cert: x509.Certificate,
    now: datetime.datetime,
    renewal_days: int,
) -> str | None:
    """Why `existing` must be replaced to be what `wanted` describes, or None when it can stay."""
    if existing is None:
        return "missing"
    have_cn = _attributes(existing, NameOID.COMMON_NAME)
    if have_cn != [wanted.cn]:
        return f"CN differs: have {', '.join(have_cn) or 'none'}, want {wanted.cn}"
    have_o = _attributes(existing, NameOID.ORGANIZATION_NAME)
    if sorted(have_o) != sorted(wanted.organizations):
        return f"O differs: have {sorted(have_o)}, want {sorted(wanted.organizations)}"
    have_sans = subject_alt_names(existing)
    if have_sans != wanted.sans:
        added = ", ".join(_describe(n) for n in _sorted_names(wanted.sans - have_sans)) or "none"
        dropped = ", ".join(_describe(n) for n in _sorted_names(have_sans - wanted.sans)) or "none"
        return f"SANs differ: adds {added}; drops {dropped}"
    if usages_of(existing) != wanted.usages:
        return f"usages differ: have {sorted(usages_of(existing))}, want {sorted(wanted.usages)}"
    if keys.type_of(existing.public_key()) != wanted.key_type:
        return f"key type differs: have {keys.type_of(existing.public_key())}, want {wanted.key_type}"
    if not signed_by(existing, ca_cert):
        return f"signed by a different CA (want {ca_cert.subject.rfc4514_string()})"
    expires = existing.not_valid_after_utc
    if expires - now <= datetime.timedelta(days=renewal_days):
        return f"expires {expires:%Y-%m-%d} ({(expires - now).days} days), inside the {renewal_days}-day renewal window"
    return None


def signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def subject_alt_names(cert: x509.Certificate) -> frozenset[x509.GeneralName]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(extension.value)


def usages_of(cert: x509.Certificate) -> frozenset[str]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(name for name, oid in _EKU.items() if oid in extension.value)


def _attributes(cert: x509.Certificate, oid) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


def _describe(name: x509.GeneralName) -> str:
    return f"IP:{name.value}" if isinstance(name, x509.IPAddress) else f"DNS:{name.value}"


def _sorted_names(names) -> list[x509.GeneralName]:
    return sorted(names, key=_describe)


def _validity(builder: x509.CertificateBuilder, now: datetime.datetime,
              lifetime: datetime.timedelta) -> x509.CertificateBuilder:
    return (
        builder.serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + lifetime)
    )


def _key_usage(cert_sign: bool = False, encipherment: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
