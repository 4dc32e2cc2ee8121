"""kpy components: one package per Kubernetes component, plus the lab and PKI tooling."""
from kpy_components.version import VERSION as __version__

__all__ = ["__version__"]
