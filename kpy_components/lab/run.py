"""Running commands on the machine for the lab, with errors that say which command failed and why."""
import subprocess


class LabError(Exception):
    """A lab operation failed; the message is meant for the user as it is."""


def run(*args: str, input: str | None = None, check: bool = True, cwd=None) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(args, input=input, capture_output=True, text=True, cwd=cwd)
    except FileNotFoundError as exc:
        raise LabError(f"{args[0]} is not installed (run ./scripts/setup)") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise LabError(f"`{' '.join(args)}` failed with exit code {proc.returncode}: {' / '.join(detail)}")
    return proc
