"""What an answer means: every HTTP answer or transport error becomes one Answer.

``classify`` and ``classify_exception`` give each a Verdict: queued (200 "Success"), failed
(400 and other 4xx, 500 "MX…"), limited (a refusal naming a rate, 429), allowance (a refusal
naming a window of an hour or more), fatal (401, 403, 404, 3xx, a host that does not exist),
transient (other 5xx, HTML, resets, timeouts, 408/499, a body over ``MAX_BODY``: retried).
Pure functions; they never see a key (the client redacts first, redaction.py).

The whole table and why: docs/design/answers.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..config import RateLimit, regional_hosts
from ..errors import FatalAPIError
from ..redaction import redact


class Verdict(StrEnum):
    QUEUED = "queued"
    FAILED = "failed"
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    ALLOWANCE = "allowance"  # a refusal naming a window of an hour or more
    FATAL = "fatal"


@dataclass(frozen=True, slots=True)
class Answer:
    verdict: Verdict
    http_status: int | None = None
    message: str = ""
    retry_after: float | None = None
    limit: RateLimit | None = None  # the account's limit, when a refusal names it
    allowance: RateLimit | None = None  # the allowance an ALLOWANCE refusal names
    unreached: str = ""  # no connection was made: why, and to what ("connection refused at …")


# Real tenants refuse with 429, with 403, even with 200 "Status": "Error"; the message is the
# reliable part, and it states the account's real limit.
_REFUSAL_RE = re.compile(
    r"exceeded the limit of (\d+) in (\d+(?:\.\d+)?) (second|minute|hour|day)", re.IGNORECASE
)
_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
# A window this long is an allowance, not a pace: learning "10,000 in 86400 s" as a rate would
# keep calling into refusals all day.
ALLOWANCE_WINDOW = 3600.0


def named_limit(message: str) -> RateLimit | None:
    """The limit a refusal names ("... exceeded the limit of 10 in 5 second(s)"), any window."""
    match = _REFUSAL_RE.search(message)
    if match is None or int(match.group(1)) <= 0 or float(match.group(2)) <= 0:
        return None
    period = float(match.group(2)) * _UNIT_SECONDS[match.group(3).lower()]
    return RateLimit(calls=int(match.group(1)), period=period)


def refusal_limit(message: str) -> RateLimit | None:
    """The pace a rate refusal names; None when it names none, or an allowance."""
    limit = named_limit(message)
    return limit if limit is not None and limit.period < ALLOWANCE_WINDOW else None


def allowance_limit(message: str) -> RateLimit | None:
    """The allowance a refusal names ("... the limit of 10000 in 86400 second(s)")."""
    limit = named_limit(message)
    return limit if limit is not None and limit.period >= ALLOWANCE_WINDOW else None


MAX_MESSAGE = 300
MAX_BODY = 1 << 20  # bytes of an answer read at most
TIMEOUT_STATUSES = (408, 499)  # a proxy's or load balancer's request timeout
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def classify(status: int, text: str, headers: Any = None) -> Answer:
    """An HTTP answer → Answer."""
    body = _json_object(text)
    api_message = _api_message(body) if body is not None else ""
    allowance = allowance_limit(api_message or text[:MAX_MESSAGE])
    if allowance is not None:
        message = api_message or f"HTTP {status}: API calls exceeded the allowance"
        return Answer(Verdict.ALLOWANCE, status, message, _retry_after(headers), None, allowance)
    limit = refusal_limit(api_message or text[:MAX_MESSAGE])
    if limit is not None:
        return Answer(
            Verdict.RATE_LIMITED,
            status,
            api_message or f"HTTP {status}: API calls exceeded the limit",
            _retry_after(headers),
            limit,
        )
    if status == 200:
        if body is not None and str(body.get("Status", "")).lower() == "success":
            return Answer(Verdict.QUEUED, status, _success_message(body))
        if body is not None and str(body.get("Status", "")).lower() == "error":
            return Answer(Verdict.FAILED, status, api_message or "the API answered Status Error")
        return Answer(Verdict.TRANSIENT, status, "HTTP 200 without a JSON Success body")
    if status == 429:
        return Answer(
            Verdict.RATE_LIMITED,
            status,
            api_message or "HTTP 429 Too Many Requests",
            _retry_after(headers),
        )
    if status in (401, 403, 404):
        return Answer(Verdict.FATAL, status, api_message or f"HTTP {status}")
    if 300 <= status < 400:
        location = (headers or {}).get("Location") or "(no Location)"
        return Answer(Verdict.FATAL, status, f"HTTP {status} redirect to {location}")
    if status in TIMEOUT_STATUSES:
        return Answer(Verdict.TRANSIENT, status, api_message or f"HTTP {status} (a timeout)")
    if 400 <= status < 500:
        return Answer(Verdict.FAILED, status, api_message or f"HTTP {status}")
    if status == 500 and body is not None and str(body.get("ExceptionType", "")).startswith("MX"):
        return Answer(Verdict.FAILED, status, api_message or str(body["ExceptionType"]))
    if body is None:
        return Answer(Verdict.TRANSIENT, status, f"HTTP {status} with a non-JSON body")
    return Answer(Verdict.TRANSIENT, status, api_message or f"HTTP {status}")


def classify_exception(error: BaseException, secrets: tuple[str, ...] = ()) -> Answer:
    """A transport error (reset, refused, timeout, …) → a transient Answer, redacted."""
    if isinstance(error, asyncio.TimeoutError | TimeoutError):
        return Answer(Verdict.TRANSIENT, None, "timed out waiting for the answer")
    text = _QUOTED_BYTES.sub(" (the bytes it quoted are left out)", str(error))
    return Answer(
        Verdict.TRANSIENT,
        None,
        redact(f"{type(error).__name__}: {text or type(error).__name__}", secrets),
    )


# aiohttp's parser quotes the bytes it could not read on the lines after its reason (in a
# repr inside the error's text: escaped). They end where the chunk it was given ends, so a key
# there may be cut short, and a part of a key is what the redactor, which knows whole keys,
# lets through: the reason is kept, the bytes are not.
_QUOTED_BYTES = re.compile(r":?(?:\\n|\n).*", re.DOTALL)


def body_over_cap(status: int) -> Answer:
    """An answer whose body is bigger than MAX_BODY: left unread, and retried."""
    return Answer(Verdict.TRANSIENT, status, f"answer body over {MAX_BODY >> 20} MB; not read")


def unresolved(host: str, error: OSError) -> Answer:
    """The host name did not resolve. A name that does not exist is fatal (no wait makes it
    exist, and it is most often a typo in --host); a temporary failure of the resolver is not."""
    if isinstance(error, socket.gaierror) and error.errno in _NO_SUCH_NAME:
        return Answer(
            Verdict.FATAL,
            None,
            f"the host {host} does not resolve: check --host / LSQ_HOST "
            f"(regional hosts: {regional_hosts()})",
        )
    return Answer(Verdict.TRANSIENT, None, f"the host {host} does not resolve at the moment")


def unreachable(address: str, why: str) -> Answer:
    """Nothing accepted the connection at ``address`` (HOST:PORT): a service restarting, a
    firewall, a wrong port."""
    message = f"nothing answers at {address} ({why})"
    return Answer(Verdict.TRANSIENT, None, message, unreached=f"{why} at {address}")


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _api_message(body: dict[str, Any]) -> str:
    message = body.get("ExceptionMessage") or body.get("Message") or ""
    if isinstance(message, dict):
        message = message.get("Message", "")
    exception_type = body.get("ExceptionType") or ""
    text = str(message)
    if exception_type and exception_type not in text:
        text = f"{exception_type}: {text}" if text else str(exception_type)
    return text[:MAX_MESSAGE]


def _success_message(body: dict[str, Any]) -> str:
    message = body.get("Message")
    if isinstance(message, dict):
        message = message.get("Message")
    return str(message or "queued")[:MAX_MESSAGE]


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to one window


def fatal_error(answer: Answer) -> FatalAPIError:
    """The error that stops a run on 401/403/404, with what to check."""
    status = answer.http_status or 0
    if answer.http_status is None:  # no answer at all: the message says what is wrong
        return FatalAPIError(
            f"stopped: {answer.message}. Nothing else was sent.",
            http_status=0,
        )
    hint = {
        401: "the keys were refused: check LSQ_ACCESS_KEY / LSQ_SECRET_KEY, and that the host "
        "is your account's region (a call to the wrong region also answers 401)",
        403: "the keys are not allowed to delete activities: check the user's permissions",
        404: "the API path was not found: check the host (a base URL such as "
        "https://api-in21.leadsquared.com, with no path)",
    }.get(status, "a fatal answer")
    if 300 <= status < 400:
        hint = (
            "the host answered with a redirect, which is never followed (it would send the "
            "keys to another host); point --host at the real API host"
        )
    return FatalAPIError(
        f"stopped: HTTP {status} — {hint}. API said: {answer.message}. "
        "Nothing else was sent; rerun the same command to resume.",
        http_status=status,
        api_message=answer.message,
    )
