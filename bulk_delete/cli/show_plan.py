"""Printing a plan (plan, run --dry-run, job --dry-run) and --discover's listing progress.

Planning loads pandas, and the client aiohttp; the commands that print a notice from here
(verify, export …) need neither, so both are imported when a plan is made.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..clock import SystemClock
from ..commands.spec import RunSpec
from ..config import Credentials
from ..errors import CredentialsError
from .progress import log_line
from .summary_text import plan_report_text

if TYPE_CHECKING:
    from ..commands.plan import PlanReport


def print_plan(
    spec: RunSpec, credentials: Credentials | None = None, *, shown: Callable[[str], str] = str
) -> PlanReport:
    report = asyncio.run(_plan(spec, credentials))
    click.echo(shown(plan_report_text(report)))
    return report


async def _plan(spec: RunSpec, credentials: Credentials | None) -> PlanReport:
    from ..commands import plan as plan_command
    from ..send.client import open_session

    clock, rng = SystemClock(), random.Random()
    if not (spec.check_codes or spec.discover):
        return await plan_command.plan(
            spec, credentials=credentials or _keys_if_set(spec), clock=clock, rng=rng
        )
    credentials = credentials or Credentials.from_env()
    async with open_session(spec.send_settings()) as session:
        return await plan_command.plan(
            spec,
            credentials=credentials,
            session=session,
            clock=clock,
            rng=rng,
            on_listing=listing_progress(False),
            on_notice=notice,
        )


def _keys_if_set(spec: RunSpec) -> Credentials | None:
    """The keys, when set, for a dry run: what runs on this machine spent today is counted
    under them (--daily-limit), and a plan sent before is looked for on their account only.
    Without them the dry run counts from zero, and looks on every account."""
    try:
        return Credentials.from_env()
    except CredentialsError:
        return None


def notice(text: str) -> None:
    """One line on stderr: a note, or a warning that says it is one."""
    click.echo(text if text.startswith("warning: ") else f"note: {text}", err=True)


def listing_progress(quiet: bool) -> Callable[[str, int, int], None]:
    """--discover's listing, page by page on stderr, before the deletes' progress."""

    def show(code: str, seen: int, total: int) -> None:
        if not quiet:
            text = f"listing code {code}: {seen:,} of {total:,} activities read"
            click.echo(log_line(text), err=True)

    return show
