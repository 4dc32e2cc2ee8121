"""Kubeconfig and in-cluster loading: every supported field, and errors that name the file and the field."""
from __future__ import annotations

import base64
import dataclasses

import pytest
import yaml

from kpy_components.client.errors import KubeconfigError
from kpy_components.client.kubeconfig import ClientConfig, from_dict, in_cluster, load_default, load_kubeconfig
from kpy_components.client.transport import BearerToken, ssl_context
from test_client_fake_api import pki  # noqa: F401 - fixture


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def document(pki, **user) -> dict:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [{"name": "c1", "cluster": {"server": "https://127.0.0.1:6443/",
                                                "certificate-authority-data": b64((pki / "ca.crt").read_bytes())}},
                     {"name": "c2", "cluster": {"server": "https://10.0.0.1:6443", "certificate-authority": "ca.crt",
                                                "tls-server-name": "kubernetes"}}],
        "users": [{"name": "u1", "user": user or {"token": "abc"}},
                  {"name": "u2", "user": {"client-certificate": "admin.crt", "client-key": "admin.key"}}],
        "contexts": [{"name": "main", "context": {"cluster": "c1", "user": "u1", "namespace": "apps"}},
                     {"name": "other", "context": {"cluster": "c2", "user": "u2"}},
                     {"name": "broken", "context": {"cluster": "nope", "user": "u1"}}],
    }


def write(path, content: dict):
    path.write_text(yaml.safe_dump(content))
    return path


def test_the_dev_admin_kubeconfig_loads_with_embedded_credentials(pki):
    config = load_kubeconfig(pki / "admin.kubeconfig")
    assert config.server.startswith("https://127.0.0.1:")
    assert config.ca_pem == (pki / "ca.crt").read_bytes()
    assert config.cert_pem == (pki / "admin.crt").read_bytes()
    assert config.key_pem == (pki / "admin.key").read_bytes()
    assert config.token is None and config.namespace == "default"
    assert ssl_context(config).verify_mode.name == "CERT_REQUIRED"


def test_current_context_gives_cluster_user_and_namespace(pki):
    config = from_dict(document(pki))
    assert config == ClientConfig(server="https://127.0.0.1:6443", ca_pem=(pki / "ca.crt").read_bytes(),
                                  token="abc", namespace="apps", source="kubeconfig context main")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.server = "x"


def test_a_named_context_resolves_files_relative_to_the_kubeconfig(pki):
    config = load_kubeconfig(write(pki / "relative.kubeconfig", document(pki)), context="other")
    assert config.server == "https://10.0.0.1:6443" and config.tls_server_name == "kubernetes"
    assert config.ca_pem == (pki / "ca.crt").read_bytes()
    assert config.cert_pem == (pki / "admin.crt").read_bytes() and config.key_pem == (pki / "admin.key").read_bytes()


def test_token_file_is_kept_as_a_path_and_reread(pki, tmp_path):
    (tmp_path / "token").write_text("first\n")
    config = from_dict(document(pki, tokenFile="token"), base_dir=tmp_path)
    assert config.token_file == tmp_path / "token" and config.token is None
    bearer = BearerToken(config.token, config.token_file)
    assert bearer.current() == "first"
    (tmp_path / "token").write_text("rotated")
    bearer._read_at -= 61  # a minute later
    assert bearer.current() == "rotated"


@pytest.mark.parametrize("user, context, message", [
    ({"client-key-data": "!!!"}, None, "users[u1].user.client-key-data: not valid base64"),
    ({"client-certificate-data": b64(b"nope"), "client-key-data": b64(b"x")}, None,
     "users[u1].user.client-certificate-data: not a PEM certificate"),
    ({"client-certificate": "missing.crt", "client-key": "admin.key"}, None,
     "users[u1].user.client-certificate: cannot read"),
    ({"exec": {"command": "aws"}}, None, "users[u1].user.exec: exec credential plugins are not supported"),
    ({"username": "a", "password": "b"}, None, "users[u1].user.username: basic authentication was removed"),
    ({"tokenFile": "/no/such/token"}, None, "users[u1].user.tokenFile: cannot read /no/such/token"),
    ({"token": "x"}, "absent", 'context: no context named "absent" in contexts (known: main, other, broken)'),
    ({"token": "x"}, "broken", 'contexts[broken].context.cluster: no cluster named "nope" in clusters'),
], ids=["bad-base64", "not-pem", "missing-file", "exec", "basic-auth", "missing-token-file", "no-context",
        "no-cluster"])
