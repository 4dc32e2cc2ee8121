"""The kube_proxy role and the kpy-proxy daemon on two lab hosts: a control-plane host (etcd, API server) and a
worker (haproxy in front of it), provisioned by the roles before it in site.yml. Services and EndpointSlices are
made with the real kubectl; the "pods" are network namespaces on the worker's bridge kpy0, reached from the other
host over a host-gw route (what the kubelet sets up; the kubelet itself is not needed by kpy-proxy)."""
import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from test_cri_runtime import kpy_lab, wait_for
from test_proxy_kernel import CLIENT, HOLD, SERVER, pod_network

pytestmark = pytest.mark.lab

LAB = "prx"
CP, WORKER = f"{LAB}-cp1", f"{LAB}-w1"
REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
POD_SUBNET, GATEWAY = "10.244.1", "10.244.1.1"  # inside kpy_pod_cidr of inventory/lab
PODS = {"pod-a": f"{POD_SUBNET}.10", "pod-b": f"{POD_SUBNET}.11"}
NODE_PORT = 30080

# The roles kpy-proxy needs, as site.yml runs them (the kubelet and containerd are not needed).
PREREQUISITES = f"""
- name: Validate
  ansible.builtin.import_playbook: {REPO}/playbooks/validate.yml
- name: Every host
  hosts: etcd:control_plane:workers
  become: true
  gather_facts: false
  roles: [kpy_install, pki, firewall]
- name: Etcd
  ansible.builtin.import_playbook: {REPO}/playbooks/etcd.yml
- name: Control plane
  hosts: control_plane
  become: true
  gather_facts: false
  roles: [kube_apiserver]
- name: API load balancer
  hosts: workers
  become: true
  gather_facts: false
  roles: [api_loadbalancer]
"""

POD_NETWORK = pod_network(PODS, GATEWAY, tuple(PODS))


def on(host: str, command: str, **kwargs) -> str:
    result = kpy_lab("ssh", f"--lab={LAB}", host, command, check=False, **kwargs)
    assert result.returncode == 0, f"{host}: {command}: {result.stdout}{result.stderr}"
    return result.stdout


def playbook(inventory: Path, path: Path) -> str:
    result = subprocess.run([VENV_BIN / "ansible-playbook", "-i", str(inventory), str(path)], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def recap(output: str) -> dict[str, str]:
    """host -> its PLAY RECAP line."""
    lines = output.split("PLAY RECAP")[-1].splitlines()
    return {line.split()[0]: line for line in lines if " : ok=" in line}


class Cluster:
    def __init__(self, work: Path):
        self.inventory = work / "inventory"
        self.kubeconfig = self.inventory / "artifacts" / "admin.kubeconfig"
        self.address = {}

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run([shutil.which("kubectl") or VENV_BIN / "kubectl", "--kubeconfig", str(self.kubeconfig),
                                 *args], input=stdin, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def replies(self, host: str, address: str, port: int, count: int) -> list[str]:
        return on(host, f"python3 /tmp/client.py {address} {port} {count}").splitlines()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("proxy-role")
    result = Cluster(work)
    (result.inventory / "group_vars").mkdir(parents=True)
    shutil.copy(REPO / "inventory" / "lab" / "group_vars" / "all.yml", result.inventory / "group_vars")
    kpy_lab("up", f"--lab={LAB}", "--subnet-index=24", "--control-plane=1", "--workers=1",
            f"--inventory={result.inventory / 'hosts.yml'}")
    try:
        (work / "prerequisites.yml").write_text(PREREQUISITES)
        playbook(result.inventory, work / "prerequisites.yml")
        result.first_run = playbook(result.inventory, REPO / "playbooks" / "kube_proxy.yml")
        result.second_run = playbook(result.inventory, REPO / "playbooks" / "kube_proxy.yml")
        status = kpy_lab("status", f"--lab={LAB}").stdout.split()
        result.address = {status[i]: status[i + 1] for i in range(0, len(status), 4)}
        for host in (CP, WORKER):
            for name, text in (("client", CLIENT), ("hold", HOLD), ("server", SERVER)):
                on(host, f"cat > /tmp/{name}.py", input=text)
        on(WORKER, POD_NETWORK)
        on(CP, f"sysctl -qw net.ipv4.ip_forward=1; ip route replace {POD_SUBNET}.0/24 via {result.address[WORKER]}")
        yield result
    finally:
        kpy_lab("down", f"--lab={LAB}", check=False)


def service_objects(*ready_pods: str, unready: tuple[str, ...] = ()) -> str:
    endpoints = [{"addresses": [PODS[p]], "nodeName": WORKER, "conditions": {"ready": True}} for p in ready_pods]
    endpoints += [{"addresses": [PODS[p]], "nodeName": WORKER, "conditions": {"ready": False}} for p in unready]
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo"},
         "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                                 "nodePort": NODE_PORT}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": "web-1", "namespace": "demo", "labels": {"kubernetes.io/service-name": "web"}},
         "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
         "endpoints": endpoints},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty", "namespace": "demo"},
         "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


