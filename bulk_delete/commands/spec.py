"""One RunSpec: every option a plan or a run takes, declared once.

The command line and the job loader both fill it from raw values — strings from click, typed
values from TOML — through ``RunSpec.from_values``. Each field carries its own parser and help
text, so a job key and a flag cannot drift apart, and an error names what the user wrote: the
flag (``--codes: …``) for the command line, the key (``job.toml: codes: …``) for a job file.

Adding an option: a field here, one ``spec_option`` line in the CLI decorator, the README.
The job loader accepts every field that has a ``key`` without being told.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import (
    DEFAULT_GIVE_UP_AFTER,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CODES_PER_REQUEST,
    DEFAULT_PLAN,
    DEFAULT_TIMEOUT,
    DEFAULT_TZ,
    MAX_CONCURRENCY,
    PLAN_LIMITS,
    AuthMode,
    RateLimit,
    SendSettings,
    auto_concurrency,
    normalise_host,
)
from ..errors import FieldError, OptionError
from ..plan.date_orders import DATE_ORDERS
from ..plan.rules import (
    CellError,
    PlanOptions,
    load_tz,
    parse_code_cell,
    parse_webhook,
    shorten,
)
from ..redaction import shown_url

DEFAULT_MAX_LEADS = 10_000
POST_MODES = ("auto", "single", "bulk")  # restore: Create, the bulk add, or the faster
DEFAULT_BULK_RATE = "1/5s"  # "the rate limit for all Bulk APIs is 1 call in 5 seconds"
GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


# ---------------------------------------------------------------- parsers: raw value → value
# Each raises ValueError with a message that reads after the option's name.


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, not {shorten(repr(value))}")
    return value.strip()


def _optional_text(value: Any) -> str | None:
    return _text(value) or None


def _path(value: Any) -> Path | None:
    if isinstance(value, Path):
        return value
    return Path(value) if _text(value) else None


def _codes(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):  # TOML: codes = [201, 202]; restore --codes repeated
        value = ",".join(str(code) for code in value)
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        return parse_code_cell(_text(value))
    except CellError as error:
        raise ValueError(str(error)) from None


def _names(value: Any) -> tuple[str, ...]:
    """Header names: one (a flag given once) or several (repeated flags, a TOML list)."""
    values = list(value) if isinstance(value, list | tuple) else [value]
    return tuple(name for name in map(_text, values) if name)


def _whole(minimum: int, maximum: int | None = None) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, str) and value.strip().lstrip("+").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {shorten(repr(value))}")
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be at most {maximum}, not {value}")
        return value

    return parse


def _seconds(value: Any) -> float:
    """Positive and finite: nan and inf are words, not durations."""
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be a positive number of seconds, not {shorten(repr(value))}")
    return seconds


def _rate(value: Any) -> RateLimit:
    return RateLimit.parse(_text(value))


def _tz(value: Any) -> str:
    name = _text(value)
    load_tz(name)
    return name


def _host(value: Any) -> str:
    return normalise_host(_text(value))


def _webhook(value: Any) -> str:
    text = _text(value)
    try:
        parse_webhook(text)
    except CellError as error:
        raise ValueError(str(error)) from None
    return text


def _auth(value: Any) -> AuthMode:
    text = _text(value).lower()
    if text == "header":
        return "header"
    if text == "query":
        return "query"
    raise ValueError(f'must be "header" or "query", not {shorten(repr(value))}')


def _share(value: Any) -> float:
    try:
        share = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        share = math.nan
    if not 0 < share <= 1:
        raise ValueError(f"must be a fraction above 0 and at most 1, not {shorten(repr(value))}")
    return share


def _numbers(value: Any) -> tuple[int, ...]:
    """Whole numbers from 1: one, a comma list, or several (repeated flags, a TOML list)."""
    values = list(value) if isinstance(value, list | tuple) else [value]
    parts = [part for item in values for part in str(item).split(",") if part.strip()]
    return tuple(_whole(1)(part.strip()) for part in parts)


def _lead_ids(value: Any) -> tuple[str, ...]:
    """ProspectIds (GUIDs): one, a comma list, or several."""
    values = list(value) if isinstance(value, list | tuple) else [value]
    leads = [part.strip() for item in values for part in _text(item).split(",") if part.strip()]
    bad = [lead for lead in leads if not GUID.fullmatch(lead)]
    if bad:
        raise ValueError(f"{shorten(repr(bad[0]))} is not a ProspectId (a GUID)")
    return tuple(lead.lower() for lead in leads)


def _post_mode(value: Any) -> str:
    text = _text(value).lower()
    if text not in POST_MODES:
        raise ValueError(f"must be one of {', '.join(POST_MODES)}, not {shorten(repr(value))}")
    return text


def _date_order(value: Any) -> str:
    text = _text(value).upper()
    if text not in DATE_ORDERS:
        raise ValueError(f"must be one of {', '.join(DATE_ORDERS)}, not {shorten(repr(value))}")
    return text


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {shorten(repr(value))}")
    return value


NOTIFY_OUTCOMES = ("failure", "partial", "success")


def _notify_urls(value: Any) -> tuple[str, ...]:
    """http(s) URLs (or healthchecks+http(s)), without user:password@; one or several. An
    error never quotes the URL: its path may hold a token."""
    urls = _names(value)
    for url in urls:
        parts = urlsplit(url.removeprefix("healthchecks+"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL, not {shown_url(url)!r}")
        if parts.username or parts.password:
            raise ValueError("must not hold user:password@ (it would be kept in the job file)")
    return urls


def _notify_on(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    words = {word.strip().lower() for word in _text(value).split(",") if word.strip()}
    if not words or words - set(NOTIFY_OUTCOMES):
        named = ", ".join(NOTIFY_OUTCOMES)
        raise ValueError(f"must name some of {named} (comma-separated), not {shorten(repr(value))}")
    return tuple(outcome for outcome in NOTIFY_OUTCOMES if outcome in words)


# ---------------------------------------------------------------- declaring an option


@dataclass(frozen=True)
class Option:
    """What the CLI and the job loader need to know of one RunSpec field."""

    help: str
    parse: Callable[[Any], Any]
    flag: str | None  # the command line's name; None: not an option there
    key: str | None  # the job file's name; None: not a job key


def option(
    default: Any,
    help: str,
    parse: Callable[[Any], Any],
    *,
    flag: str | None = "",
    key: str | None = "",
) -> Any:
    """A RunSpec field. ``flag``/``key`` default to the field's own name; None hides it."""
    meta = {"option": Option(help=help, parse=parse, flag=flag, key=key)}
    return field(default=default, metadata=meta)


