"""Action kpy_converge: the kpy_converge module, run only when the host is not already in the wanted state.

A module run costs ~0.15 CPU-s per host however little it does (AnsiballZ compiles ansible.module_utils.basic afresh
every time), which made most of a no-op site.yml. So the action first sends the module's own file to the host's
python3 as a plain script (`--probe`: the converger in check mode, each ready probe asked once, no Ansible needed on
the host, ~0.02 CPU-s) and returns its verdict when nothing would change. Otherwise, or when the probe cannot tell,
the module runs as usual and its result is the task's. Every run still reads the host's real state.
"""
import json
import shlex
from pathlib import Path

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if not self._in_sync(task_vars):
            result.update(self._execute_module("kpy_converge", module_args=self._task.args, task_vars=task_vars))
            return result
        result.update(changed=False, changes=[], changed_files=[], started=[])
        return result

    def _in_sync(self, task_vars) -> bool:
        module = self._shared_loader_obj.module_loader.find_plugin_with_context("kpy_converge")
        if not module.resolved:
            return False
        python = task_vars.get("ansible_python_interpreter") or \
            task_vars.get("ansible_facts", {}).get("discovered_interpreter_python") or "/usr/bin/python3"
        command = f"{python} -I -c {shlex.quote(Path(module.plugin_resolved_path).read_text())} --probe"
        answer = self._low_level_execute_command(command, sudoable=True, in_data=json.dumps(self._task.args))
        try:
            return answer["rc"] == 0 and json.loads(answer["stdout"])["in_sync"] is True
        except (ValueError, KeyError, TypeError):
            return False
