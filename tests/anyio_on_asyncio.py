"""A pytest plugin, loaded with `-p` by pyproject.toml's pytest options: every anyio test and async fixture of the
suite runs on asyncio, the event loop kpy runs on (anyio's own `anyio_backend` runs each on every backend
installed). Session-scoped, so that async fixtures of any scope may use it."""
import pytest


class AsyncioBackend:
    @pytest.fixture(scope="session")
    @staticmethod
    def anyio_backend() -> str:
        return "asyncio"


def pytest_configure(config: pytest.Config) -> None:
    # Registered here, after the plugins of installed packages (anyio's among them) are: of two global fixtures of
    # one name, pytest uses the one registered last.
    config.pluginmanager.register(AsyncioBackend(), "kpy-anyio-backend")
