"""Pod volumes written under a temporary pods root, and the mounts containers get."""
import base64
import os
import socket
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from kpy_components.kubelet.model import ContainerConfigError, VolumeError
from kpy_components.kubelet.volumes import TokenCache, VolumeManager, container_mounts, setup_volumes, \
    write_atomically

pytestmark = pytest.mark.anyio


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


class Source:
    def __init__(self, clock=None):
        self.configmaps, self.secrets, self.claims, self.volumes = {}, {}, {}, {}
        self.clock = clock or Clock()
        self.token_requests = []

    async def configmap(self, namespace, name):
        return self.configmaps.get((namespace, name))

    async def secret(self, namespace, name):
        return self.secrets.get((namespace, name))

    async def claim(self, namespace, name):
        return self.claims.get((namespace, name))

    async def volume(self, name):
        return self.volumes.get(name)

    async def service_account_token(self, namespace, service_account, *, audience, expiration_seconds, pod):
        self.token_requests.append((namespace, service_account, audience, expiration_seconds, pod["metadata"]["uid"]))
        expires = datetime.fromtimestamp(self.clock() + expiration_seconds, timezone.utc)
        return {"token": f"token-{len(self.token_requests)}", "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}


def make_pod(volumes, mounts=(), **container) -> dict:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": "u1", "labels": {"app": "web"}},
            "spec": {"serviceAccountName": "builder", "volumes": list(volumes),
                     "containers": [{"name": "app", "volumeMounts": list(mounts), **container}]}}


@pytest.fixture
def source():
    return Source()


async def setup(pod, tmp_path, source, **kwargs):
    kwargs.setdefault("tokens", TokenCache(source.clock))
    return await setup_volumes(pod, tmp_path / "pods" / "u1", source, **kwargs)


def files(directory: Path) -> dict:
    """What a reader sees: the user-visible names (followed through their symlinks), nothing hidden."""
    return {p.name: p.read_text() for p in directory.iterdir() if not p.name.startswith("..") and p.is_file()}


# --- AtomicWriter --------------------------------------------------------------------------------------------------

def test_atomic_writer_layout_update_and_no_op(tmp_path):
    target = tmp_path / "vol"
    assert write_atomically(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)}) is True
    data = os.readlink(target / "..data")
    assert data.startswith("..") and (target / data).is_dir()
    assert os.readlink(target / "a") == "..data/a" and os.readlink(target / "dir") == "..data/dir"
    assert (target / "dir" / "b").read_text() == "2"
    assert stat.S_IMODE((target / "dir" / "b").stat().st_mode) == 0o600
    before = {p.name: p.stat().st_mtime_ns for p in target.iterdir()}
    assert write_atomically(target, {"a": (b"1", 0o644), "dir/b": (b"2", 0o600)}) is False
    assert os.readlink(target / "..data") == data and {p.name: p.stat().st_mtime_ns for p in target.iterdir()} == before
    # a change of content, mode or keys publishes a new data dir; the old one and stale names go
    assert write_atomically(target, {"a": (b"1", 0o640), "c": (b"3", 0o644)}) is True
    new = os.readlink(target / "..data")
    assert new != data and not (target / data).exists()
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith("..")) == ["a", "c"]
    assert stat.S_IMODE((target / "a").stat().st_mode) == 0o640
    assert {p.name for p in target.iterdir() if p.name.startswith("..")} == {"..data", new}


def test_atomic_writer_refuses_escaping_paths(tmp_path):
    for bad in ("../x", "/etc/passwd", "..hidden", "a/../../b"):
        with pytest.raises(Exception, match="invalid path"):
            write_atomically(tmp_path / "v", {bad: (b"", 0o644)})


# --- kinds ---------------------------------------------------------------------------------------------------------

