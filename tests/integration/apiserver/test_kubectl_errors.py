"""Error cases as the real kubectl prints them: the server's Status objects must carry Kubernetes' wording."""
from __future__ import annotations

import json

import yaml

INVALID_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: -1
  selector: {matchLabels: {app: one}}
  template:
    metadata: {labels: {app: two}}
    spec:
      containers: [{name: c, image: nginx}, {name: c, image: nginx}]
"""


def test_not_found(kubectl, namespace):
    result = kubectl("-n", namespace, "get", "pod", "missing", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): pods "missing" not found'
    result = kubectl("-n", namespace, "get", "deployment.apps", "missing", check=False)
    assert result.stderr.strip() == 'Error from server (NotFound): deployments.apps "missing" not found'


def test_already_exists(kubectl, namespace):
    kubectl("-n", namespace, "create", "configmap", "taken")
    result = kubectl("-n", namespace, "create", "configmap", "taken", check=False)
    assert result.returncode == 1
    assert 'configmaps "taken" already exists' in result.stderr
    assert "AlreadyExists" in result.stderr or "already exists" in result.stderr.splitlines()[-1]


def test_invalid_manifest_lists_every_field_error(kubectl, namespace):
    result = kubectl("-n", namespace, "apply", "-f", "-", input=INVALID_DEPLOYMENT, check=False)
    assert result.returncode == 1
    assert 'The Deployment "broken" is invalid: ' in result.stderr
    assert "* spec.replicas: Invalid value: -1: must be greater than or equal to 0" in result.stderr
    assert ('* spec.template.metadata.labels: Invalid value: map[string]string{"app":"two"}: `selector` does not '
            "match template `labels`") in result.stderr
    assert '* spec.template.spec.containers[1].name: Duplicate value: "c"' in result.stderr


def test_unknown_field_is_rejected_under_strict_validation(kubectl, namespace):
    manifest = yaml.safe_load(INVALID_DEPLOYMENT)
    manifest["spec"].update(replicas=1, colour="blue")
    manifest["spec"]["template"]["metadata"]["labels"]["app"] = "one"
    manifest["spec"]["template"]["spec"]["containers"].pop()
    result = kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode == 1
    assert ('Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be '
            'handled as a Deployment: strict decoding error: unknown field "spec.colour"') in result.stderr
    # With --validate=warn the server creates it and says what it dropped; with validation off it says nothing.
    warned = kubectl("-n", namespace, "create", "--validate=warn", "-f", "-", input=json.dumps(
        {**manifest, "metadata": {"name": "warned"}}))
    assert 'Warning: unknown field "spec.colour"' in warned.stderr
    created = kubectl("-n", namespace, "create", "--validate=false", "-f", "-", input=json.dumps(manifest))
    assert created.stdout.strip() == "deployment.apps/broken created"


def test_unauthenticated_requests_are_refused(kubectl, apiserver, tmp_path):
    config = yaml.safe_load(apiserver.admin_kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "not-a-token-this-server-issued"}  # no user: kubectl would prompt
    anonymous = tmp_path / "anonymous.kubeconfig"
    anonymous.write_text(yaml.safe_dump(config))
    result = kubectl.as_user(anonymous)("get", "pods", check=False)
    assert result.returncode == 1
    # kubectl words a 401 from discovery "(the server has asked for the client to provide credentials)", and one
    # from a resource request with the Status message: "(Unauthorized)".
    assert result.stderr.splitlines()[-1] in (
        "error: You must be logged in to the server (Unauthorized)",
        "error: You must be logged in to the server (the server has asked for the client to provide credentials)")
    raw = kubectl.as_user(anonymous)("get", "--raw", "/api/v1/namespaces", check=False)
    assert raw.stderr.strip() == "error: You must be logged in to the server (Unauthorized)"


def test_forbidden_for_a_restricted_user(kubectl, apiserver, namespace):
    restricted = kubectl.as_user(apiserver.user_kubeconfig(f"alice-{kubectl.version}"))
    result = restricted("-n", namespace, "get", "pods", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (f'Error from server (Forbidden): pods is forbidden: User "alice-{kubectl.version}" '
                                     f'cannot list resource "pods" in API group "" in the namespace "{namespace}"')
