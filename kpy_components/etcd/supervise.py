"""etcd as a child of `kpy-etcd run`, its log passed through minus one line that would drown the rest.

kpy reaches etcd through its JSON gateway with client certificates, and etcd 3.4 then logs the warning "ignoring
common name in gRPC-gateway proxy request" for every single request (hundreds a minute on an idle cluster, one per
API server read or write under load), which hides real warnings and trips journald's rate limit, after which
journald drops etcd's messages wholesale. Every other line goes out unchanged, in order. How many lines were
dropped is logged once a minute at most.

The child gets the supervisor's signals (TERM, INT, HUP) and dies with it (PR_SET_PDEATHSIG); the supervisor exits
with the child's status. etcd's own sd_notify reaches systemd because the unit sets NotifyAccess=all.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from typing import BinaryIO

NOISE = (b'"msg":"ignoring common name in gRPC-gateway proxy request"',)
REPORT_EVERY = 60.0  # seconds between counts of dropped lines
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int):
    """A preexec_fn: the child is killed when `parent` dies, also when it died between fork and prctl (then the
    child has been re-parented already and the death signal would never come)."""
    def die_with_parent() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(128 + signal.SIGKILL)
    return die_with_parent


def relay(lines: Iterable[bytes], sink: BinaryIO, clock=time.monotonic) -> int:
    """Copy `lines` to `sink` except the known noise; the number of lines dropped."""
    dropped = reported = 0
    last_report = clock()
    for line in lines:
        if any(pattern in line for pattern in NOISE):
            dropped += 1
        else:
            sink.write(line)
        if dropped > reported and clock() - last_report >= REPORT_EVERY:
            sink.write(f"kpy-etcd: dropped {dropped - reported} gRPC-gateway common-name warnings of etcd\n"
                       .encode())
            reported, last_report = dropped, clock()
        sink.flush()
    return dropped


def supervise(command: list[str]) -> int:
    """Run `command`, relay its stderr, forward signals; its exit status (128 + signal when killed by one)."""
    child = subprocess.Popen(command, stderr=subprocess.PIPE, preexec_fn=_die_with(os.getpid()))
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda received, _frame: child.send_signal(received))
    relay(child.stderr, sys.stderr.buffer)
    status = child.wait()
    return status if status >= 0 else 128 - status
