"""kpy-etcd's own behaviour without a running etcd: version, config errors (exit 2), rendering."""
from __future__ import annotations

import pytest
import yaml

from kpy_components.etcd.cli import main
from kpy_components.version import VERSION

from test_etcd_model import VALID


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.strip() == f"kpy-etcd {VERSION}"


def test_bad_config_names_the_field_and_exits_2(tmp_path, capsys):
    path = tmp_path / "kpy-etcd.yaml"
    path.write_text(yaml.safe_dump({**VALID, "members": VALID["members"][:2]}))
    assert main(["health", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"invalid config {path}" in err and "members: 2 members given" in err
    assert "Traceback" not in err


def test_run_refuses_missing_certificates_before_starting_etcd(tmp_path, capsys):
    path = tmp_path / "kpy-etcd.yaml"
    path.write_text(yaml.safe_dump({**VALID, "etcd_config_file": str(tmp_path / "etcd.yaml")}))
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "tls.ca_file: cannot read /etc/kpy/pki/etcd/ca_file.pem: No such file or directory" in err
    assert not (tmp_path / "etcd.yaml").exists()


def test_render_config_to_a_file(tmp_path):
    path, out = tmp_path / "kpy-etcd.yaml", tmp_path / "etcd.yaml"
    path.write_text(yaml.safe_dump(VALID))
    assert main(["render-config", "--model", str(path), "--output", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["name"] == "cp2"


def test_unreadable_client_certificate_is_a_failure_not_a_traceback(tmp_path, capsys):
    tls_dir = tmp_path / "pki"
    tls_dir.mkdir()
    path = tmp_path / "kpy-etcd.yaml"
    members = [{"name": "solo", "ip": "127.0.0.1", "client_port": 1}]
    path.write_text(yaml.safe_dump({**VALID, "member": "solo", "members": members}))
    assert main(["members", "--config", str(path)]) == 1
    assert "kpy-etcd: cannot load TLS files" in capsys.readouterr().err
