"""The checked-in CRI stubs are exactly what scripts/gen-cri makes from api.proto now: an edit of the proto
without regenerating (or a hand edit of a stub) fails here."""
import os
import subprocess
import sys
from pathlib import Path

from kpy_components.kubelet.cri import api_pb2

ROOT = Path(__file__).resolve().parents[2]
CRI = Path("kpy_components/kubelet/cri")
STUBS = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")


def test_checked_in_stubs_match_a_fresh_generation(tmp_path):
    subprocess.run([ROOT / "scripts/gen-cri", str(tmp_path)], check=True, capture_output=True,
                   env={**os.environ, "PYTHON": sys.executable})
    stale = [name for name in STUBS if (tmp_path / CRI / name).read_bytes() != (ROOT / CRI / name).read_bytes()]
    assert not stale, f"run scripts/gen-cri: {', '.join(stale)} differ from api.proto"


def test_the_api_is_runtime_v1():
    """containerd routes by the full method name: package and service must be the published ones."""
    services = api_pb2.DESCRIPTOR.services_by_name
    assert api_pb2.DESCRIPTOR.package == "runtime.v1"
    assert services["RuntimeService"].full_name == "runtime.v1.RuntimeService"
    assert services["ImageService"].full_name == "runtime.v1.ImageService"
