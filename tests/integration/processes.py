"""Child processes of the integration tests, shared with the benches (bench/*.py put this directory on their path)."""
from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """Ask `process` to stop (SIGTERM) and reap it; SIGKILL it if it has not exited within `timeout` seconds.
    A process that has already exited is only reaped."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