async def test_config_map_all_keys_items_modes_and_live_update(tmp_path, source):
    source.configmaps[("shop", "cfg")] = {"data": {"app.conf": "x=1", "other": "y"},
                                          "binaryData": {"blob": b64("\x00bin")}}
    pod = make_pod([{"name": "all", "configMap": {"name": "cfg"}},
                    {"name": "some", "configMap": {"name": "cfg", "defaultMode": 0o600,
                                                   "items": [{"key": "app.conf", "path": "conf/app.conf"},
                                                             {"key": "other", "path": "o", "mode": 0o400}]}}])
    volumes = await setup(pod, tmp_path, source)
    all_dir = tmp_path / "pods/u1/volumes/kubernetes.io~configmap/all"
    assert volumes["all"].path == all_dir and volumes["all"].read_only
    assert files(all_dir) == {"app.conf": "x=1", "other": "y", "blob": "\x00bin"}
    assert stat.S_IMODE((all_dir / "other").stat().st_mode) == 0o644
    some = volumes["some"].path
    assert (some / "conf/app.conf").read_text() == "x=1"
    assert stat.S_IMODE((some / "conf/app.conf").stat().st_mode) == 0o600
    assert stat.S_IMODE((some / "o").stat().st_mode) == 0o400
    source.configmaps[("shop", "cfg")]["data"]["app.conf"] = "x=2"
    await setup(pod, tmp_path, source)
    assert (all_dir / "app.conf").read_text() == "x=2"  # the same path, new content: no remount needed


async def test_missing_objects_and_keys_fail_with_upstream_words_unless_optional(tmp_path, source):
    source.configmaps[("shop", "cfg")] = {"data": {"a": "1"}}
    source.secrets[("shop", "creds")] = {"data": {"pw": b64("pw")}}
    pod = make_pod([{"name": "v1", "configMap": {"name": "gone"}},
                    {"name": "v2", "configMap": {"name": "cfg", "items": [{"key": "b", "path": "b"}]}},
                    {"name": "v3", "secret": {"secretName": "creds", "items": [{"key": "user", "path": "u"}]}},
                    {"name": "v4", "secret": {"secretName": "gone"}},
                    {"name": "ok1", "configMap": {"name": "gone", "optional": True}},
                    {"name": "ok2", "configMap": {"name": "cfg", "optional": True,
                                                  "items": [{"key": "b", "path": "b"}, {"key": "a", "path": "a"}]}}])
    with pytest.raises(VolumeError) as caught:
        await setup(pod, tmp_path, source)
    assert caught.value.failures == {"v1": 'configmap "gone" not found',
                                     "v2": "configmap references non-existent config key: b",
                                     "v3": "secret references non-existent secret key: user",
                                     "v4": 'secret "gone" not found'}
    assert caught.value.event_messages()[0] == 'MountVolume.SetUp failed for volume "v1" : configmap "gone" not found'
    ok2 = tmp_path / "pods/u1/volumes/kubernetes.io~configmap/ok2"
    assert files(ok2) == {"a": "1"} and files(tmp_path / "pods/u1/volumes/kubernetes.io~configmap/ok1") == {}


async def test_secret_decoded_with_default_mode_0644(tmp_path, source):
    source.secrets[("shop", "creds")] = {"data": {"pw": b64("s3cr3t"), "tls.key": b64("KEY")}}
    volumes = await setup(make_pod([{"name": "s", "secret": {"secretName": "creds"}}]), tmp_path, source)
    path = volumes["s"].path
    assert path.parent.name == "kubernetes.io~secret"
    assert files(path) == {"pw": "s3cr3t", "tls.key": "KEY"}
    assert stat.S_IMODE((path / "pw").stat().st_mode) == 0o644


