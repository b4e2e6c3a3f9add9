"""``--echo-request``: a careless server that quotes what it received in its errors.

Real error pages and API gateways quote the request URL (keys and all, when they came in the
query string) or its headers, each in the encoding its framework happens to use. Each error
answer quotes the request in the next form of ``FORMS``, so that a run sees every one: the URL
as received (URL-encoded, upper-case hex), with lower-case hex, form-encoded (``+`` for a
space), decoded, JSON-escaped as .NET's encoder writes it (``\\u0024``, ``\\/``), base64,
URL-safe base64, and the keys as an ``Authorization: Basic`` value.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlencode, urlsplit

FORMS = ("url", "url-lower", "form", "raw", "json", "base64", "base64url", "basic")
_PLAIN = re.compile(r"[A-Za-z0-9 .,:;()_-]")


def quoted(form: str, method: str, raw_path: str, keys: Mapping[str, str]) -> str:
    """The request as the server quotes it in ``form``; ``keys``: the key headers sent, by
    name. ("json" is the raw text: the body it goes in is what is escaped.)"""
    raw = f"{method} {unquote(raw_path)}" + "".join(f"; {k}: {v}" for k, v in keys.items())
    if form == "url":
        return f"{method} {raw_path}" + "".join(
            f"; {k}: {quote(v, safe='')}" for k, v in keys.items()
        )
    if form == "url-lower":
        return re.sub(
            "%[0-9A-F]{2}",
            lambda hexes: hexes.group().lower(),
            quoted("url", method, raw_path, keys),
        )
    if form == "form":
        parts = urlsplit(raw_path)
        query = urlencode(parse_qsl(parts.query, keep_blank_values=True))
        return f"{method} {parts.path}?{query}" + "".join(
            f"; {k}: {quote_plus(v)}" for k, v in keys.items()
        )
    if form == "base64":
        return base64.b64encode(raw.encode()).decode()
    if form == "base64url":
        return base64.urlsafe_b64encode(raw.encode()).decode()
    if form == "basic":
        pair = ":".join(_keys_sent(raw_path, keys))
        return "Authorization: Basic " + base64.b64encode(pair.encode()).decode()
    return raw


def body(document: dict[str, Any], form: str) -> bytes:
    """The error document as the server writes it: escaped .NET-style for "json"."""
    if form != "json":
        return json.dumps(document).encode()
    fields = ", ".join(f"{_escaped(str(k))}: {_escaped(str(v))}" for k, v in document.items())
    return ("{" + fields + "}").encode()


def _escaped(text: str) -> str:
    """A JSON string with every character but letters, digits and a few marks as ``\\uXXXX``
    (``/`` as ``\\/``), as .NET's JavaScriptEncoder and PHP's json_encode write them."""
    out = []
    for char in text:
        if char == "/":
            out.append("\\/")
        elif _PLAIN.fullmatch(char):
            out.append(char)
        else:
            units = char.encode("utf-16-be")
            out.extend(f"\\u{units[i : i + 2].hex()}" for i in range(0, len(units), 2))
    return '"' + "".join(out) + '"'


def _keys_sent(raw_path: str, keys: Mapping[str, str]) -> list[str]:
    """The access and secret key, from the headers or else the query string."""
    if keys:
        return list(keys.values())
    query = dict(parse_qsl(urlsplit(raw_path).query))
    return [query.get("accessKey", ""), query.get("secretKey", "")]
