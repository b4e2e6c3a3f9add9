"""`verify`: after a run, ask LeadSquared what is left of each queued request, and record it.

This module is the command: the host, the checkpoint and its lock, the limiter (from the limit
a run learned), the preflight, and the VerifySummary returned. How to ask (per lead or per
code) and when an answer is trusted is the strategy in verify_strategy.py.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..clock import Clock, utc_text
from ..config import Credentials, RateLimit
from ..errors import InputError, Interrupted
from ..files import require_file
from ..send import recording
from ..send.client import LeadSquaredClient
from ..send.pool import Pool, StopSwitch
from ..summary import VerifySummary
from . import backups, verify_strategy
from .common import checkpoint_path_of, host_of, ignore, spending
from .preflight import preflight
from .spec import RunSpec

if TYPE_CHECKING:  # (the client imports aiohttp when a session is first opened)
    import aiohttp


async def verify(
    spec: RunSpec,
    credentials: Credentials,
    *,
    session: aiohttp.ClientSession,
    on_choice: Callable[[verify_strategy.Choice, RateLimit], None] = ignore,
    on_notice: Callable[[str], None] = ignore,  # one line worth saying (a long Retry-After)
    clock: Clock,
    rng: random.Random,
    stop: StopSwitch | None = None,
) -> VerifySummary:
    """Ask LeadSquared what is left of each queued request (or a sample) and record it."""
    host = host_of(spec)
    path = checkpoint_path_of(spec)
    require_file(path, "checkpoint", missing="no such checkpoint")
    # Verify's calls spend the account's budget like the run's: the machine's ledger, one
    # limiter for the preflight and the pool, and --daily-limit counts them.
    client = LeadSquaredClient(session, host, credentials, auth=spec.auth)
    calling = spending(spec, credentials, path, clock, on_notice)
    with calling as (checkpoint, limiter, _):
        if not checkpoint.has_plan:
            raise InputError(f"{path}: the checkpoint holds no plan")
        items = checkpoint.to_verify(spec.sample, rng)
        if items and spec.preflight:
            await preflight(
                client, limiter, clock, rng=rng, give_up_after=spec.give_up_after, stop=stop
            )
        pool = Pool.for_reads(  # after the preflight: its breaker's clocks start now
            spec.send_settings(),
            clock=clock,
            rng=rng,
            limiter=limiter,
            stop=stop,
            checkpoint=checkpoint,
            drain_seconds=0.0,  # a read has nothing to drain: a signal stops verify at once
        )
        choice = None
        if items:
            until = utc_text(clock.wall())
            with recording.calling("verify"):
                choice, firsts = await verify_strategy.choose(pool, client, items, until)
                on_choice(choice, limiter.effective)
                await verify_strategy.check(pool, client, checkpoint, items, choice, firsts, until)
        found = checkpoint.verification()
        summary = VerifySummary(
            checkpoint=checkpoint.location,
            strategy=choice.strategy if choice else None,
            calls=pool.progress.figures.calls,
            checked_now=len(items),
            verification=found,
            unverified_notes=tuple(checkpoint.unverified_notes()),
            backup=backups.verified(checkpoint),
        )
    if stop is not None and stop.is_set():
        error = Interrupted("interrupted; every check made is saved. Rerun to go on.")
        raise error
    return summary
