"""Every component's metrics registry reports the version its running code was built as (kubernetes_build_info),
which an upgrade reads to tell old from new."""
from prometheus_client import generate_latest

from kpy_components.component.health import component_registry
from kpy_components.version import VERSION


def test_build_info_names_the_running_version_and_process_metrics_are_there():
    text = generate_latest(component_registry()).decode()
    build_info = [line for line in text.splitlines() if line.startswith("kubernetes_build_info{")]
    assert len(build_info) == 1 and build_info[0].endswith(" 1.0")
    assert f'git_version="v{VERSION}"' in build_info[0]
    major, minor = VERSION.split(".")[:2]
    assert f'major="{major}"' in build_info[0] and f'minor="{minor}"' in build_info[0]
    assert "process_cpu_seconds_total" in text and "python_info" in text


def test_each_registry_is_its_own():
    # Several servers share a process in tests: a second registry must not clash with the first.
    first, second = component_registry(), component_registry()
    assert first is not second and b"kubernetes_build_info" in generate_latest(second)
