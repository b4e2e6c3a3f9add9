"""The HTTP client's edges that a real server can hardly produce on demand, with aioresponses:
timeouts, disconnects, broken payloads, odd bodies. Everything else runs against the emulator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from bulk_delete.api import DELETE_PATH
from bulk_delete.config import Credentials
from bulk_delete.send.answers import Verdict
from bulk_delete.send.client import LeadSquaredClient

HOST = "https://api-in21.leadsquared.com"
URL = HOST + DELETE_PATH
KEYS = Credentials(access_key="u$access-key-42", secret_key="S3cr3t/Key+with%chars")
BODY = '{"ProspectId":"3aee22bd-8419-422a-8242-c510df9af021","ActivityEventList":["201"]}'


class Response(aiohttp.ClientResponse):
    """aioresponses 0.7.9 (the newest) builds responses without the ``stream_writer`` that
    aiohttp 3.14 requires; give it a stand-in that reports nothing written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
async def client() -> AsyncIterator[LeadSquaredClient]:
    async with aiohttp.ClientSession() as session:
        yield LeadSquaredClient(session, HOST, KEYS)


@pytest.mark.parametrize(
    ("exception", "message"),
    [
        (TimeoutError(), "timed out waiting for the answer"),
        (aiohttp.ServerDisconnectedError(), "ServerDisconnectedError"),
        (aiohttp.ClientPayloadError("Response payload is not completed"), "payload"),
        (aiohttp.ClientConnectionResetError("Connection reset by peer"), "reset"),
    ],
)
async def test_transport_errors_are_transient_answers(
    client: LeadSquaredClient, exception: Exception, message: str
) -> None:
    with aioresponses() as mocked:
        mocked.post(URL, exception=exception)
        answer = await client.delete_activities(BODY)
    assert answer.verdict is Verdict.TRANSIENT
    assert answer.http_status is None
    assert message in answer.message


@pytest.mark.parametrize(
    ("status", "body", "verdict", "message"),
    [
        (200, {"Status": "Error", "ExceptionMessage": "Lead is locked"}, Verdict.FAILED, "locked"),
        (200, {"Status": "Success", "Message": {"Message": "queued!"}}, Verdict.QUEUED, "queued!"),
        (503, "<html><body>Service Unavailable</body></html>", Verdict.TRANSIENT, "non-JSON"),
        (500, {"ExceptionType": "SqlException", "ExceptionMessage": "DB"}, Verdict.TRANSIENT, "DB"),
        (200, "", Verdict.TRANSIENT, "without a JSON Success"),
    ],
)
async def test_odd_bodies(
    client: LeadSquaredClient, status: int, body: object, verdict: Verdict, message: str
) -> None:
    with aioresponses() as mocked:
        if isinstance(body, dict):
            mocked.post(URL, status=status, payload=body, response_class=Response)
        else:
            mocked.post(URL, status=status, body=str(body), response_class=Response)
        answer = await client.delete_activities(BODY)
    assert answer.verdict is verdict
    assert message in answer.message


async def test_keys_go_in_headers_and_the_body_as_planned(client: LeadSquaredClient) -> None:
    with aioresponses() as mocked:
        mocked.post(URL, payload={"Status": "Success"}, response_class=Response)
        await client.delete_activities(BODY)
        [(_, calls)] = mocked.requests.items()
    sent = calls[0].kwargs
    assert sent["headers"]["x-LSQ-AccessKey"] == KEYS.access_key
    assert sent["headers"]["x-LSQ-SecretKey"] == KEYS.secret_key
    assert sent["headers"]["Content-Type"] == "application/json"
    assert json.loads(sent["data"]) == json.loads(BODY)
    assert "accessKey" not in sent["params"]


async def test_an_error_text_that_echoes_a_key_is_redacted() -> None:
    async with aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, HOST, KEYS, auth="query")
        with aioresponses() as mocked:
            mocked.post(
                URL + "?accessKey=u%24access-key-42&secretKey=S3cr3t%2FKey%2Bwith%25chars",
                exception=aiohttp.ClientConnectionError(f"cannot reach {URL}?secretKey=S3cr3t"),
            )
            answer = await client.delete_activities(BODY)
    assert answer.verdict is Verdict.TRANSIENT
    assert KEYS.secret_key not in answer.message
