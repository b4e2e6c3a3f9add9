"""A local LeadSquared stand-in (aiohttp.web) for the demo, the tests and the benchmarks.

It behaves like LeadSquared as documented, the unpleasant parts included (a strict sliding
window where refusals count, 401, 400, 500 MX…), and on request injects faults: transient 500s,
HTML 502s, dropped connections, slow answers, lost post answers (``--post-lost-rate``); with
``--echo-request`` error documents quote the request (echo.py). Posted-back activities are real
from then on. Every call's User-Agent is counted.

Why, and the order of checks for every call: docs/design/emulator.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import heapq
import json
import random
import re
import signal
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from aiohttp import ClientSession, ClientTimeout, web

from ..api import (
    ACCESS_KEY_HEADER,
    BULK_ADD_PATH,
    BULK_MAX_ACTIVITIES,
    CREATE_PATH,
    DELETE_PATH,
    LIST_PATH,
    QUEUED_MESSAGE,
    RETRIEVE_PATH,
    SECRET_KEY_HEADER,
    SETTING_PATH,
    USER_PATH,
    activity_date,
)
from ..config import RateLimit
from . import echo
from .knobs import DEFAULT_EMULATOR_RATE as DEFAULT_EMULATOR_RATE
from .knobs import DEFAULT_SYSTEM_CODES as DEFAULT_SYSTEM_CODES
from .knobs import DEMO_ACCESS_KEY as DEMO_ACCESS_KEY
from .knobs import DEMO_SECRET_KEY as DEMO_SECRET_KEY
from .knobs import EmulatorConfig as EmulatorConfig
from .knobs import background_share
from .knobs import parse_code_ranges as parse_code_ranges

STATS_PATH = "/__emulator/stats"
CENSUS_PATH = "/__emulator/census"  # ?codes=201,202&from=…&to=… : what is left, for benchmarks
NEXT_DAY_PATH = "/__emulator/next-day"  # POST: the daily allowance's UTC day moves on (benchmarks)
CUSTOM_ACTIVITY_NAMES = (
    "Webinar Attended",
    "Demo Booked",
    "Payment Reminder",
    "Course Enquiry",
    "Site Visit",
    "Document Uploaded",
    "Callback Requested",
    "Loan Application",
)
CUSTOM_CODES = range(150, 300)

_GUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_API_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_API_DATE = "%Y-%m-%d %H:%M:%S"


def error_body(exception_type: str, message: str) -> dict[str, str]:
    return {"Status": "Error", "ExceptionType": exception_type, "ExceptionMessage": message}


def _error(status: int, exception_type: str, message: str) -> web.Response:
    return web.json_response(error_body(exception_type, message), status=status)


class PostRefused(Exception):
    """Why one activity is not posted: the answer's status, ExceptionType and message (Create
    answers with them; the bulk add puts the message in the activity's row)."""

    def __init__(self, status: int, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.exception_type = exception_type


class SlidingWindow:
    """At most ``calls`` arrivals in any ``period``-second window, per key. With
    ``count_refusals`` (a sliding-window log) rejected arrivals count too, so a client that
    keeps hammering stays locked out and a refusal keeps the window full for everyone a little
    longer; without it only accepted calls fill the window. Calls and refusals are counted per
    caller (the purge, the background integration) for the benchmarks."""

    def __init__(
        self, rate: RateLimit, clock: Callable[[], float], *, count_refusals: bool = True
    ) -> None:
        self.rate = rate
        self.clock = clock
        self.count_refusals = count_refusals
        self._arrivals: dict[str, deque[float]] = {}
        self.max_in_window = 0
        self.calls: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def admit(self, key: str, caller: str = "client") -> bool:
        self.calls[caller] += 1
        if self.rate.unlimited:
            return True
        now = self.clock()
        arrivals = self._arrivals.setdefault(key, deque())
        while arrivals and arrivals[0] <= now - self.rate.period:
            arrivals.popleft()
        admitted = len(arrivals) < self.rate.calls
        if admitted or self.count_refusals:
            arrivals.append(now)
        self.max_in_window = max(self.max_in_window, len(arrivals))
        if not admitted:
            self.refused[caller] += 1
        return admitted


class Emulator:
    """The app and what it saw. ``records`` holds every accepted (queued) delete."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.window = SlidingWindow(
            self.config.rate, clock, count_refusals=self.config.count_refusals
        )
        # The bulk add's own window; its calls pass the account's window first, as every call.
        self.bulk_window = SlidingWindow(
            self.config.bulk_rate, clock, count_refusals=self.config.count_refusals
        )
        self.wall = wall  # UTC epoch seconds: the daily allowance's day
        self.days_ahead = 0  # days added to ``wall`` for the allowance (NEXT_DAY_PATH)
        self._day = (-1, 0)  # (the UTC day, calls accepted in it)
        self._background_rng = random.Random(self.config.seed + 1)
        self.records: list[dict[str, Any]] = []
        self.webhook_posts: list[dict[str, Any]] = []
        self.outcomes: Counter[str] = Counter()
        self.calls = 0
        self._clock = clock
        self.first_accepted: float | None = None  # clock time of the first / last queued call
        self.last_accepted: float | None = None
        self.first_accepted_wall: float | None = None  # time.time(), for other processes
        self.last_accepted_wall: float | None = None
        self._first_call: float | None = None
        self.background_calls = 0
        self.background_refused = 0
        self.background_began_wall: float | None = None  # time.time() of its first tick
        self._dataset: list[str] | None = None
        self.list_calls: list[dict[str, Any]] = []  # every RetrieveByActivityEvent page asked
        self.user_agents: Counter[str] = Counter()  # of every API call
        self._by_code: dict[str, list[tuple[str, dict[str, Any], str]]] = {}
        self._rng = random.Random(self.config.seed)
        self._tombstones: dict[str, list[tuple[frozenset[str], str, str]]] = {}
        self._added: dict[str, list[dict[str, Any]]] = {}  # add_activity, posts: created since
        self._added_ever = 0
        self._posted: dict[str, tuple[str, dict[str, Any]]] = {}  # Id → (lead, activity) left
        self._post_keys: Counter[tuple[Any, ...]] = Counter()  # what was posted, how often
        self._post_items_refused = 0
        self._post_calls: list[float] = []  # clock time of each post call that acted
        self._post_rng = random.Random(f"posted-{self.config.seed}")  # the new ids
        self._lost_rng = random.Random(f"post-lost-{self.config.seed}")  # --post-lost-rate
        self._dataset_ids: frozenset[str] | None = None
        self._log: IO[str] | None = None
        self._echoes = 0  # error answers that quoted the request (--echo-request)
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.app = web.Application(
            client_max_size=self.config.max_body_bytes,
            middlewares=[self._middleware],
        )
        self.app.router.add_post(DELETE_PATH, self._delete)
        self.app.router.add_get(SETTING_PATH, self._setting)
        self.app.router.add_post(RETRIEVE_PATH, self._retrieve)
        self.app.router.add_get(USER_PATH, self._user)
        self.app.router.add_post(LIST_PATH, self._list)
        self.app.router.add_post(CREATE_PATH, self._create)
        self.app.router.add_post(BULK_ADD_PATH, self._bulk_add)
        self.app.router.add_get(STATS_PATH, self._stats)
        self.app.router.add_get(CENSUS_PATH, self._census)
        self.app.router.add_post(NEXT_DAY_PATH, self._next_day)
        self.app.on_shutdown.append(self._shutdown)

    # ------------------------------------------------------------ life cycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self.config.log_path is not None:
            self._log = self.config.log_path.open("a", encoding="utf-8")
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        bound = server.sockets[0].getsockname()  # type: ignore[attr-defined]
        self.url = f"http://{bound[0]}:{bound[1]}"
        if self.config.background is not None:
            self._spawn(
                self._other_integration(self.config.background, self.config.background_burst)
            )
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _shutdown(self, app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
        if self._log is not None:
            self._log.close()

    async def _other_integration(self, rate: RateLimit, burst: int = 1) -> None:
        """Another integration on the same account (the website's lead capture, say), honest
        as a real one: calls on a fixed schedule of absolute deadlines (a late wake-up does
        not push the next call back, so it never drifts below its rate), ``burst`` at a time,
        each arriving after a jittered latency, counted in the same window as ours and
        refused when it is full. It does not retry: a refused lead capture is a lost call.
        Busy and quiet spells, a ramp and a stop (``--background``) thin the schedule: a tick
        calls once the share it owes adds up to one."""
        loop = asyncio.get_running_loop()
        gap = rate.period / rate.calls * burst
        start = loop.time()
        self.background_began_wall = self.wall()
        tick, owed = 0, 0.0
        while tick * gap < self.config.background_until:
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * gap - loop.time()))
            owed += background_share(self.config, tick * gap)
            if owed < 1.0 - 1e-9:
                continue
            owed -= 1.0
            for _ in range(burst):
                self._spawn(self._background_call())

    async def _background_call(self) -> None:
        await asyncio.sleep(self._background_rng.uniform(0.0, self.config.background_jitter))
        self.background_calls += 1
        if not self.window.admit(self.config.access_key, caller="background"):
            self.background_refused += 1

    def _allowance_used(self) -> bool:
        """Counts one accepted call against the UTC day; True once the day's are spent."""
        if self.config.daily_limit <= 0:
            return False
        day = int(self.wall() // 86400) + self.days_ahead
        used = self._day[1] if self._day[0] == day else 0
        if used >= self.config.daily_limit:
            return True
        self._day = (day, used + 1)
        return False

    def stats(self) -> dict[str, Any]:
        queued = self.outcomes["queued"]
        span = (self.last_accepted or 0.0) - (self.first_accepted or 0.0)
        return {
            "calls": self.calls,
            "outcomes": dict(self.outcomes),
            # accepted calls per second as the server saw them: (n - 1) gaps over the span
            "accepted_per_second": (queued - 1) / span if queued > 1 and span > 0 else 0.0,
            "first_accepted_wall": self.first_accepted_wall,
            "last_accepted_wall": self.last_accepted_wall,
            "max_calls_in_window": self.window.max_in_window,
            "rate": {"calls": self.config.rate.calls, "period": self.config.rate.period},
            "webhook_posts": len(self.webhook_posts),
            "background": {
                "calls": self.background_calls,
                "refused": self.background_refused,
                "began_wall": self.background_began_wall,
            },
            "callers": {  # every call the rate window saw, and its refusals, by caller
                caller: {"calls": calls, "refused": self.window.refused[caller]}
                for caller, calls in self.window.calls.items()
            },
            "daily_used": self._day[1],
            # accepted deletes by lead (benchmarks); "twice": the same delete (lead, codes and
            # window) accepted again, not a lead whose codes or windows were split over requests
            "leads_deleted": len({record["ProspectId"] for record in self.records}),
            "leads_deleted_twice": len(self.records) - len(set(map(_delete_key, self.records))),
            "list_pages": len(self.list_calls),
            "list_pages_read_twice": len(self.list_calls)
            - len({(call["code"], call["page"], call["size"]) for call in self.list_calls}),
            **self._posting_stats(),
        }

    def _posting_stats(self) -> dict[str, Any]:
        """What was posted back: each activity created fires LeadSquared's "Activity created"
        automations; "twice": the same lead, code, date, note and fields created again."""
        calls = self._post_calls
        span = calls[-1] - calls[0] if calls else 0.0
        return {
            "activities_posted": sum(self._post_keys.values()),
            "posted_twice": sum(count - 1 for count in self._post_keys.values()),
            "post_items_refused": self._post_items_refused,
            # post calls that acted, per second as the server saw them (the bulk's and Create's)
            "post_calls_per_second": (len(calls) - 1) / span if span > 0 else 0.0,
            "bulk_window": {
                "calls": sum(self.bulk_window.calls.values()),
                "refused": sum(self.bulk_window.refused.values()),
                "max_calls_in_window": self.bulk_window.max_in_window,
                "rate": {
                    "calls": self.config.bulk_rate.calls,
                    "period": self.config.bulk_rate.period,
                },
            },
        }

    def census(self, codes: frozenset[str], from_date: str, to_date: str) -> dict[str, int]:
        """The data set's activities now: those of ``codes`` created in the window, and all
        the others (which a purge of that window must not touch)."""
        inside = outside = 0
        for lead in self.dataset():
            for activity in self.remaining(lead):
                if _matches(activity, codes, from_date, to_date):
                    inside += 1
                else:
                    outside += 1
        return {"in_window": inside, "outside": outside}

    # ------------------------------------------------------------ the gate every call passes

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path in (STATS_PATH, CENSUS_PATH, NEXT_DAY_PATH):
            return await handler(request)  # type: ignore[no-any-return]
        response = await self._gate(request, handler)
        if self.config.echo_request and isinstance(response, web.Response):
            self._quote_request(request, response)
        return response

    def _echo(self, request: web.Request) -> tuple[str, str]:
        """(the form, the request quoted in it): the next of echo.FORMS."""
        form = echo.FORMS[self._echoes % len(echo.FORMS)]
        self._echoes += 1
        keys = {
            name: request.headers[name]
            for name in (ACCESS_KEY_HEADER, SECRET_KEY_HEADER)
            if name in request.headers
        }
        return form, echo.quoted(form, request.method, request.raw_path, keys)

    def _quote_request(self, request: web.Request, response: web.Response) -> None:
        """--echo-request: an error document's message quotes the request."""
        try:
            document = json.loads(response.body or b"")  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        field = next((k for k in ("ExceptionMessage", "Message") if k in document), None)
        if not isinstance(document, dict) or field is None or document.get("Status") == "Success":
            return
        form, text = self._echo(request)
        document[field] = f"{document[field]} (request: {text})"
        response.body = echo.body(document, form)

    def _redirect(self, request: web.Request) -> web.HTTPException:
        location = self.config.redirect_to + request.path_qs
        if self.config.echo_request:  # the Location quotes the request too
            location += (
                ("&" if request.query_string else "?")
                + "echo="
                + quote(self._echo(request)[1], safe="")
            )
        return web.HTTPTemporaryRedirect(location)

    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.calls += 1
        self.user_agents[request.headers.get("User-Agent", "")] += 1
        if self._in_outage():
            self.outcomes["outage_503"] += 1
            return web.Response(
                status=503, content_type="text/html", text="<html>503 Service Unavailable</html>"
            )
        if self.config.redirect_to:
            self.outcomes["redirected"] += 1
            raise self._redirect(request)
        if request.match_info.http_exception is not None:
            self.outcomes["not_found"] += 1
            return _error(404, "MXAPINotFoundException", f"API {request.path} not found")
        key = self._authenticated(request)
        if key is None:
            self.outcomes["unauthorized"] += 1
            return _error(
                401,
                "MXUnAuthorizedAccessException",
                "Unauthorized access. Invalid AccessKey or SecretKey.",
            )
        if self._refusing_all():
            self.outcomes["refused_all"] += 1
            return self._refusal(web.json_response({"Message": "Too Many Requests"}, status=429))
        if not self.window.admit(key):
            self.outcomes["rate_limited"] += 1
            rate = self.config.stated_rate or self.config.rate
            return self._limit_refusal(rate.calls, rate.period)
        if request.path == BULK_ADD_PATH and not self.bulk_window.admit(key):
            self.outcomes["bulk_rate_limited"] += 1  # it has spent its place in --rate's window
            return self._limit_refusal(self.config.bulk_rate.calls, self.config.bulk_rate.period)
        if self._allowance_used():
            self.outcomes["allowance_used"] += 1
            return self._limit_refusal(self.config.daily_limit, 86400)
        fault = self._fault()
        if fault == "huge":
            self.outcomes["huge_body"] += 1
            return await self._huge_body(request)
        if fault == "dropped":
            self.outcomes["dropped"] += 1
            if request.transport is not None:
                request.transport.abort()  # the client sees the connection reset, no answer
            return web.Response(status=500)
        await asyncio.sleep(self._latency() + (self.config.slow_seconds if fault == "slow" else 0))
        if fault == "html":
            self.outcomes["html_502"] += 1
            return web.Response(
                status=502,
                content_type="text/html",
                text="<html><head><title>502 Bad Gateway</title></head>"
                "<body><center><h1>502 Bad Gateway</h1></center></body></html>",
            )
        if fault == "transient":
            self.outcomes["transient_500"] += 1
            return _error(
                500, "System.Data.SqlClient.SqlException", "Unable to connect to DB. Try again."
            )
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except web.HTTPRequestEntityTooLarge:
            self.outcomes["bad_request"] += 1
            return _error(413, "MXRequestTooLargeException", "The request body is too large")

    def _in_outage(self) -> bool:
        now = self._clock()
        if self._first_call is None:
            self._first_call = now
        start = self._first_call + self.config.outage_after
        return self.config.outage_after >= 0 and start <= now < start + self.config.outage_seconds

    def _refusing_all(self) -> bool:
        assert self._first_call is not None  # set by the outage check, which comes first
        return self._clock() < self._first_call + self.config.refuse_all

    def _refusal(self, response: web.Response) -> web.Response:
        if self.config.retry_after >= 0:
            response.headers["Retry-After"] = f"{self.config.retry_after:g}"
        return response

    def _limit_refusal(self, calls: int, seconds: float) -> web.Response:
        """A refusal in LeadSquared's words, naming the limit (the account's, the bulk
        calls', the day's)."""
        return self._refusal(
            _error(
                self.config.limit_status,
                "MXAPIRateLimitExceededException",
                f"API calls exceeded the limit of {calls} in {seconds:g} second(s)",
            )
        )

    async def _huge_body(self, request: web.Request) -> web.StreamResponse:
        """A 200 whose body is ``huge_body_bytes`` long, streamed in chunks (a misconfigured
        proxy's error page, say): the emulator never holds it, and a client that hangs up
        early ends it."""
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b" " * (64 << 10)
        left = self.config.huge_body_bytes
        with contextlib.suppress(ConnectionError):
            while left > 0:
                await response.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
            await response.write_eof()
        return response

    def _authenticated(self, request: web.Request) -> str | None:
        access = request.headers.get(ACCESS_KEY_HEADER) or request.query.get("accessKey")
        secret = request.headers.get(SECRET_KEY_HEADER) or request.query.get("secretKey")
        if access == self.config.access_key and secret == self.config.secret_key:
            return access
        return None

    def _fault(self) -> str:
        draw = self._rng.random()
        config = self.config
        for name, share in (
            ("huge", config.huge_body_rate),
            ("dropped", config.drop_rate),
            ("html", config.html_rate),
            ("transient", config.transient_rate),
            ("slow", config.slow_rate),
        ):
            if draw < share:
                return name
            draw -= share
        return ""

    def _latency(self) -> float:
        if self.config.latency <= 0 and self.config.jitter <= 0:
            return 0.0
        spread = self._rng.uniform(-self.config.jitter, self.config.jitter)
        return max(0.0, self.config.latency + spread)

    # ------------------------------------------------------------ DeleteActivities

    async def _delete(self, request: web.Request) -> web.Response:
        body, problem = await _json_object(request)
        if problem:
            self.outcomes["bad_request"] += 1
            return _error(400, "MXInvalidRequestBodyException", problem)
        problem = _delete_body_problem(body)
        if problem:
            self.outcomes["bad_request"] += 1
            return _error(400, "MXInvalidRequestBodyException", problem)
        lead = str(body["ProspectId"]).lower()
        codes = [str(code) for code in body["ActivityEventList"]]
        system = sorted(set(codes) & self.config.system_codes, key=int)
        if system:
            self.outcomes["app_error"] += 1
            return _error(
                500,
                "MXInvalidActivityEventException",
                f"Activity event(s) {', '.join(system)} are system activities "
                "and cannot be deleted",
            )
        from_date, to_date = body.get("FromDate") or "", body.get("ToDate") or ""
        if from_date and to_date and from_date > to_date:
            self.outcomes["app_error"] += 1
            return _error(500, "MXInvalidDateRangeException", "FromDate cannot be after ToDate")
        if self.config.leads is not None and lead not in self.config.leads:
            self.outcomes["app_error"] += 1
            return _error(500, "MXLeadNotFoundException", f"Lead {lead} does not exist")
        record = {
            "RequestId": str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            "ProspectId": lead,
            "ActivityEventList": codes,
            "FromDate": from_date,
            "ToDate": to_date,
            "StatusWebhookURL": body.get("StatusWebhookURL") or "",
            "ReceivedOn": dt.datetime.now(dt.UTC).strftime(_API_DATE),
        }
        self.records.append(record)
        self.outcomes["queued"] += 1
        arrived = self._clock()
        if self.first_accepted is None:
            self.first_accepted = arrived
            self.first_accepted_wall = time.time()
        self.last_accepted = arrived
        self.last_accepted_wall = time.time()
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()
        self._spawn(self._process(record))
        return web.json_response({"Status": "Success", "Message": {"Message": QUEUED_MESSAGE}})

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, record: dict[str, Any]) -> None:
        """After a delay the queued delete "runs": the activities go, the webhook is told."""
        await asyncio.sleep(self.config.webhook_delay)
        lead = record["ProspectId"]
        removed = [
            activity
            for activity in self.remaining(lead)
            if _matches(
                activity,
                frozenset(record["ActivityEventList"]),
                record["FromDate"],
                record["ToDate"],
            )
        ]
        self._tombstones.setdefault(lead, []).append(
            (frozenset(record["ActivityEventList"]), record["FromDate"], record["ToDate"])
        )
        if lead in self._added:  # an activity added later is not under this tombstone
            self._added[lead] = [a for a in self._added[lead] if a not in removed]
        for activity in removed:
            self._posted.pop(activity["Id"], None)
        url = record["StatusWebhookURL"]
        if not url:
            return
        document = {
            "RequestId": record["RequestId"],
            "ProspectId": lead,
            "ActivityEventList": record["ActivityEventList"],
            "FromDate": record["FromDate"],
            "ToDate": record["ToDate"],
            "Status": "Completed",
            "DeletedCount": len(removed),
            "CompletedOn": dt.datetime.now(dt.UTC).strftime(_API_DATE),
        }
        self.webhook_posts.append(document)
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=10))
        with contextlib.suppress(Exception):  # a dead webhook must not hurt the emulator
            async with self._session.post(url, json=document) as response:
                await response.read()

    # ------------------------------------------------------------ posting activities back

    async def _create(self, request: web.Request) -> web.Response:
        """ProspectActivity.svc/Create: one activity on one lead, owned by the keys' user (no
        owner field is documented for this call)."""
        body, problem = await _json_object(request)
        if problem:
            self.outcomes["bad_request"] += 1
            return _error(400, "MXInvalidRequestBodyException", problem)
        try:
            activity = self._post(body, owned=False)
        except PostRefused as refused:
            self.outcomes["bad_request" if refused.status == 400 else "app_error"] += 1
            return _error(refused.status, refused.exception_type, str(refused))
        self.outcomes["posted"] += 1
        self._post_calls.append(self._clock())
        answer = {"Status": "Success", "Message": {"Id": activity["Id"]}}
        return self._lost_answer(request) or web.json_response(answer)

    async def _bulk_add(self, request: web.Request) -> web.Response:
        """Bulk/CustomActivity/Add/ByLeadId: a JSON list of up to 25 activities, each posted
        or refused on its own (a row per activity, RowNumber from 1)."""
        items, problem = await _json_body(request)
        if not problem and not isinstance(items, list):
            problem = "The request body must be a JSON list of activities"
        elif not problem and not 1 <= len(items) <= BULK_MAX_ACTIVITIES:
            problem = (
                f"A call posts 1 to {BULK_MAX_ACTIVITIES} activities; this one holds {len(items)}"
            )
        if problem:
            self.outcomes["bad_request"] += 1
            return _error(400, "MXInvalidRequestBodyException", problem)
        rows = [self._bulk_row(number, item) for number, item in enumerate(items, 1)]
        self.outcomes["bulk_posted"] += 1
        self._post_calls.append(self._clock())
        return self._lost_answer(request) or web.json_response({"Response": rows})

    def _bulk_row(self, number: int, item: Any) -> dict[str, Any]:
        row: dict[str, Any] = {"RowNumber": number}
        try:
            activity = self._post(item, owned=True)
        except PostRefused as refused:
            self._post_items_refused += 1
            return row | {
                "ActivityCreated": False,
                "ProspectActivityId": None,
                "ExceptionMessage": str(refused),
            }
        return row | {
            "ActivityCreated": True,
            "ProspectActivityId": activity["Id"],
            "ExceptionMessage": None,
        }

    def _post(self, item: Any, *, owned: bool) -> dict[str, Any]:
        """One activity checked and created: from now on Retrieve, the listing and every
        delete carried out later see it. Raises PostRefused, having created nothing."""
        lead, code, when, note, fields = _post_shape(item)
        self._post_rules(lead, code, fields)
        owner = _owner(item.get("ActivityOwnerEmail") if owned else None)
        activity = self._new_activity(code, when, note, fields, owner)
        self._added.setdefault(lead, []).append(activity)
        self._posted[activity["Id"]] = (lead, activity)
        self._post_keys[(lead, code, activity_date(activity), note, tuple(sorted(fields)))] += 1
        return activity

    def _post_rules(self, lead: str, code: int, fields: list[tuple[str, str]]) -> None:
        """The application's rules (500 MX), as for a delete: no system activity, no lead
        that is not there (never one created), no field the activity type lacks."""
        if str(code) in self.config.system_codes:
            raise PostRefused(
                500,
                "MXInvalidActivityEventException",
                f"Activity event {code} is a system activity and cannot be posted",
            )
        if code not in CUSTOM_CODES:
            raise PostRefused(
                500, "MXInvalidActivityEventException", f"No custom activity event with code {code}"
            )
        if not self._lead_exists(lead):
            raise PostRefused(500, "MXLeadNotFoundException", f"Lead {lead} does not exist")
        unknown = [name for name, _ in fields if name not in _type_fields(code)]
        if unknown:
            raise PostRefused(
                500,
                "MXInvalidActivityFieldException",
                f"Activity event {code} has no field {', '.join(unknown)}",
            )

    def _lead_exists(self, lead: str) -> bool:
        """A lead of --leads when given, else of the data set when one is held, else any."""
        if self.config.leads is not None:
            return lead in self.config.leads
        if self.config.dataset_leads <= 0:
            return True
        if self._dataset_ids is None:
            self._dataset_ids = frozenset(self.dataset())
        return lead in self._dataset_ids

    def _new_activity(
        self, code: int, when: str, note: str, fields: list[tuple[str, str]], owner: tuple[str, str]
    ) -> dict[str, Any]:
        """As Retrieve shows it. Created now by the keys' user: the id, CreatedOn, CreatedBy and
        ModifiedOn of the activity it restores cannot come back. Its date is ``when`` (now
        when none was given): its ActivityDateTime, or its CreatedOn with --created-on-posted."""
        now = dt.datetime.fromtimestamp(self.wall(), dt.UTC).strftime(_API_DATE)
        dates = {"CreatedOn": now, "ModifiedOn": now, "ActivityDateTime": when or now}
        if self.config.created_on_posted:
            dates = {"CreatedOn": when or now, "ModifiedOn": now}
        return {
            "Id": str(uuid.UUID(int=self._post_rng.getrandbits(128), version=4)),
            "EventCode": code,
            "EventName": CUSTOM_ACTIVITY_NAMES[code % len(CUSTOM_ACTIVITY_NAMES)],
            **dates,
            "ActivityScore": code % 25,  # the type's score, not the one it had
            "Notes": note,
            "CreatedBy": _KEYS_USER[0],
            "CreatedByName": _KEYS_USER[1],
            "ModifiedBy": _KEYS_USER[0],
            "ModifiedByName": _KEYS_USER[1],
            "Owner": owner[0],
            "OwnerName": owner[1],
            "Data": [{"Key": key, "Value": value} for key, value in fields],
        }

    def _lost_answer(self, request: web.Request) -> web.Response | None:
        """--post-lost-rate: the activities are there, and the connection is dropped without
        an answer, so the client cannot know: the one fault after which a retry posts a second
        copy (a drop before acting, --drop-rate, creates nothing)."""
        rate = self.config.post_lost_rate
        if rate <= 0 or self._lost_rng.random() >= rate:
            return None
        self.outcomes["post_lost"] += 1
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    # ------------------------------------------------------------ preview endpoints

    async def _setting(self, request: web.Request) -> web.Response:
        code = request.query.get("code", "").strip()
        if not code.isdigit() or int(code) not in CUSTOM_CODES:
            kind = "system activity" if code in self.config.system_codes else "activity event"
            self.outcomes["app_error"] += 1
            return _error(
                500, "MXInvalidActivityEventException", f"No custom {kind} with code {code!r}"
            )
        self.outcomes["setting"] += 1
        name = CUSTOM_ACTIVITY_NAMES[int(code) % len(CUSTOM_ACTIVITY_NAMES)]
        return web.json_response(
            {
                "ActivityEvent": int(code),
                "Name": name.lower().replace(" ", "_"),
                "DisplayName": name,
                "Fields": [  # what an activity of this type may be posted with
                    {"SchemaName": key, "DisplayName": label, "DataType": kind}
                    for key, (label, kind) in zip(
                        _type_fields(int(code)), _FIELD_KINDS, strict=False
                    )
                ],
            }
        )

    async def _retrieve(self, request: web.Request) -> web.Response:
        lead = request.query.get("leadId", "").strip().lower()
        body, problem = await _json_object(request)
        if problem or not _GUID_RE.fullmatch(lead):
            self.outcomes["bad_request"] += 1
            return _error(400, "MXInvalidRequestBodyException", problem or "leadId is not a GUID")
        parameter = body.get("Parameter") or {}
        wanted = parameter.get("ActivityEvent")
        paging = body.get("Paging") or {}
        try:
            offset, count = int(paging.get("Offset", 0)), int(paging.get("RowCount", 10))
        except (TypeError, ValueError):
            return _error(400, "MXInvalidRequestBodyException", "Paging must hold numbers")
        activities = [
            a for a in self.remaining(lead) if wanted is None or str(a["EventCode"]) == str(wanted)
        ]
        self.outcomes["retrieve"] += 1
        total = self.config.retrieve_record_count
        if total is None:
            total = len(activities)
        rows = activities[offset : offset + count]
        rows += [
            _old_activity(lead, wanted, at)
            for at in range(max(offset, len(activities)), min(offset + count, total))
        ]
        shown = [{key: value for key, value in a.items() if key != "Index"} for a in rows]
        return web.json_response({"RecordCount": total, "ProspectActivities": shown})

    def dataset(self) -> list[str]:
        """The data set's leads: the same ones for the same --seed and --dataset-leads."""
        if self._dataset is None:
            rng = random.Random(f"dataset-{self.config.seed}")
            self._dataset = [
                str(uuid.UUID(int=rng.getrandbits(128), version=4))
                for _ in range(self.config.dataset_leads)
            ]
        return self._dataset

    def remaining(self, lead: str) -> list[dict[str, Any]]:
        """A lead's activities now: those its carried-out deletes have not removed, then the
        ones added or posted since (in that order)."""
        return _activities(lead, self._tombstones.get(lead, [])) + self._added.get(lead, [])

    def add_activity(self, lead: str, code: int, created_on: str) -> dict[str, Any]:
        """A user creates an activity on a lead now (during a purge, say): Retrieve and the
        deletes carried out from here on see it; the listing does not (its catalogue is the
        data set's, built once). Returns it as Retrieve shows it."""
        lead = lead.lower()
        self._added_ever += 1
        identity = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{lead}/added/{self._added_ever}"))
        activity = {
            "Id": identity,
            "EventCode": code,
            "EventName": CUSTOM_ACTIVITY_NAMES[code % len(CUSTOM_ACTIVITY_NAMES)],
            "CreatedOn": created_on,
            "ModifiedOn": created_on,
            "Index": 1000 + self._added_ever,
            **_details(identity, code),
        }
        self._added.setdefault(lead, []).append(activity)
        return {key: value for key, value in activity.items() if key != "Index"}

    def _catalog(self, code: str) -> list[tuple[str, dict[str, Any], str]]:
        """(ModifiedOn, activity, lead) of one code across the data set, oldest first; built
        once, then filtered for deletes carried out since."""
        if code not in self._by_code:
            rows = [
                (activity["ModifiedOn"], activity, lead)
                for lead in self.dataset()
                for activity in _activities(lead, [])
                if str(activity["EventCode"]) == code
            ]
            self._by_code[code] = sorted(rows, key=lambda row: (row[1]["CreatedOn"], row[1]["Id"]))
        return self._by_code[code]

    async def _list(self, request: web.Request) -> web.Response:
        """RetrieveByActivityEvent: one activity type across leads, filtered on ModifiedOn (as
        LeadSquared documents), sorted by CreatedOn, in pages capped at --page-cap."""
        body, problem = await _json_object(request)
        parameter, paging = body.get("Parameter") or {}, body.get("Paging") or {}
        try:
            code = str(int(parameter["ActivityEvent"]))
            index, size = int(paging.get("PageIndex", 1)), int(paging.get("PageSize", 100))
        except (KeyError, TypeError, ValueError):
            problem = problem or "Parameter.ActivityEvent and Paging must hold numbers"
        if problem or index < 1 or size < 1:
            self.outcomes["bad_request"] += 1
            return _error(400, "MXInvalidRequestBodyException", problem or "PageIndex starts at 1")
        low, high = parameter.get("FromDate") or "", parameter.get("ToDate") or "9999"
        matching = [
            (activity, lead)
            for modified, activity, lead in self._catalog(code)
            if low <= modified <= high
            and not any(_matches(activity, *tomb) for tomb in self._tombstones.get(lead, []))
        ]
        posted = self._posted_listed(code, low, high)
        if posted:  # the catalogue is sorted the same way: merged, not sorted again
            matching = list(heapq.merge(matching, posted, key=_listing_order))
        config = self.config
        served = min(size, config.page_cap)
        skipped = 0 if config.ignore_page_index else index - 1
        start = skipped * (size if config.offset_from_asked_size else served)
        page = matching[start : start + served]
        self.outcomes["list"] += 1
        self.list_calls.append({"code": code, "page": index, "size": served})
        return web.json_response(
            {
                "RecordCount": len(matching)
                if config.record_count is None
                else config.record_count,
                "List": [
                    self._listed(code, activity, lead, start + n)
                    for n, (activity, lead) in enumerate(page)
                ],
            }
        )

    def _posted_listed(self, code: str, low: str, high: str) -> list[tuple[dict[str, Any], str]]:
        """Posted activities of ``code`` still there, modified in [low, high], in listing
        order: unlike add_activity's, they are in the listing (a restore reads it back)."""
        found = [
            (activity, lead)
            for lead, activity in self._posted.values()
            if str(activity["EventCode"]) == code and low <= activity["ModifiedOn"] <= high
        ]
        return sorted(found, key=_listing_order)

    def _listed(self, code: str, activity: dict[str, Any], lead: str, at: int) -> dict[str, Any]:
        """One listing row; the first --rows-without-ids / --bad-lead-ids rows are broken."""
        row = {
            "ProspectActivityId": activity["Id"],
            "RelatedProspectId": lead if at >= self.config.bad_lead_ids else f"lead-{at + 1}",
            "ActivityEvent": code,
            "CreatedOn": activity["CreatedOn"],
            "ModifiedOn": activity["ModifiedOn"],
            **(
                {"ActivityDateTime": activity["ActivityDateTime"]}
                if "ActivityDateTime" in activity
                else {}
            ),
            # As LeadSquared's listing rows: the activity's fields flat beside the ids.
            **{key: activity[key] for key in _LISTED_FIELDS},
            **{pair["Key"]: pair["Value"] for pair in activity["Data"]},
        }
        if at < self.config.rows_without_ids:
            if at % 2:
                row["ProspectActivityId"] = ""
            else:
                del row["ProspectActivityId"]
        return row

    async def _user(self, request: web.Request) -> web.Response:
        """UserByAccessKey.Get: the keys' user and the account's own API host."""
        self.outcomes["user"] += 1
        api = self.config.account_host or request.host
        return web.json_response(
            {
                "Id": _KEYS_USER[0],
                "FirstName": _KEYS_USER[1],
                "EmailAddress": _KEYS_USER[2],
                "Role": "Administrator",
                "TimeZone": "Asia/Kolkata",
                "OrgId": "4242",
                "LSQCommonServiceURLs": {"api": api, "app": "app.example.invalid"},
            }
        )

    async def _census(self, request: web.Request) -> web.Response:
        query = request.query
        codes = frozenset(query.get("codes", "").split(","))
        return web.json_response(self.census(codes, query.get("from", ""), query.get("to", "")))

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _next_day(self, request: web.Request) -> web.Response:
        """The allowance's day ends now, as midnight UTC would end it: for a benchmark's
        emulator in another process, which a test's ``wall`` cannot reach."""
        self.days_ahead += 1
        return web.json_response({"days_ahead": self.days_ahead})


