"""Where the lab keeps things on the machine.

The image and package caches outlive a lab (like container images); everything under a lab's state directory is
removed by `kpy-lab down`.
"""
import os
from pathlib import Path

CACHE_DIR = Path(os.environ.get("KPY_LAB_CACHE", Path.home() / ".cache" / "kpy-lab"))
STATE_DIR = Path(os.environ.get("KPY_LAB_STATE", "/var/lib/kpy-lab"))