async def test_downward_api_files(tmp_path, source):
    pod = make_pod([{"name": "info", "downwardAPI": {"items": [
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}},
    ]}}], resources={"limits": {"memory": "64Mi"}})
    volumes = await setup(pod, tmp_path, source)
    assert files(volumes["info"].path) == {"name": "web", "labels": 'app="web"', "mem": "64"}
    pod["metadata"]["labels"]["tier"] = "front"
    await setup(pod, tmp_path, source)
    assert (volumes["info"].path / "labels").read_text() == 'app="web"\ntier="front"'
    bad = make_pod([{"name": "info", "downwardAPI": {"items": [
        {"path": "x", "fieldRef": {"fieldPath": "spec.nodeName"}}]}}])
    with pytest.raises(VolumeError, match="unsupported fieldPath: spec.nodeName"):
        await setup(bad, tmp_path, source)


def default_token_volume(expiration=3607):
    """What the ServiceAccount admission plugin adds to every pod."""
    return {"name": "kube-api-access-x", "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": expiration, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}}]}}


async def test_projected_service_account_volume_and_token_refresh(tmp_path, source):
    source.configmaps[("shop", "kube-root-ca.crt")] = {"data": {"ca.crt": "-----BEGIN CERTIFICATE-----"}}
    tokens = TokenCache(source.clock)
    pod = make_pod([default_token_volume()])
    volumes = await setup(pod, tmp_path, source, tokens=tokens)
    path = volumes["kube-api-access-x"].path
    assert path.parent.name == "kubernetes.io~projected"
    assert files(path) == {"token": "token-1", "ca.crt": "-----BEGIN CERTIFICATE-----", "namespace": "shop"}
    assert source.token_requests == [("shop", "builder", None, 3607, "u1")]
    assert tokens.next_refresh("u1") == pytest.approx(source.clock.now + 0.8 * 3607)
    source.clock.now += 0.8 * 3607 - 1
    assert not tokens.needs_refresh("u1")
    await setup(pod, tmp_path, source, tokens=tokens)
    assert len(source.token_requests) == 1 and (path / "token").read_text() == "token-1"
    source.clock.now += 1
    assert tokens.needs_refresh("u1")
    await setup(pod, tmp_path, source, tokens=tokens)
    assert (path / "token").read_text() == "token-2"  # refreshed in place


async def test_long_lived_tokens_refresh_after_a_day(tmp_path, source):
    tokens = TokenCache(source.clock)
    pod = make_pod([{"name": "t", "projected": {"sources": [
        {"serviceAccountToken": {"audience": "vault", "expirationSeconds": 7 * 24 * 3600, "path": "vault-token"}}]}}])
    await setup(pod, tmp_path, source, tokens=tokens)
    assert source.token_requests[0][2] == "vault"
    assert tokens.next_refresh("u1") == source.clock.now + 24 * 3600
    tokens.forget("u1")
    assert tokens.next_refresh("u1") is None


async def test_projected_errors_are_aggregated(tmp_path, source):
    pod = make_pod([{"name": "p", "projected": {"sources": [{"configMap": {"name": "a"}}, {"secret": {"name": "b"}}]}}])
    with pytest.raises(VolumeError) as caught:
        await setup(pod, tmp_path, source)
    assert caught.value.failures == {"p": '[configmap "a" not found, secret "b" not found]'}


