"""→ word: one POST to a URL the user named (a Slack webhook, a healthchecks ping, any JSON
receiver), bounded in time, its failure returned as text rather than raised.

A notification is a courtesy after the work: it must never change how the run ended, hang a
scheduler, or say more than it should. So each post has a whole-request timeout
(``NOTIFY_TIMEOUT``), follows no redirect (a redirect could carry the body elsewhere), reads
no more of the answer than its status, and a failure comes back as a reason that names the
URL by scheme and host only: Slack's and healthchecks' URLs hold their token in the path.
What to send and when, and posting several at once, is the CLI's business (cli/notify.py);
the session is passed in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..redaction import shown_url

if TYPE_CHECKING:
    import aiohttp

NOTIFY_TIMEOUT = 10.0  # seconds for one notification, connection to answer


@dataclass(frozen=True, kw_only=True)
class Post:
    """One notification: where, what (bytes), and as what content type."""

    url: str
    body: bytes = b""
    content_type: str = "application/json"


async def post(session: aiohttp.ClientSession, note: Post, seconds: float = NOTIFY_TIMEOUT) -> str:
    """POST ``note``; "" when the receiver answered 2xx, else why not (never the whole URL)."""
    import aiohttp

    headers = {"Content-Type": note.content_type} if note.body else {}
    try:
        async with asyncio.timeout(seconds):
            async with session.post(
                note.url, data=note.body, headers=headers, allow_redirects=False
            ) as answer:
                if 200 <= answer.status < 300:
                    return ""
                return f"{shown_url(note.url)} answered HTTP {answer.status}"
    except TimeoutError:
        return f"{shown_url(note.url)} did not answer within {seconds:g} s"
    except aiohttp.ClientError as error:
        return f"{shown_url(note.url)} could not be reached ({type(error).__name__})"
