"""The one description of the Kubernetes types (k8s_types.py): generated from the real kubectl 1.33 exactly as
checked in, and read the same way by the protobuf decoder and by field validation."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kpy_components.api import k8s_types, types, typesgen
from kpy_components.apiserver.registry import schema

_KUBECTL = shutil.which("kubectl")
_BINARY = Path(_KUBECTL).resolve().parent / "kubectl.1.33" if _KUBECTL else None


def test_the_checked_in_description_is_what_kubectl_133_generates(tmp_path, capsys):
    if not _BINARY or not _BINARY.exists():
        pytest.fail("kubectl.1.33 is needed beside kubectl")
    output = tmp_path / "k8s_types.py"
    assert typesgen.main([str(_BINARY), str(output)]) == 0
    assert output.read_text() == Path(k8s_types.__file__).read_text(), "generate again, never edit by hand"
    assert "without Go struct data" in capsys.readouterr().out


def test_pointers_omitempty_and_inlined_members():
    spec = types.fields("k8s.io.api.apps.v1.DeploymentSpec")
    assert (spec[1].name, spec[1].pointer, spec[1].omitempty) == ("replicas", True, True)
    assert (spec[5].name, spec[5].pointer, spec[5].omitempty) == ("minReadySeconds", False, True)
    assert (spec[3].name, spec[3].type) == ("template", "k8s.io.api.core.v1.PodTemplateSpec")
    assert set(types.json_fields("k8s.io.api.core.v1.SecretKeySelector")) == {"name", "key", "optional"}
    assert types.fields("k8s.io.api.core.v1.ResourceRequirements")[1].map_key == "string"


@pytest.mark.parametrize("api_version,kind,message", [
    ("v1", "Pod", "k8s.io.api.core.v1.Pod"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "k8s.io.api.rbac.v1.RoleBinding"),
    ("policy/v1", "DeleteOptions", "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"),
    ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),  # a subresource's kind from another group
    ("example.com/v1", "Widget", None),
])
def test_kinds_map_to_messages(api_version, kind, message):
    assert types.message_for(api_version, kind) == message


def test_field_validation_reads_every_level():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labelz": {}},
           "spec": {"containers": [{"name": "c", "image": "i", "env": [{"name": "A", "valueFrom": {
               "secretKeyRef": {"name": "s", "key": "k", "optionl": True}}}],
               "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "ad": []}}}],
               "volumes": [{"name": "v", "emptyDir": {"medium": "", "sizeLimt": "1Gi"}}],
               "$setElementOrder/containers": [{"name": "c"}]}}
    assert schema.unknown_fields(pod, "v1", "Pod") == [
        "metadata.labelz", "spec.containers[0].env[0].valueFrom.secretKeyRef.optionl",
        "spec.containers[0].securityContext.capabilities.ad", "spec.volumes[0].emptyDir.sizeLimt"]
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"nam": "w"}, "spec": {"any": 1},
              "extra": 1}
    assert schema.unknown_fields(widget, "example.com/v1", "Widget") == ["metadata.nam", "extra"]
