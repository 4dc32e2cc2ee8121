"""kpy components: one package per Kubernetes component, plus the lab and PKI tooling."""

__all__ = ["__version__"]


def __getattr__(name):
    # Read on first use only: importlib.metadata costs ~25 ms, paid otherwise by every import of any kpy module
    # (Ansible action plugins import kpy modules in each forked worker, once per host and task).
    if name == "__version__":
        from kpy_components.version import VERSION
        return VERSION
    raise AttributeError(f"module 'kpy_components' has no attribute {name!r}")