async def test_empty_dir_and_memory_medium(tmp_path, source):
    mounted = []

    async def mount_tmpfs(path, size):
        mounted.append((path, size))

    pod = make_pod([{"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
                    {"name": "ram2", "emptyDir": {"medium": "Memory"}}],
                   resources={"limits": {"memory": "128Mi"}})
    volumes = await setup(pod, tmp_path, source, mount_tmpfs=mount_tmpfs, node_allocatable={"memory": "8Gi"})
    scratch = volumes["scratch"]
    assert scratch.path == tmp_path / "pods/u1/volumes/kubernetes.io~empty-dir/scratch"
    assert scratch.path.is_dir() and stat.S_IMODE(scratch.path.stat().st_mode) == 0o777
    assert scratch.size_limit == 1024 ** 3
    # the tmpfs is as small as the sizeLimit, the pod's memory limit and the node's allocatable allow
    assert mounted == [(volumes["ram"].path, 128 * 1024 ** 2), (volumes["ram2"].path, 128 * 1024 ** 2)]
    with pytest.raises(VolumeError, match="cannot mount one"):
        await setup(pod, tmp_path, source)


async def test_host_path_types(tmp_path, source):
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "sock"))
    (tmp_path / "file").write_text("x")
    try:
        ok = [("d", str(tmp_path), "Directory"), ("f", str(tmp_path / "file"), "File"),
              ("s", str(tmp_path / "sock"), "Socket"), ("any", "/nonexistent-but-unchecked", ""),
              ("mk", str(tmp_path / "new/deep"), "DirectoryOrCreate"),
              ("touch", str(tmp_path / "created"), "FileOrCreate"), ("null", "/dev/null", "CharDevice")]
        pod = make_pod([{"name": n, "hostPath": {"path": p, "type": t}} for n, p, t in ok])
        volumes = await setup(pod, tmp_path, source)
        assert volumes["d"].path == tmp_path and (tmp_path / "new/deep").is_dir()
        assert (tmp_path / "created").is_file()
        bad = [("d", str(tmp_path / "file"), "Directory", "is not a directory"),
               ("f", str(tmp_path), "File", "is not a file"),
               ("s", str(tmp_path / "file"), "Socket", "is not a socket file"),
               ("c", str(tmp_path / "file"), "CharDevice", "is not a character device"),
               ("b", "/dev/null", "BlockDevice", "is not a block device"),
               ("x", str(tmp_path), "Weird", "Weird is an invalid volume type"),
               ("nf", str(tmp_path / "missing-dir/file"), "FileOrCreate", "cannot create file")]
        with pytest.raises(VolumeError) as caught:
            await setup(make_pod([{"name": n, "hostPath": {"path": p, "type": t}} for n, p, t, _ in bad]),
                        tmp_path, source)
        for name, path, _, words in bad:
            assert words in caught.value.failures[name]
        assert caught.value.failures["d"] == f"hostPath type check failed: {tmp_path / 'file'} is not a directory"
    finally:
        listening.close()


