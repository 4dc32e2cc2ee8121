"""Action kpy_venv: the kpy_venv module, plus the wheelhouse archive's transfer only when the host lacks it.

A no-op run costs one plain python3 run per host (kpy_components.host_probe: the module's own file compares the
archive's checksum with what the host unpacked and installed); otherwise the module runs, and a new archive costs a
second call after the transfer. `src` is the archive on the controller and is not
passed to the module; `checksum` (its SHA-1) is computed here unless given.
"""

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.hashing import checksum as sha1_of

from kpy_components.host_probe import in_sync


class ActionModule(ActionBase):
    TRANSFERS_FILES = False  # a temporary directory only when the archive must travel (see run)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        module_args = dict(self._task.args)
        source = module_args.pop("src", None)
        if not source:
            raise AnsibleActionFail("kpy_venv: src (the wheelhouse archive on the controller) is required")
        # The wheelhouse task's checksum of the archive when given (one hash per run, not one per host).
        module_args["checksum"] = module_args.get("checksum") or sha1_of(source)
        if module_args["checksum"] is None:
            raise AnsibleActionFail(f"kpy_venv: the wheelhouse archive {source} does not exist on the controller")
        if in_sync(self, "kpy_venv", module_args, task_vars):
            result.update(changed=False, changes=[], reinstalled=False)
            return result
        result.update(self._execute_module("kpy_venv", module_args=module_args, task_vars=task_vars))
        if not result.pop("archive_needed", False) or result.get("failed") or self._task.check_mode:
            return result
        self._make_tmp_path()
        try:
            upload = self._connection._shell.join_path(self._connection._shell.tmpdir, "wheelhouse.tar")
            self._transfer_file(source, upload)
            self._fixup_perms2((self._connection._shell.tmpdir, upload))
            module_args["upload"] = upload
            result.update(self._execute_module("kpy_venv", module_args=module_args, task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
