"""Filter pki_host_state: a host's PKI directories and files as kpy_converge options, read on the controller, so
one remote call per host compares and writes them all (instead of a find and a copy per file)."""

from pathlib import Path

from ansible.errors import AnsibleFilterError


def pki_host_state(wanted, local_dir):
    """`wanted` is the host's list of {src, dest, owner, mode} (group = owner), src relative to `local_dir`.
    Returns {directories: [{path}], files: [{dest, content, owner, group, mode}]}; the directories (root's, 0755)
    are the files' parents."""
    files = []
    for entry in wanted:
        source = Path(local_dir) / entry["src"]
        try:
            content = source.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise AnsibleFilterError(f"pki: cannot read {source} for {entry['dest']}: {exc}") from exc
        files.append({"dest": entry["dest"], "content": content, "owner": entry["owner"], "group": entry["owner"],
                      "mode": entry["mode"]})
    parents = sorted({str(Path(entry["dest"]).parent) for entry in wanted})
    return {"directories": [{"path": path} for path in parents], "files": files}


class FilterModule:
    def filters(self):
        return {"pki_host_state": pki_host_state}
