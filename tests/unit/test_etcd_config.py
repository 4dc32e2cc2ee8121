"""Rendering etcd 3.4's config file from the model."""
from __future__ import annotations

import copy

import yaml

from kpy_components.etcd.config import etcd_config, render, write_atomically
from kpy_components.etcd.model import parse_model

from test_etcd_model import VALID


def test_rendered_config_for_a_member():
    config = yaml.safe_load(render(parse_model(VALID)))
    assert config["name"] == "cp2"
    assert config["data-dir"] == "/var/lib/etcd/lab"
    assert config["listen-client-urls"] == "https://10.213.0.12:2379,https://127.0.0.1:2379"
    assert config["advertise-client-urls"] == "https://10.213.0.12:2379"
    assert config["listen-peer-urls"] == config["initial-advertise-peer-urls"] == "https://10.213.0.12:2380"
    assert config["initial-cluster"].count("=https://") == 3
    assert config["initial-cluster-state"] == "new" and config["initial-cluster-token"] == "kpy-lab-etcd"
    assert config["enable-grpc-gateway"] is True and config["enable-v2"] is False
    assert config["listen-metrics-urls"] == "http://127.0.0.1:2381"
    assert config["client-transport-security"] == {
        "cert-file": "/etc/kpy/pki/etcd/server_cert_file.pem", "key-file": "/etc/kpy/pki/etcd/server_key_file.pem",
        "client-cert-auth": True, "trusted-ca-file": "/etc/kpy/pki/etcd/ca_file.pem", "auto-tls": False}
    assert config["peer-transport-security"] == {
        "cert-file": "/etc/kpy/pki/etcd/peer_cert_file.pem", "key-file": "/etc/kpy/pki/etcd/peer_key_file.pem",
        "client-cert-auth": True, "trusted-ca-file": "/etc/kpy/pki/etcd/ca_file.pem", "auto-tls": False}
    assert config["logger"] == "zap" and config["log-level"] == "info"


def test_loopback_member_listens_once_and_metrics_can_be_off():
    data = copy.deepcopy(VALID)
    data.update(member="a", members=[{"name": "a", "ip": "127.0.0.1"}], metrics_port=None)
    config = etcd_config(parse_model(data))
    assert config["listen-client-urls"] == "https://127.0.0.1:2379"
    assert "listen-metrics-urls" not in config


def test_extra_config_is_passed_through():
    data = copy.deepcopy(VALID)
    data["extra_config"] = {"quota-backend-bytes": 4294967296, "auto-compaction-retention": "1"}
    config = etcd_config(parse_model(data))
    assert config["quota-backend-bytes"] == 4294967296 and config["auto-compaction-retention"] == "1"


def test_write_atomically_reports_whether_it_changed(tmp_path):
    path = tmp_path / "sub" / "etcd.yaml"
    assert write_atomically(path, "a: 1\n", mode=0o600)
    assert path.read_text() == "a: 1\n" and path.stat().st_mode & 0o777 == 0o600
    assert not write_atomically(path, "a: 1\n")
    assert write_atomically(path, "a: 2\n") and path.read_text() == "a: 2\n"
    assert [p.name for p in path.parent.iterdir()] == ["etcd.yaml"]
