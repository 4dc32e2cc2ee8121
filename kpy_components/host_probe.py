"""From an action plugin: whether a host is already as a kpy module would leave it, asked of the module's own file
run on the host as a plain python3 script (`<module> --probe`, the module's arguments as JSON on stdin, the answer
`{"in_sync": bool, "why": [...]}` on stdout).

A module run costs ~0.15 CPU-s per host however little it does (AnsiballZ compiles ansible.module_utils.basic afresh
every time), which made most of a no-op site.yml; the probe costs ~0.02 and still reads the host's real state. Any
doubt (the probe failing, an answer it cannot parse, a connection that cannot feed stdin) counts as "not in sync", so
the module runs and has the last word.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path

from ansible.errors import AnsibleError


def in_sync(action, module_name: str, module_args: dict, task_vars: dict) -> bool:
    """Whether `module_name` with `module_args` would change nothing on the action's host (with the task's become)."""
    module = action._shared_loader_obj.module_loader.find_plugin_with_context(module_name)
    if not module.resolved or not action._connection.has_pipelining:  # paramiko cannot feed a command's stdin
        return False
    python = action._templar.template(task_vars.get("ansible_python_interpreter") or task_vars.get(
        "ansible_facts", {}).get("discovered_interpreter_python") or "/usr/bin/python3")
    command = f"{python} -I -c {shlex.quote(Path(module.plugin_resolved_path).read_text())} --probe"
    try:
        answer = action._low_level_execute_command(command, sudoable=True, in_data=json.dumps(module_args))
        return answer["rc"] == 0 and json.loads(answer["stdout"])["in_sync"] is True
    except (AnsibleError, ValueError, KeyError, TypeError):  # the module's run will say what is wrong
        return False
