#!/usr/bin/python
"""Ansible module kpy_component_versions: which kpy version each component on this host has installed and runs."""

DOCUMENTATION = r"""
---
module: kpy_component_versions
short_description: Report the installed and running kpy version of each component unit on the host
description:
  - For each of I(units) present on the host (its link I(components_dir)/<unit> exists or systemd knows the unit),
    reports the installed version (the name of the directory the link points at, /opt/kpy/<version>), whether the
    unit is active (C(systemctl is-active)) and the running version, read from the component's own C(/version)
    endpoint on loopback (kpy-etcd has none: its running version is the installed one while active).
  - Also reports the health the upgrade preflight needs - the etcd member's C(/health) on its plain-HTTP metrics port
    and the API server's C(/readyz?verbose).
  - Only reads; never changes anything (changed is always false). Supports check mode. Python standard library only.
version_added: "1.31.0"
author: kpy
options:
  units:
    description: The systemd units (without .service) to look for.
    type: list
    elements: str
    default: [kpy-etcd, kpy-apiserver, kpy-controller-manager, kpy-scheduler, kpy-kubelet, kpy-proxy, kpy-dns]
  components_dir:
    description: Where each unit's link to its versioned venv lives.
    type: path
    default: /opt/kpy/components
  endpoints:
    description:
      - Unit -> base URL of its /version endpoint, over the defaults (kpy-apiserver from I(apiserver_config),
        kpy-controller-manager https://127.0.0.1:10257, kpy-scheduler https://127.0.0.1:10259, kpy-kubelet
        http://127.0.0.1:10248, kpy-proxy http://127.0.0.1:10256, kpy-dns http://127.0.0.1:8080); for kpy-etcd, the
        base URL of its /health (default http://127.0.0.1:<metrics_port of I(etcd_config)>).
    type: dict
    default: {}
  apiserver_config:
    description: The API server's config file; its bind_address and secure_port say where it listens.
    type: path
    default: /etc/kpy/kube-apiserver.yaml
  apiserver_client_cert:
    description: Client certificate for the API server's /version (it refuses anonymous requests).
    type: path
    default: /etc/kpy/pki/apiserver-kubelet-client.crt
  apiserver_client_key:
    description: Key of I(apiserver_client_cert).
    type: path
    default: /etc/kpy/pki/apiserver-kubelet-client.key
  etcd_config:
    description: kpy-etcd's model; its metrics_port serves etcd's /health on 127.0.0.1 (null turns the check off).
    type: path
    default: /etc/kpy/etcd/kpy-etcd.yaml
  systemctl:
    description: The systemctl command.
    type: str
    default: systemctl
  timeout:
    description: Seconds for each HTTP request.
    type: float
    default: 5
"""

EXAMPLES = r"""
- name: Preflight | Read the component versions on each host
  kpy_component_versions:
  register: kpy_upgrade_versions
"""

RETURN = r"""
hostname:
  description: The host's name as its components see it (socket.gethostname(); Lease holder identities start with it).
  returned: always
  type: str
components:
  description:
    - Unit -> C(installed) (version or null), C(link) (the link's target or null), C(active) (bool), C(running)
      (version or null), C(version_error) (why the running version could not be read, or null), C(problem) (why the
      etcd member or API server is unhealthy, or null), C(health_checked) (bool).
  returned: always
  type: dict
"""

import json
import os
import re
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

UNITS = ["kpy-etcd", "kpy-apiserver", "kpy-controller-manager", "kpy-scheduler", "kpy-kubelet", "kpy-proxy", "kpy-dns"]
DEFAULT_ENDPOINTS = {"kpy-controller-manager": "https://127.0.0.1:10257", "kpy-scheduler": "https://127.0.0.1:10259",
                     "kpy-kubelet": "http://127.0.0.1:10248", "kpy-proxy": "http://127.0.0.1:10256",
                     "kpy-dns": "http://127.0.0.1:8080"}
VERSION = re.compile(r"v?\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?")
WILDCARD = {"", "0.0.0.0", "::", "[::]", "127.0.0.1", "localhost"}


def top_level(path, key):
    """A top-level scalar of a simple YAML file (the standard library has no YAML parser; the files are ours)."""
    try:
        with open(path, encoding="utf-8") as stream:
            for line in stream:
                match = re.match(rf"{re.escape(key)}:\s*(.*?)\s*(?:#.*)?$", line)
                if match:
                    return match.group(1).strip("\"'")
    except OSError:
        return None
    return None


def installed(components_dir, unit):
    """(version or None, link target or None): the versioned venv the unit's link points at."""
    link = os.path.join(components_dir, unit)
    if not os.path.islink(link):
        return None, None
    target = os.readlink(link)
    name = os.path.basename(target.rstrip("/"))
    return (name if VERSION.fullmatch(name) else None), target


