import os
import shutil

import pytest


def pytest_collection_modifyitems(items):
    missing = [tool for tool in ("systemd-nspawn", "debootstrap") if shutil.which(tool) is None]
    reason = "lab hosts need root" if os.geteuid() != 0 else f"missing {', '.join(missing)} (run ./scripts/setup)"
    if os.geteuid() != 0 or missing:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))
