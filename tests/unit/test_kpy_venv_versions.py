"""kpy_venv refuses, before it changes anything, a host whose components run another kpy version: site.yml never
moves a running cluster's version (playbooks/upgrade.yml does, with allow_version_change)."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def venv_module(tmp_path, **options):
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "archive": str(tmp_path / "wheels.tar"), "checksum": "0" * 40, "wheelhouse": str(tmp_path / "wheels"),
        "venv": str(tmp_path / "1.31.0"), "link": str(tmp_path / "current"), **options}}))
    proc = subprocess.run([sys.executable, REPO / "library/kpy_venv.py", args_file], capture_output=True, text=True)
    return json.loads(proc.stdout)


def components(tmp_path, **links):
    folder = tmp_path / "components"
    folder.mkdir()
    for unit, version in links.items():
        (folder / unit).symlink_to(tmp_path / version)
    return str(folder)


def test_components_on_another_version_are_refused_naming_them(tmp_path):
    folder = components(tmp_path, **{"kpy-kubelet": "1.30.0", "kpy-proxy": "1.31.0"})
    result = venv_module(tmp_path, components_dir=folder)
    assert result["failed"] is True
    assert "kpy-kubelet 1.30.0" in result["msg"] and "kpy-proxy" not in result["msg"]
    assert "playbooks/upgrade.yml -e kpy_version=1.31.0" in result["msg"]
    assert not (tmp_path / "current").exists() and not (tmp_path / "wheels").exists()


def test_the_upgrade_may_install_beside_them(tmp_path):
    folder = components(tmp_path, **{"kpy-kubelet": "1.30.0"})
    result = venv_module(tmp_path, components_dir=folder, allow_version_change=True, _ansible_check_mode=True)
    assert not result.get("failed") and result["archive_needed"] is True


def test_a_new_host_or_one_on_this_version_goes_on(tmp_path):
    assert venv_module(tmp_path, components_dir=str(tmp_path / "none"), _ansible_check_mode=True)["archive_needed"]
    folder = components(tmp_path, **{"kpy-kubelet": "1.31.0"})
    assert not venv_module(tmp_path, components_dir=folder, _ansible_check_mode=True).get("failed")
