"""Telling systemd a service is ready (sd_notify), for units of Type=notify: `systemctl start|restart` then
returns only once the component can serve, which is what rolling restarts in the roles rely on."""
import os
import socket


def notify_ready() -> bool:
    """Send READY=1 to the service manager; False (and nothing sent) when not run by systemd with Type=notify."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(b"READY=1")
    return True
