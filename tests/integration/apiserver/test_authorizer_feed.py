"""The authorizers follow RBAC changes through the watch events the server forwards: a RoleBinding removed is
refused at once — well before the 30 s periodic re-list, which is only a backstop."""
from __future__ import annotations

import subprocess
import time

from apiserver.conftest import KUBECTL_DIR

RESYNC_SECONDS = 30.0  # SecurityConfig.rbac_resync_seconds


def test_revoked_binding_is_refused_before_any_re_list(apiserver):
    admin = [str(KUBECTL_DIR / "kubectl.1.33"), "--kubeconfig", str(apiserver.admin_kubeconfig)]
    apiserver.user_kubeconfig("feed-user")
    path = "/api/v1/namespaces/default/configmaps"

    def run(*args: str) -> None:
        subprocess.run([*admin, *args], check=True, capture_output=True, timeout=30)

    run("create", "role", "feed-reader", "--verb=list", "--resource=configmaps", "-n", "default")
    run("create", "rolebinding", "feed-reader", "--role=feed-reader", "--user=feed-user", "-n", "default")
    assert apiserver.get(path, user="feed-user")[0] == 200
    run("delete", "rolebinding", "feed-reader", "-n", "default")
    deleted_at = time.monotonic()
    while apiserver.get(path, user="feed-user")[0] != 403:
        assert time.monotonic() - deleted_at < RESYNC_SECONDS / 3, "still allowed: the event was not fed"
        time.sleep(0.05)

