"""CRD conversion strategy Webhook with the real kubectl 1.27 and 1.33 against kpy-apiserver: a CRD with two served
versions (v1 stored: host and port; v2: one endpoint) converted by a test HTTPS conversion webhook (its CA in
caBundle). Objects created and patched as v2 are stored as v1 and read back in either version, one at a time and in
lists; a webhook that cannot be reached makes reads fail with upstream's wording."""
from __future__ import annotations

import base64
import http.server
import json
import time

import pytest
import yaml

from apiserver.selfsigned import https_server, reply_json
from apiserver.conftest import KUBECTL_VERSIONS, Kubectl, free_port  # by path: `conftest` alone may be another folder's

GROUP = "conv.example.com"
CRD_NAME = f"gadgets.{GROUP}"
DEADLINE = 20.0  # seconds for the CRD to be served as changed


def _convert(obj: dict, desired: str) -> dict:
    out = dict(obj, apiVersion=desired)
    spec = dict(obj.get("spec") or {})
    if desired.endswith("/v2") and "host" in spec:
        spec = {"endpoint": f"{spec.pop('host')}:{spec.pop('port', 80)}"}
    elif desired.endswith("/v1") and "endpoint" in spec:
        host, _, port = spec.pop("endpoint").partition(":")
        spec = {"host": host, "port": int(port or 80)}
    out["spec"] = spec
    out["metadata"] = dict(obj["metadata"], labels={**(obj["metadata"].get("labels") or {}), "converted": "yes"})
    return out


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        self.server.requests.append(request)
        response = {"uid": request["uid"], "result": {"status": "Success"},
                    "convertedObjects": [_convert(o, request["desiredAPIVersion"]) for o in request["objects"]]}
        reply_json(self, {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": response})

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def converter(tmp_path_factory):
    """An HTTPS conversion webhook on 127.0.0.1 with a self-signed certificate: (URL, caBundle, requests)."""
    with https_server(tmp_path_factory.mktemp("conversion-tls"), "conversion", _Handler) as (server, pem):
        yield f"https://127.0.0.1:{server.server_address[1]}/convert", base64.b64encode(pem).decode(), \
            server.requests


def _crd(url: str, bundle: str) -> str:
    def version(name: str, spec: dict, storage: bool) -> dict:
        return {"name": name, "served": True, "storage": storage, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"spec": {"type": "object", "properties": spec}}}}}
    return yaml.safe_dump({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": CRD_NAME},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                 "conversion": {"strategy": "Webhook", "webhook": {
                     "conversionReviewVersions": ["v1"], "clientConfig": {"url": url, "caBundle": bundle}}},
                 "versions": [version("v1", {"host": {"type": "string"}, "port": {"type": "integer"}}, True),
                              version("v2", {"endpoint": {"type": "string"}}, False)]}})


@pytest.fixture(scope="module")
def gadgets(apiserver, converter, tmp_path_factory):
    admin = Kubectl(KUBECTL_VERSIONS[-1], apiserver.admin_kubeconfig, tmp_path_factory.mktemp("conversion-cache"))
    url, bundle, _ = converter
    admin("apply", "-f", "-", input=_crd(url, bundle))
    admin("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=20s")
    _wait_served(admin, "v2")
    yield admin
    admin("delete", "crd", CRD_NAME, "--wait=false", check=False)


def _wait_served(kubectl, version: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if kubectl("get", f"gadgets.{version}.{GROUP}", "-A", check=False).returncode == 0:
            return
        time.sleep(0.2)
    pytest.fail(f"gadgets {version} not served within {DEADLINE}s")


def _get(kubectl, version: str, name: str) -> dict:
    return json.loads(kubectl("get", f"gadgets.{version}.{GROUP}", name, "-n", "default", "-o", "json").stdout)


def test_objects_written_as_v2_are_stored_as_v1_and_read_in_either(kubectl, gadgets, converter):
    _, _, requests = converter
    name = f"g-{kubectl.version.replace('.', '-')}"
    kubectl("apply", "-n", "default", "-f", "-", input=yaml.safe_dump({
        "apiVersion": f"{GROUP}/v2", "kind": "Gadget", "metadata": {"name": name}, "spec": {"endpoint": "db:5432"}}))
    as_v1 = _get(kubectl, "v1", name)
    assert as_v1["apiVersion"] == f"{GROUP}/v1" and as_v1["spec"] == {"host": "db", "port": 5432}
    as_v2 = _get(kubectl, "v2", name)
    assert as_v2["apiVersion"] == f"{GROUP}/v2" and as_v2["spec"] == {"endpoint": "db:5432"}
    assert as_v2["metadata"]["labels"]["converted"] == "yes"  # labels may change in a conversion
    listed = json.loads(kubectl("get", f"gadgets.v2.{GROUP}", "-n", "default", "-o", "json").stdout)["items"]
    assert {"endpoint": "db:5432"} in [item["spec"] for item in listed]
    kubectl("patch", f"gadgets.v2.{GROUP}", name, "-n", "default", "--type", "merge",
            "-p", '{"spec": {"endpoint": "db:6543"}}')
    assert _get(kubectl, "v1", name)["spec"] == {"host": "db", "port": 6543}
    assert {r["desiredAPIVersion"] for r in requests} == {f"{GROUP}/v1", f"{GROUP}/v2"}
    kubectl("delete", f"gadgets.v2.{GROUP}", name, "-n", "default")


def test_an_unreachable_conversion_webhook_fails_reads_with_upstreams_wording(kubectl, gadgets, converter):
    url, bundle, _ = converter
    name = f"down-{kubectl.version.replace('.', '-')}"
    kubectl("apply", "-n", "default", "-f", "-", input=yaml.safe_dump({
        "apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": name},
        "spec": {"host": "x", "port": 1}}))
    closed = f"https://127.0.0.1:{free_port()}/convert"
    gadgets("apply", "-f", "-", input=_crd(closed, bundle))
    try:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            result = kubectl("get", f"gadgets.v2.{GROUP}", name, "-n", "default", check=False)
            if result.returncode != 0:
                break
            time.sleep(0.2)
        assert result.returncode != 0
        assert (f"conversion webhook for {GROUP}/v1, Kind=Gadget failed: Post "
                f'"{closed}?timeout=30s": dial tcp 127.0.0.1') in result.stderr
        assert "connection refused" in result.stderr
    finally:
        gadgets("apply", "-f", "-", input=_crd(url, bundle))
        _wait_served(gadgets, "v2")
        gadgets("delete", f"gadgets.v1.{GROUP}", name, "-n", "default", check=False)
