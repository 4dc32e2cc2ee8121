"""sd_notify as systemd receives it: a READY=1 datagram on $NOTIFY_SOCKET, nothing when the variable is unset."""
import socket

from kpy_components.systemd import notify_ready


def test_ready_datagram_reaches_the_notify_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify_ready() is True
        assert manager.recv(64) == b"READY=1"


def test_abstract_socket_address(monkeypatch):
    name = f"kpy-test-{id(monkeypatch)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify_ready() is True
        assert manager.recv(64) == b"READY=1"


def test_without_systemd_nothing_is_sent(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify_ready() is False
