"""The API servers as a user on another host meets them: the real kubectl with the admin kubeconfig works through
each one, and a request without credentials is refused."""
import os
import shutil
from pathlib import Path

import pytest

testinfra_hosts = ["api-w1"]
API_SERVERS = ["10.213.14.11", "10.213.14.12", "10.213.14.13"]
KUBECONFIG = "/root/admin.kubeconfig"


@pytest.fixture(scope="module")
def kubectl(host):
    """The machine's real kubectl and the cluster's admin kubeconfig, copied onto the worker."""
    artifacts = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "artifacts"
    binary = os.path.realpath(shutil.which("kubectl"))
    for src, dest, mode in ((binary, "/usr/local/bin/kubectl", "0755"),
                            (str(artifacts / "admin.kubeconfig"), KUBECONFIG, "0600")):
        result = host.ansible("ansible.builtin.copy", f"src={src} dest={dest} mode={mode}", become=True, check=False)
        assert not result.get("failed"), result

    def run(server: str, *args: str):
        return host.run("kubectl --kubeconfig %s --cache-dir /tmp/kubectl-cache --server %s " + " ".join(args),
                        KUBECONFIG, f"https://{server}:6443")
    return run


def test_kubectl_writes_and_reads_through_each_api_server(kubectl):
    names = {server: f"configmap/via-{server.replace('.', '-')}" for server in API_SERVERS}
    for server, name in names.items():
        created = kubectl(server, "create", "configmap", name.split("/")[1], "--from-literal=a=b")
        assert created.rc == 0, created.stderr
    # What was written through any server is read through every one: they share the etcd cluster.
    for server in API_SERVERS:
        listed = kubectl(server, "get", "configmaps", "-o", "name")
        assert listed.rc == 0, listed.stderr
        assert set(names.values()) <= set(listed.stdout.split()), (server, listed.stdout)


def test_every_api_server_reports_the_distribution_version(kubectl):
    version = (Path(__file__).resolve().parents[3] / "VERSION").read_text().strip()
    for server in API_SERVERS:
        result = kubectl(server, "version", "-o", "json")
        assert result.rc == 0, result.stderr
        assert f'"gitVersion": "v{version}"' in result.stdout


@pytest.mark.parametrize("server", API_SERVERS)
def test_request_without_credentials_is_refused(host, server):
    probe = ("import ssl, urllib.request, urllib.error\n"
             "ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n"
             "try:\n"
             f"    urllib.request.urlopen('https://{server}:6443/api/v1/namespaces', context=ctx, timeout=5)\n"
             "    print('allowed')\n"
             "except urllib.error.HTTPError as error:\n"
             "    print(error.code)\n")
    result = host.run("python3 -c %s", probe)
    assert result.stdout.strip() == "401", result.stdout + result.stderr
