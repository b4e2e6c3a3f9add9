"""Keys blanked out of text, in every form a server can echo them.

``redact(text, secrets)`` (or a cached ``redactor(secrets)``, whose ``sub`` and ``found`` do the
same) replaces every key in the text with ``MASK``: plain, URL-encoded (once or twice),
JSON-escaped, or the key's own characters inside base64 (standard or URL-safe, any alignment).
Keys shorter than ``MIN_BASE64_KEY`` are not searched in base64.

Why, and what base64 leaves: docs/design/answers.md.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit

MASK = "***"
MIN_BASE64_KEY = 8


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by ``***``."""
    return redactor(tuple(sorted(secret for secret in secrets if secret))).sub(text)


@functools.lru_cache(maxsize=16)
def redactor(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


class Redactor:
    """One compiled pattern for a set of secrets."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        spellings: set[str] = set()
        for secret in filter(None, secrets):
            spellings.add(secret)
            spellings.update(_base64_cores(secret))
        # longest first, so that a key is never half-blanked by a shorter form inside it
        branches = [_flexible(spelling) for spelling in sorted(spellings, key=len, reverse=True)]
        self._pattern = re.compile("|".join(branches)) if branches else None

    def sub(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def found(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None


def _flexible(spelling: str) -> str:
    """A pattern for ``spelling`` with each character in any form a server may give it."""
    return "".join(_character(char) for char in spelling)


@functools.lru_cache(maxsize=512)
def _character(char: str) -> str:
    data = char.encode()
    forms = {
        re.escape(char),
        "".join(_hex_byte("%", byte) for byte in data),  # URL-encoded
        "".join(_hex_byte("%25", byte) for byte in data),  # URL-encoded twice
        _json_escape(char),
        f"&#0*{ord(char)};",  # an HTML character reference
        f"&#[xX]0*{_hex_digits(format(ord(char), 'x'))};",
    }
    if char in '/"\\':  # JSON's own short escapes
        forms.add(re.escape("\\" + char))
    if char in " +":  # a form-encoded space, and a '+' a server decoded as one
        forms.update({r"\+", " "})
    return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


def _hex_byte(prefix: str, byte: int) -> str:
    return re.escape(prefix) + _hex_digits(f"{byte:02x}")


def _hex_digits(digits: str) -> str:
    """Hex digits in either case."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def _json_escape(char: str) -> str:
    """``\\uXXXX`` (a surrogate pair beyond the first plane), hex in either case."""
    units = char.encode("utf-16-be")
    return "".join(r"\\u" + _hex_digits(units[i : i + 2].hex()) for i in range(0, len(units), 2))


def _base64_cores(secret: str) -> set[str]:
    """The base64 characters that come from the secret's bytes alone, at every alignment and in
    both alphabets, of the secret and of its URL-encoded forms (a quoted URL in base64)."""
    if len(secret) < MIN_BASE64_KEY:
        return set()
    cores: set[str] = set()
    for form in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}:
        data = form.encode()
        for shift in range(3):
            encoded = base64.b64encode(b"\0" * shift + data).decode()
            first = -(-shift * 8 // 6)  # the first character with no bit of the padding
            last = ((shift + len(data)) * 8) // 6  # past the last one whole inside the data
            core = encoded[first:last]
            cores.update({core, core.replace("+", "-").replace("/", "_")})
    return cores


def shown_url(url: str) -> str:
    """A URL whose path may hold a token (a Slack webhook's, a healthchecks ping's) as
    messages show it: scheme and host, the rest cut."""
    parts = urlsplit(url.removeprefix("healthchecks+"))
    if not parts.scheme or not parts.hostname:
        return url[:8] + "…"
    rest = "/…" if parts.path.strip("/") or parts.query else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{rest}"
