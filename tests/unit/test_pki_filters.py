"""The pki role's pki_outdated filter: which files a host must receive, from one `find` of what it has."""
import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pki_files", REPO / "roles/pki/filter_plugins/pki_files.py")
pki_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pki_files)

WANTED = [
    {"src": "etcd-ca.crt", "dest": "/etc/kpy/pki/etcd/ca.crt", "owner": "root", "mode": "0644"},
    {"src": "hosts/cp1/etcd-server.key", "dest": "/etc/kpy/pki/etcd/server.key", "owner": "etcd", "mode": "0600"},
]
CHECKSUMS = {"etcd-ca.crt": "aaa", "hosts/cp1/etcd-server.key": "bbb"}


def found(path, checksum, mode, owner, group=None):
    return {"path": path, "checksum": checksum, "mode": mode, "pw_name": owner, "gr_name": group or owner}


def test_nothing_to_copy_when_everything_matches():
    present = [found("/etc/kpy/pki/etcd/ca.crt", "aaa", "0644", "root"),
               found("/etc/kpy/pki/etcd/server.key", "bbb", "0600", "etcd")]
    assert pki_files.pki_outdated(WANTED, present, CHECKSUMS) == []


def test_missing_files_are_copied():
    assert pki_files.pki_outdated(WANTED, [], CHECKSUMS) == WANTED


def test_content_mode_owner_or_group_differences_are_copied():
    key = "/etc/kpy/pki/etcd/server.key"
    for present in (
        found(key, "old", "0600", "etcd"),
        found(key, "bbb", "0644", "etcd"),
        found(key, "bbb", "0600", "root"),
        found(key, "bbb", "0600", "etcd", group="root"),
    ):
        ca = found("/etc/kpy/pki/etcd/ca.crt", "aaa", "0644", "root")
        assert pki_files.pki_outdated(WANTED, [ca, present], CHECKSUMS) == [WANTED[1]], present


def test_the_filter_is_registered_under_its_name():
    assert pki_files.FilterModule().filters() == {"pki_outdated": pki_files.pki_outdated}