async def test_claims_bound_to_host_path_and_local_volumes(tmp_path, source):
    data = tmp_path / "pv-data"
    data.mkdir()
    source.claims[("shop", "data")] = {"spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}}
    source.claims[("shop", "fast")] = {"spec": {"volumeName": "pv2"}, "status": {"phase": "Bound"}}
    source.claims[("shop", "waiting")] = {"spec": {}, "status": {"phase": "Pending"}}
    source.claims[("shop", "nfs")] = {"spec": {"volumeName": "pv3"}, "status": {"phase": "Bound"}}
    source.volumes["pv1"] = {"spec": {"hostPath": {"path": str(data), "type": "Directory"}}}
    source.volumes["pv2"] = {"spec": {"local": {"path": str(data)}}}
    source.volumes["pv3"] = {"spec": {"nfs": {"server": "x", "path": "/"}}}
    good = make_pod([{"name": "a", "persistentVolumeClaim": {"claimName": "data"}},
                     {"name": "b", "persistentVolumeClaim": {"claimName": "fast", "readOnly": True}}])
    volumes = await setup(good, tmp_path, source)
    assert volumes["a"].path == data and not volumes["a"].read_only
    assert volumes["b"].path == data and volumes["b"].read_only
    bad = make_pod([{"name": "w", "persistentVolumeClaim": {"claimName": "waiting"}},
                    {"name": "m", "persistentVolumeClaim": {"claimName": "missing"}},
                    {"name": "n", "persistentVolumeClaim": {"claimName": "nfs"}}])
    with pytest.raises(VolumeError) as caught:
        await setup(bad, tmp_path, source)
    assert caught.value.failures["w"] == "error processing PVC shop/waiting: PVC is not bound"
    assert caught.value.failures["m"] == 'error processing PVC shop/missing: persistentvolumeclaim "missing" not found'
    assert "only hostPath and local" in caught.value.failures["n"]


# --- mounts --------------------------------------------------------------------------------------------------------

async def test_mounts_read_only_sub_path_and_sub_path_expr(tmp_path, source):
    source.configmaps[("shop", "cfg")] = {"data": {"app.conf": "v1"}}
    pod = make_pod([{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "scratch", "emptyDir": {}}],
                   mounts=[{"name": "cfg", "mountPath": "/etc/app"},
                           {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"},
                           {"name": "scratch", "mountPath": "/data", "readOnly": True,
                            "mountPropagation": "HostToContainer"},
                           {"name": "scratch", "mountPath": "/logs", "subPathExpr": "logs/$(POD_NAME)"}])
    volumes = await setup(pod, tmp_path, source)
    mounts = container_mounts(pod, pod["spec"]["containers"][0], volumes, {"POD_NAME": "web"})
    whole, single, data, logs = mounts
    assert (whole.container_path, whole.host_path, whole.read_only) == ("/etc/app", str(volumes["cfg"].path), True)
    # the subPath of a configMap key binds the file as it is now (not the ..data link): no live updates, as upstream
    assert single.read_only and single.sub_path == "app.conf"
    assert Path(single.host_path).read_text() == "v1" and "..data" not in single.host_path
    assert Path(single.host_path).parent.name.startswith("..20")
    assert (data.read_only, data.propagation) == (True, "HostToContainer")
    assert logs.host_path == str(volumes["scratch"].path / "logs/web") and Path(logs.host_path).is_dir()
    assert not logs.read_only and logs.propagation == "None"


async def test_mount_errors(tmp_path, source):
    pod = make_pod([{"name": "scratch", "emptyDir": {}}])
    volumes = await setup(pod, tmp_path, source)
    container = pod["spec"]["containers"][0]
    (volumes["scratch"].path / "escape").symlink_to("/etc")
    cases = [({"name": "nope", "mountPath": "/x"}, 'cannot find volume "nope" to mount into container "app"'),
             ({"name": "scratch", "mountPath": "/x", "subPath": "/abs"},
              "error SubPath `/abs` must not be an absolute path"),
             ({"name": "scratch", "mountPath": "/x", "subPath": "a/../../b"},
              "unable to provision SubPath `a/../../b`: must not contain '..'"),
             ({"name": "scratch", "mountPath": "/x", "subPathExpr": "$(A)/$(B)"}, "missing value for A, B"),
             ({"name": "scratch", "mountPath": "/x", "subPath": "escape"}, "not within volume path")]
    for mount, message in cases:
        container["volumeMounts"] = [mount]
        with pytest.raises(ContainerConfigError) as caught:
            container_mounts(pod, container, volumes, {"B": ""})
        assert message in str(caught.value)


async def test_manager_prepare_mounts_and_teardown(tmp_path, source):
    unmounted = []

    async def unmount(path):
        unmounted.append(path)

    host_data = tmp_path / "host"
    host_data.mkdir()
    (host_data / "keep").write_text("precious")
    manager = VolumeManager(tmp_path / "pods", source, unmount=unmount, clock=source.clock)
    pod = make_pod([{"name": "h", "hostPath": {"path": str(host_data)}}, {"name": "e", "emptyDir": {}}],
                   mounts=[{"name": "h", "mountPath": "/h"}])
    with pytest.raises(ContainerConfigError):
        manager.mounts(pod, pod["spec"]["containers"][0], {})
    await manager.prepare(pod)
    assert [m.host_path for m in manager.mounts(pod, pod["spec"]["containers"][0], {})] == [str(host_data)]
    await manager.teardown("u1")
    assert not (tmp_path / "pods/u1").exists()
    assert (host_data / "keep").read_text() == "precious" and unmounted == []
