"""kubectl 1.33 writes protobuf, kubectl 1.31 JSON: against a real kpy-apiserver the same commands must store the same
objects (issue 13), unknown protobuf field numbers meet field validation like unknown JSON fields, and a container
may not mount a volume its pod lacks."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from apiserver.conftest import KUBECTL_DIR, Kubectl
from google.protobuf.internal.encoder import _VarintBytes

VERSIONS = ("1.31", "1.33")
CREATES = {  # resource/name -> kubectl create arguments
    "deployments/web": ["deployment", "web", "--image=nginx:1.25", "--port=80", "--replicas=3"],
    "deployments/zero": ["deployment", "zero", "--image=nginx", "--replicas=0"],
    "jobs/j1": ["job", "j1", "--image=busybox", "--", "echo", "hi"],
    "cronjobs/cj1": ["cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"],
    "configmaps/cm1": ["configmap", "cm1", "--from-literal=a=1", "--from-literal=b=two"],
    "secrets/s1": ["secret", "generic", "s1", "--from-literal=user=admin", "--type=example.com/x"],
    "services/svc1": ["service", "clusterip", "svc1", "--tcp=80:8080", "--tcp=443"],
    "serviceaccounts/sa1": ["serviceaccount", "sa1"],
    "roles/r1": ["role", "r1", "--verb=get,list", "--resource=pods,deployments.apps", "--resource-name=a"],
    "rolebindings/rb1": ["rolebinding", "rb1", "--role=r1", "--user=alice", "--group=devs",
                         "--serviceaccount=default:sa1"],
    "poddisruptionbudgets/pdb1": ["pdb", "pdb1", "--selector=app=web", "--min-available=1"],
    "resourcequotas/q1": ["quota", "q1", "--hard=pods=10,requests.cpu=2,limits.memory=1Gi"],
}
ORIGINAL = {  # the pod `kubectl debug --copy-to` copies: volumes and mounts that the copy must keep
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orig", "labels": {"app": "orig"}},
    "spec": {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "cm1"}}],
             "containers": [{"name": "app", "image": "nginx:1.25",
                             "volumeMounts": [{"name": "data", "mountPath": "/data"},
                                              {"name": "conf", "mountPath": "/etc/conf", "readOnly": True}]}]}}
_SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "namespace", "managedFields", "generation")


@pytest.fixture(scope="module")
def stored(apiserver, tmp_path_factory) -> dict[str, dict[str, dict]]:
    """version -> resource/name -> the stored object, after the same commands run with that kubectl version."""
    found = {}
    for version in VERSIONS:
        if not (KUBECTL_DIR / f"kubectl.{version}").exists():
            pytest.fail(f"kubectl.{version} is missing: the test needs the real kubectl {version}")
        kubectl = Kubectl(version, apiserver.admin_kubeconfig, tmp_path_factory.mktemp(f"cache-{version}"))
        namespace = f"pb-{version.replace('.', '')}"
        kubectl("create", "namespace", namespace)
        kubectl("create", "serviceaccount", "default", "-n", namespace)  # no controller manager runs here
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(ORIGINAL))
        kubectl("debug", "-n", namespace, "orig", "--copy-to=copy", "--profile=netadmin", "--image=busybox",
                "--container=dbg", "--", "sleep", "3600")
        for args in CREATES.values():  # after the pods: the quota would ask them for limits
            kubectl("create", "-n", namespace, *args)
        objects = {}
        for resource in [*CREATES, "pods/copy"]:
            plural, name = resource.split("/")
            objects[resource] = json.loads(kubectl("get", "-n", namespace, plural, name, "-o", "json").stdout)
        found[version] = objects
    return found


def _comparable(obj: dict) -> dict:
    """The object without what the server sets per object (identity, times, allocated addresses), and its uid
    wherever it is repeated (a Job's selector and labels); the random suffix of a pod's token volume."""
    text = json.dumps(obj).replace(obj["metadata"]["uid"], "<uid>")
    obj = json.loads(re.sub(r"kube-api-access-[a-z0-9]{5}", "kube-api-access-<random>", text))
    for name in _SERVER_SET:
        obj["metadata"].pop(name, None)
    spec = obj.get("spec") or {}
    for name in ("clusterIP", "clusterIPs"):
        spec.pop(name, None)
    return obj


@pytest.mark.parametrize("resource", [*CREATES, "pods/copy"])
def test_kubectl_131_json_and_133_protobuf_store_the_same_object(stored, resource):
    assert _comparable(stored["1.33"][resource]) == _comparable(stored["1.31"][resource])


def test_the_debug_copy_keeps_volumes_and_the_profile(stored):
    for version in VERSIONS:
        spec = stored[version]["pods/copy"]["spec"]
        assert [v["name"] for v in spec["volumes"]][:2] == ["data", "conf"], version
        debug = next(c for c in spec["containers"] if c["name"] == "dbg")
        assert debug["securityContext"] == {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}, version


def test_a_mount_of_a_missing_volume_is_refused(apiserver, tmp_path):
    kubectl = Kubectl("1.33", apiserver.admin_kubeconfig, tmp_path / "cache")
    kubectl("create", "namespace", "mounts")
    kubectl("create", "serviceaccount", "default", "-n", "mounts")
    pod = {**ORIGINAL, "metadata": {"name": "lost"},
           "spec": {"containers": ORIGINAL["spec"]["containers"], "volumes": [{"name": "data", "emptyDir": {}}]}}
    result = kubectl("create", "-n", "mounts", "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode == 1
    assert 'spec.containers[0].volumeMounts[1].name: Not found: "conf"' in result.stderr


def _post_protobuf(apiserver, path: str, body: bytes) -> tuple[int, dict, list[str]]:
    request = urllib.request.Request(apiserver.url + path, data=body, method="POST", headers={
        "Content-Type": "application/vnd.kubernetes.protobuf", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, context=apiserver.ssl_context(), timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers.get_all("Warning") or []
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers.get_all("Warning") or []


def _message(*fields: tuple[int, bytes | str]) -> bytes:
    """Length-delimited protobuf fields (all this test sends)."""
    out = b""
    for number, value in fields:
        data = value.encode() if isinstance(value, str) else value
        out += _VarintBytes(number << 3 | 2) + _VarintBytes(len(data)) + data
    return out


def _config_map_with_unknown_field(name: str) -> bytes:
    metadata = _message((1, name), (99, "from a newer client"))
    config_map = _message((1, metadata), (2, _message((1, "k"), (2, "v"))))
    return b"k8s\x00" + _message((1, _message((1, "v1"), (2, "ConfigMap"))), (2, config_map))


def test_unknown_protobuf_fields_are_refused_under_strict_and_warned_under_warn(apiserver):
    base = "/api/v1/namespaces/default/configmaps"
    code, status, _ = _post_protobuf(apiserver, base + "?fieldValidation=Strict", _config_map_with_unknown_field("a"))
    assert code == 400, status
    assert status["message"] == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding '
                                 'error: unknown field "metadata.#99"')
    code, created, warnings = _post_protobuf(apiserver, base + "?fieldValidation=Warn",
                                             _config_map_with_unknown_field("b"))
    assert code == 201 and created["data"] == {"k": "v"}
    assert warnings == ['299 - "unknown field \\"metadata.#99\\""']
