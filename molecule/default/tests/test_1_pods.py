"""Nodes and pods as users meet them, with the real kubectl 1.27 and 1.33 (the `kubectl` fixture runs a test with
each; `admin` is 1.33 for set-up and checks)."""
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import (CONTROL_PLANE, HOSTS, KUBECONFIG, VERSIONS, WORKERS, Kubectl, container_status, lab_ssh,
                      namespace, pod_phase, wait_for, wait_running)

testinfra_hosts = [CONTROL_PLANE[0]]  # the tests drive the cluster from the controller; one run is enough
VERSION = (Path(__file__).parents[3] / "VERSION").read_text().strip()
NS = f"demo-{int(time.time()) % 100000}"  # a fresh namespace per run, so a re-run against the same cluster starts clean


def pod(name: str, command: list[str], **spec) -> dict:
    container = {"name": spec.pop("container_name", "main"), "image": spec.pop("image", "busybox"),
                 "command": command, **spec.pop("container", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": spec.pop("labels", {})},
            "spec": {"containers": [container], "terminationGracePeriodSeconds": spec.pop("grace", 5), **spec}}


@pytest.fixture(scope="module")
def demo(admin) -> str:
    return namespace(admin, NS)


def test_every_host_is_a_ready_node_with_its_role(admin):
    nodes = wait_for(lambda: (items := admin.json("get", "nodes")["items"]) and len(items) == len(HOSTS) and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) for n in items)
        and items, 120, "three Ready nodes")
    by_name = {n["metadata"]["name"]: n for n in nodes}
    assert set(by_name) == set(HOSTS)
    for name in CONTROL_PLANE:
        control = by_name[name]
        assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in [
            {k: t[k] for k in ("key", "effect")} for t in control["spec"].get("taints") or []]
        assert "node-role.kubernetes.io/control-plane" in control["metadata"]["labels"]
    for name in WORKERS:
        node = by_name[name]
        assert "node-role.kubernetes.io/worker" in node["metadata"]["labels"]
        assert not [t for t in node["spec"].get("taints") or [] if t["key"].startswith("node-role")]
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
        info = node["status"]["nodeInfo"]
        assert info["kubeletVersion"] == f"v{VERSION}"
        assert info["containerRuntimeVersion"].startswith("containerd://")
        assert {"type": "InternalIP", "address": HOSTS[name]} in node["status"]["addresses"]
        assert int(node["status"]["capacity"]["pods"]) == 110 and node["spec"]["podCIDR"]
    printed = admin("get", "nodes")
    assert re.search(rf"{CONTROL_PLANE[0]}\s+Ready\s+control-plane", printed), printed


def test_a_deployment_spreads_over_both_workers_and_pods_talk_across_nodes(admin, demo):
    admin("create", "deployment", "web", "-n", demo, "--image=busybox", "--replicas=4", "--",
          "httpd", "-f", "-p", "8080", "-h", "/etc")
    admin("patch", "deployment", "web", "-n", demo, "--type=json", "-p",
          '[{"op": "add", "path": "/spec/template/spec/containers/0/readinessProbe", '
          '"value": {"httpGet": {"path": "/hostname", "port": 8080}, "periodSeconds": 2}}]')
    admin("rollout", "status", "deployment/web", "-n", demo, "--timeout=120s", timeout=130)
    pods = admin.json("get", "pods", "-n", demo, "-l", "app=web")["items"]
    running = [p for p in pods if p["status"]["phase"] == "Running" and not p["metadata"].get("deletionTimestamp")]
    assert {p["spec"]["nodeName"] for p in running} == set(WORKERS)
    here = next(p for p in running if p["spec"]["nodeName"] == WORKERS[0])
    there = next(p for p in running if p["spec"]["nodeName"] == WORKERS[1])
    page = admin("exec", "-n", demo, here["metadata"]["name"], "--", "wget", "-qO-",
                 f"http://{there['status']['podIP']}:8080/hostname")
    assert page.strip() == there["metadata"]["name"]


