"""Action kpy_validate_inventory: checks the inventory on the controller, before anything changes, and fails listing
every problem found (kpy_components.inventory.validate holds the checks; this only gathers the data).

Cluster-wide variables are evaluated in the play's own context (like any task would), so templates that use
`hostvars` or `groups` work; per-host variables come from `hostvars`. A value whose template fails becomes a reported
problem, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from kpy_components.inventory.validate import CLUSTER_VARIABLES, HOST_VARIABLES, Unresolved, inventory_problems


def _plain(value: object) -> object:
    """A copy of `value` made of builtin types only (Ansible hands out lazy, tagged containers)."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _reason(error: AnsibleError) -> str:
    return str(getattr(error, "message", error)).splitlines()[0]


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        groups = _plain(task_vars.get("groups", {}))
        problems = inventory_problems(
            groups=groups,
            cluster={name: self._evaluate(task_vars, name) for name in CLUSTER_VARIABLES if name in task_vars},
            hosts={host: self._host_variables(task_vars["hostvars"], host) for host in groups.get("all", [])},
            definitions={host: self._definitions(task_vars["hostvars"], host) for host in groups.get("all", [])},
        )
        result["changed"] = False
        if problems:
            listing = "\n".join(f"  - {problem}" for problem in problems)
            result.update(failed=True, msg=f"The inventory has {len(problems)} problem(s):\n{listing}")
        else:
            result["msg"] = f"The inventory is valid ({len(groups.get('all', []))} hosts)."
        return result

    def _evaluate(self, task_vars: dict, name: str) -> object:
        try:
            return _plain(self._templar.template(task_vars[name]))
        except AnsibleError as error:
            return Unresolved(_reason(error))

    @staticmethod
    def _host_variables(hostvars, host: str) -> dict[str, object]:
        variables = hostvars[host]
        found: dict[str, object] = {}
        for name in HOST_VARIABLES:
            if name not in variables:
                continue
            try:
                found[name] = _plain(variables[name])
            except AnsibleError as error:
                found[name] = Unresolved(_reason(error))
        return found

    @staticmethod
    def _definitions(hostvars, host: str) -> dict[str, object]:
        raw = hostvars.raw_get(host)
        return {name: _plain(raw[name]) for name in CLUSTER_VARIABLES if name in raw}
