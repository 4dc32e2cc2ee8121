"""Action kpy_pki: generate and renew the PKI of a kpy cluster on the Ansible controller, in-process (a
controller-local module run cost ~0.3 s of every site.yml run for AnsiballZ and a Python start); a thin layer over
kpy_components.pki.

Creates the cluster CA and the etcd CA, issues every certificate in the certificate profiles for the hosts of the
inventory, writes kubeconfigs with embedded credentials, the service-account signing key pair and an
encryption-at-rest configuration. Idempotent: a certificate is re-issued only when it is missing, its
CN/O/SANs/usages/key type differ from what the profiles and the inventory imply, it was signed by another CA, or it
expires within the renewal window; CAs, the service-account key and the encryption key are never replaced once
present. Check mode reports what would change and writes nothing.

Arguments (ARGUMENT_SPEC): `dest` (directory of the generated material, created 0700; keys 0600), `profiles`
(certs/profiles.yml), `admin_kubeconfig` (a path outside dest kept identical to the generated admin.kubeconfig),
`renewal_days` (re-issue what expires within this many days; default from the profiles, 90), `key_type` (of every
leaf certificate, overriding the profiles), `cluster` (name, domain, service_cidr - its first address is a SAN of the
API server certificate -, api_endpoint: name or IP clients reach the API servers at), `hosts` (host name to its
address, ansible_host, or a list of addresses) and `groups` (etcd, control_plane, workers to their host names).

Returns `changes` (path, action, reason of what was, or would be, created, re-issued, written or had its mode
fixed), `checksums` (SHA-1 of every file of the PKI directory by relative path, so distribution compares with the
hosts without a round trip per file) and `pki_dir`.
"""
from __future__ import annotations

import json

from ansible.plugins.action import ActionBase

from kpy_components import pki

ARGUMENT_SPEC = {
    "dest": {"type": "path", "required": True},
    "profiles": {"type": "path", "required": True},
    "admin_kubeconfig": {"type": "path"},
    "renewal_days": {"type": "int"},
    "key_type": {"type": "str", "choices": ["rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384"]},
    "cluster": {
        "type": "dict",
        "required": True,
        "options": {key: {"type": "str", "required": True} for key in ("name", "domain", "service_cidr", "api_endpoint")},
    },
    "hosts": {"type": "dict", "required": True},
    "groups": {"type": "dict", "required": True},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, validated = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        params = json.loads(json.dumps(validated))  # plain values: the PKI's YAML writer refuses Ansible's tagged ones
        try:
            issued = pki.run(
                dest=params["dest"],
                profiles_path=params["profiles"],
                cluster=params["cluster"],
                hosts=params["hosts"],
                groups=params["groups"],
                renewal_days=params["renewal_days"],
                key_type=params["key_type"],
                check=bool(self._task.check_mode),
                copies={"admin.kubeconfig": params["admin_kubeconfig"]} if params["admin_kubeconfig"] else None,
            )
        except pki.PkiError as exc:
            return {**result, "failed": True, "msg": str(exc), "pki_dir": params["dest"]}
        except OSError as exc:
            return {**result, "failed": True, "msg": f"{exc.filename or params['dest']}: {exc.strerror}",
                    "pki_dir": params["dest"]}
        changes = [{"path": c.path, "action": c.action, "reason": c.reason} for c in issued.changes]
        return {**result, "changed": bool(changes), "changes": changes, "checksums": issued.checksums,
                "pki_dir": params["dest"], **({"warnings": list(issued.warnings)} if issued.warnings else {})}
