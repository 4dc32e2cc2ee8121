"""PersistentVolumes, claims and StatefulSet volumeClaimTemplates end to end: a REAL kpy-apiserver, the scheduler
(with VolumeBinding), the statefulset, persistentvolume-binder, pvc-/pv-protection and garbage-collector controllers
in-process, simulated nodes, and the real kubectl 1.27 and 1.33 (fresh discovery cache each):

- `kubectl apply` of a StorageClass, two hostPath PVs and a StatefulSet with volumeClaimTemplates creates
  data-web-0/1 (labels from the selector), each pod mounting its own claim in place of the template's same-named
  volume; the claims bind to the smallest fitting PVs (claimRef, volumeName, bind-completed, phases Bound);
  `get pvc`, `get pv -o wide`, `get sc` and `describe pvc` print as upstream; growing a bound claim of a class
  without allowVolumeExpansion is refused by PersistentVolumeClaimResize;
- whenDeleted=Delete: deleting the set deletes its claims;
- whenScaled=Delete: scaling to 1 deletes data-web-1 (through the pod's ownerReference and the garbage collector)
  while data-web-0 stays, and the freed Retain volume turns Released;
- a claim a running pod uses stays Terminating when deleted (pvc-protection finalizer); once its pod is deleted
  the claim goes and the StatefulSet creates a new claim, then the pod;
- a Pending pod whose claim was deleted gets the claim created again;
- a claim without a class and no volume stays Pending with upstream's FailedBinding event, shown by describe;
- the default StorageClass is filled in (also, retroactively, into an older claim without a class), and deleting
  a claim bound to a Delete-policy volume deletes the volume;
- a pod whose claim is unbound waits (FailedScheduling "pod has unbound immediate PersistentVolumeClaims") and is
  scheduled to the node a local volume's nodeAffinity names once that volume binds its claim;
- bad claims are refused through kubectl with upstream's field errors.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from conftest import eventually, exists, scheduled_cluster


pytestmark = pytest.mark.anyio
CONTROLLERS = ["statefulset", "persistentvolume-binder", "pvc-protection", "pv-protection", "garbagecollector"]


@pytest.fixture
async def storage_cluster(cluster, nodes):
    async with scheduled_cluster(cluster, nodes, CONTROLLERS, "disk-node") as (names, _):
        yield names


async def kubectl_run(kubectl, *args: str, input: str | None = None, check: bool = True, timeout: float = 60):
    return await asyncio.to_thread(kubectl, *args, input=input, check=check, timeout=timeout)


def host_path_volume(name: str, size: str, sc: str, policy: str = "Retain") -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": sc,
                     "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": f"/srv/{name}"}}}


def stateful_set(sc: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                     "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                         "containers": [{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "10m"}},
                                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                         "volumes": [{"name": "data", "emptyDir": {}}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": {"tier": "disk"}}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "storageClassName": sc,
                         "resources": {"requests": {"storage": "1Gi"}}}}]}}


def manifest(*objects: dict) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})


def table(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


async def test_statefulset_claims_bind_print_and_go_when_scaled_down(client, namespace, storage_cluster, kubectl):
    sc, small, large = f"manual-{namespace}", f"{namespace}-small", f"{namespace}-large"
    claims_info, volumes_info = client.resource("persistentvolumeclaims"), client.resource("persistentvolumes")
    await kubectl_run(kubectl, "apply", "-f", "-", input=manifest(
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": sc},
         "provisioner": "kubernetes.io/no-provisioner"},
        host_path_volume(large, "2Gi", sc), host_path_volume(small, "1Gi", sc)))
    await kubectl_run(kubectl, "-n", namespace, "apply", "-f", "-", input=json.dumps(stateful_set(sc)))
    await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "statefulset/web", "--timeout=60s")

    async def bound(name: str):
        claim = await client.get(claims_info, name, namespace)
        return claim if claim.get("status", {}).get("phase") == "Bound" else None
    first = await eventually(lambda: bound("data-web-0"), message="data-web-0 Bound")
    second = await eventually(lambda: bound("data-web-1"), message="data-web-1 Bound")
    assert (first["spec"]["volumeName"], second["spec"]["volumeName"]) == (small, large)
    assert first["metadata"]["labels"] == {"tier": "disk", "app": "web"}
    assert first["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert first["status"]["capacity"] == {"storage": "1Gi"}
    volume = await client.get(volumes_info, small)
    assert (volume["spec"]["claimRef"]["name"], volume["spec"]["claimRef"]["uid"]) == ("data-web-0",
                                                                                       first["metadata"]["uid"])
    assert volume["status"]["phase"] == "Bound"
    pod = await client.get(client.resource("pods"), "web-0", namespace)
    assert pod["spec"]["volumes"][0] == {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}}
    assert not any("emptyDir" in v for v in pod["spec"]["volumes"])

    rows = table((await kubectl_run(kubectl, "-n", namespace, "get", "pvc")).stdout)
    assert rows[0] == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS",
                       "VOLUMEATTRIBUTESCLASS", "AGE"]
    assert rows[1][:7] == ["data-web-0", "Bound", small, "1Gi", "RWO", sc, "<unset>"]
    wide = table((await kubectl_run(kubectl, "get", "pv", small, large, "-o", "wide")).stdout)
    assert wide[0][-1] == "VOLUMEMODE"
    assert wide[1][:7] == [small, "1Gi", "RWO", "Retain", "Bound", f"{namespace}/data-web-0", sc]
    assert wide[1][-1] == "Filesystem"
    classes = table((await kubectl_run(kubectl, "get", "sc", sc)).stdout)
    assert classes[0] == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]
    assert classes[1][:5] == [sc, "kubernetes.io/no-provisioner", "Delete", "Immediate", "false"]
    described = (await kubectl_run(kubectl, "-n", namespace, "describe", "pvc", "data-web-0")).stdout
    for expected in ("Status:        Bound", f"Volume:        {small}", "Capacity:      1Gi",
                     "Access Modes:  RWO", "VolumeMode:    Filesystem", "Used By:       web-0",
                     "Finalizers:    [kubernetes.io/pvc-protection]"):
        assert expected in described, described

    grow = await kubectl_run(kubectl, "-n", namespace, "patch", "pvc", "data-web-0", "-p",
                             '{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}', check=False)
    assert ('persistentvolumeclaims "data-web-0" is forbidden: only dynamically provisioned pvc can be resized and '
            'the storageclass that provisions the pvc must support resize') in grow.stderr

    await kubectl_run(kubectl, "-n", namespace, "scale", "statefulset/web", "--replicas=1")

    async def second_claim_gone():
        return not await exists(client, claims_info, "data-web-1", namespace)
    await eventually(second_claim_gone, timeout=30, message="data-web-1 deleted with web-1")
    released = await eventually(lambda: _phase_is(client, volumes_info, large, "Released"),
                                message=f"{large} Released")
    assert released["spec"]["claimRef"]["name"] == "data-web-1"
    assert await exists(client, claims_info, "data-web-0", namespace)
    assert not (await client.get(claims_info, "data-web-0", namespace))["metadata"].get("ownerReferences")

    await kubectl_run(kubectl, "-n", namespace, "delete", "pvc", "data-web-0", "--wait=false")
    await asyncio.sleep(1)  # time enough for the protection controller to (wrongly) let it go
    assert table((await kubectl_run(kubectl, "-n", namespace, "get", "pvc", "data-web-0")).stdout)[1][1] \
        == "Terminating"
    await kubectl_run(kubectl, "apply", "-f", "-", input=manifest(host_path_volume(f"{namespace}-spare", "1Gi", sc)))
    await kubectl_run(kubectl, "-n", namespace, "delete", "pod", "web-0", "--wait=false")

    async def claim_recreated():
        listed = (await client.list(claims_info, namespace))["items"]
        return [c for c in listed if c["metadata"]["name"] == "data-web-0"
                and c["metadata"]["uid"] != first["metadata"]["uid"]]
    await eventually(claim_recreated, timeout=30, message="data-web-0 gone with web-0, then created anew")
    await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "statefulset/web", "--timeout=60s")


async def test_when_deleted_delete_removes_claims_with_the_set(client, namespace, storage_cluster, kubectl):
    claims_info = client.resource("persistentvolumeclaims")
    await kubectl_run(kubectl, "apply", "-f", "-", input=manifest(host_path_volume(f"{namespace}-cache", "1Gi", "")))
    sts = stateful_set("")
    sts["metadata"]["name"] = "cache"
    sts["spec"].update(replicas=1, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete"})
    await kubectl_run(kubectl, "-n", namespace, "apply", "-f", "-", input=json.dumps(sts))
    await kubectl_run(kubectl, "-n", namespace, "rollout", "status", "statefulset/cache", "--timeout=60s")

    async def owned():
        claim = await client.get(claims_info, "data-cache-0", namespace)
        return claim["metadata"].get("ownerReferences")
    refs = await eventually(owned, message="data-cache-0 owned by its set")
    assert [(r["kind"], r["name"], r["controller"]) for r in refs] == [("StatefulSet", "cache", True)]
    await kubectl_run(kubectl, "-n", namespace, "delete", "statefulset", "cache")

    async def claim_gone():
        return not await exists(client, claims_info, "data-cache-0", namespace)
    await eventually(claim_gone, timeout=30, message="data-cache-0 deleted with its set")


async def test_pod_waits_for_its_claim_and_follows_a_local_volume(client, namespace, storage_cluster, kubectl):
    """The scheduler's VolumeBinding: unbound claim -> Pending with upstream's message; once a local volume on the
    second node binds it, the pod is scheduled there."""
    target = storage_cluster[1]
    pods_info = client.resource("pods")
    await kubectl_run(kubectl, "-n", namespace, "apply", "-f", "-", input=manifest(
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "local-data"},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": f"local-{namespace}",
                  "resources": {"requests": {"storage": "1Gi"}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"}, "spec": {
            "containers": [{"name": "app", "image": "nginx"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "local-data"}}]}}))

    async def waiting():
        conditions = (await client.get(pods_info, "user", namespace)).get("status", {}).get("conditions") or []
        return [c["message"] for c in conditions if c["type"] == "PodScheduled" and c["status"] == "False"]
    messages = await eventually(waiting, message="user unschedulable")
    assert messages[0].startswith("0/") and "pod has unbound immediate PersistentVolumeClaims" in messages[0]
    volume = host_path_volume(f"{namespace}-local", "1Gi", f"local-{namespace}")
    del volume["spec"]["hostPath"]
    volume["spec"].update(local={"path": "/mnt/disk"}, nodeAffinity={"required": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [target]}]}]}})
    await kubectl_run(kubectl, "apply", "-f", "-", input=manifest(volume))

    async def scheduled():
        return (await client.get(pods_info, "user", namespace))["spec"].get("nodeName")
    assert await eventually(scheduled, message="user scheduled once its claim is bound") == target


async def test_pending_pod_gets_a_deleted_claim_back(client, namespace, storage_cluster, kubectl):
    """A claim nothing can bind keeps web-0 Pending (unschedulable); deleted, it is not in use (the pod is not
    scheduled), so it goes, and the StatefulSet creates it again for its Pending pod."""
    claims_info, pods_info = client.resource("persistentvolumeclaims"), client.resource("pods")
    sts = stateful_set(f"missing-{namespace}")
    sts["spec"]["replicas"] = 1
    await kubectl_run(kubectl, "-n", namespace, "apply", "-f", "-", input=json.dumps(sts))

    async def pending_pod():
        return await exists(client, pods_info, "web-0", namespace)
    await eventually(pending_pod, message="web-0 created after its claim")
    first = await client.get(claims_info, "data-web-0", namespace)
    # --wait=false: kubectl's wait lists by name after its first look, and a claim already created again under the
    # same name would keep it waiting (the race is kubectl's, against any cluster)
    await kubectl_run(kubectl, "-n", namespace, "delete", "pvc", "data-web-0", "--wait=false")

    async def recreated():
        listed = (await client.list(claims_info, namespace))["items"]
        return [c for c in listed if c["metadata"]["uid"] != first["metadata"]["uid"]]
    (again,) = await eventually(recreated, timeout=30, message="data-web-0 created again for the Pending web-0")
    assert again["metadata"]["name"] == "data-web-0"
    assert (await client.get(pods_info, "web-0", namespace))["status"].get("phase", "Pending") == "Pending"


async def _phase_is(client, info, name: str, phase: str):
    obj = await client.get(info, name)
    return obj if obj.get("status", {}).get("phase") == phase else None


async def test_unbindable_claim_waits_with_upstream_event(client, namespace, storage_cluster, kubectl):
    await kubectl_run(kubectl, "-n", namespace, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "lonely"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "resources": {"requests": {"storage": "500Ti"}}}}))

    async def described():
        text = (await kubectl_run(kubectl, "-n", namespace, "describe", "pvc", "lonely")).stdout
        return text if "no persistent volumes available for this claim and no storage class is set" in text else None
    text = await eventually(described, message="FailedBinding event shown by describe")
    assert "FailedBinding" in text and "Status:        Pending" in text
    rows = table((await kubectl_run(kubectl, "-n", namespace, "get", "pvc", "lonely")).stdout)
    assert rows[1][:2] == ["lonely", "Pending"]


async def test_default_class_and_delete_reclaim(client, namespace, storage_cluster, kubectl):
    sc, name = f"default-{namespace}", f"{namespace}-scratch"
    volumes_info, claims_info = client.resource("persistentvolumes"), client.resource("persistentvolumeclaims")
    await kubectl_run(kubectl, "-n", namespace, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "early"},  # too big for the PV
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}))
    assert "storageClassName" not in (await client.get(claims_info, "early", namespace))["spec"]
    await kubectl_run(kubectl, "apply", "-f", "-", input=manifest(
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "example.com/none",
         "metadata": {"name": sc, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}},
        host_path_volume(name, "3Gi", sc, policy="Delete")))
    try:
        listed = (await kubectl_run(kubectl, "get", "sc", sc)).stdout
        assert f"{sc} (default)" in listed
        await kubectl_run(kubectl, "-n", namespace, "apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "scratch"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
        claim = await client.get(claims_info, "scratch", namespace)
        assert claim["spec"]["storageClassName"] == sc

        async def early_classed():
            return (await client.get(claims_info, "early", namespace))["spec"].get("storageClassName")
        assert await eventually(early_classed, message="the default class given retroactively") == sc
        await kubectl_run(kubectl, "-n", namespace, "delete", "pvc", "early")
        await eventually(lambda: _phase_is(client, volumes_info, name, "Bound"), message=f"{name} Bound")
        await kubectl_run(kubectl, "-n", namespace, "delete", "pvc", "scratch")

        async def volume_gone():
            return not await exists(client, volumes_info, name)
        await eventually(volume_gone, message=f"{name} deleted by its reclaim policy")
    finally:
        await kubectl_run(kubectl, "delete", "sc", sc)


async def test_bad_claims_and_volumes_refused_with_field_errors(namespace, kubectl, cluster):
    result = await kubectl_run(kubectl, "-n", namespace, "apply", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bad"},
        "spec": {"accessModes": ["ReadWriteSometimes"]}}))
    assert result.returncode != 0
    assert 'The PersistentVolumeClaim "bad" is invalid' in result.stderr
    assert "spec.resources[storage]: Required value" in result.stderr
    assert 'spec.accessModes: Unsupported value: "ReadWriteSometimes"' in result.stderr
    result = await kubectl_run(kubectl, "apply", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{namespace}-nosource"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}}))
    assert "spec: Required value: must specify a volume type" in result.stderr
