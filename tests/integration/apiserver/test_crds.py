"""CustomResourceDefinitions with the real kubectl 1.27 and 1.33 and the official Python client against
kpy-apiserver --dev: a CRD with nested objects, defaults, an enum, a CEL rule, status and scale subresources and
printer columns (manifests/crontab-crd.yaml) applied, established and discovered; custom resources defaulted,
pruned, refused in upstream's words, listed with the printer columns, watched, scaled, server-side applied with a
conflict; a cluster-scoped CRD; deleting a CRD deletes its objects first."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from apiserver.test_python_client import api_client  # noqa: F401 - the fixture, shared

CRD = Path(__file__).parent / "manifests" / "crontab-crd.yaml"
WAIT = 20.0  # seconds a CRD may take to be served (it is milliseconds; the bound only ends a failing test)


def _cron(name: str, **spec) -> str:
    return yaml.safe_dump({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": name},
                           "spec": {"cronSpec": "*/5 * * * *", **spec}})


@pytest.fixture(scope="module")
def crontabs(kubectl) -> None:
    """The CronTab CRD applied and Established (kubectl wait, as users wait for it)."""
    kubectl("apply", "-f", str(CRD))
    kubectl("wait", "--for=condition=Established", "crd/crontabs.stable.example.com", "--timeout=20s")


def _wait_for(check, what: str):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_crd_conditions_and_discovery(kubectl, crontabs):
    crd = json.loads(kubectl("get", "crd", "crontabs.stable.example.com", "-o", "json").stdout)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": ("True", "NoConflicts"), "Established": ("True", "InitialNamesAccepted")}
    assert crd["status"]["acceptedNames"]["shortNames"] == ["ct"]
    assert crd["status"]["storedVersions"] == ["v1"]
    assert crd["spec"]["names"]["listKind"] == "CronTabList"  # defaulted
    rows = kubectl("api-resources", "--api-group=stable.example.com").stdout.splitlines()
    assert rows[1].split() == ["crontabs", "ct", "stable.example.com/v1", "true", "CronTab"]
    assert "crontabs" in kubectl("api-resources", "--categories=all", "-o", "name").stdout


def test_custom_resources_are_defaulted_pruned_and_printed(kubectl, namespace, crontabs):
    body = _cron("nightly", image="busybox", port="http", extra={"kept": {"deep": 1}})
    created = kubectl("-n", namespace, "apply", "-f", "-", input=body)
    assert created.stdout.strip() == "crontab.stable.example.com/nightly created"
    spec = json.loads(kubectl("-n", namespace, "get", "ct", "nightly", "-o", "json").stdout)["spec"]
    assert spec["replicas"] == 1 and spec["maxReplicas"] == 10
    assert spec["policy"] == {"concurrency": "Allow", "history": 3}  # an object default, then defaults inside it
    assert spec["port"] == "http" and spec["extra"] == {"kept": {"deep": 1}}
    # Strict (kubectl's default) refuses an unknown field; --validate=false (Ignore) prunes it.
    unknown = _cron("pruned", surprise=True)
    refused = kubectl("-n", namespace, "apply", "-f", "-", input=unknown, check=False)
    assert refused.returncode == 1
    assert 'strict decoding error: unknown field "spec.surprise"' in refused.stderr
    kubectl("-n", namespace, "apply", "--validate=false", "-f", "-", input=unknown)
    pruned = json.loads(kubectl("-n", namespace, "get", "crontab", "pruned", "-o", "json").stdout)
    assert "surprise" not in pruned["spec"]
    table = kubectl("-n", namespace, "get", "crontabs").stdout.splitlines()
    assert table[0].split() == ["NAME", "SPEC", "REPLICAS", "POLICY", "AGE"]
    assert table[1].split()[:7] == ["nightly", "*/5", "*", "*", "*", "*", "1"]
    assert table[1].split()[7] == "Allow"
    listed = kubectl("-n", namespace, "get", "ct", "--field-selector", "metadata.name=pruned", "-o", "name")
    assert listed.stdout.split() == ["crontab.stable.example.com/pruned"]


def test_schema_and_cel_errors_are_worded_as_upstream(kubectl, namespace, crontabs):
    bad = _cron("bad", replicas="two", port=True, policy={"concurrency": "Sometimes"}).replace("*/5 * * * *", "nope")
    result = kubectl("-n", namespace, "apply", "-f", "-", input=bad, check=False)
    assert result.returncode == 1
    assert 'The CronTab "bad" is invalid' in result.stderr
    for line in ("spec.cronSpec: Invalid value: \"nope\": spec.cronSpec in body should match "
                 "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'",
                 'spec.policy.concurrency: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", '
                 '"Replace"',
                 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"',
                 'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: '
                 '"boolean"'):
        assert line in result.stderr
    missing = kubectl("-n", namespace, "apply", "-f", "-", check=False, input=yaml.safe_dump(
        {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "empty"}, "spec": {}}))
    assert 'spec.cronSpec: Required value' in missing.stderr
    cel = kubectl("-n", namespace, "apply", "-f", "-", input=_cron("greedy", replicas=20), check=False)
    assert cel.returncode == 1
    assert 'The CronTab "greedy" is invalid: spec: Invalid value: "object": replicas must not exceed ' \
           'maxReplicas' in cel.stderr
    below = kubectl("-n", namespace, "apply", "-f", "-", input=_cron("negative", replicas=-1), check=False)
    assert "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0" \
        in below.stderr


def test_scale_and_status_subresources(kubectl, namespace, crontabs):
    kubectl("-n", namespace, "apply", "-f", "-", input=_cron("scaled"))
    assert kubectl("-n", namespace, "scale", "ct/scaled", "--replicas=4").stdout.strip() == \
        "crontab.stable.example.com/scaled scaled"
    obj = json.loads(kubectl("-n", namespace, "get", "ct", "scaled", "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 4 and obj["metadata"]["generation"] == 2
    kubectl("-n", namespace, "patch", "ct", "scaled", "--subresource=status", "--type=merge",
            "-p", '{"status":{"replicas":4,"selector":"app=cron"}}')
    scale = json.loads(kubectl("get", "--raw",
                               f"/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/scaled/scale").stdout)
    assert scale["spec"] == {"replicas": 4} and scale["status"] == {"replicas": 4, "selector": "app=cron"}
    # a status write leaves generation alone; status in the main resource is ignored
    kubectl("-n", namespace, "patch", "ct", "scaled", "--type=merge", "-p", '{"status":{"replicas":9}}')
    obj = json.loads(kubectl("-n", namespace, "get", "ct", "scaled", "-o", "json").stdout)
    assert obj["status"]["replicas"] == 4 and obj["metadata"]["generation"] == 2


def test_watch_reports_changes(kubectl, namespace, crontabs):
    kubectl("-n", namespace, "apply", "-f", "-", input=_cron("watched"))
    watcher = subprocess.Popen(kubectl.command("-n", namespace, "get", "ct", "watched", "-w",
                                               "--output-watch-events"), stdout=subprocess.PIPE, text=True)
    try:
        assert watcher.stdout.readline().split()[:3] == ["EVENT", "NAME", "SPEC"]
        assert watcher.stdout.readline().split()[:2] == ["ADDED", "watched"]
        kubectl("-n", namespace, "patch", "ct", "watched", "--type=merge", "-p", '{"spec":{"replicas":3}}')
        modified = watcher.stdout.readline().split()
        assert modified[:2] == ["MODIFIED", "watched"] and modified[7] == "3"  # the REPLICAS column
        kubectl("-n", namespace, "delete", "ct", "watched")
        assert watcher.stdout.readline().split()[:2] == ["DELETED", "watched"]
    finally:
        watcher.kill()
        watcher.wait()


def test_server_side_apply_conflicts_between_managers(kubectl, namespace, crontabs):
    kubectl("-n", namespace, "apply", "--server-side", "--field-manager=alice", "-f", "-",
            input=_cron("shared", image="one"))
    conflict = kubectl("-n", namespace, "apply", "--server-side", "--field-manager=bob", "-f", "-",
                       input=_cron("shared", image="two"), check=False)
    assert conflict.returncode == 1
    assert 'conflict with "alice"' in conflict.stderr and ".spec.image" in conflict.stderr
    kubectl("-n", namespace, "apply", "--server-side", "--force-conflicts", "--field-manager=bob", "-f", "-",
            input=_cron("shared", image="two"))
    obj = json.loads(kubectl("-n", namespace, "get", "ct", "shared", "-o", "json").stdout)
    assert obj["spec"]["image"] == "two"


def test_explain_prints_the_crd_schema(kubectl, crontabs):
    explained = kubectl("explain", "crontabs.spec.policy").stdout
    assert "KIND:       CronTab" in explained or "KIND:     CronTab" in explained
    assert "concurrency" in explained and "history" in explained
    assert "What the CronTab runs and when." in kubectl("explain", "ct.spec").stdout


def _crd(group: str, plural: str, kind: str, scope: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": scope, "names": {"plural": plural, "kind": kind},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "properties": {"spec": {"type": "object",
                                                               "x-kubernetes-preserve-unknown-fields": True}}}}}]}})


def test_cluster_scoped_crd_and_deletion_removes_objects_first(kubectl):
    group = f"v{kubectl.version.replace('.', '')}.example.org"
    kubectl("apply", "-f", "-", input=_crd(group, "widgets", "Widget", "Cluster"))
    kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=20s")
    for name in ("a", "b"):
        kubectl("apply", "-f", "-", input=yaml.safe_dump({"apiVersion": f"{group}/v1", "kind": "Widget",
                                                          "metadata": {"name": name}, "spec": {"any": [1]}}))
    listed = kubectl("get", f"widgets.{group}", "-o", "json")
    items = json.loads(listed.stdout)["items"]
    assert [i["metadata"]["name"] for i in items] == ["a", "b"] and "namespace" not in items[0]["metadata"]
    table = kubectl("get", f"widgets.{group}").stdout.splitlines()
    assert table[0].split() == ["NAME", "AGE"]
    kubectl("delete", "crd", f"widgets.{group}")  # waits for the CRD to go: after its objects
    assert "NotFound" in kubectl("get", "crd", f"widgets.{group}", check=False).stderr
    # Recreated, the CRD serves an empty collection: nothing of the old objects was left in storage.
    kubectl("apply", "-f", "-", input=_crd(group, "widgets", "Widget", "Cluster"))
    kubectl("wait", "--for=condition=Established", f"crd/widgets.{group}", "--timeout=20s")
    assert json.loads(kubectl("get", f"widgets.{group}", "-o", "json").stdout)["items"] == []
    kubectl("delete", "crd", f"widgets.{group}")


def test_invalid_crds_are_refused_with_the_crd_validators_words(kubectl):
    bad = yaml.safe_load(_crd("example.net", "gadgets", "Gadget", "Everywhere"))
    bad["metadata"]["name"] = "gadget.example.net"
    bad["spec"]["versions"][0]["storage"] = False
    bad["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = {"properties": {}}
    result = kubectl("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert result.returncode == 1
    for line in ('metadata.name: Invalid value: "gadget.example.net": must be spec.names.plural+"."+spec.group',
                 'spec.scope: Unsupported value: "Everywhere": supported values: "Cluster", "Namespaced"',
                 "must have exactly one version marked as storage version",
                 "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value"):
        assert line in result.stderr


# --- the official Python client ---------------------------------------------------------------------------------

def test_python_client_creates_a_crd_and_custom_objects(api_client):  # noqa: F811
    extensions = client.ApiextensionsV1Api(api_client)
    manifest = yaml.safe_load(_crd("py.example.org", "gizmos", "Gizmo", "Namespaced"))
    manifest["spec"]["names"]["shortNames"] = ["gz"]
    extensions.create_custom_resource_definition(manifest)
    _wait_for(lambda: any(c.type == "Established" and c.status == "True" for c in
                          extensions.read_custom_resource_definition("gizmos.py.example.org").status.conditions
                          or []), "the Gizmo CRD to be established")
    objects = client.CustomObjectsApi(api_client)
    body = {"apiVersion": "py.example.org/v1", "kind": "Gizmo", "metadata": {"name": "g1"}, "spec": {"size": 3}}
    stream = watch.Watch()
    events = stream.stream(objects.list_namespaced_custom_object, "py.example.org", "v1", "default", "gizmos",
                           timeout_seconds=10)
    created = objects.create_namespaced_custom_object("py.example.org", "v1", "default", "gizmos", body)
    assert created["metadata"]["generation"] == 1 and created["spec"] == {"size": 3}
    first = next(events)
    assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "g1")
    stream.stop()
    listed = objects.list_namespaced_custom_object("py.example.org", "v1", "default", "gizmos")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["g1"]
    with pytest.raises(ApiException) as exists:
        objects.create_namespaced_custom_object("py.example.org", "v1", "default", "gizmos", body)
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["message"] == 'gizmos.py.example.org "g1" already exists'
    extensions.delete_custom_resource_definition("gizmos.py.example.org")
    _wait_for(lambda: _gone(extensions, "gizmos.py.example.org"), "the Gizmo CRD to go")


def _gone(extensions, name: str) -> bool:
    try:
        extensions.read_custom_resource_definition(name)
    except ApiException as error:
        return error.status == 404
    return False


def test_served_versions_share_objects_stored_in_the_storage_version(kubectl, apiserver):
    group = f"m{kubectl.version.replace('.', '')}.example.org"
    crd = yaml.safe_load(_crd(group, "dials", "Dial", "Namespaced"))
    beta = dict(crd["spec"]["versions"][0], name="v1beta1", storage=False)
    beta["schema"] = {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
        "type": "object", "properties": {"level": {"type": "integer", "maximum": 5}}}}}}
    crd["spec"]["versions"].append(beta)
    kubectl("apply", "-f", "-", input=yaml.safe_dump(crd))
    kubectl("wait", "--for=condition=Established", f"crd/dials.{group}", "--timeout=20s")
    made = kubectl("apply", "-f", "-", input=yaml.safe_dump({"apiVersion": f"{group}/v1beta1", "kind": "Dial",
                                                             "metadata": {"name": "d"}, "spec": {"level": 3}}))
    assert made.stdout.strip() == f"dial.{group}/d created"
    as_v1 = json.loads(kubectl("get", f"dials.v1.{group}", "d", "-o", "json").stdout)
    as_beta = json.loads(kubectl("get", f"dials.v1beta1.{group}", "d", "-o", "json").stdout)
    assert as_v1["apiVersion"] == f"{group}/v1" and as_beta["apiVersion"] == f"{group}/v1beta1"
    assert as_v1["metadata"]["uid"] == as_beta["metadata"]["uid"] and as_beta["spec"] == {"level": 3}
    # each version validates with its own schema
    refused = kubectl("apply", "-f", "-", check=False, input=yaml.safe_dump(
        {"apiVersion": f"{group}/v1beta1", "kind": "Dial", "metadata": {"name": "e"}, "spec": {"level": 9}}))
    assert "spec.level in body should be less than or equal to 5" in refused.stderr
    group_doc = json.loads(apiserver.get(f"/apis/{group}")[1])
    assert group_doc["preferredVersion"]["version"] == "v1"
    assert [v["version"] for v in group_doc["versions"]] == ["v1", "v1beta1"]
    kubectl("delete", "crd", f"dials.{group}")
