"""kpy's CRI client and request builders against the real runtime: Debian's containerd (CRI plugin), runc and the
CNI plugins in a lab host, driven from this machine through an SSH-forwarded unix socket. A pod built by
requests.py runs, is observed at every step, and shows inside the container what each request field asked for
(so a wrong field number in api.proto shows up here as a missing effect)."""
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kpy_components.kubelet.cri import requests
from kpy_components.kubelet.cri.client import CRIError, CRINotFound, RuntimeClient
from kpy_components.kubelet.cri.dns import DNSSettings, ResolvConf
from kpy_components.kubelet.model import Mount

pytestmark = [pytest.mark.lab, pytest.mark.anyio]

LAB = "cri"
HOST = f"{LAB}-w1"
VENV_BIN = Path(sys.executable).parent
POD_CIDR = "10.244.21.0/24"  # lives only inside the lab host
BUSYBOX = "docker.io/library/busybox:latest"
PAUSE = "registry.k8s.io/pause:3.9"
UID = "0b8c5a52-6f0e-4d1e-9a57-2f61c1a3c0de"

CONTAINERD_CONFIG = f"""version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  # Lab hosts (systemd-nspawn) withhold CAP_SYS_RESOURCE, so no process there may lower an OOM score below its
  # own: without this, every sandbox fails in runc ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
"""

CNI_CONFIG = f"""{{"cniVersion": "0.4.0", "name": "kpy-test", "plugins": [
  {{"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
    "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{POD_CIDR}"}}]],
             "routes": [{{"dst": "0.0.0.0/0"}}]}}}},
  {{"type": "portmap", "capabilities": {{"portMappings": true}}}}]}}
"""

# Runs inside the host (python3 there): an OCI image archive of busybox-static (one uncompressed layer: bin/busybox
# and its applets as links) holding two images, busybox (Cmd sh) and a pause image that sleeps, for
# `ctr -n k8s.io images import`. TODO: use kpy_components/images once it has landed.
IMAGE_ARCHIVE = r"""
import hashlib, io, json, subprocess, sys, tarfile
applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout.split()
def entry(name, kind, **kw):
    info = tarfile.TarInfo(name); info.type = kind; info.mode = kw.get("mode", 0o755); info.linkname = kw.get("link", "")
    return info
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as tar:
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
        tar.addfile(entry(d, tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755))
    data = open("/bin/busybox", "rb").read()
    info = entry("bin/busybox", tarfile.REGTYPE); info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    for applet in sorted(set(applets) - {"busybox"}):
        tar.addfile(entry("bin/" + applet, tarfile.SYMTYPE, mode=0o777, link="busybox"))
blobs = {}
def blob(data, media):
    digest = "sha256:" + hashlib.sha256(data).hexdigest(); blobs[digest] = data
    return {"mediaType": media, "digest": digest, "size": len(data)}
layer_desc = blob(layer.getvalue(), "application/vnd.oci.image.layer.v1.tar")
manifests = []
for name, config in ((sys.argv[1], {"Cmd": ["sh"]}), (sys.argv[2], {"Entrypoint": ["/bin/sleep", "2147483647"]})):
    config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
              "config": {"Env": ["PATH=/bin"], **config}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
                "layers": [layer_desc]}
    desc = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    desc["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    manifests.append(desc)
with tarfile.open(sys.argv[3], "w") as out:
    def add(path, data):
        info = tarfile.TarInfo(path); info.size = len(data); out.addfile(info, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    add("index.json", json.dumps({"schemaVersion": 2, "manifests": manifests}).encode())
    for digest, data in blobs.items():
        add("blobs/sha256/" + digest.split(":")[1], data)
"""

