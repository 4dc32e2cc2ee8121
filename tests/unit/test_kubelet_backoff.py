"""CrashLoopBackOff and ImagePullBackOff timing as upstream's flowcontrol.Backoff applies them."""
from kpy_components.kubelet.backoff import BackOff, go_duration

POD = {"metadata": {"name": "web", "namespace": "default", "uid": "u1"}}


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def crash_and_restart(backoff: BackOff, clock: Clock, ran: float) -> list[float]:
    """The container runs `ran` seconds and exits; returns how long it had to wait before each restart allowed."""
    clock.now += ran
    finished = clock.now
    waited = 0.0
    while backoff.crash_wait(POD, "app", finished) is not None:
        remaining = backoff.crash_remaining("u1", "app", finished)
        assert remaining > 0
        clock.now += remaining
        waited += remaining
    return waited


def test_first_restart_is_immediate_then_doubles_to_the_cap():
    clock = Clock()
    backoff = BackOff(clock=clock)
    waits = [crash_and_restart(backoff, clock, ran=1) for _ in range(8)]
    assert waits == [0, 10, 20, 40, 80, 160, 300, 300]


def test_waiting_message_and_event_wording():
    clock = Clock()
    backoff = BackOff(clock=clock)
    assert backoff.crash_wait(POD, "app", clock.now) is None
    clock.now += 1
    waiting = backoff.crash_wait(POD, "app", clock.now)
    assert waiting.reason == "CrashLoopBackOff"
    assert waiting.message == "back-off 10s restarting failed container=app pod=web_default(u1)"
    assert BackOff.crash_event(POD, "app") == "Back-off restarting failed container app in pod web_default(u1)"


def test_ten_minutes_without_trouble_resets_the_sequence():
    clock = Clock()
    backoff = BackOff(clock=clock)
    for _ in range(5):
        crash_and_restart(backoff, clock, ran=1)
    assert backoff.crashes.delay(("u1", "app")) == 160
    # ran 10 min + 1 s after its last restart: the entry has expired, so no wait and the next delay is 10 s again
    assert crash_and_restart(backoff, clock, ran=601) == 0
    assert backoff.crashes.delay(("u1", "app")) == 10
    # exactly 10 minutes is not enough (upstream compares with >)
    clock2 = Clock()
    other = BackOff(clock=clock2)
    for _ in range(3):
        crash_and_restart(other, clock2, ran=1)
    assert crash_and_restart(other, clock2, ran=600) == 40


def test_containers_and_pods_are_independent_and_forget_clears_a_pod():
    clock = Clock()
    backoff = BackOff(clock=clock)
    other_pod = {"metadata": {"name": "db", "namespace": "default", "uid": "u2"}}
    assert backoff.crash_wait(POD, "app", clock.now) is None
    assert backoff.crash_wait(POD, "app", clock.now) is not None
    assert backoff.crash_wait(POD, "sidecar", clock.now) is None
    assert backoff.crash_wait(other_pod, "app", clock.now) is None
    backoff.forget("u1")
    assert backoff.crash_wait(POD, "app", clock.now) is None
    assert backoff.crash_wait(other_pod, "app", clock.now) is not None


def test_image_pull_backoff_counts_from_the_failure_and_success_forgets():
    clock = Clock()
    backoff = BackOff(clock=clock)
    assert backoff.pull_wait(POD, "busybox:nope") is None
    backoff.pull_failed("u1", "busybox:nope")
    waiting = backoff.pull_wait(POD, "busybox:nope")
    assert (waiting.reason, waiting.message) == ("ImagePullBackOff", 'Back-off pulling image "busybox:nope"')
    assert backoff.pull_remaining("u1", "busybox:nope") == 10
    clock.now += 9.5
    assert backoff.pull_wait(POD, "busybox:nope") is not None
    clock.now += 0.5
    assert backoff.pull_wait(POD, "busybox:nope") is None
    backoff.pull_failed("u1", "busybox:nope")
    assert backoff.pull_remaining("u1", "busybox:nope") == 20
    # another pod pulling the same image is not held back by this pod's failures (keyed by pod UID and image)
    assert backoff.pull_wait({"metadata": {"uid": "u2"}}, "busybox:nope") is None
    backoff.pull_succeeded("u1", "busybox:nope")
    assert backoff.pull_wait(POD, "busybox:nope") is None
    backoff.pull_failed("u1", "busybox:nope")
    assert backoff.pull_remaining("u1", "busybox:nope") == 10


def test_gc_drops_entries_idle_for_twice_the_cap():
    clock = Clock()
    backoff = BackOff(clock=clock)
    backoff.pull_failed("u1", "a")
    clock.now += 500
    backoff.pull_failed("u1", "b")
    clock.now += 101
    backoff.gc()
    assert backoff.pulls.delay(("u1", "a")) == 0
    assert backoff.pulls.delay(("u1", "b")) == 10


def test_go_duration():
    assert [go_duration(s) for s in (10, 80, 160, 300, 3600)] == ["10s", "1m20s", "2m40s", "5m0s", "1h0m0s"]
