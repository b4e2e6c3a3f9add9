"""What the emulator does, declared once: each knob is a field of `EmulatorConfig` and, through
its metadata, an option of `bulk-delete emulator`. No aiohttp here, so the CLI can build its
options without loading the web server."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..config import RateLimit
from ..errors import OptionError
from ..files import require_file

DEMO_ACCESS_KEY = "u$demo-access-key"
DEMO_SECRET_KEY = "demo-secret-key-0000000000000000"  # noqa: S105 - the emulator's demo key
# LeadSquared's system activities (page visits, emails, …) cannot be deleted through the API.
DEFAULT_SYSTEM_CODES = frozenset(str(code) for code in range(1, 31))
DEFAULT_EMULATOR_RATE = RateLimit(calls=25, period=5.0)
# "For all plans, the rate limit for all Bulk APIs is 1 call in 5 seconds" (the rate-limit page).
DEFAULT_BULK_RATE = RateLimit(calls=1, period=5.0)


@dataclass(frozen=True, kw_only=True)
class Knob:
    """An emulator option: its help, how its text becomes the field's value (None: click's
    type from the default), the flag when not the field's name, and what --help shows."""

    help: str
    parse: Callable[[Any], Any] | None = None
    flag: str = ""
    kind: type | None = None  # click's type when the default (None) does not say
    path: bool = False  # the option names a file
    show: bool = True  # show the default in --help
    shown: str = ""  # the default as --help shows it, when not the value itself


def knob(
    default: Any,
    help: str,
    *,
    parse: Callable[[Any], Any] | None = None,
    flag: str = "",
    kind: type | None = None,
    path: bool = False,
    show: bool = True,
    shown: str = "",
    secret: bool = False,
) -> Any:
    meta = Knob(help=help, parse=parse, flag=flag, kind=kind, path=path, show=show, shown=shown)
    return field(default=default, metadata={"knob": meta}, repr=not secret)


def parse_code_ranges(text: str) -> frozenset[str]:
    """``1-30,99`` → {"1", …, "30", "99"}."""
    codes: set[str] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise OptionError(f"--system-codes: {part!r} is not a code or a range like 1-30")
        codes.update(str(code) for code in range(int(low), int(high or low) + 1))
    return frozenset(codes)


BACKGROUND_SHAPES = ("burst", "on", "off", "ramp", "until")


def parse_background(text: str) -> dict[str, Any]:
    """``10/5s``, then any of ``,burst=K`` (K calls at once, the same average rate),
    ``,on=S,off=S`` (busy S seconds, then quiet S, over and over), ``,ramp=S`` (from nothing
    up to the rate and back down over S seconds, over and over), ``,until=S`` (stops for good
    after S seconds) → the config's background fields."""
    rate_text, *parts = text.split(",")
    fields: dict[str, Any] = {"background": RateLimit.parse(rate_text)}
    for part in parts:
        name, _, value = part.strip().partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if name not in BACKGROUND_SHAPES or number <= 0 or (name == "burst" and number % 1):
            raise OptionError(
                f"--background: {text!r} is not N/Ws followed by ,burst=K ,on=S,off=S "
                ",ramp=S or ,until=S"
            )
        fields[f"background_{name}"] = int(number) if name == "burst" else number
    return fields


def _lead_file(path: Path) -> frozenset[str]:
    """--leads: one ProspectId a line, compared lower-case."""
    require_file(Path(path), "file of leads")
    lines = Path(path).read_text().splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def knobs() -> list[tuple[str, Any, Knob]]:
    """(field name, default, knob) of every emulator option, in declaration order."""
    return [
        (each.name, each.default, each.metadata["knob"])
        for each in fields(EmulatorConfig)
        if "knob" in each.metadata
    ]


