"""Which volume a claim gets (pvmatching): capacity, access modes, class, selector, volumeMode, phase and claimRef
filter; the fewest access modes then the smallest capacity win; a volume pre-bound to the claim wins outright; and
why a volume asked for by name does not fit."""
from __future__ import annotations

from kpy_components.controller_manager.controllers import pvmatching


def claim(storage: str = "1Gi", modes=("ReadWriteOnce",), **spec) -> dict:
    return {"metadata": {"name": "data", "namespace": "ns", "uid": "c1"},
            "spec": {"accessModes": list(modes), "resources": {"requests": {"storage": storage}}, **spec}}


def volume(name: str, storage: str = "5Gi", modes=("ReadWriteOnce",), phase: str = "Available", labels=None,
           **spec) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"capacity": {"storage": storage}, "accessModes": list(modes), "hostPath": {"path": "/x"},
                     **spec}, "status": {"phase": phase}}


def match(wanted: dict, *volumes: dict) -> str | None:
    found = pvmatching.find_match(wanted, list(volumes))
    return None if found is None else found["metadata"]["name"]


def test_smallest_fitting_volume_wins():
    assert match(claim("2Gi"), volume("big", "10Gi"), volume("small", "1Gi"), volume("fits", "3Gi")) == "fits"
    assert match(claim("2Gi"), volume("small", "1Gi")) is None
    assert match(claim("1Gi"), volume("exact", "1024Mi")) == "exact"


def test_fewest_access_modes_before_size():
    many = volume("many", "1Gi", modes=("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"))
    assert match(claim(), many, volume("one", "8Gi")) == "one"
    assert match(claim(modes=("ReadWriteMany",)), volume("rwo", "1Gi"), many) == "many"


def test_class_selector_mode_phase_and_claim_ref_filter():
    assert match(claim(), volume("classed", storageClassName="fast")) is None
    assert match(claim(storageClassName="fast"), volume("plain"), volume("classed", storageClassName="fast")) \
        == "classed"
    selector = {"matchLabels": {"disk": "ssd"}}
    assert match(claim(selector=selector), volume("hdd", labels={"disk": "hdd"}),
                 volume("ssd", labels={"disk": "ssd"})) == "ssd"
    assert match(claim(volumeMode="Block"), volume("fs")) is None
    assert match(claim(volumeMode="Block"), volume("block", volumeMode="Block")) == "block"
    assert match(claim(), volume("pending", phase="Pending"), volume("released", phase="Released")) is None
    taken = volume("taken", claimRef={"namespace": "ns", "name": "other", "uid": "c2"})
    assert match(claim(), taken) is None


def test_volume_pre_bound_to_the_claim_wins():
    pre = volume("pre", "50Gi", phase="Pending", storageClassName="x", claimRef={"namespace": "ns", "name": "data"})
    assert match(claim(), volume("small", "1Gi"), pre) == "pre"
    other_uid = volume("old", claimRef={"namespace": "ns", "name": "data", "uid": "c0"})
    assert match(claim(), other_uid) is None


def test_why_a_named_volume_does_not_fit():
    assert pvmatching.unsuitable(volume("v"), claim()) is None
    assert pvmatching.unsuitable(volume("v", "500Mi"), claim()) == "requested PV is too small"
    assert pvmatching.unsuitable(volume("v", storageClassName="a"), claim()) == "storageClassName does not match"
    assert pvmatching.unsuitable(volume("v", volumeMode="Block"), claim()) == "incompatible volumeMode"
    assert pvmatching.unsuitable(volume("v"), claim(modes=("ReadWriteMany",))) == "incompatible accessMode"
