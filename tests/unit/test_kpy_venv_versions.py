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


def probe(tmp_path, **options):
    """`kpy_venv.py --probe` as kpy_components.host_probe runs it on a host."""
    arguments = {"archive": str(tmp_path / "wheels.tar"), "checksum": "a" * 40, "wheelhouse": str(tmp_path / "wheels"),
                 "venv": str(tmp_path / "1.31.0"), "link": str(tmp_path / "current"), **options}
    proc = subprocess.run([sys.executable, "-I", "-c", (REPO / "library/kpy_venv.py").read_text(), "--probe"],
                          input=json.dumps(arguments), capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def installed(tmp_path):
    """A host as kpy_venv leaves it for checksum a…a: archive, unpacked wheelhouse, venv, link."""
    (tmp_path / "wheels.tar").write_bytes(b"")
    for folder, marker in (("wheels", ".kpy-archive-sha1"), ("1.31.0", ".kpy-wheelhouse-sha1")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / marker).write_text("a" * 40 + "\n")
    (tmp_path / "current").symlink_to(tmp_path / "1.31.0")


def test_the_probe_vouches_only_for_a_host_installed_from_this_archive(tmp_path):
    assert probe(tmp_path)["in_sync"] is False
    installed(tmp_path)
    assert probe(tmp_path) == {"in_sync": True, "why": []}
    assert probe(tmp_path, checksum="b" * 40)["why"] == [
        f"{tmp_path}/wheels is not from archive {'b' * 40}", f"{tmp_path}/1.31.0 is not from archive {'b' * 40}"]


def test_the_probe_leaves_a_host_on_another_version_to_the_module_unless_the_upgrade_allows_it(tmp_path):
    installed(tmp_path)
    folder = components(tmp_path, **{"kpy-kubelet": "1.30.0"})
    assert probe(tmp_path, components_dir=folder)["why"] == ["kpy-kubelet 1.30.0 runs another version"]
    for allowed in (True, "True", "yes"):
        assert probe(tmp_path, components_dir=folder, allow_version_change=allowed)["in_sync"] is True
    assert probe(tmp_path, components_dir=folder, allow_version_change="false")["in_sync"] is False
