"""--notify: word when a run ends, decided at the CLI's one exit, posted by send/notify_post.py.

A command that sends calls ``notify_from`` once its options are known (a healthchecks URL gets
its ``/start``); cli/main.py calls ``notify_end`` with the exit code on every way out, so each
run is notified once, with its --summary-json document. Slack webhooks get a short text and
blocks, healthchecks URLs a ping (``/fail`` after a non-zero exit, on every end), any other URL
the summary JSON. ``--notify-on`` picks the ends; no key is ever sent, a failed post only warns.

Why: docs/design/notify.md.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from ..commands.spec import RunSpec
from ..errors import EXIT_INCOMPLETE, EXIT_OK
from ..redaction import redact
from ..summary import RunSummary

if TYPE_CHECKING:
    from ..send.notify_post import Post

_SECRET_NAMES = ("KEY", "SECRET", "TOKEN", "PASSWORD")
HEALTHCHECKS_PREFIX = "healthchecks+"
_SLACK_HOSTS = frozenset({"hooks.slack.com"})
_HEALTHCHECKS_HOSTS = frozenset({"hc-ping.com"})


def secrets_in_env() -> tuple[str, ...]:
    """Every value of an environment variable whose name says it is secret: the keys, a
    job's own key variables, and any other token a notification must never carry."""
    return tuple(
        value
        for name, value in os.environ.items()
        if any(word in name.upper() for word in _SECRET_NAMES) and len(value) >= 6
    )


def outcome_of(exit_code: int) -> str:
    """success (0), partial (1: finished, work left for a person), failure (anything else)."""
    return (
        "success"
        if exit_code == EXIT_OK
        else "partial"
        if exit_code == EXIT_INCOMPLETE
        else "failure"
    )


def kind_of(url: str) -> str:
    """slack, healthchecks or json: what a URL is sent."""
    if url.startswith(HEALTHCHECKS_PREFIX):
        return "healthchecks"
    host = (urlsplit(url).hostname or "").lower()
    if host in _SLACK_HOSTS:
        return "slack"
    if host in _HEALTHCHECKS_HOSTS or host.endswith(".hc-ping.com"):
        return "healthchecks"
    return "json"


@dataclass
class Notifier:
    """The URLs a command notifies, and which ends."""

    urls: tuple[str, ...]
    on: tuple[str, ...]
    secrets: tuple[str, ...] = field(default_factory=secrets_in_env)
    ended: bool = False

    def start(self) -> None:
        """healthchecks' /start: the run began (its end is awaited from now)."""
        from ..send.notify_post import Post

        pings = [
            Post(url=_ping(url, "start")) for url in self.urls if kind_of(url) == "healthchecks"
        ]
        _send(pings)

    def end(self, exit_code: int, summary: RunSummary | None) -> None:
        """The end, once: each URL its message, when --notify-on asks for this end."""
        if self.ended:
            return
        self.ended = True
        document = _document(summary, exit_code)
        wanted = outcome_of(exit_code) in self.on
        notes = [
            self._note(url, exit_code, document)
            for url in self.urls
            if wanted or kind_of(url) == "healthchecks"
        ]
        _send(notes)

    def _note(self, url: str, exit_code: int, document: dict[str, Any]) -> Post:
        from ..send.notify_post import Post

        kind = kind_of(url)
        message = slack_message(document, exit_code) if kind == "slack" else document
        body = json.dumps(_redacted(message, self.secrets), ensure_ascii=False, indent=2).encode()
        if kind == "healthchecks":
            return Post(url=_ping(url, "" if exit_code == EXIT_OK else "fail"), body=body)
        return Post(url=url, body=body)


def _redacted(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` with every secret blanked out of its strings: the document's values, never
    its field names, so that a secret that is also a word ("checkpoint") cannot break it."""
    if isinstance(value, dict):
        return {name: _redacted(item, secrets) for name, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, secrets) for item in value]
    return redact(value, secrets) if isinstance(value, str) else value


def _ping(url: str, what: str) -> str:
    """A healthchecks ping URL, with /start or /fail (or nothing: success)."""
    base = url.removeprefix(HEALTHCHECKS_PREFIX).rstrip("/")
    return f"{base}/{what}" if what else base


def _document(summary: RunSummary | None, exit_code: int) -> dict[str, Any]:
    """The --summary-json document of the run, with the exit code it ends with."""
    if summary is None:
        from ..clock import SystemClock
        from ..commands.common import summary_before_start

        summary = summary_before_start(None, SystemClock(), "ended before a summary was made")
    if summary.exit_code != exit_code:
        summary = summary.ended(exit_code, summary.error)
    return summary.to_json()


def slack_message(document: dict[str, Any], exit_code: int) -> dict[str, Any]:
    """A short text (what notifications and phones show) and blocks: headline, then counts."""
    totals, run = document["totals"], document["this_run"]
    name = (
        document["label"]
        or os.path.basename(document["input"] or document["checkpoint"])
        or "bulk-delete"
    )
    mark = {"success": "✅", "partial": "⚠️", "failure": "❌"}[outcome_of(exit_code)]
    text = f"{mark} bulk-delete {name}: exit {exit_code}, {run['result']}"
    if document["error"]:
        text += f": {document['error']}"
    counts = (
        f"queued {totals['queued']:,}/{totals['requests']:,} · failed {totals['failed']:,} · "
        f"pending {totals['pending']:,} · invalid rows {totals['invalid_rows']:,}"
    )
    where = f"host {document['host'] or '—'} · checkpoint {document['checkpoint'] or '—'}"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": counts}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": where}]},
        ],
    }


def _send(notes: list[Post]) -> None:
    """Post them (10 s at most each, all at once); a failure is a warning on stderr."""
    if not notes:
        return
    for reason in asyncio.run(_post(notes)):
        click.echo(f"warning: notification not delivered: {reason}", err=True)


async def _post(notes: list[Post]) -> list[str]:
    """Every note at once (a slow receiver does not hold up the others); the failures."""
    import aiohttp

    from ..send.notify_post import post

    async with aiohttp.ClientSession() as session:
        reasons = await asyncio.gather(*(post(session, note) for note in notes))
    return [reason for reason in reasons if reason]


def notify_from(ctx: click.Context, spec: RunSpec) -> None:
    """The command's --notify URLs (a job's ``notify``), kept for the one exit; healthchecks
    URLs get /start now."""
    if not spec.notify or "notify" in ctx.meta:
        return
    notifier = Notifier(urls=spec.notify, on=spec.notify_on)
    ctx.meta["notify"] = notifier
    notifier.start()


def notify_end(ctx: click.Context, exit_code: int) -> None:
    """At the one exit: the end, to every URL the command named (none: nothing)."""
    notifier: Notifier | None = ctx.meta.get("notify")
    if notifier is None:
        return
    target = ctx.meta.get("summary")
    notifier.end(exit_code, getattr(target, "summary", None))
