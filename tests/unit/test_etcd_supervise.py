"""`kpy-etcd run` keeps etcd as its child: etcd's log goes through minus the per-request gateway warning, signals
reach etcd, the exit status is etcd's, and etcd never outlives its supervisor."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

from kpy_components.etcd.supervise import REPORT_EVERY, relay

NOISY = (b'{"level":"warn","ts":"2026-11-22T08:08:40.981Z","caller":"auth/store.go:1270","msg":"ignoring common name '
         b'in gRPC-gateway proxy request","common-name":"kpy-cp1","user-name":"kpy-cp1","revision":1}\n')
SLOW = b'{"level":"warn","msg":"slow fdatasync","took":"1.2s"}\n'


def test_the_gateway_warning_is_dropped_and_everything_else_kept_in_order():
    sink = io.BytesIO()
    dropped = relay([b"started\n", NOISY, SLOW, NOISY, b"stopped\n"], sink)
    assert dropped == 2 and sink.getvalue() == b"started\n" + SLOW + b"stopped\n"


def test_dropped_lines_are_counted_in_the_log_now_and_then():
    now = [0.0]

    def clock() -> float:
        now[0] += REPORT_EVERY / 2
        return now[0]
    sink = io.BytesIO()  # each clock reading is half a period later: a count at most every other reading
    assert relay([NOISY, NOISY, NOISY, SLOW], sink, clock=clock) == 3
    assert sink.getvalue().splitlines(keepends=True) == [
        b"kpy-etcd: dropped 2 gRPC-gateway common-name warnings of etcd\n", SLOW,
        b"kpy-etcd: dropped 1 gRPC-gateway common-name warnings of etcd\n"]


def supervisor(child: str) -> subprocess.Popen:
    """A process running supervise() over `python -c child`."""
    program = textwrap.dedent(f"""
        import sys
        from kpy_components.etcd.supervise import supervise
        sys.exit(supervise([sys.executable, "-c", {child!r}]))
    """)
    return subprocess.Popen([sys.executable, "-c", program], stderr=subprocess.PIPE)


def test_the_exit_status_and_the_filtered_log_are_the_childs():
    child = f"import sys; sys.stderr.buffer.write({NOISY!r} + {SLOW!r}); sys.exit(3)"
    process = supervisor(child)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 3 and stderr == SLOW


def child_pid(pid: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise AssertionError("the supervisor started no child")


def test_sigterm_reaches_the_child_and_sigkill_of_the_supervisor_takes_the_child_along():
    child = ("import signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *_: (sys.stderr.write('bye\\n'), sys.exit(0)))\n"
             "sys.stderr.write('ready\\n'); sys.stderr.flush()\n"
             "time.sleep(60)")
    process = supervisor(child)
    assert process.stderr.readline() == b"ready\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0 and process.stderr.read() == b"bye\n"

    process = supervisor("import time; time.sleep(60)")
    orphan = child_pid(process.pid)
    process.kill()
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{orphan}") and time.monotonic() < deadline:
        try:
            os.waitpid(orphan, os.WNOHANG)  # not our child: only clears a zombie if it were
        except ChildProcessError:
            pass
        if open(f"/proc/{orphan}/stat").read().split(")")[1].split()[0] == "Z":
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{orphan}") or \
        open(f"/proc/{orphan}/stat").read().split(")")[1].split()[0] == "Z"