def _rate_help() -> str:
    plans = ", ".join(f"{name} {calls}" for name, calls in PLAN_LIMITS.items())
    return (
        f"Account limit: N/Ws (25/5s) or a plan: {plans} calls per 5 s. (off: no limiter, a "
        "test setting refused for any host but the local emulator.)"
    )


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """Every option of `plan`, `run` and `job`; the defaults are the documented ones."""

    # Which requests the sheet becomes (these, and the file, make the plan's fingerprint).
    input: Path | None = option(None, "The sheet: CSV or Excel.", _path, flag=None, key=None)
    discover: bool = option(
        False,
        "Instead of a sheet, ask LeadSquared which leads have --codes activities created "
        "between --from and --to (RetrieveByActivityEvent), and plan one request per lead.",
        _flag,
    )
    max_leads: int = option(
        DEFAULT_MAX_LEADS,
        "With --discover: exit 2 before any delete if more leads than this are found.",
        _whole(1),
    )
    sheet: str | None = option(
        None,
        "Excel sheet name (default: the sheet the workbook opens on, if visible; else the "
        "first visible one). A hidden sheet is read only when named.",
        _optional_text,
    )
    ignore_columns: tuple[str, ...] = option(
        (),
        "Leave out a column whose header looks like a known one (e.g. 'Form Date'); repeatable.",
        _names,
        flag="--ignore-column",
    )
    # Sheets as people write them, and a plan sent before (issue 32).
    date_order: str = option(
        "",
        "How the sheet's text dates that are not YYYY-MM-DD are written: DMY (31/01/2025, "
        "31.01.2025 14:30), MDY (01/31/2025) or YMD (2025/01/31). Without it such dates exit 2 "
        "naming their readings; Excel date cells need none.",
        _date_order,
    )
    header_row: int | None = option(
        None,
        "The sheet's row that holds the header, as Excel numbers it (default: row 1, or when "
        "row 1 holds no known column, the first of rows 1-10 with ProspectId and another).",
        _whole(1),
    )
    again: bool = option(
        False,
        "Send a plan this machine already sent to this account under another checkpoint "
        "(run and job refuse it otherwise, naming the checkpoint and the date).",
        _flag,
        key=None,
    )
    codes: tuple[str, ...] = option(
        (), "Activity codes (e.g. 163,166) for rows whose codes cell is empty or missing.", _codes
    )
    from_date: str = option(
        "",
        "FromDate where the sheet has none: YYYY-MM-DD [HH:MM:SS]; a date alone means 00:00:00.",
        _text,
        flag="--from",
        key="window.from",
    )
    to_date: str = option(
        "",
        "ToDate where the sheet has none; a date alone means 23:59:59 of that day.",
        _text,
        flag="--to",
        key="window.to",
    )
    webhook: str = option("", "StatusWebhookURL where the sheet has none.", _webhook)
    tz: str = option(
        DEFAULT_TZ,
        "IANA time zone for dates without an offset (e.g. Asia/Kolkata); sent as UTC.",
        _tz,
    )
    max_codes_per_request: int = option(
        DEFAULT_MAX_CODES_PER_REQUEST,
        "Split a lead's code list into requests of at most this many codes.",
        _whole(1),
    )
    rate: RateLimit = option(RateLimit.parse(DEFAULT_PLAN), _rate_help(), _rate)
    share: float = option(
        1.0,
        "The most of the account's limit this run may take, leaving the rest to live "
        "integrations (e.g. 0.6).",
        _share,
    )
    daily_limit: int | None = option(
        None,
        "The account's daily allowance of API calls (e.g. 10000): the dry run says when a run "
        "would cross it, with the ETA across days; run and verify stop (exit 75) once this "
        "machine's calls on the account today reach it.",
        _whole(1),
    )

    # Where and how to send.
    checkpoint: Path | None = option(
        None,
        "SQLite file holding the plan and every outcome; rerun with the same file to resume.",
        _path,
        key=None,
    )
    host: str = option(
        "", "API base URL, e.g. https://api-in21.leadsquared.com [env LSQ_HOST].", _host, key=None
    )
    concurrency: int | None = option(
        None,
        f"Calls in flight at most, up to {MAX_CONCURRENCY} (default: enough that the rate "
        "limit is the bottleneck).",
        _whole(1, MAX_CONCURRENCY),
    )
    max_attempts: int = option(
        DEFAULT_MAX_ATTEMPTS,
        "Sends per request on transient failures (429s do not count).",
        _whole(1),
    )
    timeout: float = option(DEFAULT_TIMEOUT, "Seconds per call.", _seconds)
    give_up_after: float = option(
        DEFAULT_GIVE_UP_AFTER,
        "Seconds without one successful call before an outage stops the run (exit 3).",
        _seconds,
    )
    auth: AuthMode = option(
        "header",
        "Send the keys as x-LSQ-* headers (recommended) or in the query string.",
        _auth,
    )
    preflight: bool = option(
        True,
        "Check the keys and the account's API host (UserByAccessKey.Get, one call) before the "
        "first delete.",
        _flag,
        flag="--preflight/--no-preflight",
    )
    sample: int | None = option(
        None,
        "verify: check a random sample of N queued requests instead of all of them.",
        _whole(1),
        key=None,
    )
    retry_failed: bool = option(
        False, "Also resend requests that failed permanently (400, MX errors).", _flag, key=None
    )
    open_window: bool = option(
        False,
        "Send requests without a FromDate or a ToDate. Such a request deletes every activity of "
        "its codes on that side of its window, for all time, so run refuses them without this.",
        _flag,
    )

    # What to write besides the checkpoint.
    out: Path | None = option(None, "Write one line per request (.csv or .xlsx).", _path, key=None)
    invalid_out: Path | None = option(
        None, "Write the invalid rows with their reasons.", _path, key=None
    )
    check_codes: bool = option(
        False,
        "Ask LeadSquared (GetActivitySetting) for each code's name; needs LSQ_HOST and keys, "
        "and spends one call of the rate budget per distinct code.",
        _flag,
        key=None,
    )
    summary_json: Path | None = option(
        None,
        "Write the run summary as JSON (fields in the README), also when the run stops.",
        _path,
        key=None,
    )
    log_file: Path | None = option(
        None, "Append one JSON line per request outcome (no keys, no bodies).", _path, key=None
    )
    results: Path | None = option(
        None,
        "Write the results workbook here (.xlsx; the HTML report beside it, .html); default: "
        "beside the checkpoint, CHECKPOINT-results.xlsx and CHECKPOINT-report.html.",
        _path,
    )
    no_results: bool = option(
        False, "Write no results workbook or HTML report after the run.", _flag
    )
    backup: Path | None = option(
        None,
        "Before each request is sent, save the activities it deletes to this file (gzip JSON "
        "Lines; costs Retrieve calls, priced by the dry run). A job's {date} is its run date.",
        _path,
    )

    # `restore`: which of a backup's activities to post back, and how (no job keys: a restore
    # is a one-off, run by hand). --codes, --from and --to select too (on the activity's date).
    restore_requests: tuple[int, ...] = option(
        (),
        "restore: only the activities these requests of the purge deleted (their numbers in "
        "its checkpoint, e.g. 3,17); repeatable.",
        _numbers,
        flag="--request",
        key=None,
    )
    restore_leads: tuple[str, ...] = option(
        (),
        "restore: only these leads' activities (ProspectIds); repeatable.",
        _lead_ids,
        flag="--lead",
        key=None,
    )
    lead_sheet: Path | None = option(
        None,
        "restore: only the leads of this sheet (CSV or Excel with a ProspectId column).",
        _path,
        flag="--sheet",
        key=None,
    )
    post: str = option(
        "auto",
        "restore: post with Create (single: one activity a call, at the account's limit), the "
        "bulk add (bulk: 25 a call at its own limit; the only one that takes the owner), or "
        "auto: whichever posts faster at the limits known and measured.",
        _post_mode,
        key=None,
    )
    bulk_rate: RateLimit = option(
        RateLimit.parse(DEFAULT_BULK_RATE),
        "restore: the bulk add's own limit (LeadSquared: 1 call in 5 s on every plan); "
        "learned lower from its refusals.",
        _rate,
        key=None,
    )

    # Word when a run ends (cli/notify.py decides; send/notify_post.py posts).
    notify: tuple[str, ...] = option(
        (),
        "When the run ends, POST its summary (the --summary-json document) to this URL; "
        "repeatable. A Slack webhook (hooks.slack.com) gets a short message; a healthchecks "
        "ping URL (hc-ping.com, or any URL written healthchecks+https://…) gets /start when "
        "the run starts, then a success or /fail ping.",
        _notify_urls,
    )
    notify_on: tuple[str, ...] = option(
        NOTIFY_OUTCOMES,
        "Which ends are notified, from failure (exit 2, 3, 70, 75, 130), partial (exit 1) "
        "and success (exit 0); comma-separated. A healthchecks URL is pinged on every end.",
        _notify_on,
    )
    label: str = option("", "The job's name, for scheduled runs.", _text, flag=None, key=None)
    source: str = option(
        "", "The job file the spec came from; '' for the command line.", _text, flag=None, key=None
    )

    # ------------------------------------------------------------ filling it

    @classmethod
    def from_values(cls, values: Mapping[str, Any], *, source: str = "") -> RunSpec:
        """Parse raw values by field name. ``source`` is the job file they came from ("" for
        the command line); an error names the job key or the flag accordingly. None means
        "not given": the default stays."""
        return cls().with_values(values, source=source)

    def with_values(self, values: Mapping[str, Any], *, source: str = "") -> RunSpec:
        """This spec with raw ``values`` parsed and put in (see ``from_values``)."""
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            if raw is None:
                continue
            try:
                parsed[name] = option_of(name).parse(raw)
            except ValueError as error:
                raise OptionError(_where(source) + f"{_name(name, source)}: {error}") from None
        spec = dataclasses.replace(self, **parsed)
        spec.check(source=source)
        return spec

    def check(self, *, source: str = "") -> None:
        """Rules across fields, and option values checked by the same code as sheet cells."""
        try:
            self.plan_options.row_defaults()
            if self.discover:
                self._check_discover()
        except FieldError as error:
            message = error.message.replace(flag_of("date_order"), _name("date_order", source))
            raise OptionError(_where(source) + f"{_name(error.field, source)}: {message}") from None

    def _check_discover(self) -> None:
        if self.input is not None:
            raise FieldError("discover", "takes the place of an input sheet: give one or the other")
        if not self.codes:
            raise FieldError("codes", "discovery needs the activity codes to list")
        for field_name in ("from_date", "to_date"):
            if not getattr(self, field_name):
                raise FieldError(field_name, "discovery needs a window: both a start and an end")

    # ------------------------------------------------------------ reading it

    @property
    def plan_options(self) -> PlanOptions:
        return PlanOptions(
            codes=self.codes,
            from_date=self.from_date,
            to_date=self.to_date,
            webhook=self.webhook,
            tz=self.tz,
            sheet=self.sheet,
            max_codes_per_request=self.max_codes_per_request,
            ignore_columns=self.ignore_columns,
            date_order=self.date_order,
            header_row=self.header_row,
        )

    @property
    def effective_rate(self) -> RateLimit:
        """--rate times --share: the most this run takes (before it learns the real limit)."""
        from ..send.limiter import shared  # (the limiter loads asyncio; --help need not)

        return shared(self.rate, self.share)

    @property
    def workers(self) -> int:
        return self.concurrency or auto_concurrency(self.rate, self.timeout)

    def send_settings(self) -> SendSettings:
        """What the pool and the session read of this spec (see `SendSettings`)."""
        return SendSettings(
            rate=self.rate,
            share=self.share,
            workers=self.workers,
            max_attempts=self.max_attempts,
            timeout=self.timeout,
            give_up_after=self.give_up_after,
            retry_failed=self.retry_failed,
        )

    def replace(self, **changes: Any) -> RunSpec:
        return dataclasses.replace(self, **changes)

    def name_of(self, name: str) -> str:
        """A field as the user wrote it: the flag on the command line, the key in a job file."""
        return _name(name, self.source)


def option_of(name: str) -> Option:
    """The declaration of one RunSpec field."""
    found: Option = _FIELDS[name].metadata["option"]
    return found


def job_keys() -> dict[str, str]:
    """Top-level job-file key → field name, for every field a job file may set."""
    keys = {}
    for name, spec_field in _FIELDS.items():
        key = spec_field.metadata["option"].key
        key = name if key == "" else key
        if key is not None and "." not in key:
            keys[key] = name
    return keys


def flag_of(name: str) -> str:
    opt = option_of(name)
    if opt.flag is None:
        return name
    return (opt.flag or "--" + name.replace("_", "-")).split("/")[0]


def click_flag(name: str) -> str:
    """The flag as click declares it (``--preflight/--no-preflight`` for an on/off pair)."""
    opt = option_of(name)
    return opt.flag or flag_of(name)


def _name(name: str, source: str) -> str:
    if not source:
        return flag_of(name)
    key = option_of(name).key
    return key or name


def _where(source: str) -> str:
    return f"{source}: " if source else ""


_FIELDS = {spec_field.name: spec_field for spec_field in dataclasses.fields(RunSpec)}
