"""The real kubectl's patches applied by kpy's patch code: a tiny in-process API (discovery from the catalog, GET
and PATCH of a few objects) records what kubectl sends and keeps the patched objects, so each command's effect is
checked end to end, as on a real cluster."""
import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from urllib.parse import parse_qs, urlsplit

import yaml

from kpy_components.api.apply import apply, record_update
from kpy_components.api.catalog import default_registry
from kpy_components.api.errors import APIError
from kpy_components.api.patch import apply_json_patch, apply_merge_patch, apply_strategic_merge_patch

_KUBECTL = shutil.which("kubectl")
_DIR = Path(_KUBECTL).resolve().parent if _KUBECTL else None
_ALL = sorted((p.name for p in _DIR.glob("kubectl.1.*")), key=lambda n: int(n.rsplit(".", 1)[1])) if _DIR else []
VERSIONS = sorted({_ALL[0], _ALL[-1]}) if _ALL else []  # the oldest and newest kubectl the issue names
pytestmark = pytest.mark.skipif(not VERSIONS, reason="no kubectl.1.* binaries on this machine")

REGISTRY = default_registry()


def _discovery() -> dict:
    docs = {"/api": {"kind": "APIVersions", "versions": ["v1"],
                     "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}}
    groups = []
    for group, version in REGISTRY.group_versions():
        gv = f"{group}/{version}" if group else version
        docs[f"/apis/{gv}" if group else "/api/v1"] = {"kind": "APIResourceList", "groupVersion": gv, "resources": [
            {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
             "verbs": list(r.verbs), "shortNames": list(r.short_names)}
            for r in REGISTRY if (r.group, r.version) == (group, version)]}
        if group:
            groups.append({"name": group, "versions": [{"groupVersion": gv, "version": version}],
                           "preferredVersion": {"groupVersion": gv, "version": version}})
    docs["/apis"] = {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}
    return docs


class JSONHandler(BaseHTTPRequestHandler):
    """A quiet handler answering JSON."""

    def log_message(self, *args):
        pass

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class RecordingAPI:
    """Serves discovery and `objects` (URL path -> object); PATCH applies the body with kpy's patch code."""

    def __init__(self, objects: dict):
        self.objects, self.patches, discovery = objects, [], _discovery()
        api = self

        class Handler(JSONHandler):
            def do_GET(self):
                path = self.path.split("?")[0]
                found = discovery.get(path) or api.objects.get(path)
                self._reply(200, found) if found else self._reply(404, {
                    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                    "message": "not found"})

            def do_PATCH(self):
                url, kind = urlsplit(self.path), self.headers["Content-Type"]
                path, query = url.path, parse_qs(url.query)
                body = yaml.safe_load(self.rfile.read(int(self.headers["Content-Length"])))
                api.patches.append((kind, body))
                live = api.objects[path]
                if kind == "application/apply-patch+yaml":
                    try:
                        api.objects[path] = apply(live, body, query["fieldManager"][0],
                                                  force=query.get("force") == ["true"])
                    except APIError as error:
                        return self._reply(error.code, error.status())
                elif kind == "application/strategic-merge-patch+json":
                    api.objects[path] = apply_strategic_merge_patch(live, body, live["kind"])
                elif kind == "application/merge-patch+json":
                    api.objects[path] = apply_merge_patch(live, body)
                else:
                    api.objects[path] = apply_json_patch(live, body)
                self._reply(200, api.objects[path])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubectl(self, version: str, cache: Path, *args: str, stdin: str | None = None, fails: bool = False) -> str:
        """kubectl's stdout (stderr when `fails`, which it then must)."""
        result = subprocess.run([str(_DIR / version), "--server", f"http://127.0.0.1:{self.server.server_port}",
                                 "--cache-dir", str(cache), *args], capture_output=True, text=True, input=stdin,
                                timeout=60)
        assert (result.returncode != 0) == fails, result.stderr
        return result.stderr if fails else result.stdout

    def close(self):
        self.server.shutdown()
        self.server.server_close()


NODE_PATH = "/api/v1/nodes/n1"
DEPLOY_PATH = "/apis/apps/v1/namespaces/default/deployments/web"
LAST_APPLIED = {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"labels": {"app": "web", "tier": "fe"}, "name": "web", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                             {"name": "web", "image": "nginx:1.25",
                              "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}}}


def _live_deployment() -> dict:
    live = json.loads(json.dumps(LAST_APPLIED))
    live["metadata"].update(uid="u2", resourceVersion="2", annotations={
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(LAST_APPLIED)})
    live["spec"]["replicas"] = 1
    containers = live["spec"]["template"]["spec"]["containers"]
    containers[0]["terminationMessagePath"] = "/dev/termination-log"  # a server default
    containers.append({"name": "side", "image": "busybox"})  # added by someone else, never applied
    return live


@pytest.fixture
def api():
    server = RecordingAPI({
        NODE_PATH: {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "uid": "u1"},
                    "spec": {"podCIDR": "10.244.0.0/24"}},
        DEPLOY_PATH: _live_deployment()})
    yield server
    server.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_cordon_uncordon_round_trip(api, version, tmp_path):
    assert "cordoned" in api.kubectl(version, tmp_path, "cordon", "n1")
    assert api.objects[NODE_PATH]["spec"] == {"podCIDR": "10.244.0.0/24", "unschedulable": True}
    assert "uncordoned" in api.kubectl(version, tmp_path, "uncordon", "n1")
    assert api.objects[NODE_PATH]["spec"] == {"podCIDR": "10.244.0.0/24"}
    assert [body for _, body in api.patches] == [{"spec": {"unschedulable": True}},
                                                 {"spec": {"unschedulable": None}}]


@pytest.mark.parametrize("version", VERSIONS)
def test_set_image_round_trip(api, version, tmp_path):
    api.kubectl(version, tmp_path, "set", "image", "deploy/web", "side=busybox:1.36", "-n", "default")
    kind, body = api.patches[-1]
    assert kind == "application/strategic-merge-patch+json"
    assert "$setElementOrder/containers" in body["spec"]["template"]["spec"]
    containers = api.objects[DEPLOY_PATH]["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c["image"]) for c in containers] == [("web", "nginx:1.25"), ("side", "busybox:1.36")]
    assert containers[0]["env"] == LAST_APPLIED["spec"]["template"]["spec"]["containers"][0]["env"]


@pytest.mark.parametrize("version", VERSIONS)
def test_client_side_apply_three_way_round_trip(api, version, tmp_path):
    manifest = json.loads(json.dumps(LAST_APPLIED))
    del manifest["metadata"]["labels"]["tier"]
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["image"], container["env"] = "nginx:1.26", [{"name": "A", "value": "1"}]
    assert "configured" in api.kubectl(version, tmp_path, "apply", "--validate=false", "-f", "-",
                                       stdin=json.dumps(manifest))
    live = api.objects[DEPLOY_PATH]
    assert live["metadata"]["labels"] == {"app": "web"}
    assert json.loads(live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])[
        "spec"] == manifest["spec"]
    web, side = live["spec"]["template"]["spec"]["containers"]
    assert web == {"name": "web", "image": "nginx:1.26", "env": [{"name": "A", "value": "1"}],
                   "terminationMessagePath": "/dev/termination-log"}
    assert side == {"name": "side", "image": "busybox"}, "fields never applied survive a client-side apply"
    assert live["spec"]["replicas"] == 1
    # Applying the same manifest again changes nothing.
    before = json.loads(json.dumps(live))
    api.kubectl(version, tmp_path, "apply", "--validate=false", "-f", "-", stdin=json.dumps(manifest))
    assert api.objects[DEPLOY_PATH] == before


@pytest.mark.parametrize("version", VERSIONS)
def test_label_annotate_and_patch_types(api, version, tmp_path):
    api.kubectl(version, tmp_path, "label", "deployment/web", "-n", "default", "tier-", "env=prod")
    assert api.objects[DEPLOY_PATH]["metadata"]["labels"] == {"app": "web", "env": "prod"}
    api.kubectl(version, tmp_path, "annotate", "nodes/n1", "note=hi")
    assert api.objects[NODE_PATH]["metadata"]["annotations"] == {"note": "hi"}
    api.kubectl(version, tmp_path, "patch", "deployment/web", "-n", "default", "--type=json",
                "-p", '[{"op":"replace","path":"/spec/replicas","value":4}]')
    api.kubectl(version, tmp_path, "patch", "deployment/web", "-n", "default", "--type=merge",
                "-p", '{"spec":{"paused":true}}')
    api.kubectl(version, tmp_path, "patch", "deployment/web", "-n", "default",
                "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:2"}]}}}}')
    spec = api.objects[DEPLOY_PATH]["spec"]
    assert (spec["replicas"], spec["paused"]) == (4, True)
    assert [c["image"] for c in spec["template"]["spec"]["containers"]] == ["nginx:2", "busybox"]
    assert [kind for kind, _ in api.patches] == ["application/merge-patch+json"] * 2 + [
        "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"]


@pytest.mark.parametrize("version", VERSIONS)
def test_server_side_apply_conflict_and_force(api, version, tmp_path):
    live = api.objects[DEPLOY_PATH]
    del live["metadata"]["annotations"]  # no client-side apply history to migrate
    record_update(None, live, "kubectl-client-side-apply")
    manifest = json.loads(json.dumps(LAST_APPLIED))
    manifest["spec"]["replicas"] = 5
    stderr = api.kubectl(version, tmp_path, "apply", "--server-side", "--validate=false", "-f", "-",
                         stdin=json.dumps(manifest), fails=True)
    assert 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas' \
        in stderr
    assert api.objects[DEPLOY_PATH]["spec"]["replicas"] == 1
    assert "serverside-applied" in api.kubectl(version, tmp_path, "apply", "--server-side", "--force-conflicts",
                                               "--validate=false", "-f", "-", stdin=json.dumps(manifest))
    applied = api.objects[DEPLOY_PATH]
    assert applied["spec"]["replicas"] == 5
    managers = {(e["manager"], e["operation"]) for e in applied["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    assert api.patches[-1][0] == "application/apply-patch+yaml"
