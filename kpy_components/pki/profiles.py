"""Certificate profiles (certs/profiles.yml): loading, validation (every problem at once, with its path), and
rendering into the concrete certificates an inventory needs."""
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509

from kpy_components.pki import keys, templates
from kpy_components.pki.errors import ProfileError
from kpy_components.pki.inventory import Host, Inventory, is_dns_name, is_ip

USAGES = ("client", "server")
KUBECONFIG_SERVERS = ("api_endpoint", "local")  # local: https://127.0.0.1:6443, for control-plane components
_FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class CaProfile:
    name: str
    cn: str  # template with cluster placeholders
    key_type: str
    lifetime_days: int


@dataclass(frozen=True)
class CertProfile:
    name: str
    ca: str
    cn: str
    organizations: tuple[str, ...]
    sans: tuple[str, ...]
    usages: frozenset[str]
    key_type: str
    lifetime_days: int
    for_hosts_in: tuple[str, ...]  # empty: one cluster-wide certificate; else one per host in these groups


@dataclass(frozen=True)
class KubeconfigProfile:
    name: str
    certificate: str
    server: str  # one of KUBECONFIG_SERVERS


@dataclass(frozen=True)
class Profiles:
    renewal_days: int
    cas: Mapping[str, CaProfile]
    certificates: Mapping[str, CertProfile]
    kubeconfigs: Mapping[str, KubeconfigProfile]
    service_account_key_type: str


@dataclass(frozen=True)
class WantedCert:
    """A certificate as the profiles and the inventory say it must be."""

    id: str  # profile name, or profile/host for per-host certificates
    path: str  # file path without suffix, relative to the PKI directory
    ca: str
    cn: str
    organizations: tuple[str, ...]
    sans: frozenset[x509.GeneralName]
    usages: frozenset[str]
    key_type: str
    lifetime_days: int
    host: str | None


def load(path: str | Path) -> Profiles:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read the certificate profiles: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from exc
    return parse(raw, source=str(path))


def parse(raw, source: str = "profiles") -> Profiles:
    """Validate the raw profiles document; raise ProfileError listing every problem."""
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        raise ProfileError(f"{source}: must be a mapping with cas, certificates and kubeconfigs")
    sections = {"renewal_days", "cas", "leaf_defaults", "certificates", "kubeconfigs", "service_account"}
    _unknown(raw, sections, "", problems)
    renewal = _positive_int(raw, "renewal_days", "", problems, default=90)
    cas = {
        name: _ca(name, body, f"cas.{name}", problems) for name, body in _section(raw, "cas", problems).items()
    }
    defaults = raw.get("leaf_defaults", {})
    if not isinstance(defaults, Mapping):
        problems.append("leaf_defaults: must be a mapping")
        defaults = {}
    _unknown(defaults, {"key", "lifetime_days"}, "leaf_defaults.", problems)
    default_key = _key_type(defaults, "leaf_defaults.", problems, default="ecdsa-p256")
    default_lifetime = _positive_int(defaults, "lifetime_days", "leaf_defaults.", problems, default=365)
    certificates = {
        name: _certificate(name, body, cas, default_key, default_lifetime, problems)
        for name, body in _section(raw, "certificates", problems).items()
    }
    kubeconfigs = {
        name: _kubeconfig(name, body, certificates, problems)
        for name, body in _section(raw, "kubeconfigs", problems).items()
    }
    service_account = raw.get("service_account", {})
    if not isinstance(service_account, Mapping):
        problems.append("service_account: must be a mapping")
        service_account = {}
    _unknown(service_account, {"key"}, "service_account.", problems)
    sa_key = _key_type(service_account, "service_account.", problems, default="rsa-2048")
    for name in sorted(set(cas) & set(certificates)):
        problems.append(f"certificates.{name}: has the name of a CA (their files would collide)")
    if problems:
        raise ProfileError.from_problems(f"{source}: invalid certificate profiles", problems)
    return Profiles(renewal, cas, certificates, kubeconfigs, sa_key)


def renewal_problems(profiles: Profiles, renewal_days: int) -> list[str]:
    """A leaf whose lifetime is not longer than the renewal window would be re-issued on every run."""
    return [
        f"certificates.{c.name}: lifetime_days {c.lifetime_days} must exceed the renewal window ({renewal_days} days)"
        for c in profiles.certificates.values()
        if c.lifetime_days <= renewal_days
    ]


def wanted_certificates(profiles: Profiles, inventory: Inventory, key_type: str | None = None) -> list[WantedCert]:
    """Every certificate the inventory needs. `key_type` overrides the leaf key type of every profile."""
    if key_type is not None and key_type not in keys.KEY_TYPES:
        raise ProfileError(f"key type {key_type!r} is not one of {', '.join(keys.KEY_TYPES)}")
    wanted = []
    for profile in profiles.certificates.values():
        if profile.for_hosts_in:
            for host in inventory.members(profile.for_hosts_in):
                wanted.append(_render(profile, inventory, host, key_type))
        else:
            wanted.append(_render(profile, inventory, None, key_type))
    return wanted


def ca_common_name(ca: CaProfile, inventory: Inventory) -> str:
    return templates.render(ca.cn, inventory, None)[0]


def _render(profile: CertProfile, inventory: Inventory, host: Host | None, key_type: str | None) -> WantedCert:
    def one(template: str) -> str:
        return templates.render(template, inventory, host)[0]

    sans = set()
    for template in profile.sans:
        for value in templates.render(template, inventory, host):
            sans.add(_general_name(value, profile.name, template))
    return WantedCert(
        id=profile.name if host is None else f"{profile.name}/{host.name}",
        path=profile.name if host is None else f"hosts/{host.name}/{profile.name}",
        ca=profile.ca,
        cn=one(profile.cn),
        organizations=tuple(one(o) for o in profile.organizations),
        sans=frozenset(sans),
        usages=profile.usages,
        key_type=key_type or profile.key_type,
        lifetime_days=profile.lifetime_days,
        host=host.name if host else None,
    )


