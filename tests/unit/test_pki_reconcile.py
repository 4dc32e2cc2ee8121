"""Idempotence and re-issue decisions of the PKI: what changes, when, and why."""
import datetime
import os
import shutil
import stat

import pytest
import yaml
from cryptography import x509

from kpy_components.pki import StateError, run

NOW = datetime.datetime.now(datetime.timezone.utc)


def snapshot(directory) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def changed(result) -> dict[str, str]:
    return {c.path: c.reason for c in result.changes}


@pytest.fixture
def pki(tmp_path, pki_profiles, pki_inventory):
    """A freshly generated PKI directory, and a function running the PKI again on it (keyword overrides)."""
    dest = tmp_path / "pki"

    def again(inventory=None, profiles=None, **options):
        return run(dest, profiles or pki_profiles, **(inventory or pki_inventory), **options)

    first = again()
    assert first.changes and all(c.action == "created" for c in first.changes)
    return dest, again


def test_second_run_changes_nothing(pki):
    dest, again = pki
    before = snapshot(dest)
    result = again()
    assert result.changes == [] and result.warnings == []
    assert snapshot(dest) == before


def test_check_mode_reports_the_changes_and_writes_nothing(tmp_path, pki_profiles, pki_inventory):
    dest = tmp_path / "pki"
    planned = run(dest, pki_profiles, **pki_inventory, check=True)
    assert not dest.exists()
    made = run(dest, pki_profiles, **pki_inventory)
    assert [(c.path, c.action) for c in planned.changes] == [(c.path, c.action) for c in made.changes]


def test_changing_a_control_plane_ip_reissues_exactly_the_certificates_naming_it(pki, pki_inventory):
    dest, again = pki
    before = snapshot(dest)
    pki_inventory["hosts"]["cp2"] = "10.213.0.42"
    result = again(pki_inventory)
    assert set(changed(result)) == {
        "apiserver.crt",
        "hosts/cp2/etcd-server.crt",
        "hosts/cp2/etcd-peer.crt",
        "hosts/cp2/kubelet.crt",
        "hosts/cp2/kubelet.kubeconfig",  # embeds the re-issued kubelet certificate
    }
    for path in ("apiserver.crt", "hosts/cp2/etcd-server.crt", "hosts/cp2/etcd-peer.crt", "hosts/cp2/kubelet.crt"):
        assert changed(result)[path] == "SANs differ: adds IP:10.213.0.42; drops IP:10.213.0.12"
        assert next(c.action for c in result.changes if c.path == path) == "re-issued"
    assert changed(result)["hosts/cp2/kubelet.kubeconfig"] == "certificate kubelet/cp2 re-issued"
    after = snapshot(dest)
    untouched = {p for p in before if before[p] == after[p]}
    assert untouched == set(before) - {
        "apiserver.crt", "apiserver.key", "hosts/cp2/kubelet.kubeconfig",
        *(f"hosts/cp2/{name}.{suffix}" for name in ("etcd-server", "etcd-peer", "kubelet") for suffix in ("crt", "key")),
    }
    assert again(pki_inventory).changes == []


def test_adding_a_worker_issues_only_its_kubelet_material(pki, pki_inventory):
    _, again = pki
    pki_inventory["hosts"]["w3"] = "10.213.0.23"
    pki_inventory["groups"]["workers"].append("w3")
    assert changed(again(pki_inventory)) == {"hosts/w3/kubelet.crt": "missing", "hosts/w3/kubelet.kubeconfig": "missing"}


def test_changing_the_api_endpoint_rewrites_the_kubeconfigs_that_use_it(pki, pki_inventory):
    _, again = pki
    pki_inventory["cluster"]["api_endpoint"] = "10.213.0.100"
    result = changed(again(pki_inventory))
    assert result.pop("apiserver.crt").startswith("SANs differ: adds IP:10.213.0.100; drops DNS:api.k8s.test")
    # Every component but the admin talks to 127.0.0.1 (its own API server or the node's load balancer) and stays.
    assert result == {"admin.kubeconfig": "server or embedded credentials differ"}


