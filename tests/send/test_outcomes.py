"""Answer classification and the retry policy: pure functions, table-driven."""

from __future__ import annotations

import json
import random

import aiohttp
import pytest
from multidict import CIMultiDict

from bulk_delete.redaction import redact
from bulk_delete.send.answers import Answer, Verdict, classify, classify_exception
from bulk_delete.send.retry import Action, RetryPolicy

QUEUED = json.dumps(
    {
        "Status": "Success",
        "Message": {"Message": "Your request for delete activities has been queued."},
    }
)


def err(kind: str, message: str) -> str:
    return json.dumps({"Status": "Error", "ExceptionType": kind, "ExceptionMessage": message})


@pytest.mark.parametrize(
    ("status", "text", "verdict", "message"),
    [
        (200, QUEUED, Verdict.QUEUED, "queued"),
        (200, "<html>ok</html>", Verdict.TRANSIENT, "without a JSON Success"),
        (200, err("MXSomething", "nope"), Verdict.FAILED, "nope"),
        (
            400,
            err("MXInvalidRequestBodyException", "ProspectId is mandatory"),
            Verdict.FAILED,
            "ProspectId is mandatory",
        ),
        (400, "Bad Request", Verdict.FAILED, "HTTP 400"),
        (413, "", Verdict.FAILED, "HTTP 413"),
        (401, err("MXUnAuthorizedAccessException", "Invalid keys"), Verdict.FATAL, "Invalid keys"),
        (403, "", Verdict.FATAL, "HTTP 403"),
        (404, "<html>Not Found</html>", Verdict.FATAL, "HTTP 404"),
        (
            429,
            err(
                "MXAPIRateLimitExceededException",
                "API calls exceeded the limit of 25 in 5 second(s)",
            ),
            Verdict.RATE_LIMITED,
            "exceeded the limit",
        ),
        (
            500,
            err("MXInvalidActivityEventException", "system activity"),
            Verdict.FAILED,
            "MXInvalidActivityEventException: system activity",
        ),
        (
            500,
            err("System.Data.SqlClient.SqlException", "Unable to connect to DB"),
            Verdict.TRANSIENT,
            "Unable to connect to DB",
        ),
        (500, "", Verdict.TRANSIENT, "non-JSON"),
        (502, "<html>502 Bad Gateway</html>", Verdict.TRANSIENT, "non-JSON"),
        (503, err("ServiceUnavailable", "later"), Verdict.TRANSIENT, "later"),
    ],
)
def test_classify(status: int, text: str, verdict: Verdict, message: str) -> None:
    answer = classify(status, text)
    assert answer.verdict is verdict
    assert answer.http_status == status
    assert message in answer.message


def test_retry_after_is_read_when_present() -> None:
    assert classify(429, "", CIMultiDict({"Retry-After": "7"})).retry_after == 7.0
    assert classify(429, "", CIMultiDict()).retry_after is None
    assert (
        classify(429, "", CIMultiDict({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"})).retry_after
        is None
    )


def test_transport_errors_are_transient_and_redacted() -> None:
    url = "https://api.leadsquared.com/v2/x?accessKey=u%24ACCESS&secretKey=S3CR3T%2Fkey"
    error = aiohttp.InvalidURL(url)
    answer = classify_exception(error, ("u$ACCESS", "S3CR3T/key"))
    assert answer.verdict is Verdict.TRANSIENT
    assert "S3CR3T" not in answer.message
    assert "ACCESS" not in answer.message
    assert "***" in answer.message
    assert classify_exception(TimeoutError()).message == "timed out waiting for the answer"


def test_redact_covers_encoded_forms() -> None:
    secrets = ("a b+c/d", "plain")
    for form in ("a b+c/d", "a%20b%2Bc%2Fd", "a+b%2Bc%2Fd", "plain"):
        assert redact(f"x={form}&y", secrets) == "x=***&y"


TRANSIENT = Answer(Verdict.TRANSIENT, 502, "bad gateway")


@pytest.mark.parametrize(
    ("attempt", "answer", "action"),
    [
        (1, Answer(Verdict.QUEUED, 200), Action.RECORD),
        (1, Answer(Verdict.FAILED, 400), Action.RECORD),
        (1, Answer(Verdict.FAILED, 500), Action.RECORD),
        (1, Answer(Verdict.FATAL, 401), Action.ABORT),
        (1, Answer(Verdict.RATE_LIMITED, 429), Action.WAIT_WINDOW),
        (6, Answer(Verdict.RATE_LIMITED, 429), Action.WAIT_WINDOW),  # 429s never run out
        (1, TRANSIENT, Action.RETRY),
        (5, TRANSIENT, Action.RETRY),
        (6, TRANSIENT, Action.RECORD),  # max_attempts reached
    ],
)
def test_retry_decisions(attempt: int, answer: Answer, action: Action) -> None:
    assert RetryPolicy(max_attempts=6).decide(attempt, answer, random.Random(1)).action is action


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (20, 60.0)]
)
def test_backoff_is_full_jitter_under_the_exponential_cap(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy(max_attempts=100, base=1.0, cap=60.0)
    rng = random.Random(42)
    delays = [policy.decide(attempt, TRANSIENT, rng).delay for _ in range(500)]
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > 0.8 * ceiling  # full jitter spans the range …
    assert min(delays) < 0.2 * ceiling  # … from near zero


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            429,
            {
                "Status": "Error",
                "ExceptionMessage": "API calls exceeded the limit of 25 in 5 second(s)",
            },
        ),
        (
            403,
            {
                "Status": "Error",
                "ExceptionMessage": "API calls exceeded the limit of 10 in 5 second(s)",
            },
        ),
        (
            200,
            {
                "Status": "Error",
                "ExceptionMessage": "API calls exceeded the limit of 72 in 5 second(s)",
            },
        ),
    ],
)
def test_a_rate_refusal_is_known_by_its_message_whatever_the_status(
    status: int, body: dict[str, str]
) -> None:
    answer = classify(status, json.dumps(body))
    assert answer.verdict is Verdict.RATE_LIMITED
    assert answer.limit is not None
    assert f"limit of {answer.limit.calls} in 5" in body["ExceptionMessage"]
    assert RetryPolicy().decide(1, answer, random.Random()).action is Action.WAIT_WINDOW


def test_a_403_without_that_message_stays_fatal() -> None:
    answer = classify(403, err("MXAccessDeniedException", "no permission to delete activities"))
    assert answer.verdict is Verdict.FATAL
    assert answer.limit is None
