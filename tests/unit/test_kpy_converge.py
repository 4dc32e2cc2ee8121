"""The kpy_converge module on this machine's files (directories, links, files): what it changes, what it reports,
check and diff mode, validation. Packages, accounts and services are exercised on lab hosts by Molecule."""
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OWNER = {"owner": "root", "group": "root"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sets owners (root)")


def converge(tmp_path, check=False, diff=False, **options):
    args = dict(options, _ansible_check_mode=check, _ansible_diff=diff)
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    proc = subprocess.run([sys.executable, REPO / "library/kpy_converge.py", args_file], capture_output=True,
                          text=True)
    return json.loads(proc.stdout)


@pytest.fixture
def state(tmp_path):
    root = tmp_path / "host"
    return {
        "directories": [{"path": str(root / "etc/kpy"), "mode": "0750", **OWNER}],
        "links": [{"src": "/dev/null", "dest": str(root / "masked.service")}],
        "files": [{"dest": str(root / "etc/kpy/a.yaml"), "content": "a: 1\n", "mode": "0640", **OWNER}],
    }


def test_first_call_creates_everything_and_names_each_change(tmp_path, state):
    (tmp_path / "host").mkdir()
    result = converge(tmp_path, **state)
    assert result["changed"] is True
    root = tmp_path / "host"
    assert result["changes"] == [f"created directory {root}/etc/kpy", f"linked {root}/masked.service -> /dev/null",
                                 f"created {root}/etc/kpy/a.yaml"]
    assert result["changed_files"] == [f"{root}/masked.service", f"{root}/etc/kpy/a.yaml"]
    assert (root / "etc/kpy/a.yaml").read_text() == "a: 1\n"
    assert stat.S_IMODE((root / "etc/kpy/a.yaml").stat().st_mode) == 0o640
    assert stat.S_IMODE((root / "etc/kpy").stat().st_mode) == 0o750
    assert os.readlink(root / "masked.service") == "/dev/null"


def test_second_call_changes_nothing(tmp_path, state):
    (tmp_path / "host").mkdir()
    converge(tmp_path, **state)
    result = converge(tmp_path, **state)
    assert (result["changed"], result["changes"], result["changed_files"]) == (False, [], [])


def test_check_mode_reports_and_writes_nothing(tmp_path, state):
    (tmp_path / "host").mkdir()
    result = converge(tmp_path, check=True, **state)
    assert result["changed"] is True and len(result["changes"]) == 3
    assert list((tmp_path / "host").iterdir()) == []


def test_content_and_mode_drift_are_fixed_and_diffed(tmp_path, state):
    (tmp_path / "host").mkdir()
    converge(tmp_path, **state)
    target = tmp_path / "host/etc/kpy/a.yaml"
    target.write_text("a: 2\n")
    result = converge(tmp_path, diff=True, **state)
    assert result["changes"] == [f"wrote {target}"]
    assert result["diff"] == [{"before_header": str(target), "after_header": str(target), "before": "a: 2\n",
                               "after": "a: 1\n"}]
    target.chmod(0o644)
    assert converge(tmp_path, **state)["changes"] == [f"set root:root 0640 on {target}"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_content_that_fails_validation_leaves_the_file_as_it_was(tmp_path, state):
    (tmp_path / "host").mkdir()
    converge(tmp_path, **state)
    state["files"][0] |= {"content": "a: 3\n", "validate": "grep -q never %s"}
    result = converge(tmp_path, **state)
    assert result["failed"] is True
    assert "a.yaml: the new content failed validation (grep -q never %s)" in result["msg"]
    assert (tmp_path / "host/etc/kpy/a.yaml").read_text() == "a: 1\n"
    assert [p.name for p in (tmp_path / "host/etc/kpy").iterdir()] == ["a.yaml"]


def test_a_file_whose_directory_is_missing_is_an_error_naming_it(tmp_path):
    result = converge(tmp_path, files=[{"dest": str(tmp_path / "nowhere/x"), "content": "x"}])
    assert result["failed"] is True
    assert result["msg"] == f"{tmp_path}/nowhere/x: directory {tmp_path}/nowhere does not exist"


def probe(**options):
    """`kpy_converge.py --probe`, as the kpy_converge action runs it on a host: plain python3, arguments on stdin."""
    proc = subprocess.run([sys.executable, "-I", "-c", (REPO / "library/kpy_converge.py").read_text(), "--probe"],
                          input=json.dumps(options), capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_the_probe_vouches_for_a_host_in_the_wanted_state_and_changes_nothing(tmp_path, state):
    (tmp_path / "host").mkdir()
    assert probe(**state) == {"in_sync": False, "why": [
        f"created directory {tmp_path}/host/etc/kpy", f"linked {tmp_path}/host/masked.service -> /dev/null",
        f"created {tmp_path}/host/etc/kpy/a.yaml"]}
    assert list((tmp_path / "host").iterdir()) == []
    converge(tmp_path, **state)
    assert probe(**state) == {"in_sync": True, "why": []}


def test_the_probe_sees_drift_that_the_module_would_fix(tmp_path, state):
    (tmp_path / "host").mkdir()
    converge(tmp_path, **state)
    target = tmp_path / "host/etc/kpy/a.yaml"
    target.chmod(0o644)
    assert probe(**state)["why"] == [f"set root:root 0640 on {target}"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    os.unlink(tmp_path / "host/masked.service")
    assert probe(**state)["why"][0] == f"linked {tmp_path}/host/masked.service -> /dev/null"


def test_the_probe_cannot_vouch_for_what_the_module_would_refuse_or_a_service_that_does_not_answer(tmp_path):
    assert probe(bogus=[])["in_sync"] is False
    assert probe(files=[{"dest": str(tmp_path / "x")}]) == {"in_sync": False, "why": [
        f"NotInSync: {tmp_path}/x: no content (a template is rendered into content by the kpy_converge action)"]}
    (tmp_path / "dir").mkdir()
    assert probe(links=[{"src": "/dev/null", "dest": str(tmp_path / "dir")}])["why"] == [
        f"NotInSync: {tmp_path}/dir is a directory, not a link to /dev/null"]
    unit = {"name": "kpy-none.service", "ready": {"url": "http://127.0.0.1:9/ready", "timeout": "60"}}
    answer = probe(services=[unit])
    assert answer["in_sync"] is False and answer["why"][-1].startswith("NotInSync: kpy-none.service is not ready")


def test_stale_reasons_are_changes_for_the_handler_even_when_every_file_is_in_place(tmp_path, state):
    (tmp_path / "host").mkdir()
    converge(tmp_path, **state)
    result = converge(tmp_path, stale=["/etc/kpy/pki/kubelet.crt"], **state)
    assert (result["changed"], result["changes"], result["changed_files"]) == (
        True, ["out of date: /etc/kpy/pki/kubelet.crt"], [])
    assert probe(stale=["kpy 1.31.0 reinstalled"], **state) == {
        "in_sync": False, "why": ["out of date: kpy 1.31.0 reinstalled"]}
    assert converge(tmp_path, stale=[], **state)["changed"] is False


def load_module():
    spec = importlib.util.spec_from_file_location("kpy_converge_module", REPO / "library/kpy_converge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packages_install_with_service_starts_held_by_a_policy_rc_d_that_goes_away(tmp_path, monkeypatch):
    module = load_module()
    monkeypatch.setattr(module, "POLICY_RC_D", str(tmp_path / "policy-rc.d"))
    with module.services_held():
        assert subprocess.run([tmp_path / "policy-rc.d", "haproxy", "start"]).returncode == 101
    assert not (tmp_path / "policy-rc.d").exists()
    (tmp_path / "policy-rc.d").write_text("#!/bin/sh\nexit 0\n")  # the administrator's own: left as it is
    with module.services_held():
        pass
    assert (tmp_path / "policy-rc.d").read_text() == "#!/bin/sh\nexit 0\n"
