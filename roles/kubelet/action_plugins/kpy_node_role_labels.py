"""Action kpy_node_role_labels: once, on the controller and in-process (no module run per call), waits until every
host of `hosts` is a registered Node, then gives each the role labels of its inventory groups that it lacks (a merge
patch with the admin certificate; the role's filter kubelet_missing_role_labels decides). Reports changed only when
it labelled a node. Check mode reads only.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

from ansible.plugins.action import ActionBase

from kpy_components.client.oneshot import api_request

_spec = importlib.util.spec_from_file_location(
    "kubelet_labels", Path(__file__).resolve().parents[1] / "filter_plugins" / "kubelet_labels.py")
_filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_filters)

POLL_SECONDS = 1.0


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        args = self._task.args
        tls = {"ca": args["ca"], "cert": args["cert"], "key": args["key"]}
        result = super().run(tmp, task_vars)
        hosts = list(args["hosts"])
        deadline = time.monotonic() + int(args["wait_seconds"])
        while True:
            status, body = api_request(f"{args['api_url']}/api/v1/nodes", timeout=10, **tls)
            nodes = (body.get("items") or []) if status == 200 else []
            unregistered = sorted(set(hosts) - {node["metadata"]["name"] for node in nodes})
            if status == 200 and not unregistered:
                break
            if time.monotonic() >= deadline:
                why = (f"not registered: {', '.join(unregistered)}" if status == 200
                       else f"{status or 'no answer'} {body}")
                return {**result, "failed": True,
                        "msg": f"gave up after {args['wait_seconds']} s waiting for every node to register: {why}"}
            time.sleep(POLL_SECONDS)
        patches = _filters.kubelet_missing_role_labels(nodes, task_vars["hostvars"], hosts, args["role_labels"])
        for patch in patches if not self._task.check_mode else ():
            status, body = api_request(f"{args['api_url']}/api/v1/nodes/{patch['name']}", "PATCH",
                                       {"metadata": {"labels": dict(patch["labels"])}},
                                       content_type="application/merge-patch+json", **tls)
            if status != 200:
                return {**result, "failed": True,
                        "msg": f"labelling node {patch['name']}: {status or 'no answer'} {body}"}
        result.update(changed=bool(patches), labelled=[patch["name"] for patch in patches])
        return result