def test_exec_propagates_output_and_the_exit_code(kubectl, admin, demo):
    admin.apply(pod("shell", ["sleep", "3600"]), demo)
    wait_running(admin, demo, "shell")
    done = kubectl.run("exec", "-n", demo, "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert done.returncode == 3 and done.stdout == "out\n" and "err" in done.stderr
    echoed = kubectl.run("exec", "-i", "-n", demo, "shell", "--", "cat", input_text="from stdin\n")
    assert echoed.returncode == 0 and echoed.stdout == "from stdin\n"


def test_cp_copies_both_ways(kubectl, admin, demo):
    admin.apply(pod("shell", ["sleep", "3600"]), demo)
    wait_running(admin, demo, "shell")
    with tempfile.TemporaryDirectory() as folder:
        source, back = Path(folder, "in.txt"), Path(folder, "out.txt")
        source.write_text(f"copied by {kubectl.version}\n")
        kubectl("cp", str(source), f"{demo}/shell:/tmp/in.txt")
        assert kubectl("exec", "-n", demo, "shell", "--", "cat", "/tmp/in.txt") == source.read_text()
        kubectl("cp", f"{demo}/shell:/tmp/in.txt", str(back))
        assert back.read_text() == source.read_text()


def test_port_forward_reaches_the_pod(kubectl, admin, demo):
    admin.apply(pod("server", ["httpd", "-f", "-p", "8080", "-h", "/etc"]), demo)
    wait_running(admin, demo, "server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    forward = subprocess.Popen([kubectl.binary, "--kubeconfig", str(KUBECONFIG), "port-forward", "-n", demo,
                                "pod/server", f"{port}:8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        def fetch():
            with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
                connection.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
                return b"".join(iter(lambda: connection.recv(4096), b"")).decode()
        answer = wait_for(lambda: _try(fetch), 30, "an answer through port-forward")
        assert answer.startswith("HTTP/1.") and answer.rstrip().endswith("server")
    finally:
        forward.terminate()
        forward.wait(10)


def _try(call):
    try:
        return call()
    except OSError:
        return None


def test_logs_follow_tail_timestamps_previous_and_container(kubectl, admin, demo):
    name = f"talker-{kubectl.version.replace('.', '')}"
    manifest = pod(name, ["sh", "-c", "for i in 1 2 3; do echo line $i; done; sleep 2; exit 1"],
                   restartPolicy="Always")
    manifest["spec"]["containers"].append({"name": "side", "image": "busybox",
                                           "command": ["sh", "-c", "echo from side; sleep 3600"]})
    admin.apply(manifest, demo)
    wait_for(lambda: container_status(admin, demo, name, "main").get("restartCount", 0) >= 1, 90,
             "the container restarted once")
    assert kubectl("logs", "-n", demo, name, "-c", "main", "--previous") == "line 1\nline 2\nline 3\n"
    assert kubectl("logs", "-n", demo, name, "-c", "main", "--tail=1", "--previous") == "line 3\n"
    stamped = kubectl("logs", "-n", demo, name, "-c", "side", "--timestamps")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z from side\n", stamped), stamped
    # -f follows until the container stops: a pod that stops soon
    admin.apply(pod(f"{name}-f", ["sh", "-c", "echo a; sleep 3; echo b"], restartPolicy="Never"), demo)
    wait_for(lambda: pod_phase(admin, demo, f"{name}-f") in ("Running", "Succeeded"), 60, "the follow pod started")
    assert kubectl("logs", "-f", "-n", demo, f"{name}-f", timeout=60) == "a\nb\n"


def test_attach_shows_the_running_output(kubectl, admin, demo):
    name = f"ticker-{kubectl.version.replace('.', '')}"
    admin.apply(pod(name, ["sh", "-c", "while true; do echo tick; sleep 1; done"]), demo)
    wait_running(admin, demo, name)
    try:
        kubectl.run("attach", "-n", demo, name, timeout=4)
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        assert "tick" in output
    else:
        pytest.fail("attach ended while the container still runs")


def test_describe_shows_the_kubelet_events(kubectl, admin, demo):
    admin.apply(pod("shell", ["sleep", "3600"]), demo)
    wait_running(admin, demo, "shell")
    described = kubectl("describe", "pod", "-n", demo, "shell")
    for reason in ("Scheduled", "Created", "Started"):
        assert re.search(rf"Normal\s+{reason}\s", described), described
    assert re.search(r"Normal\s+(Pulled|Pulling)\s", described), described
    assert re.search(r"^Status:\s+Running$", described, re.M), described


def test_configmap_and_secret_reach_env_and_files(admin, demo):
    admin("create", "configmap", "settings", "-n", demo, "--from-literal=color=blue", "--from-literal=size=10")
    admin("create", "secret", "generic", "creds", "-n", demo, "--from-literal=password=s3cret")
    manifest = pod("configured", ["sleep", "3600"], container={
        "env": [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "color"}}},
                {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CM_"}],
        "volumeMounts": [{"name": "config", "mountPath": "/config"}, {"name": "secret", "mountPath": "/secret"}]},
        volumes=[{"name": "config", "configMap": {"name": "settings"}},
                 {"name": "secret", "secret": {"secretName": "creds"}}])
    admin.apply(manifest, demo)
    wait_running(admin, demo, "configured")
    env = dict(line.split("=", 1) for line in admin("exec", "-n", demo, "configured", "--", "env").splitlines()
               if "=" in line)
    assert (env["COLOR"], env["PASSWORD"], env["POD"], env["CM_size"]) == ("blue", "s3cret", "configured", "10")
    assert env["KUBERNETES_SERVICE_HOST"] and env["KUBERNETES_SERVICE_PORT"] == "443"
    files = admin("exec", "-n", demo, "configured", "--", "sh", "-c",
                  "cat /config/color; echo; cat /secret/password; echo; "
                  "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace")
    assert files.split() == ["blue", "s3cret", demo]


def test_a_failing_liveness_probe_restarts_the_container(admin, demo):
    manifest = pod("unhealthy", ["httpd", "-f", "-p", "8080", "-h", "/etc"], container={
        "livenessProbe": {"httpGet": {"path": "/missing", "port": 8080}, "periodSeconds": 1,
                          "failureThreshold": 2}})
    admin.apply(manifest, demo)
    wait_for(lambda: container_status(admin, demo, "unhealthy").get("restartCount", 0) >= 1, 90,
             "a restart after the liveness probe failed")
    events = admin("get", "events", "-n", demo, "--field-selector", "involvedObject.name=unhealthy")
    assert "Liveness probe failed: HTTP probe failed with statuscode: 404" in events


def test_a_container_over_its_memory_limit_is_oom_killed(admin, demo):
    manifest = pod("hungry", ["sh", "-c", "head -c 200m /dev/zero | tail"], restartPolicy="Never",
                   container={"resources": {"limits": {"memory": "32Mi"}}})
    admin.apply(manifest, demo)
    wait_for(lambda: pod_phase(admin, demo, "hungry") == "Failed", 90, "the pod failed")
    terminated = container_status(admin, demo, "hungry")["state"]["terminated"]
    assert terminated["reason"] == "OOMKilled" and terminated["exitCode"] == 137


def test_delete_runs_prestop_within_the_grace_period(admin, demo):
    worker = WORKERS[0]
    manifest = pod("stopper", ["sleep", "3600"], grace=10, nodeName=worker, container={
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo ran > /host/prestop"]}}},
        "volumeMounts": [{"name": "host", "mountPath": "/host"}]},
        volumes=[{"name": "host", "hostPath": {"path": "/tmp/kpy-prestop", "type": "DirectoryOrCreate"}}])
    lab_ssh(worker, "rm -f /tmp/kpy-prestop/prestop")
    admin.apply(manifest, demo)
    wait_running(admin, demo, "stopper")
    started = time.monotonic()
    admin("delete", "pod", "-n", demo, "stopper", "--wait=true", timeout=60)
    assert time.monotonic() - started < 10 + 5  # `sleep` ignores nothing: SIGTERM ends it well before SIGKILL
    assert lab_ssh(worker, "cat /tmp/kpy-prestop/prestop").stdout.strip() == "ran"


def test_a_job_runs_to_completion(admin, demo):
    admin("create", "job", "count", "-n", demo, "--image=busybox", "--", "sh", "-c", "echo done")
    admin("wait", "--for=condition=complete", "job/count", "-n", demo, "--timeout=90s", timeout=100)
    assert admin("logs", "-n", demo, "job/count") == "done\n"


def test_a_bad_image_ends_in_image_pull_back_off(admin, demo):
    admin.apply(pod("missing", ["true"], image="busybox:no-such-tag"), demo)
    wait_for(lambda: container_status(admin, demo, "missing").get("state", {}).get("waiting", {}).get("reason")
             in ("ErrImagePull", "ImagePullBackOff"), 60, "the image pull failed")
    wait_for(lambda: container_status(admin, demo, "missing")["state"]["waiting"]["reason"] == "ImagePullBackOff",
             60, "ImagePullBackOff")
    events = admin("get", "events", "-n", demo, "--field-selector", "involvedObject.name=missing")
    assert 'Failed to pull image "busybox:no-such-tag"' in events and "not found" in events


def test_restarting_the_kubelet_keeps_every_container(admin, demo):
    pods = admin.json("get", "pods", "-n", demo, "-l", "app=web")["items"]
    before = {p["metadata"]["name"]: (p["status"]["containerStatuses"][0]["containerID"],
                                      p["status"]["containerStatuses"][0]["restartCount"]) for p in pods}
    for worker in WORKERS:
        assert lab_ssh(worker, "systemctl restart kpy-kubelet").returncode == 0
    time.sleep(5)  # let the restarted kubelets resync and report (they must not change anything)
    for worker in WORKERS:
        wait_for(lambda: lab_ssh(worker, "python3 -c \"import urllib.request; print(urllib.request.urlopen("
                                 "'http://127.0.0.1:10248/healthz').read().decode())\"").stdout.strip() == "ok",
                 60, f"{worker}'s kubelet healthy again")
    after = {p["metadata"]["name"]: (p["status"]["containerStatuses"][0]["containerID"],
                                     p["status"]["containerStatuses"][0]["restartCount"])
             for p in admin.json("get", "pods", "-n", demo, "-l", "app=web")["items"]}
    assert after == before


@pytest.mark.parametrize("version", [VERSIONS[-1]])
def test_drain_evicts_without_violating_the_budget(version, admin, demo):
    kubectl = Kubectl(version)
    kubectl("create", "poddisruptionbudget", "web", "-n", demo, "--selector=app=web", "--min-available=3")
    worker = WORKERS[0]
    drained = kubectl.run("drain", worker, "--ignore-daemonsets", "--delete-emptydir-data", "--force",
                          "--timeout=120s", "--pod-selector=app=web", timeout=150)
    try:
        assert drained.returncode == 0, drained.stderr
        wait_for(lambda: all(p["spec"]["nodeName"] == WORKERS[1] for p in
                             admin.json("get", "pods", "-n", demo, "-l", "app=web")["items"]), 60,
                 "every web pod on the other worker")
        admin("rollout", "status", "deployment/web", "-n", demo, "--timeout=120s", timeout=130)
    finally:
        admin("uncordon", worker)
        admin("delete", "poddisruptionbudget", "web", "-n", demo)


def test_a_stopped_kubelet_turns_its_node_not_ready_and_its_pods_move(admin, demo):
    worker = WORKERS[1]
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mover"},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "mover"}},
                         "template": {"metadata": {"labels": {"app": "mover"}}, "spec": {
                             "nodeSelector": {"node-role.kubernetes.io/worker": ""},
                             "tolerations": [{"key": f"node.kubernetes.io/{k}", "operator": "Exists",
                                              "effect": "NoExecute", "tolerationSeconds": 5}
                                             for k in ("not-ready", "unreachable")],
                             "terminationGracePeriodSeconds": 1,
                             "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}}}
    admin.apply(manifest, demo)
    admin("rollout", "status", "deployment/mover", "-n", demo, "--timeout=90s", timeout=100)
    first = admin.json("get", "pods", "-n", demo, "-l", "app=mover")["items"][0]
    if first["spec"]["nodeName"] != worker:
        worker = first["spec"]["nodeName"]
    assert lab_ssh(worker, "systemctl stop kpy-kubelet").returncode == 0
    try:
        wait_for(lambda: any(c["type"] == "Ready" and c["status"] != "True"
                             for c in admin.json("get", "node", worker)["status"]["conditions"]), 90,
                 f"{worker} NotReady")
        wait_for(lambda: any(p["spec"].get("nodeName") not in (None, worker) and p["status"].get("phase") == "Running"
                             for p in admin.json("get", "pods", "-n", demo, "-l", "app=mover")["items"]), 120,
                 "the pod replaced on another node")
    finally:
        lab_ssh(worker, "systemctl start kpy-kubelet")
        wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True"
                             for c in admin.json("get", "node", worker)["status"]["conditions"]), 90,
                 f"{worker} Ready again")
