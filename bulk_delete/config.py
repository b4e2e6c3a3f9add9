"""Configuration objects: frozen, keyword-only, with DEFAULT_* constants and readable reprs.

Nothing here reads the environment except ``Credentials.from_env``, and nothing here prints.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from .errors import CredentialsError, OptionError

# LeadSquared's documented limits, calls per 5 seconds, per account (all API calls together).
PLAN_LIMITS: dict[str, int] = {
    "lite": 2,
    "pro": 5,
    "basic": 10,
    "super": 10,
    "standard": 15,
    "enterprise": 25,
}
DEFAULT_PLAN = "enterprise"
DEFAULT_MAX_CODES_PER_REQUEST = 50
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_TIMEOUT = 30.0
DEFAULT_GIVE_UP_AFTER = 120.0  # seconds without a successful call before a run stops
DEFAULT_TZ = "UTC"
DAY_SECONDS = 86400.0
MAX_AUTO_CONCURRENCY = 64
# --concurrency at most: far above any rate LeadSquared sells (25 calls / 5 s needs about 150
# in flight at a 30 s timeout); a million workers would only cost memory.
MAX_CONCURRENCY = 256

# LeadSquared's regional API hosts, for messages that tell a user where to point --host.
REGIONAL_HOSTS: dict[str, str] = {
    "Singapore": "https://api.leadsquared.com",
    "US": "https://api-us11.leadsquared.com",
    "India (Mumbai)": "https://api-in21.leadsquared.com",
    "India (Hyderabad)": "https://api-in22.leadsquared.com",
    "Ireland": "https://api-ir31.leadsquared.com",
    "Canada": "https://api-ca12.leadsquared.com",
}

ENV_HOST = "LSQ_HOST"
ENV_ACCESS_KEY = "LSQ_ACCESS_KEY"
ENV_SECRET_KEY = "LSQ_SECRET_KEY"  # noqa: S105 - the variable's name, not a key

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """At most ``calls`` calls in any ``period``-second window. ``calls == 0`` means no limit."""

    calls: int
    period: float
    label: str = ""

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``25/5s``, ``5/1s``, ``10/5`` or a plan name (lite … enterprise); ``off`` for none."""
        value = text.strip().lower()
        if value in PLAN_LIMITS:
            return cls(calls=PLAN_LIMITS[value], period=5.0, label=value)
        if value in ("off", "none", "unlimited"):
            return cls(calls=0, period=1.0, label="off")
        match = _RATE_RE.match(value)
        if not match:
            plans = ", ".join(PLAN_LIMITS)
            raise OptionError(f"{text!r} is not N/Ws (like 25/5s) or a plan name ({plans})")
        calls, period = int(match.group(1)), float(match.group(2))
        if calls <= 0 or period <= 0:
            raise OptionError(f"{text!r} must have positive calls and seconds")
        if period > DAY_SECONDS:  # not a pace: a plan would take centuries, or never fit a day
            raise OptionError(
                f"{text!r}: a window longer than a day is an allowance, not a rate limit; "
                "give the day's allowance as --daily-limit"
            )
        return cls(calls=calls, period=period)

    @property
    def unlimited(self) -> bool:
        return self.calls == 0

    @property
    def per_second(self) -> float:
        return math.inf if self.unlimited else self.calls / self.period

    def eta_seconds(self, requests: int) -> float:
        """Least time ``requests`` calls can take under this limit (the physical ceiling)."""
        if self.unlimited or requests <= 0:
            return 0.0
        return requests / self.per_second

    def __str__(self) -> str:
        if self.unlimited:
            return "no limit"
        text = f"{self.calls}/{self.period:g}s"
        return f"{text} ({self.label})" if self.label else text


def normalise_host(value: str) -> str:
    """A base URL without a trailing slash, or "" for none. A bare host name means https."""
    text = value.strip().rstrip("/")
    if not text:
        return ""
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError(f"{value!r} is not an http(s) URL or host name")
    if parts.username or parts.password or parts.query:
        raise OptionError("must be a plain base URL, without credentials or query")
    # One server, one spelling: a checkpoint's account and the machine's ledger are keyed by
    # this text, and a host name has no case, nor a default port a port of its own.
    try:
        port = parts.port
    except ValueError:
        raise OptionError(f"{value!r} has a port that is not a number from 0 to 65535") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host += f":{port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def regional_hosts() -> str:
    """The regional hosts as one line, for messages."""
    return ", ".join(REGIONAL_HOSTS.values())


def require_host(host: str, variable: str = ENV_HOST) -> str:
    if not host:
        raise CredentialsError(f"no host: pass --host or set {variable}")
    return host


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """Access and secret key. The repr never shows them."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        access_var: str = ENV_ACCESS_KEY,
        secret_var: str = ENV_SECRET_KEY,
    ) -> Credentials:
        source = os.environ if env is None else env
        missing = [name for name in (access_var, secret_var) if not source.get(name, "").strip()]
        if missing:
            raise CredentialsError(
                "missing LeadSquared keys: set " + " and ".join(missing) + " in the environment"
            )
        access, secret = source[access_var].strip(), source[secret_var].strip()
        for name, value in ((access_var, access), (secret_var, secret)):
            if _CONTROL_RE.search(value):  # a header cannot carry it; name it, never show it
                raise CredentialsError(
                    f"{name} contains a line break or another control character: set it to "
                    "the key alone (copy it again from Settings → API and Webhooks)"
                )
        return cls(access_key=access, secret_key=secret)

    def secrets(self) -> tuple[str, ...]:
        return (self.access_key, self.secret_key)

    def __repr__(self) -> str:
        return "Credentials(access_key=***, secret_key=***)"


def auto_concurrency(rate: RateLimit, timeout: float) -> int:
    """Enough calls in flight that the limiter, not latency, is the bottleneck.

    ``rate × latency`` calls are in flight at the limit; sizing for the worst latency we
    accept (the timeout) keeps the limiter the bottleneck even when every call is slow.
    """
    if rate.unlimited:
        return MAX_AUTO_CONCURRENCY
    return max(2, min(MAX_AUTO_CONCURRENCY, math.ceil(rate.per_second * timeout)))


AuthMode = Literal["header", "query"]


@dataclass(frozen=True, kw_only=True)
class SendSettings:
    """The few run options the send layer reads, taken from `RunSpec.send_settings`.

    The pool and the session take this rather than the spec so that ``send/`` never imports
    ``spec`` (which imports the sheet rules, and so pandas): sending loads no numpy.
    """

    rate: RateLimit
    share: float = 1.0
    workers: int = 1
    max_attempts: int = 1
    timeout: float = 30.0
    give_up_after: float = 0.0
    retry_failed: bool = False