def test_certificate_inside_the_renewal_window_is_reissued_with_the_reason(tmp_path, pki_profiles, pki_inventory):
    dest = tmp_path / "pki"
    run(dest, pki_profiles, **pki_inventory, now=NOW - datetime.timedelta(days=300))  # leaves expire in 65 days
    outside = run(dest, pki_profiles, **pki_inventory, renewal_days=60)
    assert outside.changes == []
    inside = run(dest, pki_profiles, **pki_inventory, renewal_days=90)
    reissued = {c.path: c.reason for c in inside.changes if c.path.endswith(".crt")}
    assert len(reissued) == 21  # every leaf certificate; CAs are never replaced
    assert "ca.crt" not in reissued and "etcd-ca.crt" not in reissued
    expiry = (NOW - datetime.timedelta(days=300) + datetime.timedelta(days=365)).strftime("%Y-%m-%d")
    for path, reason in reissued.items():
        assert reason.startswith(f"expires {expiry} (64 days") or reason.startswith(f"expires {expiry} (65 days"), path
        assert reason.endswith("inside the 90-day renewal window"), path
        cert = x509.load_pem_x509_certificate((dest / path).read_bytes())
        assert cert.not_valid_after_utc - NOW > datetime.timedelta(days=364)
    assert run(dest, pki_profiles, **pki_inventory, renewal_days=90).changes == []


def test_renewal_days_default_comes_from_the_profiles(tmp_path, pki_profiles, pki_inventory):
    dest = tmp_path / "pki"
    run(dest, pki_profiles, **pki_inventory, now=NOW - datetime.timedelta(days=280))  # expire in 85 days
    assert len([c for c in run(dest, pki_profiles, **pki_inventory).changes if c.path.endswith(".crt")]) == 21


def test_ca_expiring_soon_is_kept_with_a_warning(tmp_path, pki_profiles, pki_inventory):
    dest = tmp_path / "pki"
    run(dest, pki_profiles, **pki_inventory, now=NOW - datetime.timedelta(days=3600))
    ca_before = (dest / "ca.crt").read_bytes()
    result = run(dest, pki_profiles, **pki_inventory)
    assert (dest / "ca.crt").read_bytes() == ca_before
    assert any("ca.crt: the CA expires" in w and "plan a CA rotation" in w for w in result.warnings)


def test_certificate_signed_by_another_ca_is_reissued(pki, tmp_path, pki_profiles, pki_inventory):
    dest, again = pki
    other = tmp_path / "other"
    run(other, pki_profiles, **pki_inventory)
    for suffix in ("crt", "key"):
        shutil.copy(other / f"hosts/w1/kubelet.{suffix}", dest / f"hosts/w1/kubelet.{suffix}")
    result = changed(again())
    assert result["hosts/w1/kubelet.crt"] == "signed by a different CA (want CN=kpy-lab-ca)"
    assert set(result) == {"hosts/w1/kubelet.crt", "hosts/w1/kubelet.kubeconfig"}


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda d: (d / "admin.key").unlink(), "key missing"),
        (lambda d: (d / "admin.key").write_bytes(b"not a key"), "key unreadable"),
        (lambda d: shutil.copy(d / "scheduler.key", d / "admin.key"), "key does not match the certificate"),
        (lambda d: (d / "admin.crt").write_bytes(b"garbage"), "unreadable"),
        (lambda d: (d / "admin.crt").unlink(), "missing"),
    ],
    ids=["key-missing", "key-garbage", "key-of-another-cert", "cert-garbage", "cert-missing"],
)
def test_damaged_certificate_or_key_is_reissued(pki, damage, reason):
    dest, again = pki
    damage(dest)
    result = again()
    assert changed(result) == {"admin.crt": reason, "admin.kubeconfig": "certificate admin re-issued"}
    assert again().changes == []


def test_profile_change_reissues_the_certificates_it_affects(pki, tmp_path, pki_profiles):
    _, again = pki
    profiles = yaml.safe_load(pki_profiles.read_text())
    profiles["certificates"]["scheduler"]["o"] = ["system:system:kube-scheduler"]
    profiles["certificates"]["etcd-peer"]["usages"] = ["server"]
    edited = tmp_path / "profiles.yml"
    edited.write_text(yaml.safe_dump(profiles))
    result = changed(again(profiles=edited))
    assert result.pop("scheduler.crt") == (
        "O differs: have ['system:kube-scheduler'], want ['system:system:kube-scheduler']"
    )
    assert result.pop("scheduler.kubeconfig") == "certificate scheduler re-issued"
    usages = "usages differ: have ['client', 'server'], want ['server']"
    assert result == {f"hosts/{m}/etcd-peer.crt": usages for m in ("cp1", "cp2", "cp3")}


