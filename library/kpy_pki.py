#!/usr/bin/python
"""Ansible module kpy_pki: a thin wrapper around kpy_components.pki, run on the controller."""

DOCUMENTATION = r"""
---
module: kpy_pki
short_description: Generate and renew the PKI of a kpy cluster on the Ansible controller
description:
  - Creates the cluster CA and the etcd CA, issues every certificate in the certificate profiles for the hosts of
    the inventory, writes kubeconfigs with embedded credentials, the service-account signing key pair and an
    encryption-at-rest configuration.
  - Idempotent. A certificate is re-issued only when it is missing, its CN/O/SANs/usages/key type differ from what
    the profiles and the inventory imply, it was signed by another CA, or it expires within the renewal window.
    CAs, the service-account key and the encryption key are never replaced once present.
  - Runs on the controller with a Python that can import kpy_components (the repository's virtual environment),
    so use it with C(delegate_to: localhost), C(run_once) and
    C(ansible_python_interpreter: "{{ ansible_playbook_python }}").
version_added: "1.31.0"
author: kpy
options:
  dest:
    description: Directory for the generated material (created 0700 if missing). Keys are written 0600.
    type: path
    required: true
  profiles:
    description: Path of the certificate profiles file (certs/profiles.yml).
    type: path
    required: true
  admin_kubeconfig:
    description: A path outside O(dest) kept identical to the generated admin.kubeconfig (mode 0600).
    type: path
  renewal_days:
    description: Re-issue certificates that expire within this many days. Default from the profiles (90).
    type: int
  key_type:
    description: Key type of every leaf certificate, overriding the profiles.
    type: str
    choices: [rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ecdsa-p384]
  cluster:
    description: Cluster settings.
    type: dict
    required: true
    suboptions:
      name:
        description: Cluster name (kubeconfig cluster entry, CA common names).
        type: str
        required: true
      domain:
        description: Cluster DNS domain, e.g. cluster.local.
        type: str
        required: true
      service_cidr:
        description: Service CIDR; its first address is a SAN of the API server certificate.
        type: str
        required: true
      api_endpoint:
        description: Name or IP (no scheme, no port) clients reach the API servers at.
        type: str
        required: true
  hosts:
    description: Host name to its address (ansible_host), or a list of addresses.
    type: dict
    required: true
  groups:
    description: Group name (etcd, control_plane, workers) to the list of host names in it.
    type: dict
    required: true
notes:
  - Supports check mode, which reports what would change and writes nothing.
"""

EXAMPLES = r"""
- name: Generate | Issue the cluster's certificates on the controller
  kpy_pki:
    dest: "{{ inventory_dir }}/artifacts/pki"
    admin_kubeconfig: "{{ inventory_dir }}/artifacts/admin.kubeconfig"
    profiles: "{{ playbook_dir }}/../certs/profiles.yml"
    renewal_days: 90
    cluster:
      name: lab
      domain: cluster.local
      service_cidr: 10.96.0.0/16
      api_endpoint: 10.213.0.11
    hosts: {cp1: 10.213.0.11, w1: 10.213.0.21}
    groups: {etcd: [cp1], control_plane: [cp1], workers: [w1]}
  delegate_to: localhost
  run_once: true
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""

RETURN = r"""
changes:
  description: What was (or in check mode would be) created, re-issued, written or had its mode fixed, and why.
  returned: always
  type: list
  elements: dict
  sample:
    - {path: apiserver.crt, action: re-issued, reason: "SANs differ: adds IP:10.213.0.14; drops none"}
    - {path: hosts/w1/kubelet.crt, action: re-issued, reason: "expires 2026-01-10 (20 days), inside the 90-day renewal window"}
checksums:
  description: SHA-1 of every file in the PKI directory by its relative path (as it is, or in check mode would
    be), so distribution can compare with what hosts have without a round trip per file.
  returned: success
  type: dict
  sample: {"ca.crt": "5f0c7a8e1d2b3c4d5e6f708192a3b4c5d6e7f809"}
pki_dir:
  description: The PKI directory.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "profiles": {"type": "path", "required": True},
            "admin_kubeconfig": {"type": "path"},
            "renewal_days": {"type": "int"},
            "key_type": {"type": "str", "choices": ["rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384"]},
            "cluster": {
                "type": "dict",
                "required": True,
                "options": {
                    key: {"type": "str", "required": True}
                    for key in ("name", "domain", "service_cidr", "api_endpoint")
                },
            },
            "hosts": {"type": "dict", "required": True},
            "groups": {"type": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    try:
        from kpy_components import pki
    except ImportError as exc:
        module.fail_json(
            msg=f"kpy_pki needs the kpy_components package ({exc}); run it on the controller with the repository's "
            "virtual environment: ansible_python_interpreter: '{{ ansible_playbook_python }}'"
        )
    params = module.params
    try:
        result = pki.run(
            dest=params["dest"],
            profiles_path=params["profiles"],
            cluster=params["cluster"],
            hosts=params["hosts"],
            groups=params["groups"],
            renewal_days=params["renewal_days"],
            key_type=params["key_type"],
            check=module.check_mode,
            copies={"admin.kubeconfig": params["admin_kubeconfig"]} if params["admin_kubeconfig"] else None,
        )
    except pki.PkiError as exc:
        module.fail_json(msg=str(exc), pki_dir=params["dest"])
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename or params['dest']}: {exc.strerror}", pki_dir=params["dest"])
    for warning in result.warnings:
        module.warn(warning)
    changes = [{"path": c.path, "action": c.action, "reason": c.reason} for c in result.changes]
    module.exit_json(changed=bool(changes), changes=changes, checksums=result.checksums, pki_dir=params["dest"])


if __name__ == "__main__":
    main()