def unit_state(systemctl, unit):
    """(known to systemd, active)."""
    try:
        proc = subprocess.run([systemctl, "show", "--property=LoadState,ActiveState", f"{unit}.service"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False, False
    props = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return props.get("LoadState") == "loaded", props.get("ActiveState") in ("active", "reloading")


def get(url, timeout, cert=None, key=None):
    """(status, body text); TLS unverified (loopback), a client certificate when given. Raises OSError."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if cert and key and os.access(cert, os.R_OK) and os.access(key, os.R_OK):
            context.load_cert_chain(cert, key)
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as answer:  # noqa: S310 - our URLs
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def running_version(url, timeout, cert=None, key=None):
    """(version or None, why not)."""
    try:
        status, body = get(url.rstrip("/") + "/version", timeout, cert, key)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return None, f"GET {url}/version: {getattr(exc, 'reason', exc)}"
    if status != 200:
        return None, f"GET {url}/version: HTTP {status}: {body.strip()[:200]}"
    try:
        version = json.loads(body)["gitVersion"]
    except (ValueError, KeyError, TypeError):
        return None, f"GET {url}/version: no gitVersion in {body.strip()[:200]!r}"
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        return None, f"GET {url}/version: gitVersion {version!r} is not a version"
    return version.lstrip("v"), None


def health(url, timeout, healthy):
    """None when `healthy(status, body)`, else what is wrong."""
    try:
        status, body = get(url, timeout)
    except (OSError, ssl.SSLError, ValueError) as exc:
        return f"GET {url}: {getattr(exc, 'reason', exc)}"
    if healthy(status, body):
        return None
    failed = [line for line in body.splitlines() if line.startswith("[-]")]
    return f"GET {url}: HTTP {status}: {'; '.join(failed) or body.strip()[:200]}"


def etcd_healthy(status, body):
    try:
        return status == 200 and json.loads(body).get("health") == "true"
    except (ValueError, AttributeError):
        return False


def apiserver_url(config):
    address = top_level(config, "bind_address") or ""
    port = top_level(config, "secure_port") or "6443"
    host = "127.0.0.1" if address in WILDCARD else address
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def report(p):
    endpoints = dict(DEFAULT_ENDPOINTS, **{"kpy-apiserver": apiserver_url(p["apiserver_config"])})
    endpoints.update(p["endpoints"] or {})
    cert = {"cert": p["apiserver_client_cert"], "key": p["apiserver_client_key"]}
    components = {}
    for unit in p["units"]:
        version, link = installed(p["components_dir"], unit)
        known, active = unit_state(p["systemctl"], unit)
        if not (known or link):
            continue
        entry = {"installed": version, "link": link, "active": active, "running": None, "version_error": None,
                 "problem": None, "health_checked": False}
        if active and unit == "kpy-etcd":
            entry["running"] = version
            port = top_level(p["etcd_config"], "metrics_port") or "2381"
            url = endpoints.get(unit) or (f"http://127.0.0.1:{port}" if port.isdigit() else None)
            if url:
                entry["problem"] = health(url.rstrip("/") + "/health", p["timeout"], etcd_healthy)
                entry["health_checked"] = True
        elif active and unit in endpoints:
            extra = cert if unit == "kpy-apiserver" else {}
            entry["running"], entry["version_error"] = running_version(endpoints[unit], p["timeout"], **extra)
            if unit == "kpy-apiserver":
                entry["problem"] = health(endpoints[unit].rstrip("/") + "/readyz?verbose", p["timeout"],
                                          lambda status, _body: status == 200)
                entry["health_checked"] = True
        components[unit] = entry
    return components


def main():
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "list", "elements": "str", "default": UNITS},
            "components_dir": {"type": "path", "default": "/opt/kpy/components"},
            "endpoints": {"type": "dict", "default": {}},
            "apiserver_config": {"type": "path", "default": "/etc/kpy/kube-apiserver.yaml"},
            "apiserver_client_cert": {"type": "path", "default": "/etc/kpy/pki/apiserver-kubelet-client.crt"},
            "apiserver_client_key": {"type": "path", "default": "/etc/kpy/pki/apiserver-kubelet-client.key"},
            "etcd_config": {"type": "path", "default": "/etc/kpy/etcd/kpy-etcd.yaml"},
            "systemctl": {"type": "str", "default": "systemctl"},
            "timeout": {"type": "float", "default": 5.0},
        },
        supports_check_mode=True,
    )
    if module.params["timeout"] <= 0:
        module.fail_json(msg=f"timeout must be positive, not {module.params['timeout']}")
    module.exit_json(changed=False, hostname=socket.gethostname(), components=report(module.params))


if __name__ == "__main__":
    main()