def test_key_type_override_reissues_leaves_and_keeps_cas_and_service_account_key(pki):
    dest, again = pki
    kept = {name: (dest / name).read_bytes() for name in ("ca.key", "etcd-ca.key", "sa.key", "encryption-config.yaml")}
    result = again(key_type="rsa-2048")
    reissued = [c for c in result.changes if c.path.endswith(".crt")]
    assert len(reissued) == 21
    assert all(c.reason == "key type differs: have ecdsa-p256, want rsa-2048" for c in reissued)
    assert {name: (dest / name).read_bytes() for name in kept} == kept
    assert again(key_type="rsa-2048").changes == []


def test_service_account_key_and_encryption_config_are_never_regenerated(pki):
    dest, again = pki
    sa_key, sa_pub = (dest / "sa.key").read_bytes(), (dest / "sa.pub").read_bytes()
    (dest / "sa.pub").unlink()
    (dest / "encryption-config.yaml").write_text("# edited by the operator\n")
    assert changed(again()) == {"sa.pub": "missing"}
    assert (dest / "sa.key").read_bytes() == sa_key and (dest / "sa.pub").read_bytes() == sa_pub
    assert (dest / "encryption-config.yaml").read_text() == "# edited by the operator\n"


def test_loose_modes_are_tightened_and_reported(pki):
    dest, again = pki
    os.chmod(dest / "hosts/cp1/etcd-server.key", 0o644)
    os.chmod(dest / "admin.kubeconfig", 0o640)
    result = again()
    assert {(c.path, c.action) for c in result.changes} == {
        ("hosts/cp1/etcd-server.key", "mode fixed"), ("admin.kubeconfig", "mode fixed")
    }
    assert stat.S_IMODE((dest / "hosts/cp1/etcd-server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((dest / "admin.kubeconfig").stat().st_mode) == 0o600


@pytest.mark.parametrize("kept, removed", [("ca.crt", "ca.key"), ("etcd-ca.key", "etcd-ca.crt")])
def test_half_a_ca_stops_the_run_naming_the_file(pki, kept, removed):
    dest, again = pki
    (dest / removed).unlink()
    with pytest.raises(StateError, match=f"{dest / kept}: present but {removed} is missing"):
        again()


def test_unusable_service_account_key_stops_the_run(pki):
    dest, again = pki
    (dest / "sa.key").write_text("garbage")
    with pytest.raises(StateError, match="sa.key: not a usable private key"):
        again()


def test_no_temporary_files_are_left_behind(pki):
    dest, _ = pki
    assert [p for p in dest.rglob(".*")] == []


def test_admin_kubeconfig_copy_outside_the_pki_directory_follows_the_original(tmp_path, pki_profiles, pki_inventory):
    dest, copy = tmp_path / "artifacts/pki", tmp_path / "artifacts/admin.kubeconfig"
    first = run(dest, pki_profiles, **pki_inventory, copies={"admin.kubeconfig": copy})
    assert (str(copy), "created", "copy of admin.kubeconfig") in {(c.path, c.action, c.reason) for c in first.changes}
    assert copy.read_bytes() == (dest / "admin.kubeconfig").read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert run(dest, pki_profiles, **pki_inventory, copies={"admin.kubeconfig": copy}).changes == []
    pki_inventory["cluster"]["api_endpoint"] = "10.213.0.100"
    moved = run(dest, pki_profiles, **pki_inventory, copies={"admin.kubeconfig": copy})
    assert (str(copy), "written") in {(c.path, c.action) for c in moved.changes}
    assert b"https://10.213.0.100:6443" in copy.read_bytes()


def test_checksums_cover_every_file_as_ansible_computes_them(pki):
    import hashlib

    dest, again = pki
    checksums = again().checksums
    assert checksums == {
        str(p.relative_to(dest)): hashlib.sha1(p.read_bytes()).hexdigest() for p in dest.rglob("*") if p.is_file()
    }
    assert "hosts/cp1/etcd-server.key" in checksums
