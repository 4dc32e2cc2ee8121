"""Leader election against the in-process fake API: the timing rules, acquiring and renewing a Lease, handing it
over on a graceful stop (released) and on a crash (expired), and stepping down when renewals fail."""
from __future__ import annotations

import asyncio

import pytest

from kpy_components.client.leaderelection import HOLDER_VERSION, LeaderElectionConfig, LeaderElector
from kpy_components.version import VERSION
from test_client_fake_api import Fault, eventually, fake_api  # noqa: F401

pytestmark = pytest.mark.anyio
LEASE = ("coordination.k8s.io", "v1", "leases", "kube-system", "kpy-test")


def config(identity: str, **changes) -> LeaderElectionConfig:
    timing = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.2}
    return LeaderElectionConfig("kpy-test", identity, **{**timing, **changes})


# --- configuration -------------------------------------------------------------------------------------------------

def test_defaults_are_kube_schedulers_and_valid():
    defaults = LeaderElectionConfig("kube-scheduler", "host-a")
    assert (defaults.lease_duration, defaults.renew_deadline, defaults.retry_period) == (15, 10, 2)
    assert defaults.lease_namespace == "kube-system" and defaults.lease_duration_seconds == 15
    assert config("a", lease_duration=1.5).lease_duration_seconds == 2  # rounded up, never down


