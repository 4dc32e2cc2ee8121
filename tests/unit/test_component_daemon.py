"""The node daemons' shared life: stopped by a signal, failed work, and bad configuration, each with its exit code."""
import asyncio

from kpy_components.component import daemon


def test_a_stop_cancels_the_work_and_exits_ok():
    cancelled = []

    async def work():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def scenario():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, stop.set)
        return await daemon.until_stopped(work(), stop, "test")
    assert asyncio.run(scenario()) == daemon.EXIT_OK and cancelled == [True]


def test_work_that_fails_or_ends_exits_failed(caplog):
    async def failing():
        raise RuntimeError("boom")

    async def ending():
        return None

    async def scenario(work):
        return await daemon.until_stopped(work(), asyncio.Event(), "test")
    assert asyncio.run(scenario(failing)) == daemon.EXIT_FAILED
    assert "boom" in caplog.text
    assert asyncio.run(scenario(ending)) == daemon.EXIT_FAILED
