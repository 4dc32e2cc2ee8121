"""Protobuf request bodies decode to the JSON the same request carries.

The proof: the real kubectl 1.33 (protobuf bodies) and kubectl 1.31 (the last to send JSON) run the same typed-client
commands against a small recording server; each protobuf body, decoded, must equal the JSON body exactly (nulls and
empty structs included, as Go's JSON encoder writes them). Hand-encoded bodies cover pointers, errors and unknown
fields (reported, never dropped).
"""
import json
import shutil
import subprocess
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from kpy_components.api.protobuf import decode

from test_api_patch_kubectl import JSONHandler, _discovery  # the catalog-driven discovery documents

_KUBECTL = shutil.which("kubectl")
_DIR = Path(_KUBECTL).resolve().parent if _KUBECTL else None

COMMANDS = {
    "namespace": ["create", "namespace", "ns1"],
    "configmap": ["create", "configmap", "cm1", "--from-literal=a=1", "--from-literal=b=two"],
    "secret": ["create", "secret", "generic", "s1", "--from-literal=user=admin", "--type=example.com/x"],
    "serviceaccount": ["create", "serviceaccount", "sa1"],
    "deployment": ["create", "deployment", "web", "--image=nginx:1.25", "--port=80", "--replicas=3"],
    "deployment-zero-replicas": ["create", "deployment", "zero", "--image=nginx", "--replicas=0"],
    "deployment-command": ["create", "deployment", "cmd", "--image=busybox", "--", "sleep", "3600"],
    "job": ["create", "job", "j1", "--image=busybox", "--", "echo", "hi"],
    "cronjob": ["create", "cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"],
    "role": ["create", "role", "r1", "--verb=get,list", "--resource=pods,deployments.apps", "--resource-name=a"],
    "clusterrole": ["create", "clusterrole", "cr1", "--verb=get", "--non-resource-url=/healthz"],
    "rolebinding": ["create", "rolebinding", "rb1", "--role=r1", "--user=alice", "--group=devs",
                    "--serviceaccount=default:sa1"],
    "clusterrolebinding": ["create", "clusterrolebinding", "crb1", "--clusterrole=cr1", "--user=bob"],
    "service-clusterip": ["create", "service", "clusterip", "svc1", "--tcp=80:8080", "--tcp=443"],
    "service-nodeport": ["create", "service", "nodeport", "svc2", "--tcp=80:8080", "--node-port=30080"],
    "pdb": ["create", "pdb", "pdb1", "--selector=app=web", "--min-available=1"],
    "pdb-percent": ["create", "pdb", "pdb2", "--selector=app=web", "--max-unavailable=50%"],
    "quota": ["create", "quota", "q1", "--hard=pods=10,requests.cpu=2,limits.memory=1Gi"],
    "token": ["create", "token", "sa1", "--audience=api", "--duration=1h"],
    "token-bound": ["create", "token", "sa1", "--bound-object-kind=Pod", "--bound-object-name=p1",
                    "--bound-object-uid=u-1"],
    "can-i": ["auth", "can-i", "list", "pods"],
    "can-i-subresource": ["auth", "can-i", "get", "pods", "--subresource=log", "-n", "kube-system"],
    "can-i-url": ["auth", "can-i", "get", "/healthz"],
    "can-i-list": ["auth", "can-i", "--list"],
    "whoami": ["auth", "whoami"],
}
_REPLIES = {  # what the reviews answer, so kubectl finishes without complaint
    "selfsubjectaccessreviews": {"status": {"allowed": True}},
    "selfsubjectrulesreviews": {"status": {"resourceRules": [], "nonResourceRules": [], "incomplete": False}},
    "selfsubjectreviews": {"status": {"userInfo": {"username": "admin"}}},
    "token": {"status": {"token": "t", "expirationTimestamp": "2030-01-01T00:00:00Z"}},
}


def _capture(version: str, cache: Path) -> dict[str, tuple[str, bytes]]:
    """Run every command with one kubectl; the body and Content-Type each one sent, by command."""
    discovery, bodies = _discovery(), []

    class Handler(JSONHandler):
        def do_GET(self):
            found = discovery.get(self.path.split("?")[0])
            self._reply(200, found) if found else self._reply(404, {"kind": "Status", "code": 404})

        def do_POST(self):
            bodies.append((self.headers["Content-Type"], self.rfile.read(int(self.headers["Content-Length"]))))
            resource = self.path.split("?")[0].rsplit("/", 1)[-1]
            self._reply(201, _REPLIES.get(resource, {"metadata": {"name": "x"}}))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    captured = {}
    try:
        for name, args in COMMANDS.items():
            before = len(bodies)
            result = subprocess.run([str(_DIR / version), "--server", f"http://127.0.0.1:{server.server_port}",
                                     "--cache-dir", str(cache), "-n", "default", *args], capture_output=True,
                                    text=True, timeout=60)
            assert result.returncode == 0, (name, result.stderr)
            assert len(bodies) == before + 1, name
            captured[name] = bodies[-1]
    finally:
        server.shutdown()
        server.server_close()
    return captured


