"""One call before the first that spends anything: wrong keys or a wrong --host stop here.

`run`, `verify`, `plan --discover` and `--check-codes` ask UserByAccessKey.Get first (with
--preflight), because a mistake found by the first delete is found too late: that call may
already have gone to another region's host, and a 401 halfway through a run leaves it cut
short. The call answers on every regional host, so it can name the account's own.
"""

from __future__ import annotations

import random
from urllib.parse import urlsplit

from ..clock import Clock
from ..config import DEFAULT_GIVE_UP_AFTER
from ..errors import ServiceDownError, WrongHost
from ..send import recording
from ..send.answers import Verdict
from ..send.client import LeadSquaredClient
from ..send.limiter import SlidingWindowLimiter
from ..send.pool import StopSwitch, call_once
from ..send.retry import RetryPolicy

PREFLIGHT_ATTEMPTS = 3


async def preflight(
    client: LeadSquaredClient,
    limiter: SlidingWindowLimiter,
    clock: Clock,
    *,
    rng: random.Random,
    give_up_after: float = DEFAULT_GIVE_UP_AFTER,
    stop: StopSwitch | None = None,
) -> str:
    """One call before the first delete (UserByAccessKey.Get, which answers on every regional
    host): wrong keys stop here, and so does a --host that is not the account's own. An
    outage is ridden out for ``give_up_after`` seconds, as the deletes would; a host name
    that does not exist stops it at once, and so does ``stop`` (Interrupted): a signal cuts
    every wait short, for a full window as for an outage. Returns the keys' user as the
    account names it (its email address, else its name; "" when it names none), for the
    report to say whose keys purged."""
    retry = RetryPolicy(max_attempts=PREFLIGHT_ATTEMPTS, cap=2.0, give_up_after=give_up_after)
    with recording.calling("preflight"):
        answer, body = await call_once(
            limiter,
            client.user_by_access_key,
            retry=retry,
            clock=clock,
            rng=rng,
            stop=stop,
        )
    if body:
        _check_host(client.host, body)
        return user_of(body)
    if answer.verdict is Verdict.TRANSIENT:
        raise ServiceDownError(
            f"the API did not answer the preflight check ({answer.message}); rerun later"
        )
    return ""


def user_of(user: dict[str, object]) -> str:
    """The user UserByAccessKey.Get names: its email address, else its first and last name."""
    email = user.get("EmailAddress")
    if isinstance(email, str) and email.strip():
        return email.strip()
    names = (user.get("FirstName"), user.get("LastName"))
    return " ".join(name.strip() for name in names if isinstance(name, str) and name.strip())


def _check_host(host: str, user: dict[str, object]) -> None:
    urls = user.get("LSQCommonServiceURLs")
    api = urls.get("api") if isinstance(urls, dict) else None
    if not isinstance(api, str) or not api.strip():
        return
    account = api.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/")
    if account != (urlsplit(host).netloc or "").lower():
        raise WrongHost(
            f"stopped before any delete: this account's API host is {account}, not "
            f"{urlsplit(host).netloc}: use --host https://{account}",
            http_status=200,
        )
