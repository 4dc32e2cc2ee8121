"""The one exception tree of the PKI: every message is meant for the user and names what is wrong and where."""


class PkiError(Exception):
    """Input or existing material the PKI cannot work with."""

    @classmethod
    def from_problems(cls, where: str, problems: list[str]) -> "PkiError":
        """One error carrying every problem found, so the user fixes them all in one go."""
        lines = "\n".join(f"  - {p}" for p in problems)
        return cls(f"{where}: {len(problems)} problem(s):\n{lines}")


class ProfileError(PkiError):
    """The certificate profiles file is unreadable or invalid."""


class InventoryError(PkiError):
    """The inventory model (hosts, groups, cluster settings) is invalid."""


class StateError(PkiError):
    """Material already on disk is inconsistent (e.g. a CA certificate without its key)."""