@pytest.fixture(scope="module")
def bodies(tmp_path_factory):
    if not _DIR or not (_DIR / "kubectl.1.33").exists() or not (_DIR / "kubectl.1.31").exists():
        pytest.skip("kubectl.1.33 and kubectl.1.31 are needed")
    return (_capture("kubectl.1.33", tmp_path_factory.mktemp("cache133")),
            _capture("kubectl.1.31", tmp_path_factory.mktemp("cache131")))


@pytest.mark.parametrize("command", list(COMMANDS))
def test_kubectl_133_protobuf_decodes_to_kubectl_131_json(bodies, command):
    protobuf_type, protobuf_body = bodies[0][command]
    json_type, json_body = bodies[1][command]
    assert protobuf_type == "application/vnd.kubernetes.protobuf" and json_type == "application/json"
    assert decode(protobuf_body) == json.loads(json_body)


def test_decoded_values_keep_json_types(bodies):
    deployment = decode(bodies[0]["deployment-zero-replicas"][1])
    assert deployment["spec"]["replicas"] == 0, "a pointer field keeps its zero"
    secret = decode(bodies[0]["secret"][1])
    assert secret["data"] == {"user": "YWRtaW4="} and secret["type"] == "example.com/x"
    quota = decode(bodies[0]["quota"][1])
    assert quota["spec"]["hard"] == {"pods": "10", "requests.cpu": "2", "limits.memory": "1Gi"}
    service = decode(bodies[0]["service-clusterip"][1])
    assert service["spec"]["ports"][0] == {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}
    assert decode(bodies[0]["pdb-percent"][1])["spec"]["maxUnavailable"] == "50%"


# --- hand-encoded bodies ------------------------------------------------------------------------------------------

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, value) -> bytes:
    if isinstance(value, bool) or isinstance(value, int):
        return _varint(number << 3) + _varint(int(value))
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _message(*fields) -> bytes:
    return b"".join(_field(n, v) for n, v in fields)


def _body(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    return b"k8s\x00" + _message((1, _message((1, api_version), (2, kind))), (2, raw), (3, encoding), (4, ""))


def test_delete_options_as_drain_sends_them():
    raw = _message((1, 0), (2, _message((1, "uid-1"))), (4, "Foreground"), (5, "All"))
    assert decode(_body("v1", "DeleteOptions", raw)) == {
        "kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
        "preconditions": {"uid": "uid-1"}, "propagationPolicy": "Foreground", "dryRun": ["All"]}


def test_unknown_fields_of_every_wire_type_are_reported_by_path():
    unknown = (_field(90, 7) + _field(91, "x") + _varint(92 << 3 | 1) + b"\0" * 8 + _varint(93 << 3 | 5)
               + b"\0" * 4)
    raw = _message((1, _message((1, "ns1"), (8, b""), (11, _message((1, "a"), (2, "b"))), (99, "?")))) + unknown
    found = []
    assert decode(_body("v1", "Namespace", raw), found) == {
        "kind": "Namespace", "apiVersion": "v1", "spec": {}, "status": {},
        "metadata": {"name": "ns1", "creationTimestamp": None, "labels": {"a": "b"}}}
    assert found == ["#90", "#91", "#92", "#93", "metadata.#99"]


def test_times_negative_ints_and_int_or_string():
    meta = _message((1, "x"), (9, _message((1, 1704067200))), (10, -1))
    rolling = _message((1, _message((1, 1), (3, "25%"))), (2, _message((2, 0))))
    strategy = _message((1, "RollingUpdate"), (2, rolling))
    deployment = _message((1, meta), (2, _message((4, strategy))))
    decoded = decode(_body("apps/v1", "Deployment", deployment))
    assert decoded["metadata"] == {"name": "x", "creationTimestamp": None, "deletionTimestamp": "2024-01-01T00:00:00Z",
                                   "deletionGracePeriodSeconds": -1}
    assert decoded["spec"]["strategy"] == {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 0}}


def test_env_from_secret_key_inlines_its_reference():
    env = _message((1, "PASSWORD"), (3, _message((4, _message((1, _message((1, "db"))), (2, "pw"))))))
    pod = _message((1, _message((1, "p"))), (2, _message((2, _message((1, "c"), (2, "i"), (7, env))))))
    container = decode(_body("v1", "Pod", pod))["spec"]["containers"][0]
    assert container["env"] == [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}]


@pytest.mark.parametrize("body,fragment", [
    (b"{}", "k8s\\x00"),
    (_body("v1", "Widget", b""), "kind 'Widget'"),
    (_body("v1", "Namespace", b"", "gzip"), "content encoding 'gzip'"),
    (b"k8s\x00" + _varint(2 << 3 | 2) + _varint(50) + b"short", "runs past the end"),
    (b"k8s\x00" + b"\xff" * 3, "truncated varint"),
    (_body("v1", "Namespace", _message((1, _message((1, b"\xff\xfe"))))), "not valid UTF-8"),
    (_body("v1", "Namespace", _varint(1 << 3 | 3)), "wire type 3"),
    (_body("v1", "Namespace", _message((1, 5))), "metadata: wire type 0"),
])
def test_bad_bodies_say_what_is_wrong(body, fragment):
    with pytest.raises(ValueError) as caught:
        decode(body)
    assert fragment in str(caught.value)