async def _json_body(request: web.Request) -> tuple[Any, str]:
    if request.content_type != "application/json":
        return None, "Content-Type must be application/json"
    raw = await request.read()
    try:
        return json.loads(raw), ""
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, "The request body is not valid JSON"


async def _json_object(request: web.Request) -> tuple[dict[str, Any], str]:
    body, problem = await _json_body(request)
    if problem:
        return {}, problem
    if not isinstance(body, dict):
        return {}, "The request body must be a JSON object"
    return body, ""


def _bad_post(message: str) -> PostRefused:
    return PostRefused(400, "MXInvalidRequestBodyException", message)


def _post_shape(item: Any) -> tuple[str, int, str, str, list[tuple[str, str]]]:
    """(lead, code, ActivityDateTime or "", note, fields) of an activity to post; PostRefused
    (400) for one not per spec."""
    if not isinstance(item, dict):
        raise _bad_post("An activity must be a JSON object")
    lead = item.get("RelatedProspectId")
    if not lead and item.get("EmailAddress"):  # LeadSquared would create a lead: never here
        raise _bad_post("RelatedProspectId is mandatory: the emulator does not post by email")
    if not isinstance(lead, str) or not _GUID_RE.fullmatch(lead):
        raise _bad_post(f"RelatedProspectId {lead!r} is not a valid Guid")
    code = item.get("ActivityEvent")
    if isinstance(code, bool) or not str(code).isdigit():
        raise _bad_post(f"ActivityEvent {code!r} is not an activity code")
    when = item.get("ActivityDateTime") or ""
    if when and (problem := _date_problem("ActivityDateTime", when)):
        raise _bad_post(problem)
    note = item.get("ActivityNote")
    if note is not None and not isinstance(note, str):
        raise _bad_post("ActivityNote must be text")
    return lead.lower(), int(str(code)), when, note or "", _fields(item.get("Fields"))


