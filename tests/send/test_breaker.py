"""The circuit breaker on a ManualClock: trip, probe, back off, close, give up."""

from __future__ import annotations

import asyncio

from bulk_delete.clock import ManualClock
from bulk_delete.send.answers import Answer, Verdict
from bulk_delete.send.breaker import CircuitBreaker, State

DOWN = Answer(Verdict.TRANSIENT, 503, "HTTP 503 with a non-JSON body")
UP = Answer(Verdict.QUEUED, 200, "queued")
LIMITED = Answer(Verdict.RATE_LIMITED, 429, "exceeded the limit")


def test_a_blip_spends_attempts_an_outage_does_not() -> None:
    breaker = CircuitBreaker(ManualClock(), give_up_after=120)
    assert [breaker.record(DOWN) for _ in range(4)] == [True] * 4  # a blip: the retry policy
    assert breaker.record(DOWN) is False  # the fifth in a row trips it: an outage
    assert breaker.state is State.OPEN
    assert breaker.record(DOWN) is False  # answers still coming back from before the trip


def test_any_real_answer_proves_the_service_is_up() -> None:
    for answer in (UP, LIMITED, Answer(Verdict.FAILED, 400, "bad body")):
        breaker = CircuitBreaker(ManualClock(), give_up_after=120)
        for _ in range(4):
            breaker.record(DOWN)
        breaker.record(answer)
        assert breaker.failures_in_a_row == 0
        breaker.record(DOWN)
        assert breaker.state is State.CLOSED  # counting starts again


async def test_one_probe_goes_out_and_the_pause_doubles() -> None:
    clock = ManualClock(start=0.0)
    breaker = CircuitBreaker(clock, give_up_after=120)
    for _ in range(5):
        breaker.record(DOWN)
    admitted: list[tuple[int, float]] = []

    async def caller(n: int) -> None:
        await breaker.admit()
        admitted.append((n, clock.now()))

    callers = [asyncio.create_task(caller(n)) for n in range(3)]
    await clock.advance(0.99)
    assert admitted == []  # nobody calls while open
    await clock.advance(0.01)
    assert len(admitted) == 1  # one probe at t=1
    assert breaker.state is State.HALF_OPEN
    breaker.record(DOWN)  # the probe failed: the next one in 2 s
    assert breaker.probe_at == 3.0
    await clock.advance(2.0)
    assert len(admitted) == 2
    breaker.record(UP)  # the probe got through: everyone goes on
    await clock.advance(0)
    assert len(admitted) == 3
    assert breaker.state in {State.CLOSED}  # (a set: mypy keeps the narrowing of "is" above)
    await asyncio.gather(*callers)


async def test_gives_up_only_after_no_success_for_give_up_after() -> None:
    clock = ManualClock(start=0.0)
    breaker = CircuitBreaker(clock, give_up_after=30)
    for _ in range(5):
        breaker.record(DOWN)
    probes = []
    while not breaker.gave_up:
        clock.jump(breaker.probe_at - clock.now())
        await breaker.admit()  # the probe, at once: its time has come
        probes.append(clock.now())
        breaker.record(DOWN)
    # The pause doubles (1, 2, 4, 8 s); the last probe goes when give_up_after runs out, not
    # a doubled pause later (a 16 s pause would have stopped the run at 31 s).
    assert probes == [1.0, 3.0, 7.0, 15.0, 30.0]
    assert breaker.down_for == 30


def test_refusals_prove_the_service_up_but_not_that_a_call_gets_through() -> None:
    clock = ManualClock(start=0.0)
    breaker = CircuitBreaker(clock, give_up_after=20)
    for _ in range(30):
        clock.jump(1.0)
        breaker.record(LIMITED)
    assert not breaker.gave_up  # up: it answers
    assert breaker.refused_too_long  # but nothing was accepted for 30 s
    breaker.record(Answer(Verdict.FAILED, 400, "bad body"))  # an answer on the body: accepted
    assert not breaker.refused_too_long
