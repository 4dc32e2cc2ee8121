"""Action kpy_cluster_dns_objects: keeps the role's API objects in one task, on the controller and in-process (a uri
task per object cost a module run each, on every run). Each object is read with the admin certificate and applied
(server-side apply, field manager kpy-cluster-dns) only when it is missing or differs - the role's filters
(filter_plugins/cluster_dns.py) decide both - so a second run changes nothing. Check mode reads only.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ansible.plugins.action import ActionBase

from kpy_components.client.oneshot import api_request

_spec = importlib.util.spec_from_file_location(
    "cluster_dns_filters", Path(__file__).resolve().parents[1] / "filter_plugins" / "cluster_dns.py")
_filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_filters)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        live = []
        for obj in args["objects"]:
            path = _filters.cluster_dns_path(obj)
            status, body = self._request(args, "GET", path)
            if status not in (200, 404):
                return {**result, "failed": True, "msg": f"GET {path}: {status or 'no answer'} {body}"}
            live.append({"item": obj, "status": status, "json": body})
        stale = _filters.cluster_dns_stale(live)
        for obj in stale if not self._task.check_mode else ():
            path = f"{_filters.cluster_dns_path(obj)}?fieldManager=kpy-cluster-dns&force=true"
            status, body = self._request(args, "PATCH", path, obj)
            if status not in (200, 201):
                return {**result, "failed": True, "msg": f"apply {path}: {status or 'no answer'} {body}"}
        result.update(changed=bool(stale), applied=[f"{obj['kind']} {obj['metadata']['name']}" for obj in stale])
        return result

    @staticmethod
    def _request(args, method: str, path: str, body: dict | None = None) -> tuple[int | None, object]:
        return api_request(f"{args['api_url']}{path}", method, body, ca=args["ca"], cert=args["cert"], key=args["key"],
                           content_type="application/apply-patch+yaml")  # JSON is YAML