def _general_name(value: str, profile: str, template: str) -> x509.GeneralName:
    if is_ip(value):
        return x509.IPAddress(ipaddress.ip_address(value))
    if is_dns_name(value.lower()):
        return x509.DNSName(value.lower())
    raise ProfileError(f"certificates.{profile}.sans: {template!r} rendered {value!r}, not an IP address or DNS name")


def _ca(name, body, where: str, problems: list[str]) -> CaProfile | None:
    if not _valid_mapping(name, body, where, problems):
        return None
    _unknown(body, {"cn", "key", "lifetime_days"}, f"{where}.", problems)
    cn = _template(body, "cn", where, problems, per_host=False, required=True)
    key_type = _key_type(body, f"{where}.", problems, default="ecdsa-p256")
    lifetime = _positive_int(body, "lifetime_days", f"{where}.", problems, default=3650)
    return CaProfile(name, cn, key_type, lifetime)


def _certificate(name, body, cas, default_key, default_lifetime, problems: list[str]) -> CertProfile | None:
    where = f"certificates.{name}"
    if not _valid_mapping(name, body, where, problems):
        return None
    _unknown(body, {"ca", "cn", "o", "sans", "usages", "key", "lifetime_days", "for_hosts_in"}, f"{where}.", problems)
    if body.get("ca") not in cas:
        problems.append(f"{where}.ca: {body.get('ca')!r} is not one of the CAs ({', '.join(cas) or 'none defined'})")
    for_hosts_in = _strings(body, "for_hosts_in", where, problems)
    per_host = bool(for_hosts_in)
    cn = _template(body, "cn", where, problems, per_host, required=True)
    organizations = _templates(body, "o", where, per_host, True, problems)
    sans = _templates(body, "sans", where, per_host, False, problems)
    usages = _strings(body, "usages", where, problems)
    for i, usage in enumerate(usages):
        if usage not in USAGES:
            problems.append(f"{where}.usages[{i}]: {usage!r} is not one of {', '.join(USAGES)}")
    if not usages:
        problems.append(f"{where}.usages: required, a list of {' and/or '.join(USAGES)}")
    key_type = _key_type(body, f"{where}.", problems, default=default_key)
    lifetime = _positive_int(body, "lifetime_days", f"{where}.", problems, default=default_lifetime)
    return CertProfile(
        name, body.get("ca"), cn, organizations, sans, frozenset(usages), key_type, lifetime, tuple(for_hosts_in)
    )


def _kubeconfig(name, body, certificates, problems: list[str]) -> KubeconfigProfile | None:
    where = f"kubeconfigs.{name}"
    if not _valid_mapping(name, body, where, problems):
        return None
    _unknown(body, {"certificate", "server"}, f"{where}.", problems)
    certificate = body.get("certificate")
    profile = certificates.get(certificate)
    if profile is None:
        problems.append(f"{where}.certificate: {certificate!r} is not one of the certificates")
    elif "client" not in profile.usages:
        problems.append(f"{where}.certificate: {certificate!r} is not a client certificate")
    if body.get("server") not in KUBECONFIG_SERVERS:
        problems.append(f"{where}.server: {body.get('server')!r} is not one of {', '.join(KUBECONFIG_SERVERS)}")
    return KubeconfigProfile(name, certificate, body.get("server"))


def _section(raw: Mapping, key: str, problems: list[str]) -> Mapping:
    section = raw.get(key)
    if not isinstance(section, Mapping) or not section:
        problems.append(f"{key}: required, a non-empty mapping")
        return {}
    return section


def _valid_mapping(name, body, where: str, problems: list[str]) -> bool:
    if not isinstance(name, str) or not _FILE_NAME.match(name):
        problems.append(f"{where}: the name must be lower-case letters, digits and dashes (it names files)")
        return False
    if not isinstance(body, Mapping):
        problems.append(f"{where}: must be a mapping")
        return False
    return True


def _unknown(body: Mapping, allowed: set[str], prefix: str, problems: list[str]) -> None:
    for key in sorted(set(body) - allowed, key=str):
        problems.append(f"{prefix}{key}: unknown setting (known: {', '.join(sorted(allowed))})")


def _template(body: Mapping, key: str, where: str, problems: list[str], per_host: bool, required: bool) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        if required or value is not None:
            problems.append(f"{where}.{key}: required, a non-empty string")
        return ""
    problems.extend(f"{where}.{key}: {p}" for p in templates.problems(value, per_host, scalar_only=True))
    return value


def _templates(body: Mapping, key: str, where: str, per_host: bool, scalar_only: bool, problems: list[str]):
    """A list of templates (O or SANs), each checked."""
    values = _strings(body, key, where, problems)
    for i, value in enumerate(values):
        problems.extend(f"{where}.{key}[{i}]: {p}" for p in templates.problems(value, per_host, scalar_only))
    return tuple(values)


def _strings(body: Mapping, key: str, where: str, problems: list[str]) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where}.{key}: must be a list of non-empty strings")
        return []
    return value


def _key_type(body: Mapping, prefix: str, problems: list[str], default: str) -> str:
    value = body.get("key", default)
    if value not in keys.KEY_TYPES:
        problems.append(f"{prefix}key: {value!r} is not one of {', '.join(keys.KEY_TYPES)}")
    return value


def _positive_int(body: Mapping, key: str, prefix: str, problems: list[str], default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        problems.append(f"{prefix}{key}: must be a positive whole number of days, got {value!r}")
        return default
    return value
