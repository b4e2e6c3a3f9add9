"""`job`: a scheduled cleanup's steps, in their order, as one coroutine.

Under the job's lock: refuse the requests another job's checkpoint holds (unless ``force``),
verify the previous run (``verify_previous``), finish the previous run's pending requests, then
send this run's window. It returns this run's RunSummary and raises as `run` does; what a person
sees comes through ``JobHooks``. The job file itself is read by job_file.py.

    summary = await job(loaded, now, env=os.environ, values={}, force=False,
                        session=session, hooks=hooks, clock=clock, rng=rng, stop=stop)
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..config import RateLimit
from ..errors import BulkDeleteError, SameRequests
from ..send.pool import StopSwitch
from ..summary import RunSummary, VerifySummary
from . import run as run_command
from . import verify as verify_command
from .common import fingerprints_of, ignore
from .job_file import Job
from .spec import RunSpec
from .verify_strategy import Choice

if TYPE_CHECKING:  # (the client imports aiohttp when a session is first opened)
    import aiohttp


@dataclass(frozen=True, kw_only=True)
class JobHooks:
    """How the job tells whoever runs it what it does. ``sending`` gives each run its
    RunHooks for as long as it sends (the CLI's progress line and outcome log)."""

    sending: Callable[[RunSpec], AbstractContextManager[run_command.RunHooks]]
    on_verifying: Callable[[Path], None] = ignore  # the previous run's checkpoint, before
    on_choice: Callable[[Choice, RateLimit], None] = ignore  # how verify asks
    on_verified: Callable[[VerifySummary], None] = ignore  # what verify found
    on_finishing: Callable[[Path], None] = ignore  # the previous run's pending requests, before
    on_finished: Callable[[RunSpec, RunSummary], None] = ignore  # … and once they are sent
    on_notice: Callable[[str], None] = ignore  # something worth one line


def job_spec(
    loaded: Job, now: dt.datetime, env: Mapping[str, str], values: Mapping[str, Any]
) -> RunSpec:
    """The spec of the job's run dated ``now``, with the command line's ``values`` over it."""
    return loaded.run_spec(now, env).with_values(dict(values))


def same_requests(loaded: Job, spec: RunSpec) -> list[Path]:
    """Other jobs' checkpoints holding this plan's requests (a copy of the job file)."""
    try:
        return loaded.holding(fingerprints_of(spec))
    except BulkDeleteError:
        return []  # the plan itself fails, and says why


async def job(
    loaded: Job,
    now: dt.datetime,
    *,
    env: Mapping[str, str],
    values: Mapping[str, Any],
    force: bool,
    session: aiohttp.ClientSession,
    hooks: JobHooks,
    clock: Clock,
    rng: random.Random,
    stop: StopSwitch | None = None,
) -> RunSummary:
    """The job's run dated ``now``, after what the previous run left to do."""
    spec = job_spec(loaded, now, env, values)
    if force:  # sending a copy's requests again is meant: the machine's memory agrees
        spec = spec.replace(again=True)
    credentials = loaded.credentials(env)

    async def send(spec: RunSpec) -> RunSummary:
        with hooks.sending(spec) as run_hooks:
            return await run_command.run(
                spec,
                credentials,
                session=session,
                hooks=run_hooks,
                clock=clock,
                rng=rng,
                stop=stop,
            )

    with loaded.lock():
        if not force and (held := same_requests(loaded, spec)):
            raise SameRequests(
                f"job {loaded.name}: nothing sent; {held[0]} already holds these requests (same "
                "sheet, codes and window: a copy of this job under another name?). Resume that "
                "job instead, or pass --force to send them again."
            )
        earlier = loaded.previous_checkpoint(now)
        if loaded.verify_previous and earlier is not None:
            hooks.on_verifying(earlier)
            found = await verify_command.verify(
                spec.replace(checkpoint=earlier),
                credentials,
                session=session,
                on_choice=hooks.on_choice,
                on_notice=hooks.on_notice,
                clock=clock,
                rng=rng,
                stop=stop,
            )
            hooks.on_verified(found)
        if (unfinished := loaded.unfinished(now)) is not None:  # its pending requests first
            hooks.on_finishing(unfinished[0])
            previous = job_spec(loaded, unfinished[1], env, values)
            hooks.on_finished(previous, await send(previous))
        return await send(spec)
