"""The kpy_wheelhouse action's decisions on the controller: an archive already built from these sources is taken as
it is (no change, its checksum); a bad source tree or version is refused, naming it. Building wheels is exercised by
Molecule's install scenario and site.yml."""
import hashlib
import importlib.util
import shutil
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("kpy_wheelhouse_action",
                                               REPO / "roles/kpy_install/action_plugins/kpy_wheelhouse.py")
action = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(action)


@pytest.fixture
def source(tmp_path):
    tree = tmp_path / "source"
    (tree / "kpy_components").mkdir(parents=True)
    (tree / "kpy_components/__init__.py").write_text("")
    shutil.copy(REPO / "pyproject.toml", tree / "pyproject.toml")
    (tree / "VERSION").write_text("1.31.0\n")
    return tree


def cached_archive(source, cache, version):
    key, _ = action.dependencies_fingerprint(source)
    archive = cache / f"kpy-{version}-{action.source_fingerprint(source, key, version)}.tar"
    cache.mkdir(exist_ok=True)
    with tarfile.open(archive, "w") as tar:
        tar.add(source / "VERSION", arcname="kpy_components-1.31.0-py3-none-any.whl")
    return archive


def test_an_archive_of_these_sources_is_used_as_it_is(source, tmp_path):
    archive = cached_archive(source, tmp_path / "cache", "1.31.0")
    result = action.wheelhouse(source, tmp_path / "cache", "", check=False)
    assert result == {"changed": False, "archive": str(archive), "wheels": ["kpy_components-1.31.0-py3-none-any.whl"],
                      "checksum": hashlib.sha1(archive.read_bytes()).hexdigest()}


def test_a_source_change_or_another_version_needs_another_archive(source, tmp_path):
    cached_archive(source, tmp_path / "cache", "1.31.0")
    assert action.wheelhouse(source, tmp_path / "cache", "1.30.0", check=True)["changed"] is True
    (source / "kpy_components/new.py").write_text("x = 1\n")
    result = action.wheelhouse(source, tmp_path / "cache", "", check=True)
    assert (result["changed"], result["checksum"]) == (True, "")
    assert not Path(result["archive"]).exists()


def test_a_version_that_is_not_major_minor_patch_is_refused(source, tmp_path):
    with pytest.raises(action.WheelhouseError, match=r"^version '1.31' is not MAJOR.MINOR.PATCH \(for example 1.31.0\)$"):
        action.wheelhouse(source, tmp_path / "cache", "1.31", check=True)


def test_a_folder_that_is_not_the_source_tree_is_refused(tmp_path):
    with pytest.raises(action.WheelhouseError) as refused:
        action.wheelhouse(tmp_path, tmp_path / "cache", "", check=True)
    assert str(refused.value) == f"source {tmp_path} is not the kpy source tree: it has no pyproject.toml"
