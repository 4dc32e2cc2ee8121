"""The pki role's pki_host_state filter: a host's PKI files and their directories as kpy_converge options."""
import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("pki_files", REPO / "roles/pki/filter_plugins/pki_files.py")
pki_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pki_files)

WANTED = [
    {"src": "etcd-ca.crt", "dest": "/etc/kpy/pki/etcd/ca.crt", "owner": "root", "mode": "0644"},
    {"src": "hosts/cp1/etcd-server.key", "dest": "/etc/kpy/pki/etcd/server.key", "owner": "etcd", "mode": "0600"},
    {"src": "scheduler.kubeconfig", "dest": "/etc/kpy/scheduler.kubeconfig", "owner": "kube", "mode": "0600"},
]


@pytest.fixture
def local_dir(tmp_path):
    for entry, text in zip(WANTED, ("CA\n", "KEY\n", "KUBECONFIG")):
        (tmp_path / entry["src"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / entry["src"]).write_text(text)
    return tmp_path


def test_files_carry_their_content_owner_group_and_mode(local_dir):
    files = pki_files.pki_host_state(WANTED, str(local_dir))["files"]
    assert files == [
        {"dest": "/etc/kpy/pki/etcd/ca.crt", "content": "CA\n", "owner": "root", "group": "root", "mode": "0644"},
        {"dest": "/etc/kpy/pki/etcd/server.key", "content": "KEY\n", "owner": "etcd", "group": "etcd", "mode": "0600"},
        {"dest": "/etc/kpy/scheduler.kubeconfig", "content": "KUBECONFIG", "owner": "kube", "group": "kube",
         "mode": "0600"},
    ]


def test_directories_are_the_files_parents_once_each(local_dir):
    directories = pki_files.pki_host_state(WANTED, str(local_dir))["directories"]
    assert directories == [{"path": "/etc/kpy"}, {"path": "/etc/kpy/pki/etcd"}]


def test_a_missing_source_names_the_file_and_its_destination(local_dir):
    (local_dir / "etcd-ca.crt").unlink()
    with pytest.raises(AnsibleFilterError, match=r"etcd-ca.crt for /etc/kpy/pki/etcd/ca.crt"):
        pki_files.pki_host_state(WANTED, str(local_dir))


def test_the_filter_is_registered_under_its_name():
    assert pki_files.FilterModule().filters() == {"pki_host_state": pki_files.pki_host_state}
