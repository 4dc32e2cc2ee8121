"""ControllerRevisions end to end: a REAL kpy-apiserver serving apps/v1 controllerrevisions, the DaemonSet and
StatefulSet controllers (with the scheduler and the garbage collector) in-process, simulated nodes, and the real
kubectl 1.27 and 1.33 (each with a fresh cache) doing what users do:

- `rollout history` lists a DaemonSet's / StatefulSet's revisions with their change causes, `--revision=N` shows
  that revision's template; `set image` adds a revision; `rollout undo` puts the old template back, the pods roll
  back to it, and the old revision is renumbered as the newest (as on Kubernetes); `--to-revision=N` picks one,
  an unknown N is refused;
- `get controllerrevisions` prints NAME CONTROLLER REVISION AGE;
- the API refuses a revision without data, a negative revision and a change of data, worded as Kubernetes;
- a revision name taken by another template bumps status.collisionCount; revisionHistoryLimit trims old
  revisions; deleting the owner deletes its revisions (garbage collector).

kubectl runs in a thread: the controllers share this test's event loop.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from apiserver.conftest import Kubectl
from conftest import eventually, scheduled_cluster

from kpy_components.controller_manager.controllers import history

pytestmark = pytest.mark.anyio
CAUSE = "kubernetes.io/change-cause"


@pytest.fixture
async def controllers(cluster, nodes):
    """Two simulated nodes (removed afterwards), the scheduler, and the controllers under test."""
    controllers = ["daemonset", "statefulset", "garbagecollector"]
    async with scheduled_cluster(cluster, nodes, controllers, "rev") as (_, context):
        yield context


async def run(kubectl: Kubectl, *args: str, check: bool = True, input: str | None = None):
    return await asyncio.to_thread(kubectl, *args, check=check, input=input, timeout=90)


def workload(kind: str, name: str, image: str, cause: str, **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "annotations": {CAUSE: cause}},
            "spec": {"selector": {"matchLabels": {"app": name}}, **spec,
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image,
                                                           "resources": {"requests": {"cpu": "10m"}}}]}}}}


def history_rows(output: str) -> dict[int, str]:
    """`kubectl rollout history` -> {revision: change cause}."""
    lines = output.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["REVISION", "CHANGE-CAUSE"])
    return {int(line.split(None, 1)[0]): line.split(None, 1)[1].strip() for line in lines[header + 1:] if line}


async def owned_revisions(client, namespace: str, owner: dict) -> list[dict]:
    listed = (await client.list(client.resource("controllerrevisions", "apps"), namespace))["items"]
    uid = owner["metadata"]["uid"]
    return sorted((r for r in listed if any(ref.get("uid") == uid and ref.get("controller")
                                            for ref in r["metadata"].get("ownerReferences") or ())),
                  key=lambda r: r["revision"])


async def pod_images(client, namespace: str, app: str) -> dict[str, tuple[str, str]]:
    """Live pods of `app`: name -> (image, controller-revision-hash label)."""
    listed = (await client.list(client.resource("pods"), namespace, label_selector=f"app={app}"))["items"]
    return {p["metadata"]["name"]: (p["spec"]["containers"][0]["image"], p["metadata"]["labels"].get(
        history.HASH_LABEL)) for p in listed if not p["metadata"].get("deletionTimestamp")}


async def rolled_out(kubectl: Kubectl, namespace: str, target: str) -> None:
    done = await run(kubectl, "-n", namespace, "rollout", "status", target, "--timeout=60s")
    assert "successfully rolled out" in done.stdout or "roll out complete" in done.stdout, done.stdout


async def test_daemonset_history_and_undo(client, namespace, controllers, kubectl):
    daemonsets = client.resource("daemonsets", "apps")
    await client.create(daemonsets, workload("DaemonSet", "web", "web:1", "create web:1"), namespace)
    await rolled_out(kubectl, namespace, "daemonset/web")
    listed = await run(kubectl, "-n", namespace, "rollout", "history", "daemonset/web")
    assert listed.stdout.startswith("daemonset.apps/web")
    assert history_rows(listed.stdout) == {1: "create web:1"}

    await run(kubectl, "-n", namespace, "annotate", "--overwrite", "daemonset/web", f"{CAUSE}=image web:2")
    await run(kubectl, "-n", namespace, "set", "image", "daemonset/web", "app=web:2")
    await rolled_out(kubectl, namespace, "daemonset/web")
    assert history_rows((await run(kubectl, "-n", namespace, "rollout", "history", "daemonset/web")).stdout) == {
        1: "create web:1", 2: "image web:2"}
    ds = await client.get(daemonsets, "web", namespace)
    first, second = await owned_revisions(client, namespace, ds)
    assert set((await pod_images(client, namespace, "web")).values()) == {
        ("web:2", second["metadata"]["labels"][history.HASH_LABEL])}
    assert second["metadata"]["name"] == f"web-{second['metadata']['labels'][history.HASH_LABEL]}"
    assert second["data"]["spec"]["template"]["$patch"] == "replace"

    shown = await run(kubectl, "-n", namespace, "rollout", "history", "daemonset/web", "--revision=1")
    assert "daemonset.apps/web with revision #1" in shown.stdout and "Pod Template:" in shown.stdout
    assert "web:1" in shown.stdout and "web:2" not in shown.stdout

    table = await run(kubectl, "-n", namespace, "get", "controllerrevisions")
    header, *rows = table.stdout.strip().splitlines()
    assert header.split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert sorted(row.split()[:3] for row in rows) == sorted([[first["metadata"]["name"], "daemonset.apps/web", "1"],
                                                              [second["metadata"]["name"], "daemonset.apps/web", "2"]])

    undone = await run(kubectl, "-n", namespace, "rollout", "undo", "daemonset/web")
    assert "daemonset.apps/web rolled back" in undone.stdout
    ds = await client.get(daemonsets, "web", namespace)
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"
    await rolled_out(kubectl, namespace, "daemonset/web")
    await eventually(lambda: pods_are(client, namespace, "web", ("web:1", first["metadata"]["labels"][
        history.HASH_LABEL]), 2), timeout=30, message="both daemon pods back on web:1")
    # revision 1 is re-used, renumbered as the newest; no third revision appears
    assert history_rows((await run(kubectl, "-n", namespace, "rollout", "history", "daemonset/web")).stdout) == {
        2: "image web:2", 3: "create web:1"}
    assert [r["metadata"]["name"] for r in await owned_revisions(client, namespace, ds)] == [
        second["metadata"]["name"], first["metadata"]["name"]]

    missing = await run(kubectl, "-n", namespace, "rollout", "undo", "daemonset/web", "--to-revision=9", check=False)
    assert missing.returncode == 1 and "unable to find specified revision 9 in history" in missing.stderr
    await run(kubectl, "-n", namespace, "rollout", "undo", "daemonset/web", "--to-revision=2")
    await rolled_out(kubectl, namespace, "daemonset/web")
    await eventually(lambda: pods_are(client, namespace, "web", ("web:2", second["metadata"]["labels"][
        history.HASH_LABEL]), 2), timeout=30, message="both daemon pods on web:2 again")
    assert history_rows((await run(kubectl, "-n", namespace, "rollout", "history", "daemonset/web")).stdout) == {
        3: "create web:1", 4: "image web:2"}

    await run(kubectl, "-n", namespace, "delete", "daemonset/web", "--wait=true")
    await eventually(lambda: no_revisions(client, namespace), timeout=30, message="revisions garbage-collected")


async def pods_are(client, namespace: str, app: str, expected: tuple[str, str], count: int) -> bool:
    found = await pod_images(client, namespace, app)
    return len(found) == count and set(found.values()) == {expected}


async def no_revisions(client, namespace: str) -> bool:
    return not (await client.list(client.resource("controllerrevisions", "apps"), namespace))["items"]


async def test_statefulset_history_and_undo(client, namespace, controllers, kubectl):
    statefulsets = client.resource("statefulsets", "apps")
    await client.create(statefulsets, workload("StatefulSet", "db", "db:1", "create db:1", replicas=2,
                                               serviceName="db"), namespace)
    await rolled_out(kubectl, namespace, "statefulset/db")
    await run(kubectl, "-n", namespace, "annotate", "--overwrite", "statefulset/db", f"{CAUSE}=image db:2")
    await run(kubectl, "-n", namespace, "set", "image", "statefulset/db", "app=db:2")
    await rolled_out(kubectl, namespace, "statefulset/db")
    listed = await run(kubectl, "-n", namespace, "rollout", "history", "statefulset/db")
    assert listed.stdout.startswith("statefulset.apps/db")
    assert history_rows(listed.stdout) == {1: "create db:1", 2: "image db:2"}
    sts = await client.get(statefulsets, "db", namespace)
    first, second = await owned_revisions(client, namespace, sts)
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] == second["metadata"]["name"]
    assert await pod_images(client, namespace, "db") == {
        "db-0": ("db:2", second["metadata"]["name"]), "db-1": ("db:2", second["metadata"]["name"])}

    shown = await run(kubectl, "-n", namespace, "rollout", "history", "statefulset/db", "--revision=1")
    assert "statefulset.apps/db with revision #1" in shown.stdout
    assert "db:1" in shown.stdout and "db:2" not in shown.stdout

    undone = await run(kubectl, "-n", namespace, "rollout", "undo", "statefulset/db")
    assert "statefulset.apps/db rolled back" in undone.stdout
    await rolled_out(kubectl, namespace, "statefulset/db")
    back = {"db-0": ("db:1", first["metadata"]["name"]), "db-1": ("db:1", first["metadata"]["name"])}
    await eventually(lambda: pods_equal(client, namespace, back), timeout=30, message="db-0 and db-1 on db:1")
    sts = await client.get(statefulsets, "db", namespace)
    assert sts["spec"]["template"]["spec"]["containers"][0]["image"] == "db:1"
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"] == first["metadata"]["name"]
    assert history_rows((await run(kubectl, "-n", namespace, "rollout", "history", "statefulset/db")).stdout) == {
        2: "image db:2", 3: "create db:1"}
    table = await run(kubectl, "-n", namespace, "get", "controllerrevisions")
    assert sorted(row.split()[1:3] for row in table.stdout.strip().splitlines()[1:]) == [
        ["statefulset.apps/db", "2"], ["statefulset.apps/db", "3"]]


async def pods_equal(client, namespace: str, expected: dict) -> bool:
    return await pod_images(client, namespace, "db") == expected


def revision_manifest(name: str, **fields) -> str:
    return json.dumps({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": name}, **fields})


async def test_api_validates_controller_revisions(client, namespace, kubectl):
    no_data = await run(kubectl, "-n", namespace, "create", "-f", "-", check=False,
                        input=revision_manifest("r1", revision=1))
    assert no_data.returncode == 1
    assert 'The ControllerRevision "r1" is invalid: data: Required value: data is mandatory' in no_data.stderr
    negative = await run(kubectl, "-n", namespace, "create", "-f", "-", check=False,
                         input=revision_manifest("r2", data={"a": 1}, revision=-1))
    assert "revision: Invalid value: -1: must be greater than or equal to 0" in negative.stderr
    await run(kubectl, "-n", namespace, "create", "-f", "-", input=revision_manifest("r3", data={"a": 1}))
    created = await client.get(client.resource("controllerrevisions", "apps"), "r3", namespace)
    assert created["revision"] == 0 and created["data"] == {"a": 1}
    changed = await run(kubectl, "-n", namespace, "patch", "controllerrevision/r3", "--type=merge", "-p",
                        '{"data":{"a":2}}', check=False)
    assert changed.returncode == 1 and "data: Invalid value" in changed.stderr
    assert "field is immutable" in changed.stderr
    renumbered = await run(kubectl, "-n", namespace, "patch", "controllerrevision/r3", "--type=merge", "-p",
                           '{"revision":7}')
    assert "patched" in renumbered.stdout
    assert (await client.get(client.resource("controllerrevisions", "apps"), "r3", namespace))["revision"] == 7


async def test_collision_bumps_collision_count_and_limit_trims(client, namespace, controllers):
    daemonsets = client.resource("daemonsets", "apps")
    revisions = client.resource("controllerrevisions", "apps")
    body = workload("DaemonSet", "clash", "clash:1", "create", revisionHistoryLimit=1)
    defaulted = await client.create(daemonsets, body, namespace, dry_run=True)
    taken = f"clash-{history.revision_hash(defaulted)}"  # the name the DaemonSet's first revision would get
    await client.create(revisions, {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                                    "metadata": {"name": taken}, "data": {"other": "template"}, "revision": 1},
                        namespace)
    ds = await client.create(daemonsets, body, namespace)

    async def collided():
        current = await client.get(daemonsets, "clash", namespace)
        return current if (current.get("status") or {}).get("collisionCount") == 1 else None
    current = await eventually(collided, timeout=30, message="status.collisionCount 1")
    expected = f"clash-{history.revision_hash(current, 1)}"
    owned = await owned_revisions(client, namespace, ds)
    assert [r["metadata"]["name"] for r in owned] == [expected]
    assert (await client.get(revisions, taken, namespace))["data"] == {"other": "template"}  # left alone

    for image in ("clash:2", "clash:3"):
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
        await client.patch(daemonsets, "clash", patch, namespace, patch_type="strategic")
        await eventually(lambda image=image: newest_holds(client, namespace, ds, image), timeout=30,
                         message=f"a revision of {image}")
        # rolled out before the next change, so that the oldest revision is the one no pod runs when trimming
        await eventually(lambda image=image: only_image(client, namespace, "clash", image, 2), timeout=30,
                         message=f"both pods on {image}")

    async def trimmed():
        kept = await owned_revisions(client, namespace, ds)
        seen = [(r["revision"], r["data"]["spec"]["template"]["spec"]["containers"][0]["image"]) for r in kept]
        return kept if seen == [(2, "clash:2"), (3, "clash:3")] else None
    kept = await eventually(trimmed, timeout=30, message="revisions 2 (clash:2) and 3 (clash:3) only: revision 1 "
                            "trimmed (revisionHistoryLimit 1), each numbered once")
    assert expected not in [r["metadata"]["name"] for r in kept]


async def only_image(client, namespace: str, app: str, image: str, count: int) -> bool:
    found = await pod_images(client, namespace, app)
    return len(found) == count and {image for image, _ in found.values()} == {image}


async def newest_holds(client, namespace: str, ds: dict, image: str) -> bool:
    owned = await owned_revisions(client, namespace, ds)
    containers = owned[-1]["data"]["spec"]["template"]["spec"]["containers"] if owned else []
    return bool(containers) and containers[0]["image"] == image