def _fields(fields: Any) -> list[tuple[str, str]]:
    """Fields as (SchemaName, Value) pairs, each Value as text (as Retrieve shows it)."""
    if fields is None:
        return []
    if not isinstance(fields, list) or not all(
        isinstance(field, dict)
        and isinstance(field.get("SchemaName"), str)
        and isinstance(field.get("Value"), str | int | float | None)
        for field in fields
    ):
        raise _bad_post("Fields must be a list of {SchemaName, Value} with text values")
    return [
        (field["SchemaName"], "" if field.get("Value") is None else str(field["Value"]))
        for field in fields
    ]


def _owner(email: Any) -> tuple[str, str]:
    """(Owner, OwnerName) of ActivityOwnerEmail: the keys' user when none is given."""
    if email in (None, ""):
        return _KEYS_USER[0], _KEYS_USER[1]
    for identity, name, address in (_KEYS_USER, *_USERS):
        if isinstance(email, str) and email.strip().lower() == address:
            return identity, name
    raise PostRefused(
        500, "MXInvalidOwnerException", f"ActivityOwnerEmail {email!r} is not a user here"
    )


def _delete_body_problem(body: dict[str, Any]) -> str:
    lead = body.get("ProspectId")
    if not isinstance(lead, str) or not lead:
        return "ProspectId is mandatory"
    if not _GUID_RE.fullmatch(lead):
        return f"ProspectId {lead!r} is not a valid Guid"
    codes = body.get("ActivityEventList")
    if not isinstance(codes, list) or not codes:
        return "ActivityEventList is mandatory and must be a non-empty list"
    for code in codes:
        if isinstance(code, bool) or not str(code).isdigit():
            return f"ActivityEventList holds {code!r}, which is not an activity code"
    for name in ("FromDate", "ToDate"):
        value = body.get(name)
        if value not in (None, "") and (problem := _date_problem(name, value)):
            return problem
    webhook = body.get("StatusWebhookURL")
    if webhook not in (None, "") and not isinstance(webhook, str):
        return "StatusWebhookURL must be a string"
    return ""