def test_errors_name_the_field(pki, user, context, message):
    with pytest.raises(KubeconfigError) as raised:
        from_dict(document(pki, **user), context, source="/etc/kpy/x.kubeconfig", base_dir=pki)
    assert str(raised.value).startswith("/etc/kpy/x.kubeconfig: ")
    assert message in str(raised.value)


def test_a_certificate_needs_its_key(pki):
    user = {"client-certificate-data": b64((pki / "admin.crt").read_bytes())}
    with pytest.raises(KubeconfigError, match=r"users\[u1\].user.client-key\(-data\): required with "
                                              r"client-certificate\(-data\)"):
        from_dict(document(pki, **user))


def test_a_mismatched_key_is_refused_naming_the_source(pki):
    config = ClientConfig(server="https://x", cert_pem=(pki / "admin.crt").read_bytes(),
                          key_pem=(pki / "apiserver.key").read_bytes(), source="k context c")
    with pytest.raises(KubeconfigError, match="k context c: the client certificate and key do not belong together"):
        ssl_context(config)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("current-context"), "current-context: not set"),
    (lambda d: d["clusters"][0]["cluster"].pop("server"), "clusters[c1].cluster.server: required"),
    (lambda d: d["clusters"][0]["cluster"].update(server="ftp://x"), "clusters[c1].cluster.server: must be an "
                                                                     "https:// URL"),
    (lambda d: d.update(contexts="main"), "contexts: must be a list"),
], ids=["no-current-context", "no-server", "bad-server", "contexts-not-list"])
def test_structural_errors_name_the_field(pki, mutate, message):
    content = document(pki)
    mutate(content)
    with pytest.raises(KubeconfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        from_dict(content)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(KubeconfigError, match=f"{tmp_path}/absent: cannot read the kubeconfig"):
        load_kubeconfig(tmp_path / "absent")
    (tmp_path / "bad").write_text("a: [")
    with pytest.raises(KubeconfigError, match="bad: not valid YAML"):
        load_kubeconfig(tmp_path / "bad")
    (tmp_path / "list").write_text("- 1")
    with pytest.raises(KubeconfigError, match="list: must be a mapping"):
        load_kubeconfig(tmp_path / "list")


# --- in-cluster ----------------------------------------------------------------------------------------------------

@pytest.fixture
def service_account(pki, tmp_path):
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text("jwt")
    (directory / "ca.crt").write_bytes((pki / "ca.crt").read_bytes())
    (directory / "namespace").write_text("kube-system")
    return directory


def test_in_cluster_reads_the_service_account_mount(service_account, pki):
    config = in_cluster({"KUBERNETES_SERVICE_HOST": "10.32.0.1", "KUBERNETES_SERVICE_PORT": "443"}, service_account)
    assert config.server == "https://10.32.0.1:443" and config.namespace == "kube-system"
    assert config.token_file == service_account / "token" and config.ca_pem == (pki / "ca.crt").read_bytes()
    ipv6 = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, service_account)
    assert ipv6.server == "https://[fd00::1]:443"


def test_in_cluster_errors(service_account):
    with pytest.raises(KubeconfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        in_cluster({"KUBERNETES_SERVICE_HOST": "10.32.0.1"}, service_account)
    (service_account / "ca.crt").write_text("garbage")
    with pytest.raises(KubeconfigError, match="ca.crt: not a PEM certificate"):
        in_cluster({"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"}, service_account)
    (service_account / "token").unlink()
    with pytest.raises(KubeconfigError, match="token: no service-account token mounted"):
        in_cluster({"KUBERNETES_SERVICE_HOST": "h", "KUBERNETES_SERVICE_PORT": "1"}, service_account)


def test_default_order_is_kubeconfig_env_then_in_cluster(pki, service_account, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    env = {"KUBECONFIG": f"{tmp_path}/missing:{pki}/admin.kubeconfig", "KUBERNETES_SERVICE_HOST": "10.32.0.1",
           "KUBERNETES_SERVICE_PORT": "443"}
    assert load_default(env, service_account_dir=service_account).cert_pem == (pki / "admin.crt").read_bytes()
    env.pop("KUBECONFIG")
    assert load_default(env, service_account_dir=service_account).source == "in-cluster config"
    with pytest.raises(KubeconfigError, match="no kubeconfig found"):
        load_default({}, service_account_dir=service_account)
