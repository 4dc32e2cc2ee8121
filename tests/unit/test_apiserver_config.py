"""kpy-apiserver's configuration file and command line: every problem named by its field, exit 2, no traceback."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from kpy_components.apiserver import cli, config, dev

VALID = {
    "bind_address": "10.0.0.11", "secure_port": 6443, "advertise_address": "10.0.0.11",
    "tls": {"cert_file": "/etc/kpy/pki/apiserver.crt", "key_file": "/etc/kpy/pki/apiserver.key",
            "client_ca_file": "/etc/kpy/pki/ca.crt"},
    "storage": {"backend": "etcd", "etcd_servers": ["https://10.0.0.11:2379"], "etcd_ca_file": "/e/ca.crt",
                "etcd_cert_file": "/e/c.crt", "etcd_key_file": "/e/c.key",
                "encryption_config_file": "/etc/kpy/encryption-config.yaml"},
    "service_cluster_ip_range": "10.32.0.0/16", "service_node_port_range": "30000-32767",
    "service_account": {"key_files": ["/etc/kpy/pki/sa.pub"], "signing_key_file": "/etc/kpy/pki/sa.key",
                        "issuer": "https://kubernetes.default.svc.k8s.test"},
    "authorization_modes": ["Node", "RBAC"], "log_level": "info",
}


def test_a_complete_config_parses():
    parsed = config.parse(VALID)
    assert parsed.storage.backend == "etcd" and parsed.storage.etcd_servers == ("https://10.0.0.11:2379",)
    assert parsed.service_node_port_range == (30000, 32767)
    assert str(parsed.service_account.signing_key_file) == "/etc/kpy/pki/sa.key"
    assert parsed.storage.compaction_interval == 300.0  # kube-apiserver's --etcd-compaction-interval default
    assert config.parse({**VALID, "storage": {**VALID["storage"], "compaction_interval": "1m30s"}}
                        ).storage.compaction_interval == 90.0


def test_every_problem_is_reported_at_once():
    broken = yaml.safe_load(yaml.safe_dump(VALID))
    broken["secure_port"] = 70000
    broken["bind_address"] = "not-an-ip"
    broken["storage"]["etcd_servers"] = ["http://10.0.0.11:2379"]
    del broken["storage"]["etcd_key_file"]
    broken["storage"]["compaction_interval"] = "5 minutes"
    broken["service_cluster_ip_range"] = "10.32.0.0/33"
    broken["authorization_modes"] = ["RBAC", "AlwaysAllow"]
    broken["colour"] = "blue"
    del broken["tls"]["client_ca_file"]
    with pytest.raises(config.ConfigError) as caught:
        config.parse(broken, "apiserver.yaml")
    problems = caught.value.problems
    assert "secure_port: must be a port number (1-65535), not 70000" in problems
    assert "bind_address: must be an IP address, not 'not-an-ip'" in problems
    assert ("storage.etcd_servers: 'http://10.0.0.11:2379' must be an https:// URL (etcd is reached over TLS)"
            in problems)
    assert "storage.etcd_key_file: is required with backend etcd" in problems
    assert "storage.compaction_interval: '5 minutes' is not a duration (like 15s, 1m30s, 500ms)" in problems
    assert "tls.client_ca_file: is required" in problems
    assert any(p.startswith("colour: unknown field") for p in problems)
    assert any(p.startswith("service_cluster_ip_range: must be a network in CIDR form") for p in problems)
    assert "authorization_modes: 'AlwaysAllow' is not one of Node, RBAC" in problems
    assert str(caught.value).startswith("apiserver.yaml: ")


def test_missing_files_are_named(tmp_path):
    parsed = config.parse(VALID)
    problems = config.missing_files(parsed)
    assert "tls.cert_file: cannot read /etc/kpy/pki/apiserver.crt: No such file or directory" in problems
    assert "service_account.signing_key_file: cannot read /etc/kpy/pki/sa.key: No such file or directory" in problems


def test_cli_bad_config_exits_2_with_one_line_per_problem(tmp_path):
    path = tmp_path / "apiserver.yaml"
    path.write_text(yaml.safe_dump({**VALID, "secure_port": "six"}))
    done = subprocess.run([sys.executable, "-m", "kpy_components.apiserver.cli", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == cli.EXIT_BAD_CONFIG
    assert done.stderr.strip() == f"kpy-apiserver: {path}: secure_port: must be a port number (1-65535), not 'six'"
    assert "Traceback" not in done.stderr


def test_cli_unreadable_files_exit_2(tmp_path, capsys):
    path = tmp_path / "apiserver.yaml"
    path.write_text(yaml.safe_dump(VALID))
    assert cli.main(["--config", str(path)]) == cli.EXIT_BAD_CONFIG
    lines = capsys.readouterr().err.splitlines()
    assert f"kpy-apiserver: {path}: tls.key_file: cannot read /etc/kpy/pki/apiserver.key: No such file or directory" \
        in lines
    assert cli.main(["--config", str(tmp_path / "missing.yaml")]) == cli.EXIT_BAD_CONFIG
    assert "cannot read the file: No such file or directory" in capsys.readouterr().err


def test_dev_directory_is_generated_once_and_kept(tmp_path):
    first = dev.prepare(tmp_path, 7443)
    ca = (tmp_path / "ca.crt").read_bytes()
    again = dev.prepare(tmp_path, 7444)
    assert (tmp_path / "ca.crt").read_bytes() == ca
    assert (first.secure_port, again.secure_port) == (7443, 7444)
    kubeconfig = yaml.safe_load((tmp_path / "admin.kubeconfig").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:7444"
    assert (tmp_path / "admin.key").stat().st_mode & 0o777 == 0o600
    assert again.storage.backend == "sqlite" and again.storage.sqlite_path == tmp_path / "apiserver.db"
    assert again.bind_address == "127.0.0.1"
