"""The one version string of the whole distribution, read from the repository's VERSION file at build time."""
from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("kpy-components")
except PackageNotFoundError:  # running from a source tree that was never installed
    from pathlib import Path

    VERSION = (Path(__file__).resolve().parent.parent / "VERSION").read_text().strip()
