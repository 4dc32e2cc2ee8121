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


def control_plane_host():
    import testinfra
    return testinfra.get_host(f"ansible://api-cp1?ansible_inventory={os.environ['MOLECULE_INVENTORY_FILE']}")


def test_front_proxy_certificate_with_remote_user_is_authenticated_as_that_user():
    """requestheader authentication as the role configures it: the front-proxy client certificate (what the
    aggregation layer presents) with X-Remote-User/X-Remote-Group is that user; SelfSubjectReview says who."""
    probe = ("import json, ssl, urllib.request\n"
             "ctx = ssl.create_default_context(cafile='/etc/kpy/pki/ca.crt')\n"
             "ctx.load_cert_chain('/etc/kpy/pki/front-proxy-client.crt', '/etc/kpy/pki/front-proxy-client.key')\n"
             "body = json.dumps({'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'}).encode()\n"
             "request = urllib.request.Request('https://127.0.0.1:6443/apis/authentication.k8s.io/v1/"
             "selfsubjectreviews', data=body, method='POST', headers={'Content-Type': 'application/json', "
             "'X-Remote-User': 'jane', 'X-Remote-Group': 'team-a'})\n"
             "print(json.dumps(json.load(urllib.request.urlopen(request, context=ctx, timeout=10))['status']))\n")
    result = control_plane_host().run("python3 -c %s", probe)
    assert result.rc == 0, result.stderr
    assert '"userInfo": {"username": "jane", "groups": ["team-a", "system:authenticated"]}' in result.stdout


def test_a_nodes_own_client_csr_is_approved_and_signed(host, kubectl):
    """csrapproving and csrsigning on an Ansible cluster: the worker's kubelet identity (system:node:api-w1) asks for a
    new client certificate for itself; it is approved (selfnodeclient) and signed by the cluster CA."""
    name = "api-w1-renewal"
    script = f"""set -e
cd "$(mktemp -d)"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout node.key -out node.csr \\
  -subj "/O=system:nodes/CN=system:node:api-w1" 2>/dev/null
cat > csr.json <<JSON
{{"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {{"name": "{name}"}},
 "spec": {{"request": "$(base64 -w0 node.csr)", "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
          "usages": ["digital signature", "client auth"]}}}}
JSON
kubectl --kubeconfig /etc/kpy/kubelet.kubeconfig --server https://{API_SERVERS[0]}:6443 create -f csr.json
for attempt in $(seq 120); do
  cert=$(kubectl --kubeconfig /etc/kpy/kubelet.kubeconfig --server https://{API_SERVERS[0]}:6443 \\
    get csr {name} -o jsonpath='{{.status.certificate}}')
  if [ -n "$cert" ]; then break; fi
  sleep 0.5
done
echo "$cert" | base64 -d > node.crt
openssl verify -CAfile /etc/kpy/pki/ca.crt node.crt
openssl x509 -noout -subject -nameopt sep_comma_plus_space -in node.crt
"""
    result = host.run("bash -c %s", script)
    assert result.rc == 0, result.stdout + result.stderr
    assert "node.crt: OK" in result.stdout
    assert "subject=O=system:nodes, CN=system:node:api-w1" in result.stdout
    reason = kubectl(API_SERVERS[1], "get", "csr", name, "-o", "jsonpath='{.status.conditions[0].reason}'")
    assert reason.stdout == "AutoApproved", reason.stdout + reason.stderr
