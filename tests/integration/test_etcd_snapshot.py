"""Snapshots of a real etcd: save (streamed, atomic, verified), restore into a fresh data dir, start from it."""
from __future__ import annotations

import pytest

from kpy_components.etcd import snapshot
from kpy_components.etcd.errors import SnapshotError
from kpy_components.etcd.model import load_model


def test_snapshot_save_and_restore_round_trip(etcd1, new_etcd_cluster, tmp_path, run_kpy_etcd):
    with etcd1.client() as client:
        for index in range(20):
            client.put(f"/snap/{index:02d}", f"value-{index}")
        revision = client.put("/snap/last", "here").revision
    path = tmp_path / "backup.db"
    saved = run_kpy_etcd("snapshot", "save", str(path), "--config", str(etcd1.config_files["m0"]))
    assert saved.returncode == 0, saved.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob(".*partial"))
    info = snapshot.inspect(path)
    assert info.revision >= revision and info.total_keys >= 21

    # A second, empty cluster of one member restores the snapshot into its data dir, then starts from it.
    target = new_etcd_cluster(1, "kpy-restored")
    model = load_model(target.config_files["m0"])
    restored = run_kpy_etcd("snapshot", "restore", str(path), "--config", str(target.config_files["m0"]))
    assert restored.returncode == 0, restored.stderr
    assert (model.data_dir / "member").is_dir() and model.data_dir.stat().st_mode & 0o777 == 0o700
    target.start()
    with target.client() as client:
        assert client.get("/snap/last").value == b"here"
        assert client.range("/snap/", prefix=True).count == 21
        [member] = client.members()
        assert member.name == "m0" and member.peer_urls == [model.local.peer_url]
    target.stop()

    # The data dir now holds data: restoring again is refused, unless forced (the old one is moved aside).
    again = run_kpy_etcd("snapshot", "restore", str(path), "--config", str(target.config_files["m0"]))
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr
    forced = snapshot.restore(path, model, force=True)
    assert forced.moved_aside is not None and (forced.moved_aside / "member").is_dir()
    assert (model.data_dir / "member").is_dir()


def test_a_truncated_snapshot_or_a_running_member_is_refused(etcd1, tmp_path):
    with etcd1.client() as client:
        good = snapshot.save(client, tmp_path / "good.db")
    broken = tmp_path / "broken.db"
    broken.write_bytes(good.path.read_bytes()[:-100])
    with pytest.raises(SnapshotError, match="checksum"):
        snapshot.inspect(broken)
    model = load_model(etcd1.config_files["m0"])
    with pytest.raises(SnapshotError, match="etcd is running on"):
        snapshot.restore(good.path, model, force=True)  # the running member's own data dir
    assert etcd1.processes["m0"].poll() is None
    with pytest.raises(SnapshotError, match="checksum"):
        snapshot.restore(broken, model, data_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()
