"""Keys stay secret in every form a server can echo them (redaction.py, and the client that
runs every answer through it), against generated keys and the emulator's --echo-request."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulk_delete.config import Credentials
from bulk_delete.emulator import echo
from bulk_delete.redaction import MASK, redact
from bulk_delete.send.answers import Verdict
from bulk_delete.send.client import LeadSquaredClient

from .conftest import run_cli, send_sheet

ACCESS = "u$r+demo/Acc=ss%key~1234567890"
SECRET = "S3cr3t/Key+with%chars=demo$0000"
LEAD = "00000000-0000-4000-8000-{:012d}"

# Characters that encode differently in each form, and some beyond ASCII.
_KEY_CHARS = st.sampled_from("$+/=%&?:; ~éü€𝄞") | st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="#"
)
keys = st.text(_KEY_CHARS, min_size=8, max_size=40).filter(lambda key: key.strip() == key)


def _json_all(text: str) -> str:
    """Every character as \\uXXXX (surrogate pairs beyond the first plane)."""
    units = text.encode("utf-16-be")
    return "".join(f"\\u{units[i : i + 2].hex()}" for i in range(0, len(units), 2))


def _lower_hex(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "%":
            out.append(text[i : i + 3].lower())
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def text_forms(key: str) -> set[str]:
    """The key as a server may quote it in text: the test's own list, not the code's."""
    return {
        key,
        quote(key, safe=""),
        _lower_hex(quote(key, safe="")),
        quote(key),
        quote_plus(key),
        quote(quote(key, safe=""), safe=""),
        json.dumps(key)[1:-1],
        json.dumps(key, ensure_ascii=False)[1:-1].replace("/", "\\/"),
        _json_all(key),
        _json_all(key).upper().replace("\\U", "\\u"),
        "".join(f"&#{ord(c)};" for c in key),
    }


def base64_windows(blob: bytes, start: int, length: int) -> Iterator[str]:
    """Every 8-character stretch, in both alphabets, of the base64 of ``blob`` that only the
    bytes ``blob[start:start + length]`` decide."""
    encoded = base64.b64encode(blob).decode()
    first, end = -(-start * 8 // 6), (start + length) * 8 // 6
    for i in range(first, end - 7):
        window = encoded[i : i + 8]
        yield window
        yield window.replace("+", "-").replace("/", "_")


@settings(max_examples=40, deadline=None)
@given(key=keys, before=st.text("#", max_size=5))
def test_a_key_in_any_text_form_is_blanked(key: str, before: str) -> None:
    for quoted in sorted(text_forms(key)):
        text = f"GET /x?{before}accessKey={quoted}&y=1 said"
        out = redact(text, (key,))
        assert quoted not in out, quoted
        assert MASK in out
        assert out.endswith("&y=1 said")


@settings(max_examples=30, deadline=None)
@given(access=keys, secret=keys, before=st.text("#", max_size=5), urlsafe=st.booleans())
def test_keys_inside_base64_are_blanked_at_every_alignment(
    access: str, secret: str, before: str, urlsafe: bool
) -> None:
    """A Basic header (access:secret), or a quoted request, in base64: the keys start anywhere
    in a 3-byte group."""
    head = f"#{before}".encode()
    pair = head + access.encode() + b":" + secret.encode() + b"#"
    encoded = base64.b64encode(pair).decode()
    if urlsafe:
        encoded = encoded.replace("+", "-").replace("/", "_")
    out = redact(f"Authorization: Basic {encoded}.", (access, secret))
    where = {access: len(head), secret: len(head) + len(access.encode()) + 1}
    for key, start in where.items():
        for window in base64_windows(pair, start, len(key.encode())):
            assert window not in out, (key, window)


def test_short_keys_are_not_searched_in_base64() -> None:
    """A core of a few characters would blank ordinary text."""
    assert redact(base64.b64encode(b"abc").decode() + " YWJj", ("abc",)) == "YWJj YWJj"


@pytest.mark.parametrize("form", echo.FORMS)
async def test_every_echoed_form_is_blanked_from_the_answer(emulator: Any, form: str) -> None:
    """Each error the emulator quotes the request in (one form per answer, in turn) reaches
    the Answer blanked, over headers and over the query string."""
    emu = await emulator(echo_request=True, access_key=ACCESS, secret_key=SECRET)
    emu._echoes = echo.FORMS.index(form)
    keys = Credentials(access_key=ACCESS, secret_key=SECRET)
    async with aiohttp.ClientSession() as session:
        for auth in ("header", "query"):
            client = LeadSquaredClient(session, emu.url, keys, auth=auth)
            emu._echoes = echo.FORMS.index(form)
            answer = await client.delete_activities("{}")  # a 400: not per spec
            assert answer.http_status == 400
            assert "(request: ***" in answer.message or "***" in answer.message
            _assert_no_key(answer.message, f"{form} {auth}")


async def test_a_redirect_location_quoting_the_keys_is_blanked(emulator: Any) -> None:
    emu = await emulator(
        echo_request=True, access_key=ACCESS, secret_key=SECRET, redirect_to="http://x.test"
    )
    keys = Credentials(access_key=ACCESS, secret_key=SECRET)
    async with aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, emu.url, keys, auth="query")
        for _ in echo.FORMS:
            answer = await client.delete_activities("{}")
            assert answer.http_status == 307
            assert "redirect to http://x.test" in answer.message
            _assert_no_key(answer.message, "Location")


@pytest.mark.parametrize("cut", [6, 20])
async def test_a_key_cut_at_a_chunk_s_edge_in_a_malformed_answer_is_not_quoted(cut: int) -> None:
    """A server echoes the request's headers on a line that is not HTTP, and the bytes reach
    us in two pieces, the first ending inside the key. aiohttp's parser stops at the first
    piece and quotes it in its error: the first version's message held the key's first
    ``cut`` characters, which no redaction of the whole key finds."""
    echoed = f"X-LSQ-AccessKey {ACCESS}".encode()  # a header line without its colon
    head = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n"
    at = len(echoed) - len(ACCESS.encode()) + cut

    answered = asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head + echoed[:at])
            await writer.drain()
            await asyncio.sleep(0.2)  # the rest comes later (the parser has stopped by then)
            writer.write(echoed[at:] + b"\r\n\r\n{}")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            answered.set()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    keys = Credentials(access_key=ACCESS, secret_key=SECRET)
    async with server, aiohttp.ClientSession() as session:
        client = LeadSquaredClient(session, f"http://127.0.0.1:{port}", keys)
        answer_ = await client.delete_activities("{}")
        await answered.wait()
    assert answer_.verdict is Verdict.TRANSIENT  # not HTTP: a transport error
    assert ACCESS[:cut] not in answer_.message, answer_.message
    assert "Invalid header token" in answer_.message  # the parser's reason stays


def _needles() -> set[str]:
    needles = text_forms(ACCESS) | text_forms(SECRET)
    pair = f"{ACCESS}:{SECRET}".encode()
    needles.update(base64_windows(pair, 0, len(ACCESS)))
    needles.update(base64_windows(pair, len(ACCESS) + 1, len(SECRET)))
    for shift in range(3):  # a key anywhere in a quoted request, in base64
        for key in (ACCESS, SECRET):
            for form in (key, quote(key, safe=""), quote_plus(key)):
                needles.update(base64_windows(b"#" * shift + form.encode(), shift, len(form)))
    return needles


NEEDLES = _needles()


def _assert_no_key(text: str, where: str) -> None:
    found = sorted(needle for needle in NEEDLES if needle in text)
    assert not found, f"{where}: {found[:3]}"


def _readable(path: Path) -> Iterator[tuple[str, str]]:
    """(name, text) of a file as a person could open it: workbooks unzipped, gzip opened."""
    data = path.read_bytes()
    yield str(path), data.decode("utf-8", errors="replace")
    if data[:2] == b"\x1f\x8b":
        yield f"{path} (gunzipped)", gzip.decompress(data).decode("utf-8", errors="replace")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                text = archive.read(member).decode("utf-8", errors="replace")
                yield f"{path}!{member}", text


@pytest.mark.parametrize("auth", ["query", "header"])
async def test_no_output_of_a_run_against_an_echoing_server_holds_a_key(
    emulator: Any, tmp_path: Path, auth: str
) -> None:
    """The bar of issue 29: every stream and file of a run, a status, an export, a report and
    a backup, against a server that quotes the request in every error (500 MX, rate refusals
    as a 200 "Error", a redirect), holds no form of either key."""
    emu = await emulator(
        echo_request=True,
        access_key=ACCESS,
        secret_key=SECRET,
        rate="4/1s",
        limit_status=200,
        system_codes=frozenset({"201"}),
        dataset_leads=5,
    )
    sheet = tmp_path / "leads.csv"
    rows = [f"{LEAD.format(n)},{201 if n % 2 else 202}" for n in range(12)]
    sheet.write_text("ProspectId,ActivityEventList\n" + "\n".join(rows) + "\n")
    checkpoint = tmp_path / "run.sqlite"
    env = {"LSQ_HOST": emu.url, "LSQ_ACCESS_KEY": ACCESS, "LSQ_SECRET_KEY": SECRET}
    done = await send_sheet(
        emu,
        sheet,
        checkpoint,
        *("--auth", auth, "--rate", "25/5s", "--log-file", str(tmp_path / "log.jsonl")),
        *("--summary-json", str(tmp_path / "summary.json")),
        *("--backup", str(tmp_path / "backup.jsonl.gz")),
        env=env,
    )
    outputs = [("run stdout", done.stdout), ("run stderr", done.stderr)]
    steps = [
        ("status", str(checkpoint)),
        ("export", str(checkpoint), "-o", str(tmp_path / "out.csv")),
        ("export", str(checkpoint), "-o", str(tmp_path / "out.xlsx")),
        ("export", str(checkpoint), "-o", "-"),
        ("report", str(checkpoint), "-o", str(tmp_path / "page.html")),
        ("verify", str(checkpoint), "--auth", auth, "--summary-json", str(tmp_path / "v.json")),
    ]
    for step in steps:
        done = await run_cli(*step, env=env)
        outputs += [(f"{step[0]} stdout", done.stdout), (f"{step[0]} stderr", done.stderr)]
    failed = json.loads((tmp_path / "summary.json").read_text())["totals"]["failed"]
    assert failed == 6  # the MX 500s were answered, quoting the request
    assert emu.outcomes["rate_limited"] > 0  # and so were rate refusals, as 200 "Error"
    redirected = await emulator(
        echo_request=True, access_key=ACCESS, secret_key=SECRET, redirect_to="http://x.test"
    )
    done = await send_sheet(
        redirected,
        sheet,
        tmp_path / "redirected.sqlite",
        *("--auth", auth, "--no-preflight"),
        env={**env, "LSQ_HOST": redirected.url},
    )
    assert done.returncode == 3
    assert "redirect to http://x.test" in done.stderr
    outputs += [("redirected stdout", done.stdout), ("redirected stderr", done.stderr)]
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            outputs += list(_readable(path))
    assert any("results" in name for name, _ in outputs)
    assert any("gunzipped" in name for name, _ in outputs)
    for name, text in outputs:
        _assert_no_key(text, name)
