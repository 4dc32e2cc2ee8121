"""Kubernetes The Hard Way's smoke tests, automated against the scenario's cluster with the real kubectl, plus what
Services and cluster DNS must do on any conformant cluster (issue 11)."""
import time

import pytest
from conftest import CONTROL_PLANE, HOSTS, WORKERS, Kubectl, lab_ssh, namespace, wait_for, wait_running

testinfra_hosts = [CONTROL_PLANE[0]]  # the tests drive the cluster from the controller; one run is enough
NS = f"smoke-{int(time.time()) % 100000}"
ETCDCTL = ("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kpy/pki/etcd/ca.crt "
           "--cert=/etc/kpy/pki/etcd/healthcheck-client.crt --key=/etc/kpy/pki/etcd/healthcheck-client.key")


@pytest.fixture(scope="module")
def smoke(admin) -> str:
    return namespace(admin, NS)


def server(name: str, node: str, labels: dict | None = None, **container) -> dict:
    """A busybox httpd answering /hostname (its pod name), pinned to a node."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "hostname": name,
                     "containers": [{"name": "main", "image": "busybox",
                                     "command": ["httpd", "-f", "-p", "8080", "-h", "/etc"], **container}]}}


def service(name: str, selector: dict, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}}


def in_pod(admin: Kubectl, ns: str, pod: str, command: str) -> str:
    """The command's output in the pod, or its exit status and error (busybox's wget crashes with -T: bound waits
    with the `timeout` applet instead)."""
    done = admin.run("exec", "-n", ns, pod, "--", "sh", "-c", command, timeout=60)
    return done.stdout if done.returncode == 0 else f"exit {done.returncode}: {done.stderr}"


def test_a_secret_is_stored_encrypted_in_etcd(admin, smoke):
    admin("create", "secret", "generic", "kubernetes-the-hard-way", "-n", smoke, "--from-literal=mykey=mydata")
    raw = lab_ssh(CONTROL_PLANE[0], f"{ETCDCTL} get /registry/secrets/{smoke}/kubernetes-the-hard-way "
                                    "| tr -c '[:print:]' '.'")  # the value is binary: printable bytes only
    assert raw.returncode == 0, raw.stderr
    assert f"/registry/secrets/{smoke}/kubernetes-the-hard-way.k8s:enc:aescbc:v1:key1:" in raw.stdout
    assert "mydata" not in raw.stdout
    assert admin("get", "secret", "-n", smoke, "kubernetes-the-hard-way", "-o",
                 "jsonpath={.data.mykey}") == "bXlkYXRh"


def test_a_nodeport_answers_on_every_node_from_another_host(admin, smoke):
    admin.apply(server("nodeport-web", WORKERS[0]), smoke)
    wait_running(admin, smoke, "nodeport-web")
    admin.apply(service("nodeport-web", {"app": "nodeport-web"}, type="NodePort"), smoke)
    port = admin("get", "service", "-n", smoke, "nodeport-web", "-o", "jsonpath={.spec.ports[0].nodePort}")
    for node in (WORKERS[1], CONTROL_PLANE[0]):
        target = HOSTS[WORKERS[0]] if node != WORKERS[0] else HOSTS[WORKERS[1]]
        answer = wait_for(lambda: lab_ssh(node, f"python3 -c \"import urllib.request; print(urllib.request.urlopen("
                                                f"'http://{target}:{port}/hostname', timeout=5).read().decode())\"")
                          .stdout.strip(), 30, f"the NodePort from {node}")
        assert answer == "nodeport-web"


def test_a_clusterip_answers_from_a_pod_on_the_other_worker(admin, smoke):
    admin.apply(server("backend", WORKERS[0]), smoke)
    admin.apply(server("client", WORKERS[1]), smoke)
    admin.apply(service("backend", {"app": "backend"}), smoke)
    wait_running(admin, smoke, "backend")
    wait_running(admin, smoke, "client")
    address = admin("get", "service", "-n", smoke, "backend", "-o", "jsonpath={.spec.clusterIP}")
    answer = wait_for(lambda: in_pod(admin, smoke, "client", f"timeout 5 wget -qO- http://{address}/hostname").strip(),
                      30, "the ClusterIP from the other worker")
    assert answer == "backend"


def test_names_resolve_inside_pods(admin, smoke):
    admin.apply(server("resolver", WORKERS[1]), smoke)
    wait_running(admin, smoke, "resolver")
    cluster_ip = admin("get", "service", "-n", "default", "kubernetes", "-o", "jsonpath={.spec.clusterIP}")
    # busybox's nslookup applies the search path only to names without dots, so kubernetes.default by its full name
    answer = wait_for(lambda: (out := in_pod(admin, smoke, "resolver",
                                             "nslookup kubernetes.default.svc.cluster.local"))
                      and f"Address: {cluster_ip}" in out and out, 60, "kubernetes.default resolving")
    assert "Name:\tkubernetes.default.svc.cluster.local" in answer
    started = time.monotonic()
    admin.apply(service("fresh", {"app": "nobody"}), smoke)
    fresh_ip = admin("get", "service", "-n", smoke, "fresh", "-o", "jsonpath={.spec.clusterIP}")
    wait_for(lambda: fresh_ip in in_pod(admin, smoke, "resolver", f"nslookup fresh.{smoke}.svc.cluster.local"),
             30, "a new Service's name resolving")
    short = in_pod(admin, smoke, "resolver", "nslookup fresh 2>&1; true")  # through the search path
    assert f"Name:\tfresh.{smoke}.svc.cluster.local" in short and f"Address: {fresh_ip}" in short
    assert time.monotonic() - started < 30
    resolv = in_pod(admin, smoke, "resolver", "cat /etc/resolv.conf")
    assert f"search {smoke}.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert "options ndots:5" in resolv


def test_a_headless_service_returns_the_pod_ips(admin, smoke):
    for index, node in enumerate(WORKERS):
        admin.apply(server(f"member-{index}", node, labels={"app": "members"}), smoke)
    pods = [wait_running(admin, smoke, f"member-{index}") for index in range(len(WORKERS))]
    admin.apply(service("members", {"app": "members"}, clusterIP="None"), smoke)
    admin.apply(server("asker", WORKERS[0]), smoke)
    wait_running(admin, smoke, "asker")
    wanted = {p["status"]["podIP"] for p in pods}
    found = wait_for(lambda: (out := in_pod(admin, smoke, "asker", f"nslookup members.{smoke}.svc.cluster.local"))
                     and all(ip in out for ip in wanted) and out, 60, "the headless Service's pod IPs")
    assert all(ip in found for ip in wanted)


def test_a_service_without_ready_endpoints_refuses_connections(admin, smoke):
    admin.apply(service("empty", {"app": "nothing-matches"}), smoke)
    admin.apply(server("prober", WORKERS[0]), smoke)
    wait_running(admin, smoke, "prober")
    address = admin("get", "service", "-n", smoke, "empty", "-o", "jsonpath={.spec.clusterIP}")
    started = time.monotonic()
    out = in_pod(admin, smoke, "prober", f"timeout 10 wget -qO- http://{address}/ 2>&1; echo rc=$?")
    assert "rc=0" not in out and ("refused" in out.lower() or "unreachable" in out.lower()), out
    assert time.monotonic() - started < 9  # refused at once, not left to time out


def test_a_pod_that_turns_unready_leaves_its_service(admin, smoke):
    ready = {"readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1,
                                "failureThreshold": 1},
             "lifecycle": {"postStart": {"exec": {"command": ["touch", "/tmp/ready"]}}}}
    admin.apply(server("flaky", WORKERS[1], **ready), smoke)
    admin.apply(service("flaky", {"app": "flaky"}), smoke)
    wait_running(admin, smoke, "flaky")
    pod_ip = admin("get", "pod", "-n", smoke, "flaky", "-o", "jsonpath={.status.podIP}")

    def ready_addresses() -> list[str]:
        slices = admin.json("get", "endpointslices", "-n", smoke, "-l", "kubernetes.io/service-name=flaky")["items"]
        return [address for item in slices for endpoint in item.get("endpoints") or []
                if (endpoint.get("conditions") or {}).get("ready") for address in endpoint["addresses"]]
    wait_for(lambda: ready_addresses() == [pod_ip], 30, "the pod in its Service's endpoints")
    admin("exec", "-n", smoke, "flaky", "--", "rm", "/tmp/ready")
    wait_for(lambda: ready_addresses() == [], 30, "the unready pod out of its Service's endpoints")
    assert admin.json("get", "pod", "-n", smoke, "flaky")["status"]["containerStatuses"][0]["ready"] is False
