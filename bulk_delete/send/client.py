"""The LeadSquared HTTP client. It takes its aiohttp session from outside (so tests and the
pool share one keep-alive session) and turns every call into an Answer. Keys go out as the
``x-LSQ-*`` headers LeadSquared recommends, or — with ``auth="query"`` — in the query string
as on the API page; either way no key reaches an Answer, a log line or an exception: every
answer's body and headers pass through the redactor here, before anything reads them, in every
form a server can echo a key (URL-encoded, JSON-escaped, base64: see redaction.py)."""

from __future__ import annotations

import codecs
import dataclasses
import importlib.util
import json
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import __version__
from ..api import (
    ACCESS_KEY_HEADER,
    DELETE_PATH,
    LIST_PATH,
    RETRIEVE_PATH,
    SECRET_KEY_HEADER,
    SETTING_PATH,
    USER_PATH,
)
from ..config import AuthMode, Credentials, SendSettings
from ..redaction import redactor
from . import wire
from .answers import (
    MAX_BODY,
    Answer,
    body_over_cap,
    classify,
    classify_exception,
    unreachable,
    unresolved,
)


def _lazy(name: str) -> ModuleType:
    """A module that is imported on first use (the standard library's LazyLoader). aiohttp
    takes about 0.2 s to import, and `plan` of a sheet never opens a connection."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import aiohttp
else:
    aiohttp = _lazy("aiohttp")

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# So that the account's API logs tell the purge from the account's other integrations.
USER_AGENT = f"bulk-delete/{__version__}"


@asynccontextmanager
async def open_session(settings: SendSettings) -> AsyncIterator[aiohttp.ClientSession]:
    """The one keep-alive session of a command, sized for the run's workers."""
    connector = aiohttp.TCPConnector(limit=settings.workers, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=settings.timeout, connect=min(10.0, settings.timeout))
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trace_configs=[on_the_wire()]
    ) as session:
        yield session


def on_the_wire() -> aiohttp.TraceConfig:
    """Tells the pool when each request actually goes out (wire.py): after a new connection's
    handshake, or once more when aiohttp re-sends a GET on a dropped connection."""

    async def headers_sent(*_: object) -> None:
        wire.went_out()

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers_sent)
    return trace


class LeadSquaredClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        credentials: Credentials,
        *,
        auth: AuthMode = "header",
    ) -> None:
        self._session = session
        self.host = host
        self._secrets = credentials.secrets()
        self._redactor = redactor(tuple(sorted(self._secrets)))
        self._headers = {**JSON_HEADERS, "User-Agent": USER_AGENT}
        self._netloc = urlsplit(host).netloc
        self._address = address_of(host)
        self._params: dict[str, str] = {}
        if auth == "header":
            self._headers[ACCESS_KEY_HEADER] = credentials.access_key
            self._headers[SECRET_KEY_HEADER] = credentials.secret_key
        else:
            self._params = {
                "accessKey": credentials.access_key,
                "secretKey": credentials.secret_key,
            }

    def __repr__(self) -> str:
        return f"LeadSquaredClient(host={self.host!r})"

    async def delete_activities(self, body_json: str) -> Answer:
        """POST DeleteActivities with a body the plan already serialised."""
        answer, _ = await self._call("POST", DELETE_PATH, data=body_json.encode())
        return answer

    async def activity_setting(self, code: str) -> tuple[Answer, dict[str, Any]]:
        """GetActivitySetting for one code: the Answer and, when there is one, the JSON."""
        return await self._json("GET", SETTING_PATH, {"code": code})

    async def user_by_access_key(self) -> tuple[Answer, dict[str, Any]]:
        """The keys' user, with ``LSQCommonServiceURLs.api``: the account's own API host."""
        return await self._json("GET", USER_PATH, {})

    async def list_activities(
        self, code: str, from_date: str, to_date: str, page: int, size: int
    ) -> tuple[Answer, dict[str, Any]]:
        """RetrieveByActivityEvent: one page of one activity type across leads."""
        body = {
            "Parameter": {"FromDate": from_date, "ToDate": to_date, "ActivityEvent": int(code)},
            "Paging": {"PageIndex": page, "PageSize": size},
            "Sorting": {"ColumnName": "CreatedOn", "Direction": 0},
        }
        return await self._json("POST", LIST_PATH, {}, json.dumps(body).encode())

    async def retrieve(
        self, lead: str, code: str, offset: int, count: int
    ) -> tuple[Answer, dict[str, Any]]:
        """Retrieve: one lead's activities of one type (``Offset`` counted in rows)."""
        body = {
            "Parameter": {"ActivityEvent": int(code)},
            "Paging": {"Offset": str(offset), "RowCount": str(count)},
        }
        return await self._json("POST", RETRIEVE_PATH, {"leadId": lead}, json.dumps(body).encode())

    async def _json(
        self, method: str, path: str, params: dict[str, str], data: bytes | None = None
    ) -> tuple[Answer, dict[str, Any]]:
        """A call whose 200 answer is data, not a Status document: the Answer, and the JSON."""
        answer, text = await self._call(method, path, params=params, data=data)
        try:
            body = json.loads(text)
        except ValueError:
            body = {}
        return answer, body if isinstance(body, dict) and answer.http_status == 200 else {}

    async def _call(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[Answer, str]:
        try:
            async with self._session.request(
                method,
                self.host + path,
                data=data,
                headers=self._headers,
                params={**self._params, **(params or {})},
                allow_redirects=False,  # the keys go to the configured host and nowhere else
            ) as response:
                raw = await _read_capped(response)
                if raw is None:  # the connection is closed unread when the response is left
                    return body_over_cap(response.status), ""
                text = self._redactor.sub(raw.decode(_charset(response), errors="replace"))
                answer = classify(response.status, text, self._headers_of(response))
        except aiohttp.ClientConnectorError as error:
            return self._not_connected(error), ""
        except aiohttp.ConnectionTimeoutError:
            return unreachable(self._address, "the connection timed out"), ""
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return classify_exception(error, self._secrets), ""
        if self._redactor.found(answer.message):  # decoded from a form the body hid it in
            answer = dataclasses.replace(answer, message=self._redactor.sub(answer.message))
        return answer, text

    def _headers_of(self, response: aiohttp.ClientResponse) -> dict[str, str]:
        """The headers an Answer reads, redacted: a redirect's Location may quote the URL."""
        return {
            name: self._redactor.sub(value)
            for name in ("Location", "Retry-After")
            if (value := response.headers.get(name)) is not None
        }

    def _not_connected(self, error: aiohttp.ClientConnectorError) -> Answer:
        """No connection: the name does not resolve, or nothing listens there."""
        cause = error.os_error
        if isinstance(error, aiohttp.ClientSSLError):
            return classify_exception(error, self._secrets)
        if isinstance(cause, socket.gaierror):
            return unresolved(urlsplit(self.host).hostname or self._netloc, cause)
        if isinstance(cause, ConnectionRefusedError):
            return unreachable(self._address, "connection refused")
        return unreachable(self._address, cause.strerror or type(cause).__name__)


def address_of(host: str) -> str:
    """HOST:PORT a connection to ``host`` goes to, the scheme's port filled in: what a person
    checks when nothing answers (a wrong port in LSQ_HOST)."""
    parts = urlsplit(host)
    name = parts.hostname or parts.netloc
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"[{name}]:{port}" if ":" in name else f"{name}:{port}"


async def _read_capped(response: aiohttp.ClientResponse) -> bytes | None:
    """The body, or None when it is longer than MAX_BODY: at most MAX_BODY + 1 bytes are read,
    whatever the server sends (a 300 MB error page would otherwise be held whole)."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY:
        chunk = await response.content.read(MAX_BODY + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    return None


def _charset(response: aiohttp.ClientResponse) -> str:
    try:
        return codecs.lookup(response.charset or "utf-8").name
    except LookupError:
        return "utf-8"
