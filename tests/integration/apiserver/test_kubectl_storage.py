"""PersistentVolumeClaims, PersistentVolumes and StorageClasses served by a real kpy-apiserver (no controllers), as
the real kubectl 1.27 and 1.33 see them: discovery with short names, OpenAPI paths, defaults and the protection
finalizer read back, -o wide columns, the claim's immutable spec, and the default roles' rules on claims and
volumes."""
from __future__ import annotations

import itertools
import json

_names = itertools.count()


def _apply(kubectl, obj: dict, *args: str, check: bool = True):
    return kubectl(*args, "apply", "-f", "-", input=json.dumps(obj), check=check)


def claim(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}}


def test_discovery_lists_storage_resources_with_short_names(kubectl):
    rows = {tuple(line.split()) for line in kubectl("api-resources").stdout.splitlines()[1:]}
    assert ("persistentvolumeclaims", "pvc", "v1", "true", "PersistentVolumeClaim") in rows
    assert ("persistentvolumes", "pv", "v1", "false", "PersistentVolume") in rows
    assert ("storageclasses", "sc", "storage.k8s.io/v1", "false", "StorageClass") in rows
    core = json.loads(kubectl("get", "--raw", "/openapi/v3/api/v1").stdout)["paths"]
    assert "/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}/status" in core
    assert "/api/v1/persistentvolumes/{name}" in core
    storage = json.loads(kubectl("get", "--raw", "/openapi/v3/apis/storage.k8s.io/v1").stdout)["paths"]
    assert "/apis/storage.k8s.io/v1/storageclasses" in storage


def test_defaults_read_back_and_wide_columns(kubectl, namespace):
    volume = f"{namespace}-pv"
    _apply(kubectl, {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": volume},
                     "spec": {"capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteMany"],
                              "hostPath": {"path": "/srv/x"}}})
    try:
        stored = json.loads(kubectl("get", "pv", volume, "-o", "json").stdout)
        assert (stored["spec"]["persistentVolumeReclaimPolicy"], stored["spec"]["volumeMode"]) == ("Retain",
                                                                                                  "Filesystem")
        assert stored["status"]["phase"] == "Pending"  # no binder runs here to make it Available
        assert stored["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
        row = kubectl("get", "pv", volume, "-o", "wide", "--no-headers").stdout.split()
        assert row[:5] == [volume, "2Gi", "RWX", "Retain", "Pending"] and row[-1] == "Filesystem"
    finally:
        kubectl("delete", "pv", volume, "--wait=false")
    # without the pv-protection controller the finalizer holds it: Terminating until someone removes it
    assert kubectl("get", "pv", volume, "--no-headers").stdout.split()[4] == "Terminating"
    kubectl("patch", "pv", volume, "--type=json", "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
    assert kubectl("get", "pv", volume, "--ignore-not-found").stdout == ""
    _apply(kubectl, claim("data"), "-n", namespace)
    header = kubectl("-n", namespace, "get", "pvc", "-o", "wide").stdout.splitlines()[0].split()
    assert header[-2:] == ["AGE", "VOLUMEMODE"]
    row = kubectl("-n", namespace, "get", "pvc", "data", "-o", "wide", "--no-headers").stdout.split()
    assert row[:2] == ["data", "Pending"] and row[-1] == "Filesystem"


def test_claim_spec_is_immutable_until_bound(kubectl, namespace):
    _apply(kubectl, claim("data"), "-n", namespace)
    result = kubectl("-n", namespace, "patch", "pvc", "data", "-p",
                     '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}', check=False)
    assert result.returncode != 0
    assert ('The PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after creation except '
            'resources.requests and volumeAttributesClassName for bound claims') in result.stderr


def test_default_roles_cover_claims_not_volumes(kubectl, namespace, apiserver):
    user = f"storage-user-{next(_names)}"
    kubectl("-n", namespace, "create", "rolebinding", f"{user}-edit", "--clusterrole=edit", f"--user={user}")
    restricted = kubectl.as_user(apiserver.user_kubeconfig(user))
    assert restricted("auth", "can-i", "create", "persistentvolumeclaims", "-n", namespace).stdout.strip() == "yes"
    assert restricted("auth", "can-i", "list", "pvc", "-n", namespace).stdout.strip() == "yes"
    denied = restricted("auth", "can-i", "create", "persistentvolumes", check=False)
    assert denied.stdout.strip() == "no"