def config_of(values: dict[str, Any]) -> EmulatorConfig:
    """The config from the options given (None: not given, the field's default holds). A
    parser may return a dict: the fields one option sets (``--background 10/5s,burst=5``)."""
    given: dict[str, Any] = {}
    for name, _, declared in knobs():
        value = values.get(name)
        if value is None or value == "":  # not given: the field's default holds
            continue
        parsed = declared.parse(value) if declared.parse else value
        given.update(parsed if isinstance(parsed, dict) else {name: parsed})
    return EmulatorConfig(**given)


@dataclass(frozen=True, kw_only=True)
class EmulatorConfig:
    """The emulator's behaviour; every field with a `knob` is a `bulk-delete emulator` option
    (its flag, help and parser come from here, as the run options come from RunSpec)."""

    access_key: str = knob(
        DEMO_ACCESS_KEY,
        "Accepted access key (default: the demo key).",
        parse=str,
        show=False,
        secret=True,
    )
    secret_key: str = knob(
        DEMO_SECRET_KEY,
        "Accepted secret key (default: the demo key).",
        parse=str,
        show=False,
        secret=True,
    )
    rate: RateLimit = knob(
        DEFAULT_EMULATOR_RATE,
        "Strict sliding window: N/Ws or a plan name.",
        parse=RateLimit.parse,
        shown="25/5s",
    )
    bulk_rate: RateLimit = knob(
        DEFAULT_BULK_RATE,
        "The bulk add's own sliding window (Bulk/CustomActivity/Add/ByLeadId), N/Ws; its calls "
        "count in --rate's window too.",
        parse=RateLimit.parse,
        shown="1/5s",
    )
    latency: float = knob(0.0, "Median seconds per answer.")
    jitter: float = knob(0.0, "± seconds around --latency.")
    transient_rate: float = knob(0.0, "Share of calls answered 500, non-MX.", show=False)
    html_rate: float = knob(0.0, "Share of calls answered 502 with HTML.", show=False)
    drop_rate: float = knob(0.0, "Share of connections dropped unanswered.", show=False)
    post_lost_rate: float = knob(
        0.0,
        "Share of activity posts (Create, the bulk add) whose connection is dropped unanswered "
        "after the activities were created.",
        show=False,
    )
    slow_rate: float = knob(0.0, "Share of calls answered after --slow-seconds.", show=False)
    slow_seconds: float = knob(30.0, "How late a slow answer comes.")
    seed: int = knob(0, "Seed for faults and latency.")
    system_codes: frozenset[str] = knob(
        DEFAULT_SYSTEM_CODES,
        "Codes refused as system activities (e.g. 1-30,99).",
        parse=parse_code_ranges,
        shown="1-30",
    )
    leads: frozenset[str] | None = knob(
        None,
        "File of ProspectIds (one per line); others get an MX error.",
        parse=_lead_file,
        flag="leads",
        path=True,
    )
    webhook_delay: float = knob(
        1.0,
        "Seconds before a queued delete is carried out (its activities leave Retrieve and "
        "the listing) and its StatusWebhookURL posted.",
    )
    created_on_posted: bool = knob(
        False,
        "A posted activity's CreatedOn is the ActivityDateTime it was posted with (the other "
        "reading of LeadSquared's docs); by default CreatedOn is when it was posted and "
        "Retrieve shows the date posted as its ActivityDateTime.",
    )
    log_path: Path | None = knob(
        None, "Append each queued delete as a JSON line.", parse=Path, flag="log", path=True
    )
    max_body_bytes: int = 1 << 20
    redirect_to: str = knob(
        "",
        "Answer every API call 307 to this base URL, as a hostile or wrong host would.",
        show=False,
    )
    echo_request: bool = knob(
        False,
        "Quote the request's URL and key headers in every error body and redirect Location, "
        "in a new encoding each time (raw; URL-encoded with upper- or lower-case hex, or + for "
        "a space; JSON-escaped; base64, URL-safe base64, Basic), as a careless server would.",
        show=False,
    )
    outage_after: float = knob(
        -1.0,
        "Seconds after the first call when an outage (503 pages) starts; -1: none.",
        show=False,
    )
    outage_seconds: float = knob(0.0, "How long the outage lasts.", show=False)
    limit_status: int = knob(429, "HTTP status of a rate refusal (some tenants answer 403).")
    stated_rate: RateLimit | None = knob(
        None,
        "The limit the refusal message names, N/Ws (default: the enforced --rate).",
        parse=RateLimit.parse,
        show=False,
    )
    background: RateLimit | None = knob(
        None,
        "Another integration spending N/Ws of the same window (its refusals are in stats); "
        "N/Ws,burst=K: K calls at once, the same average rate; ,on=S,off=S: busy S seconds "
        "then quiet S, over and over; ,ramp=S: from nothing up to N/Ws and back over S "
        "seconds; ,until=S: it stops after S seconds.",
        parse=parse_background,
        show=False,
    )
    background_burst: int = 1  # … in bursts of this many calls at once (set by --background)
    background_on: float = math.inf  # … busy this many seconds, then …
    background_off: float = 0.0  # … quiet this many, over and over
    background_ramp: float = 0.0  # … up from nothing and back over this many seconds
    background_until: float = math.inf  # … and it stops for good after this many
    background_jitter: float = knob(
        0.05,
        "Seconds up to which each background call arrives late (latency).",
        show=False,
    )
    count_refusals: bool = knob(
        True,
        "Refused calls count in the rate window (a sliding-window log); --no-count-refusals: "
        "only accepted ones.",
    )
    daily_limit: int = knob(
        0,
        "Calls accepted a UTC day, then refusals naming 86400 s (a daily allowance); 0: none.",
        show=False,
    )
    account_host: str = knob(
        "", "The API host UserByAccessKey.Get names (default: this emulator's own).", show=False
    )
    dataset_leads: int = knob(
        0, "Hold this many leads (from --seed) for RetrieveByActivityEvent to list."
    )
    page_cap: int = knob(
        500, "The most rows one RetrieveByActivityEvent page holds, whatever was asked."
    )
    refuse_all: float = knob(
        0.0,
        "Seconds from the first call during which every API call is refused 429, naming no "
        "limit (another integration spending the whole budget); inf: for ever.",
        show=False,
    )
    retry_after: float = knob(
        -1.0, "Send this Retry-After (seconds) with every rate refusal; -1: none.", show=False
    )
    huge_body_rate: float = knob(
        0.0,
        "Share of calls answered 200 with a huge body, streamed (see --huge-body-bytes).",
        show=False,
    )
    huge_body_bytes: int = knob(300 << 20, "Length of a huge body.")
    # Listing faults, for `--discover` and `verify` to catch:
    ignore_page_index: bool = knob(False, "Fault: every RetrieveByActivityEvent page is page 1.")
    offset_from_asked_size: bool = knob(
        False, "Page P starts at (P-1) x the PageSize asked, before --page-cap cuts it."
    )
    record_count: int | None = knob(
        None,
        "Fault: RetrieveByActivityEvent says RecordCount N, whatever it lists.",
        kind=int,
        show=False,
    )
    rows_without_ids: int = knob(
        0, "Fault: the first N rows of each code's listing have no ProspectActivityId.", show=False
    )
    bad_lead_ids: int = knob(
        0,
        "Fault: the first N rows of each code's listing have a RelatedProspectId not a GUID.",
        show=False,
    )
    retrieve_record_count: int | None = knob(
        None,
        "Fault: Retrieve says each lead holds N activities of a code (old ones past its own).",
        kind=int,
        show=False,
    )


def background_share(config: EmulatorConfig, t: float) -> float:
    """The share of ``config.background`` the other integration spends ``t`` seconds after it
    began: nothing after ``until`` or in a quiet spell, the triangle of a ramp, else all."""
    if t >= config.background_until:
        return 0.0
    cycle = config.background_on + config.background_off
    if config.background_off and t % cycle >= config.background_on:
        return 0.0
    if config.background_ramp:
        x = (t % config.background_ramp) / config.background_ramp
        return 1.0 - abs(2.0 * x - 1.0)
    return 1.0
