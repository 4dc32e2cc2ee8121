"""Action kpy_converge: the kpy_converge module, run only when the host is not already in the wanted state.

The host is asked first with the module's own file as a plain python3 script (kpy_components.host_probe: the
converger in check mode, each ready probe asked once, no Ansible on the host); when nothing would change, that answer
is the task's result. Otherwise, or when the probe cannot tell, the module runs as usual.
"""
from ansible.plugins.action import ActionBase

from kpy_components.host_probe import in_sync


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if in_sync(self, "kpy_converge", self._task.args, task_vars):
            result.update(changed=False, changes=[], changed_files=[], started=[])
        else:
            result.update(self._execute_module("kpy_converge", module_args=self._task.args, task_vars=task_vars))
        return result
