"""Circuit breaker transitions with an injected clock."""

from __future__ import annotations

from engine.routing import breaker as br

P = br.BreakerPolicy(failure_threshold=3, reset_s=10, reset_max_s=40)


def test_opens_after_threshold_then_half_opens_after_wait_and_closes_on_success() -> None:
    b = br.Breaker()
    for t in (0, 1):
        b = br.on_failure(b, t, P, "boom")
        assert b.state == br.CLOSED
    b = br.on_failure(b, 2, P, "boom")
    assert b.state == br.OPEN and b.next_probe_at == 12
    assert not br.allows(b, 11.9)
    assert br.allows(b, 12)
    b = br.before_request(b, 12)
    assert b.state == br.HALF_OPEN
    b = br.on_success(b, 12.5)
    assert b == br.Breaker()


def test_half_open_failure_reopens_with_doubled_wait_capped() -> None:
    b = br.Breaker()
    for t in range(3):
        b = br.on_failure(b, t, P)
    waits = []
    now = 2.0
    for _ in range(4):
        now = b.next_probe_at or now
        b = br.on_failure(br.before_request(b, now), now, P)
        waits.append(b.next_probe_at - now)  # type: ignore[operator]
    assert waits == [20, 40, 40, 40]


def test_success_resets_the_failure_count() -> None:
    b = br.on_failure(br.on_failure(br.Breaker(), 0, P), 1, P)
    b = br.on_success(b, 2)
    b = br.on_failure(b, 3, P)
    assert b.state == br.CLOSED and b.failures == 1


def test_forced_open_stays_open_until_reset() -> None:
    b = br.force_open(br.Breaker(), 0)
    assert not br.allows(b, 10_000)
    assert br.on_success(b, 1).state == br.OPEN
    assert br.reset(b).state == br.CLOSED


def _opened_at(t: float) -> br.Breaker:
    b = br.Breaker()
    for _i in range(3):
        b = br.on_failure(b, t, P, "boom")
    return b  # next probe at t + 10


def test_half_open_lets_exactly_one_probe_through_until_it_reports() -> None:
    b = _opened_at(0)
    b, first = br.try_acquire(b, 10, probe_timeout_s=60)
    assert first and b.state == br.HALF_OPEN
    assert not br.allows(b, 11), "a probe is already in flight"
    b2, second = br.try_acquire(b, 11, probe_timeout_s=60)
    assert not second and b2 == b
    assert br.on_success(b, 12) == br.Breaker()
    reopened = br.on_failure(b, 12, P, "still down")
    assert reopened.state == br.OPEN and reopened.next_probe_at == 12 + 20


def test_closed_breaker_takes_any_number_of_requests() -> None:
    b = br.Breaker()
    for t in range(5):
        b, ok = br.try_acquire(b, t, probe_timeout_s=1)
        assert ok and b == br.Breaker()


def test_a_probe_that_never_reports_frees_its_slot_after_the_timeout() -> None:
    b, _ = br.try_acquire(_opened_at(0), 10, probe_timeout_s=5)
    assert not br.allows(b, 14.9)
    assert br.allows(b, 15)
    b, again = br.try_acquire(b, 15, probe_timeout_s=5)
    assert again and b.state == br.HALF_OPEN and b.probe_until == 20


def test_a_released_probe_slot_is_free_again_at_once() -> None:
    b, _ = br.try_acquire(_opened_at(0), 10, probe_timeout_s=60)
    b = br.release_probe(b)
    assert b.state == br.HALF_OPEN and br.allows(b, 10)
    assert br.release_probe(br.Breaker()) == br.Breaker()