def cluster_ip(cluster: Cluster, name: str) -> str:
    return cluster.kubectl("get", "service", name, "-n", "demo", "-o", "jsonpath={.spec.clusterIP}")


def healthz(url: str) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return None


def test_the_role_converges_once_and_gates_on_health(cluster):
    for host in (CP, WORKER):
        assert "changed=1" in recap(cluster.first_run)[host]  # the config and unit written, the service started
        assert "changed=0" in recap(cluster.second_run)[host] and "failed=0" in recap(cluster.second_run)[host]
        status, body = healthz(f"http://{cluster.address[host]}:10256/healthz")  # open in the firewall
        assert status == 200 and body["nodeEligible"] is True and body["lastUpdated"].endswith("+0000 UTC")
        metrics = on(host, "python3 -c \"import urllib.request as u; "
                           "print(u.urlopen('http://127.0.0.1:10249/metrics').read().decode())\"")
        assert 'kubeproxy_sync_proxy_rules_nftables_total{kind="chain"}' in metrics
        assert on(host, "systemctl show -p User --value kpy-proxy").strip() in ("", "root")
        assert "nat-prerouting" in on(host, "nft list chains ip")
    assert healthz(f"http://{cluster.address[WORKER]}:10249/metrics") is None  # metrics stay on loopback


def test_services_made_with_kubectl_answer_from_every_node(cluster):
    cluster.kubectl("apply", "-f", "-", stdin=service_objects("pod-a", "pod-b"))
    web, empty = cluster_ip(cluster, "web"), cluster_ip(cluster, "empty")
    for host in (CP, WORKER):  # the host itself is outside the cluster CIDR: masqueraded, so replies come back
        wait_for(lambda h=host: {r.split()[0] for r in cluster.replies(h, web, 80, 20)} == {"a", "b"},
                 f"ClusterIP {web} balanced from {host}")
        assert cluster.replies(host, empty, 80, 1) == ["refused"]
    for host in (CP, WORKER):  # NodePort on each host's address, from this machine
        answer = subprocess.run([sys.executable, "-c", CLIENT, cluster.address[host], str(NODE_PORT), "20"],
                                capture_output=True, text=True, check=True).stdout.split()
        assert set(answer[::2]) == {"a", "b"}, answer


def test_an_endpoint_slice_change_goes_live(cluster):
    cluster.kubectl("apply", "-f", "-", stdin=service_objects("pod-b", unready=("pod-a",)))
    web = cluster_ip(cluster, "web")
    wait_for(lambda: {r.split()[0] for r in cluster.replies(CP, web, 80, 20)} == {"b"}, "only pod-b answering")
    cluster.kubectl("apply", "-f", "-", stdin=service_objects(unready=("pod-a", "pod-b")))
    wait_for(lambda: cluster.replies(CP, web, 80, 1) == ["refused"], "no ready endpoint: refused")
    cluster.kubectl("apply", "-f", "-", stdin=service_objects("pod-a", "pod-b"))
    wait_for(lambda: {r.split()[0] for r in cluster.replies(CP, web, 80, 20)} == {"a", "b"}, "both back")


def test_a_restart_leaves_connections_and_rules_standing(cluster):
    cluster.kubectl("apply", "-f", "-", stdin=service_objects("pod-a", "pod-b"))
    web = cluster_ip(cluster, "web")
    on(CP, f"rm -f /tmp/hold.out /tmp/hold.go; setsid python3 /tmp/hold.py {web} 80 </dev/null >/tmp/hold.log 2>&1 &")
    greeting = wait_for(lambda: on(CP, "cat /tmp/hold.out 2>/dev/null || true").strip(), "the held connection")
    on(CP, "systemctl restart kpy-proxy")
    wait_for(lambda: (healthz(f"http://{cluster.address[CP]}:10256/healthz") or (0,))[0] == 200,
             "kpy-proxy healthy again")
    on(CP, "touch /tmp/hold.go")
    lines = wait_for(lambda: (out := on(CP, "cat /tmp/hold.out")).count("\n") >= 2 and out, "the echo")
    assert lines.splitlines() == [greeting, "still-here"]
    on(CP, "systemctl stop kpy-proxy")  # stopped: the table stays, Services keep working
    assert {r.split()[0] for r in cluster.replies(CP, web, 80, 20)} == {"a", "b"}
    on(CP, "systemctl start kpy-proxy")
