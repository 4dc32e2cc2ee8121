"""Filter pki_outdated: which of a host's PKI files must be copied, decided on the controller from one
`ansible.builtin.find` per host instead of one `copy` round trip per file (most runs copy nothing)."""


def pki_outdated(wanted, present, checksums):
    """The entries of `wanted` ({src, dest, owner, mode}, group = owner) whose destination is missing or differs
    in content (SHA-1), mode, owner or group. `present` is ansible.builtin.find's `files` (with get_checksum),
    `checksums` the kpy_pki module's SHA-1 of each source by its path relative to the PKI directory."""
    have = {f["path"]: (f.get("checksum"), f.get("mode"), f.get("pw_name"), f.get("gr_name")) for f in present}
    return [
        entry
        for entry in wanted
        if have.get(entry["dest"]) != (checksums.get(entry["src"]), entry["mode"], entry["owner"], entry["owner"])
    ]


class FilterModule:
    def filters(self):
        return {"pki_outdated": pki_outdated}