SETUP = f"""set -e
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq containerd runc containernetworking-plugins iptables busybox-static >/dev/null
mkdir -p /etc/containerd /etc/cni/net.d /srv/kpy-test/data
chmod 1777 /srv/kpy-test/data
cat > /etc/containerd/config.toml <<'EOF'
{CONTAINERD_CONFIG}EOF
cat > /etc/cni/net.d/10-kpy-test.conflist <<'EOF'
{CNI_CONFIG}EOF
sysctl -qw net.ipv4.ip_forward=1
systemctl restart containerd
for i in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
python3 /tmp/image-archive.py {BUSYBOX} {PAUSE} /tmp/images.tar
ctr -n k8s.io images import /tmp/images.tar >/dev/null
"""


def kpy_lab(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([VENV_BIN / "kpy-lab", *args], capture_output=True, text=True, check=check, **kwargs)


def on_host(command: str, **kwargs) -> subprocess.CompletedProcess:
    result = kpy_lab("ssh", f"--lab={LAB}", HOST, command, check=False, **kwargs)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result


def wait_for(predicate, what: str, deadline: float = 30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def fetch(url: str) -> str | None:
    """The page's text, or None while nothing answers there."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.read().decode()
    except OSError:
        return None


@pytest.fixture(scope="module")
def runtime_socket(tmp_path_factory):
    """containerd set up in a lab host; yields the path of a local unix socket forwarded to its CRI socket."""
    work = tmp_path_factory.mktemp("cri")
    kpy_lab("up", f"--lab={LAB}", "--subnet-index=21", "--control-plane=0", "--workers=1",
            f"--inventory={work / 'hosts.yml'}")
    tunnel = None
    try:
        on_host("cat > /tmp/image-archive.py", input=IMAGE_ARCHIVE)
        on_host(SETUP)
        address = kpy_lab("status", f"--lab={LAB}").stdout.split()[1]
        socket = work / "containerd.sock"
        tunnel = subprocess.Popen(
            ["ssh", "-N", "-i", f"/var/lib/kpy-lab/{LAB}/id_ed25519", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ExitOnForwardFailure=yes",
             "-L", f"{socket}:/run/containerd/containerd.sock", f"root@{address}"],
            stdin=subprocess.DEVNULL)
        wait_for(lambda: socket.exists() or tunnel.poll() is not None, "the forwarded socket")
        assert tunnel.poll() is None, "ssh could not forward the CRI socket"
        yield str(socket)
    finally:
        if tunnel is not None:
            tunnel.terminate()
            tunnel.wait()
        kpy_lab("down", f"--lab={LAB}", check=False)


POD = {
    "metadata": {"name": "web-0", "namespace": "shop", "uid": UID, "labels": {"app": "web"},
                 "annotations": {"note": "from-the-pod"}},
    "spec": {
        "hostname": "web-0",
        "subdomain": "web",
        "terminationGracePeriodSeconds": 10,
        "securityContext": {"runAsUser": 1000, "runAsGroup": 2000},
        "dnsConfig": {"searches": ["example.test"], "options": [{"name": "timeout", "value": "2"}]},
        "containers": [{
            "name": "app", "image": "busybox",
            "command": ["sh", "-c"],
            "args": ["echo 'started $(GREETING) $$(GREETING)'; trap 'exit 3' TERM; while true; do sleep 0.2; done"],
            "workingDir": "/tmp",
            "resources": {"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "500m", "memory": "64Mi"}},
            "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}},
        }],
    },
}
SETTINGS = DNSSettings(cluster_dns=("10.96.0.10",), cluster_domain="cluster.local",
                       host=ResolvConf(searches=("lab.internal",)))


async def test_a_pod_runs_through_its_whole_life(runtime_socket):
    container = POD["spec"]["containers"][0]
    async with RuntimeClient(runtime_socket, timeout=60) as runtime:
        version = await runtime.version()
        assert (version.runtime_name, version.runtime_api_version) == ("containerd", "v1")
        conditions = {c.type: c.status for c in await runtime.status()}
        assert conditions == {"RuntimeReady": True, "NetworkReady": True}
        busybox = await runtime.image_status("busybox")
        assert busybox is not None and BUSYBOX in busybox.repo_tags
        assert await runtime.image_status("busybox:no-such-tag") is None

        sandbox_config = requests.pod_sandbox_config(POD, dns_settings=SETTINGS, cgroup_parent=f"/kpy-test/pod{UID}")
        sandbox_id = await runtime.run_pod_sandbox(sandbox_config)
        pod = (await runtime.list_pod_observations(UID))[UID]
        assert pod.sandbox.id == sandbox_id and pod.sandbox.ready and pod.containers == ()
        assert pod.sandbox.ip.startswith("10.244.21."), pod.sandbox  # from the CNI bridge's host-local range
        sandboxes = await runtime.list_pod_sandboxes({requests.POD_UID_LABEL: UID})
        assert [s.annotations["note"] for s in sandboxes] == ["from-the-pod"]
        assert sandboxes[0].labels["app"] == "web"

        config = requests.container_config(
            POD, container, attempt=0, image_ref=busybox.id, envs=[("GREETING", "hello")],
            mounts=[Mount(container_path="/data", host_path="/srv/kpy-test/data")], memory_capacity=8 << 30)
        container_id = await runtime.create_container(sandbox_id, config, sandbox_config)
        created = (await runtime.list_pod_observations(UID))[UID].latest("app")
        assert (created.id, created.state, created.attempt, created.image) == (container_id, "created", 0, "busybox")

        await runtime.start_container(container_id)
        running = await runtime.container_status(container_id)
        assert running.state == "running" and running.started_at >= running.created_at > 0
        assert (await runtime.list_pod_observations(UID))[UID].latest("app").state == "running"

        async def run(*command: str) -> str:
            result = await runtime.exec_sync(container_id, list(command), timeout=10)
            assert result.exit_code == 0, (command, result)
            return result.stdout.decode()

        assert await run("echo", "hello") == "hello\n"
        assert (await runtime.exec_sync(container_id, ["sh", "-c", "echo oops >&2; exit 7"])).exit_code == 7
        # What each field asked for, seen from inside the container.
        assert await run("hostname") == "web-0\n"
        resolv = await run("cat", "/etc/resolv.conf")
        assert "nameserver 10.96.0.10" in resolv
        assert "search shop.svc.cluster.local svc.cluster.local cluster.local lab.internal example.test" in resolv
        assert "ndots:5" in resolv and "timeout:2" in resolv
        assert await run("sh", "-c", "id -u; id -g; pwd; echo $GREETING") == "1000\n2000\n/tmp\nhello\n"
        cgroup = await run("cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.shares",
                           "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")
        assert cgroup.split() == [str(64 << 20), "256", "50000", "100000"]
        assert await run("cat", "/proc/1/oom_score_adj") == f"{1000 - 1000 * (32 << 20) // (8 << 30)}\n"
        status = await run("grep", "-E", "^(CapBnd|NoNewPrivs)", "/proc/1/status")
        assert status.split() == ["CapBnd:", "0000000000000001", "NoNewPrivs:", "1"]
        assert (await runtime.exec_sync(container_id, ["touch", "/rootfs-file"])).exit_code != 0  # read-only root
        await run("touch", "/data/written")  # the mount, writable
        on_host("test -f /srv/kpy-test/data/written")
        assert (await runtime.exec(container_id, ["sh"])).startswith("http")
        raw = await runtime.container_status_raw(container_id)
        assert raw.labels[requests.CONTAINER_NAME_LABEL] == "app"
        assert raw.annotations[requests.RESTART_COUNT_ANNOTATION] == "0"
        log = on_host(f"cat /var/log/pods/shop_web-0_{UID}/app/0.log").stdout
        assert " stdout F started hello $(GREETING)" in log  # command/args expansion, the CRI log format

        await runtime.stop_container(container_id, grace_seconds=10)
        stopped = (await runtime.list_pod_observations(UID))[UID].latest("app")
        assert (stopped.state, stopped.exit_code, stopped.reason) == ("exited", 3, "Error")
        assert stopped.finished_at >= stopped.started_at

        await runtime.remove_container(container_id)
        with pytest.raises(CRINotFound):
            await runtime.container_status(container_id)
        assert (await runtime.list_pod_observations(UID))[UID].containers == ()
        await runtime.stop_pod_sandbox(sandbox_id)
        assert not (await runtime.list_pod_observations(UID))[UID].sandbox.ready
        await runtime.remove_pod_sandbox(sandbox_id)
        assert await runtime.list_pod_observations(UID) == {}
        with pytest.raises(CRINotFound):
            await runtime.pod_sandbox_status(sandbox_id)


async def test_host_ports_stats_images_and_streaming_urls(runtime_socket):
    """A hostPort reaches the container through the portmap plugin; stats, image and streaming calls answer."""
    web = {"metadata": {"name": "web-1", "namespace": "shop", "uid": UID.replace("0b8c", "1b8c")},
           "spec": {"containers": [{"name": "httpd", "image": "busybox",
                                    "command": ["sh", "-c", "mkdir -p /tmp/www && echo it-works > /tmp/www/index.html"
                                                " && exec httpd -f -p 8000 -h /tmp/www"],
                                    "ports": [{"containerPort": 8000, "hostPort": 18080}]}]}}
    uid = web["metadata"]["uid"]
    async with RuntimeClient(runtime_socket, timeout=60) as runtime:
        images = await runtime.list_images()
        assert {BUSYBOX, PAUSE} <= {tag for image in images for tag in image.repo_tags}
        # containerd measures the snapshotter's usage in the background (0 until it has): the place is what is sure.
        assert [fs.mountpoint for fs in await runtime.image_fs_info()] == [
            "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"]
        with pytest.raises(CRIError, match="127.0.0.1:5999"):  # nothing listens there, inside the host
            await runtime.pull_image("127.0.0.1:5999/missing:1")

        sandbox_config = requests.pod_sandbox_config(web, dns_settings=SETTINGS)
        sandbox_id = await runtime.run_pod_sandbox(sandbox_config)
        busybox = await runtime.image_status("busybox")
        container_id = await runtime.create_container(sandbox_id, requests.container_config(
            web, web["spec"]["containers"][0], attempt=0, image_ref=busybox.id, envs=[], mounts=[],
            memory_capacity=8 << 30), sandbox_config)
        await runtime.start_container(container_id)
        address = kpy_lab("status", f"--lab={LAB}").stdout.split()[1]
        assert wait_for(lambda: fetch(f"http://{address}:18080/"), "the hostPort to answer") == "it-works\n"

        usage = await runtime.container_stats(container_id)
        assert (usage.id, usage.name, usage.pod_uid) == (container_id, "httpd", uid)
        assert usage.memory_working_set_bytes > 0 and usage.timestamp > 0
        assert container_id in {u.id for u in await runtime.list_container_stats({requests.POD_UID_LABEL: uid})}
        await runtime.reopen_container_log(container_id)
        for url in (await runtime.attach(container_id), await runtime.port_forward(sandbox_id, [8000])):
            assert url.startswith("http://127.0.0.1:")  # containerd's streaming server, proxied by the kubelet

        await runtime.stop_pod_sandbox(sandbox_id)  # stops its containers too
        assert (await runtime.container_status(container_id)).state == "exited"
        await runtime.remove_pod_sandbox(sandbox_id)  # and removes them
        assert await runtime.list_containers({requests.POD_UID_LABEL: uid}) == []

        # RemoveImage removes the image, under every name it has (CRI semantics), not just the name given.
        on_host(f"ctr -n k8s.io images tag {BUSYBOX} docker.io/library/copy:1 >/dev/null")
        assert (await runtime.image_status("copy:1")).id == busybox.id
        await runtime.remove_image("copy:1")
        assert await runtime.image_status("copy:1") is None and await runtime.image_status("busybox") is None
        on_host("ctr -n k8s.io images import /tmp/images.tar >/dev/null")  # back for whatever runs next
        assert (await runtime.image_status("busybox")).id == busybox.id
