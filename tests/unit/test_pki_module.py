"""The kpy_pki action (in-process on the controller) and the pki role's controller step, run for real by Ansible on
localhost."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
       "ANSIBLE_ACTION_PLUGINS": str(REPO / "roles/pki/action_plugins")}


def adhoc(tmp_path: Path, arguments: dict, *options: str) -> tuple[int, dict, str]:
    """`ansible localhost -m kpy_pki -a <json>`; returns the exit code, the result and the output."""
    tree = tmp_path / "tree"
    process = subprocess.run(
        [BIN / "ansible", "localhost", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}",
         "-m", "kpy_pki", "-a", json.dumps(arguments), "--tree", str(tree), *options],
        env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    return process.returncode, json.loads((tree / "localhost").read_text()), process.stdout + process.stderr


@pytest.fixture
def arguments(tmp_path, pki_profiles, pki_inventory) -> dict:
    return {"dest": str(tmp_path / "pki"), "profiles": str(pki_profiles), **pki_inventory}


def test_module_issues_once_then_reports_no_change(tmp_path, arguments):
    code, result, output = adhoc(tmp_path, arguments)
    assert code == 0, output
    assert result["changed"] is True
    assert {"path": "apiserver.crt", "action": "created", "reason": "missing"} in result["changes"]
    assert (tmp_path / "pki/hosts/cp1/etcd-peer.key").stat().st_mode & 0o777 == 0o600
    code, result, output = adhoc(tmp_path, arguments)
    assert code == 0, output
    assert result["changed"] is False and result["changes"] == []


def test_module_check_mode_reports_and_writes_nothing(tmp_path, arguments):
    code, result, output = adhoc(tmp_path, arguments, "--check")
    assert code == 0, output
    assert result["changed"] is True and len(result["changes"]) > 20
    assert not (tmp_path / "pki").exists()


def test_module_reports_the_reason_of_a_reissue(tmp_path, arguments):
    assert adhoc(tmp_path, arguments)[0] == 0
    arguments["hosts"]["w1"] = "10.213.0.31"
    code, result, output = adhoc(tmp_path, arguments)
    assert code == 0, output
    assert {"path": "hosts/w1/kubelet.crt", "action": "re-issued",
            "reason": "SANs differ: adds IP:10.213.0.31; drops IP:10.213.0.21"} in result["changes"]


def test_module_fails_on_a_bad_profile_with_a_clear_message_and_no_traceback(tmp_path, arguments, pki_profiles):
    document = yaml.safe_load(pki_profiles.read_text())
    document["certificates"]["scheduler"]["ca"] = "sheduler-ca"
    bad = tmp_path / "bad-profiles.yml"
    bad.write_text(yaml.safe_dump(document))
    code, result, output = adhoc(tmp_path, {**arguments, "profiles": str(bad)})
    assert code != 0
    assert result["msg"] == (
        f"{bad}: invalid certificate profiles: 1 problem(s):\n"
        "  - certificates.scheduler.ca: 'sheduler-ca' is not one of the CAs (ca, etcd-ca, front-proxy-ca)"
    )
    assert "Traceback" not in output and "exception" not in result
    assert not (tmp_path / "pki").exists()


def test_module_fails_on_a_bad_inventory_with_a_clear_message(tmp_path, arguments):
    arguments["hosts"]["w2"] = ""
    code, result, output = adhoc(tmp_path, arguments)
    assert code != 0 and "Traceback" not in output
    assert "hosts.w2: needs an address (ansible_host), got ''" in result["msg"]


def test_module_fails_on_a_missing_cluster_setting(tmp_path, arguments):
    del arguments["cluster"]["service_cidr"]
    code, result, _ = adhoc(tmp_path, arguments)
    assert code != 0
    assert "service_cidr" in result["msg"] and "cluster" in result["msg"]


def test_role_builds_the_inventory_model_from_hostvars(tmp_path):
    """The role's controller step over an inventory of (unreached) hosts: it runs once, on the controller,
    writes the PKI and admin.kubeconfig beside the inventory, and changes nothing on its second run."""
    inventory = tmp_path / "cluster"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "group_vars/all.yml").write_text(yaml.safe_dump({
        "kpy_cluster_name": "t", "kpy_cluster_domain": "cluster.local", "kpy_service_cidr": "10.96.0.0/16",
        "kpy_api_endpoint": "{{ hostvars[groups['control_plane'][0]]['ansible_host'] }}",
        "ansible_connection": "local",
    }))
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "etcd": {"hosts": {"c1": None}},
        "control_plane": {"hosts": {"c1": {"ansible_host": "192.0.2.11"}}},
        "workers": {"hosts": {"n1": {"ansible_host": "192.0.2.21"}}},
    }}}))
    playbook = tmp_path / "generate.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Generate", "hosts": "etcd:control_plane:workers", "gather_facts": False,
        "tasks": [{"name": "Generate", "ansible.builtin.include_role": {"name": "pki", "tasks_from": "generate"}}],
    }]))

    def play() -> str:
        process = subprocess.run([BIN / "ansible-playbook", "-i", str(inventory), str(playbook)],
                                 env=ENV, cwd=tmp_path, capture_output=True, text=True, timeout=180)
        assert process.returncode == 0, process.stdout + process.stderr
        return process.stdout

    recap = re.compile(r"^(\S+)\s*: ok=\d+\s+changed=(\d+)", re.MULTILINE)
    first = dict(recap.findall(play()))
    assert sum(map(int, first.values())) == 1  # one module call on the controller issues everything
    pki = inventory / "artifacts/pki"
    assert sorted(p.name for p in (pki / "hosts").iterdir()) == ["c1", "n1"]
    assert sorted(p.name for p in (pki / "hosts/n1").iterdir()) == ["kubelet.crt", "kubelet.key", "kubelet.kubeconfig"]
    admin = yaml.safe_load((inventory / "artifacts/admin.kubeconfig").read_text())
    assert admin["clusters"][0]["cluster"]["server"] == "https://192.0.2.11:6443"
    assert (inventory / "artifacts/admin.kubeconfig").stat().st_mode & 0o777 == 0o600
    second = dict(recap.findall(play()))
    assert set(second) == {"c1", "n1"} and set(second.values()) == {"0"}
