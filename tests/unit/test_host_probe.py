"""kpy_components.host_probe: the module's own file run as a plain python3 script with its arguments on stdin, the
answer trusted only when it clearly says "in sync". The action stand-in runs the command through a local shell, as
the connection would on the host."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from ansible.errors import AnsibleError

from kpy_components.host_probe import in_sync

REPO = Path(__file__).resolve().parents[2]


class LocalAction:
    """What in_sync uses of an Ansible action: the module loader, the templar, _low_level_execute_command."""

    def __init__(self, modules, answer=None, stdin=True):
        def find(name):
            path = modules.get(name)
            return SimpleNamespace(resolved=path is not None, plugin_resolved_path=str(path))
        self._shared_loader_obj = SimpleNamespace(module_loader=SimpleNamespace(find_plugin_with_context=find))
        self._templar = SimpleNamespace(template=lambda value: value)
        self._connection = SimpleNamespace(has_pipelining=stdin)
        self.answer, self.calls = answer, []

    def _low_level_execute_command(self, command, sudoable, in_data):
        self.calls.append((command, sudoable, json.loads(in_data)))
        if self.answer is not None:
            return self.answer
        proc = subprocess.run(command, shell=True, input=in_data, capture_output=True, text=True)
        return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def test_the_modules_own_file_answers_with_the_arguments_given(tmp_path):
    action = LocalAction({"kpy_converge": REPO / "library/kpy_converge.py"})
    (tmp_path / "a").write_text("x\n")
    wanted = {"files": [{"dest": str(tmp_path / "a"), "content": "x\n", "mode": "0644", "owner": "root",
                         "group": "root"}]}
    variables = {"ansible_python_interpreter": sys.executable}
    (tmp_path / "a").chmod(0o644)
    owned_by_root = (tmp_path / "a").stat().st_uid == 0
    assert in_sync(action, "kpy_converge", wanted, variables) is owned_by_root
    command, sudoable, arguments = action.calls[0]
    assert command.startswith(f"{sys.executable} -I -c ") and command.endswith(" --probe")
    assert sudoable is True and arguments == wanted
    wanted["files"][0]["content"] = "y\n"
    assert in_sync(action, "kpy_converge", wanted, variables) is False
    assert (tmp_path / "a").read_text() == "x\n"


def test_only_a_clear_yes_counts():
    module = {"kpy_converge": REPO / "library/kpy_converge.py"}
    assert in_sync(LocalAction(module, {"rc": 0, "stdout": '{"in_sync": true, "why": []}'}), "kpy_converge", {}, {})
    for answer in ({"rc": 1, "stdout": '{"in_sync": true}'}, {"rc": 0, "stdout": "Traceback"},
                   {"rc": 0, "stdout": '{"in_sync": "yes"}'}, {"rc": 0, "stdout": "[]"}):
        assert in_sync(LocalAction(module, answer), "kpy_converge", {}, {}) is False
    assert in_sync(LocalAction({}), "kpy_nothing", {}, {}) is False


def test_the_interpreter_is_the_hosts_as_ansible_knows_it():
    action = LocalAction({"kpy_converge": REPO / "library/kpy_converge.py"}, {"rc": 0, "stdout": "{}"})
    in_sync(action, "kpy_converge", {}, {"ansible_facts": {"discovered_interpreter_python": "/usr/bin/python3.11"}})
    in_sync(action, "kpy_converge", {}, {})
    assert [call[0].split()[0] for call in action.calls] == ["/usr/bin/python3.11", "/usr/bin/python3"]


def test_a_connection_that_cannot_feed_stdin_leaves_it_to_the_module():
    action = LocalAction({"kpy_converge": REPO / "library/kpy_converge.py"}, {"rc": 0, "stdout": '{"in_sync": true}'},
                         stdin=False)
    assert in_sync(action, "kpy_converge", {}, {}) is False and action.calls == []


def test_a_probe_the_connection_refuses_leaves_it_to_the_module():
    action = LocalAction({"kpy_converge": REPO / "library/kpy_converge.py"})

    def refuse(command, sudoable, in_data):
        raise AnsibleError("Internal Error: this module does not support optimized module pipelining")
    action._low_level_execute_command = refuse
    assert in_sync(action, "kpy_converge", {}, {}) is False