def _date_problem(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _API_DATE_RE.fullmatch(value):
        return f"{name} must be in the format YYYY-MM-DD HH:MM:SS"
    try:
        dt.datetime.strptime(value, _API_DATE)
    except ValueError:
        return f"{name} {value!r} is not a valid date"
    return ""


def _activities(
    lead: str, tombstones: list[tuple[frozenset[str], str, str]]
) -> list[dict[str, Any]]:
    """The lead's activities: derived from its id, so every run sees the same ones; those the
    deletes carried out (``tombstones``) removed are left out. Each a copy of its own, its
    custom fields too: the generated ones are kept for every emulator of the process."""
    return [
        {**activity, "Data": [dict(pair) for pair in activity["Data"]]}
        for activity in _generated(lead)
        if not any(_matches(activity, codes, f, t) for codes, f, t in tombstones)
    ]


@functools.lru_cache(maxsize=4096)
def _generated(lead: str) -> tuple[dict[str, Any], ...]:
    """Every activity the lead was born with, drawn from its id (kept for the leads in use:
    a listing walks every lead of the data set once per code, a delete its lead)."""
    seed = int(hashlib.sha256(lead.encode()).hexdigest()[:16], 16)
    rng = random.Random(seed)
    start = dt.datetime(2024, 1, 1)
    born = []
    for index in range(rng.randint(2, 12)):
        code = rng.choice([*list(range(150, 160)), 201, 202, 203, 204])
        created = start + dt.timedelta(minutes=rng.randint(0, 800_000))
        identity = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        # Modified some days after it was created (from the id, so the stream above is kept):
        # a listing by ModifiedOn then holds activities created before its window.
        later = int(identity[:8], 16) % (40 * 24 * 60)
        modified = created + dt.timedelta(minutes=later)
        born.append(
            {
                "Id": identity,
                "EventCode": code,
                "EventName": CUSTOM_ACTIVITY_NAMES[code % len(CUSTOM_ACTIVITY_NAMES)],
                "CreatedOn": created.strftime(_API_DATE),
                "ModifiedOn": modified.strftime(_API_DATE),
                "Index": index,
                **_details(identity, code),
            }
        )
    return tuple(born)


_LISTED_FIELDS = (
    "EventName",
    "ActivityScore",
    "Notes",
    "CreatedBy",
    "CreatedByName",
    "ModifiedBy",
    "ModifiedByName",
    "Owner",
    "OwnerName",
)
_USERS = (  # (Id, name, email): an activity's Owner and OwnerName; the bulk add's owner email
    ("6f1c2a10-0000-4000-8000-00000000a001", "Asha Rao", "asha.rao@example.com"),
    ("6f1c2a10-0000-4000-8000-00000000a002", "Björn Åkesson", "bjorn.akesson@example.com"),
    ("6f1c2a10-0000-4000-8000-00000000a003", "Li Wei", "li.wei@example.com"),
    ("6f1c2a10-0000-4000-8000-00000000a004", "O'Brien, Siobhan", "siobhan.obrien@example.com"),
)
# The user of the emulator's keys (UserByAccessKey.Get): who creates, and owns unless told,
# what is posted.
_KEYS_USER = ("7d4c9ab0-0000-4000-8000-000000000001", "Demo", "demo@example.com")
# DisplayName and DataType of an activity type's fields, in _type_fields' order.
_FIELD_KINDS = (("Notes", "String"), ("Amount", "Number"), ("Date", "Date"), ("Rating", "Number"))
_NOTES = (
    "Called back, no answer",
    'Asked for the "premium" brochure',
    "Paid 1,200.00 INR; receipt sent",
    '=HYPERLINK("http://example.invalid")',  # a note that a spreadsheet would run
    "Two lines:\nfirst, then second",
    "",
    "Rückruf erbeten – 午後",
)


def _details(identity: str, code: int) -> dict[str, Any]:
    """What Retrieve shows of an activity beyond its id, code and dates: owner, notes, custom
    fields. Drawn from a hash of its id, not from the lead's random stream, so the activities
    (ids, codes, dates) are the same ones as before these fields existed."""
    digest = hashlib.sha256(identity.encode()).digest()
    creator, modifier = _USERS[digest[0] % len(_USERS)], _USERS[digest[1] % len(_USERS)]
    owner = _USERS[digest[2] % len(_USERS)]
    values = (
        _NOTES[digest[3] % len(_NOTES)],
        f"{int.from_bytes(digest[4:7], 'big') / 100:.2f}",
        f"2024-{digest[7] % 12 + 1:02d}-{digest[8] % 28 + 1:02d}",
        str(digest[9] % 5 + 1),
    )
    data = [
        {"Key": key, "Value": value} for key, value in zip(_type_fields(code), values, strict=False)
    ]
    return {
        "ActivityScore": digest[10] % 25,
        "Notes": _NOTES[digest[11] % len(_NOTES)],
        "CreatedBy": creator[0],
        "CreatedByName": creator[1],
        "ModifiedBy": modifier[0],
        "ModifiedByName": modifier[1],
        "Owner": owner[0],
        "OwnerName": owner[1],
        "Data": data,
    }


def _type_fields(code: int) -> tuple[str, ...]:
    """The custom fields of an activity type: types differ, odd codes have one more."""
    extra = (f"mx_Custom_{4 + code % 3}",) if code % 2 else ()
    return ("mx_Custom_1", "mx_Custom_2", "mx_Custom_3", *extra)


def _old_activity(lead: str, code: object, at: int) -> dict[str, Any]:
    """--retrieve-record-count: the lead seems to hold more activities than it has; those
    past its own are old (created in 2001, before any window), so a purge leaves them."""
    event = int(str(code)) if str(code).isdigit() else 150
    return {
        "Id": str(uuid.uuid5(uuid.NAMESPACE_OID, f"{lead}/{event}/{at}")),
        "EventCode": event,
        "EventName": CUSTOM_ACTIVITY_NAMES[event % len(CUSTOM_ACTIVITY_NAMES)],
        "CreatedOn": "2001-01-01 00:00:00",
        "ModifiedOn": "2001-01-01 00:00:00",
        "Index": at,
        **_details(f"{lead}/{event}/{at}", event),
    }


def _matches(activity: dict[str, Any], codes: frozenset[str], from_date: str, to_date: str) -> bool:
    when = activity_date(activity)
    return (
        str(activity["EventCode"]) in codes
        and (not from_date or when >= from_date)
        and (not to_date or when <= to_date)
    )


def _listing_order(row: tuple[dict[str, Any], str]) -> tuple[str, str]:
    return row[0]["CreatedOn"], row[0]["Id"]


@contextlib.asynccontextmanager
async def running_emulator(
    config: EmulatorConfig | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    port: int = 0,
) -> AsyncIterator[Emulator]:
    """An emulator on 127.0.0.1 for the duration of the block; ``.url`` is its base URL."""
    emulator = Emulator(config, clock=clock)
    await emulator.start(port=port)
    try:
        yield emulator
    finally:
        await emulator.stop()


async def serve(
    config: EmulatorConfig, *, port: int, port_file: Path | None, announce: Callable[[str], None]
) -> None:
    """Run until SIGINT/SIGTERM (the ``bulk-delete emulator`` command)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_emulator(config, port=port) as emulator:
        if port_file is not None:
            # one tiny write at start-up, before any call is served
            port_file.write_text(emulator.url.rsplit(":", 1)[1] + "\n")  # noqa: ASYNC240
        announce(f"LeadSquared emulator listening on {emulator.url} (rate {config.rate})")
        await stop.wait()
        announce(f"emulator stopped: {json.dumps(emulator.stats())}")


def _delete_key(record: dict[str, Any]) -> tuple[str, tuple[str, ...], str, str]:
    """What makes two accepted deletes the same one sent twice."""
    codes = tuple(sorted(record["ActivityEventList"]))
    return record["ProspectId"], codes, record["FromDate"], record["ToDate"]
