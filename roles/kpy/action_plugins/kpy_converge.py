"""Action kpy_converge: the kpy_converge module, run only when the host is not already in the wanted state.

Files given as `template: NAME` (a template of the task's role) are rendered here first, with the task's variables,
as the template action does: a `lookup('template')` in the arguments deep-copies every variable of the host for
each file, which had become a sixth of the controller's work on a no-op run.

Then the host is asked with the module's own file as a plain python3 script (kpy_components.host_probe: the
converger in check mode, each ready probe asked once, no Ansible on the host); when nothing would change, that answer
is the task's result. Otherwise, or when the probe cannot tell, the module runs as usual.
"""
import os

from ansible.plugins.action import ActionBase
from ansible.template import generate_ansible_template_vars, trust_as_template

from kpy_components.host_probe import in_sync


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("files"):
            args["files"] = [self._rendered(item, task_vars) for item in args["files"]]
        if in_sync(self, "kpy_converge", args, task_vars):
            result.update(changed=False, changes=[], changed_files=[], started=[])
        else:
            result.update(self._execute_module("kpy_converge", module_args=args, task_vars=task_vars))
        return result

    def _rendered(self, item, task_vars):
        """`item` with its `template` (if any) rendered into `content`."""
        if not isinstance(item, dict) or "template" not in item:
            return item
        item = dict(item)
        name = item.pop("template")
        source = self._find_needle("templates", name)
        # The template variables (template_path, ansible_managed, ...) as the template lookup and action set them,
        # the task's own winning (a user's ansible_managed).
        variables = {**generate_ansible_template_vars(path=name, fullpath=source), **task_vars}
        templar = self._templar.copy_with_new_env(searchpath=[os.path.dirname(source)], available_variables=variables)
        item["content"] = templar.template(trust_as_template(self._loader.get_text_file_contents(source)),
                                           escape_backslashes=False)
        return item