@pytest.mark.parametrize("changes, message", [
    ({"lease_duration": 10, "renew_deadline": 10}, "lease_duration (10) must be greater than renew_deadline (10)"),
    ({"renew_deadline": 0.6, "retry_period": 0.5}, "renew_deadline (0.6) must be greater than retry_period (0.5) "
                                                   "x 1.2 = 0.6"),
    ({"retry_period": 0}, "retry_period (0) must be greater than 0"),
    ({"identity": ""}, "identity must not be empty"),
], ids=["duration-vs-deadline", "deadline-vs-retry", "zero-retry", "no-identity"])
def test_bad_timing_raises_a_value_error_naming_the_settings(changes, message):
    identity = changes.pop("identity", "a")
    with pytest.raises(ValueError, match="leader election: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        config(identity, **changes)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError) as raised:
        LeaderElectionConfig("", "", lease_duration=-1, renew_deadline=-1, retry_period=-1)
    message = str(raised.value)
    for name in ("lease_name", "identity", "lease_duration", "renew_deadline", "retry_period"):
        assert name in message


# --- electing ------------------------------------------------------------------------------------------------------

class Candidate:
    """A LeaderElector whose work just waits, with what its callbacks saw."""

    def __init__(self, client, identity: str, **changes):
        self.identity, self.events, self.leading = identity, [], asyncio.Event()
        self.work_cancelled = False
        self.elector = LeaderElector(client, config(identity, **changes), on_started_leading=self.work,
                                     on_stopped_leading=lambda: self.events.append("stopped"),
                                     on_new_leader=lambda holder: self.events.append(f"leader={holder}"))
        self.task = asyncio.create_task(self.elector.run())

    async def work(self):
        self.events.append("started")
        self.leading.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.work_cancelled = True
            raise

    async def stop(self):
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.fixture
async def client(fake_api):
    async with fake_api.client() as client:
        yield client


async def test_the_first_candidate_creates_the_lease_and_renews_it(fake_api, client):
    leader = Candidate(client, "a")
    try:
        await asyncio.wait_for(leader.leading.wait(), 2)
        spec = fake_api.objects[LEASE]["spec"]
        assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 1
        assert spec["leaseTransitions"] == 0 and spec["acquireTime"] == spec["renewTime"]
        assert leader.events == ["leader=a", "started"] and leader.elector.is_leader
        first_renew = spec["renewTime"]
        await eventually(lambda: fake_api.objects[LEASE]["spec"]["renewTime"] != first_renew)
        assert fake_api.objects[LEASE]["spec"]["acquireTime"] == spec["acquireTime"]
        # The holder's version, written on create and kept on every renewal (the upgrade reads it).
        assert fake_api.objects[LEASE]["metadata"]["annotations"] == {HOLDER_VERSION: VERSION}
    finally:
        await leader.stop()


async def test_a_graceful_stop_releases_and_the_standby_takes_over_at_once(fake_api, client):
    first = Candidate(client, "a")
    await asyncio.wait_for(first.leading.wait(), 2)
    second = Candidate(client, "b")
    try:
        await eventually(lambda: "leader=a" in second.events)
        await asyncio.sleep(0.5)  # several retry periods: the standby must keep waiting
        assert not second.leading.is_set() and fake_api.objects[LEASE]["spec"]["holderIdentity"] == "a"
        loop = asyncio.get_running_loop()
        stopped_at = loop.time()
        await first.stop()
        assert first.events == ["leader=a", "started", "stopped"] and first.work_cancelled
        assert not first.elector.is_leader
        await asyncio.wait_for(second.leading.wait(), 2)
        assert loop.time() - stopped_at < 1.0  # released: well within one lease duration
        spec = fake_api.objects[LEASE]["spec"]
        assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
        assert second.events == ["leader=a", "leader=b", "started"]
    finally:
        await second.stop()


async def test_a_crashed_leaders_lease_is_taken_only_after_it_expires(fake_api, client):
    first = Candidate(client, "a", release_on_cancel=False)
    await asyncio.wait_for(first.leading.wait(), 2)
    second = Candidate(client, "b")
    try:
        await eventually(lambda: "leader=a" in second.events)
        await first.stop()  # no release: as if the process died
        assert fake_api.objects[LEASE]["spec"]["holderIdentity"] == "a"
        loop = asyncio.get_running_loop()
        last_renew = loop.time()
        await asyncio.wait_for(second.leading.wait(), 3)
        waited = loop.time() - last_renew
        assert 0.5 <= waited < 1.0 + 2 * 0.2 * 2.2 + 0.3  # expiry, give or take the retry periods
        assert fake_api.objects[LEASE]["spec"]["leaseTransitions"] == 1
    finally:
        await second.stop()


async def test_the_leader_steps_down_when_it_cannot_renew_within_the_deadline(fake_api, client):
    leader = Candidate(client, "a")
    await asyncio.wait_for(leader.leading.wait(), 2)
    loop = asyncio.get_running_loop()
    fake_api.faults.append(Fault("GET", "/leases/kpy-test", 503, times=1000))
    broken_at = loop.time()
    await asyncio.wait_for(leader.task, 3)  # run() returns once leadership is lost
    assert loop.time() - broken_at < 0.6 + 0.2 + 0.3  # renew_deadline (+ the retry period it noticed in)
    assert leader.events[-1] == "stopped" and leader.work_cancelled and not leader.elector.is_leader
    assert fake_api.objects[LEASE]["spec"]["holderIdentity"] == "a"  # not released: it could not be reached


async def test_the_end_of_the_work_releases_the_lease_and_its_error_is_raised(fake_api, client):
    async def work():
        raise RuntimeError("the scheduler crashed")
    elector = LeaderElector(client, config("a"), on_started_leading=work)
    with pytest.raises(RuntimeError, match="the scheduler crashed"):
        await asyncio.wait_for(elector.run(), 2)
    assert fake_api.objects[LEASE]["spec"]["holderIdentity"] == ""


async def test_a_conflicting_writer_makes_the_attempt_fail_not_crash(fake_api, client):
    fake_api.faults.append(Fault("POST", "/leases", 409, reason="AlreadyExists"))
    leader = Candidate(client, "a")
    try:
        await asyncio.wait_for(leader.leading.wait(), 2)  # the next attempt creates it
        assert len([r for r in fake_api.requests if r[0] == "POST"]) == 2
    finally:
        await leader.stop()
