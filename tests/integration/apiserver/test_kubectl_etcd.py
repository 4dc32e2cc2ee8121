"""kpy-apiserver as provisioned clusters run it: `--config` with a real etcd (mutual TLS) and Secrets encrypted at
rest, driven by the real kubectl."""
from __future__ import annotations

import base64
import json

import yaml

from conftest import KUBECTL_VERSIONS, Kubectl, free_port, running_apiserver
from kpy_components.apiserver import dev
from kpy_components.pki import cluster_keys


def test_kubectl_against_a_server_on_real_etcd(tmp_path, new_etcd_cluster):
    etcd = new_etcd_cluster(1, "kpy-apiserver-test")
    etcd.start()
    port = free_port()
    prepared = dev.prepare(tmp_path, port)  # the dev PKI serves as this server's certificates
    (tmp_path / "encryption.yaml").write_bytes(cluster_keys.new_encryption_config())
    config = {"bind_address": "127.0.0.1", "secure_port": port, "advertise_address": "127.0.0.1",
              "tls": {"cert_file": str(prepared.tls.cert_file), "key_file": str(prepared.tls.key_file),
                      "client_ca_file": str(prepared.tls.client_ca_file)},
              "storage": {"backend": "etcd", "etcd_servers": etcd.endpoints, "etcd_ca_file": str(etcd.tls.ca_file),
                          "etcd_cert_file": str(etcd.tls.cert_file), "etcd_key_file": str(etcd.tls.key_file),
                          "encryption_config_file": str(tmp_path / "encryption.yaml")},
              "service_cluster_ip_range": "10.32.0.0/16",
              "service_account": {"key_files": [str(tmp_path / "sa.pub")],
                                  "signing_key_file": str(tmp_path / "sa.key")}}
    (tmp_path / "apiserver.yaml").write_text(yaml.safe_dump(config))
    with running_apiserver(tmp_path, port, "--config", str(tmp_path / "apiserver.yaml")):
        kubectl = Kubectl(KUBECTL_VERSIONS[-1], tmp_path / dev.ADMIN_KUBECONFIG, tmp_path / "cache")
        assert kubectl("create", "namespace", "on-etcd").stdout.strip() == "namespace/on-etcd created"
        kubectl("-n", "on-etcd", "create", "secret", "generic", "s", "--from-literal=password=etcd-canary")
        secret = json.loads(kubectl("-n", "on-etcd", "get", "secret", "s", "-o", "json").stdout)
        assert base64.b64decode(secret["data"]["password"]) == b"etcd-canary"
        kubernetes = json.loads(kubectl("get", "service", "kubernetes", "-o", "json").stdout)
        assert kubernetes["spec"]["clusterIP"] == "10.32.0.1"
        with etcd.client() as client:
            raw = client.get("/registry/secrets/on-etcd/s").value
        assert raw.startswith(b"k8s:enc:aescbc:v1:key1:") and b"etcd-canary" not in raw
        assert base64.b64encode(b"etcd-canary") not in raw
