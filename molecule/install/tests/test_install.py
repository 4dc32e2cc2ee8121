"""kpy_install, seen from the host: kpy runs from its versioned venv, installed from the shipped wheelhouse."""
from pathlib import Path

VERSION = (Path(__file__).resolve().parents[3] / "VERSION").read_text().strip()


def test_console_script_reports_the_distribution_version(host):
    result = host.run("/opt/kpy/current/bin/kpy-lab --version")
    assert result.rc == 0, result.stderr
    assert result.stdout.split() == ["kpy-lab", VERSION]


def test_current_points_at_the_versioned_venv(host):
    link = host.file("/opt/kpy/current")
    assert link.is_symlink
    assert link.linked_to == f"/opt/kpy/{VERSION}"


def test_wheelhouse_kept_on_the_host_for_offline_rebuilds(host):
    wheels = host.file(f"/opt/kpy/wheels/{VERSION}").listdir()
    assert f"kpy_components-{VERSION}-py3-none-any.whl" in wheels
    assert any(name.startswith("cryptography-") for name in wheels)
