"""Times as people read them. The API gets UTC; the sheet's author thinks in ``--tz``.

A sheet that says 2025-04-01 in Asia/Kolkata is sent as 2025-03-31 18:30:00: shown only in
UTC, the plan looks a day early to the person who must sign it off. So every date a person
reads is also shown in the plan's time zone, beside the UTC value that is sent. Log lines get
a UTC timestamp instead: a scheduler's log is read long after, by someone who needs "when".
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.resources
import json
import os
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .config import DEFAULT_TZ
from .errors import InputError

API_FORMAT = "%Y-%m-%d %H:%M:%S"
_UTC_NAMES = frozenset({"", "utc", "etc/utc", "uct", "etc/uct", "universal", "etc/universal"})
_UTC_NAMES |= {"zulu", "etc/zulu", "gmt", "etc/gmt", "etc/gmt0", "gmt0", "etc/greenwich"}


def is_utc(tz: str) -> bool:
    """True for the names of UTC itself (not for a zone that is at +00:00 only in winter)."""
    return tz.strip().lower() in _UTC_NAMES


@functools.lru_cache(maxsize=1 << 16)  # a plan's dates repeat: a million rows, a few windows
def to_local(utc_text: str, tz: str) -> str:
    """An API date (``YYYY-MM-DD HH:MM:SS``, UTC) in ``tz``, same format; "" stays "".
    Text that is not such a date comes back as it is: a display never raises."""
    if not utc_text:
        return ""
    try:
        moment = dt.datetime.fromisoformat(utc_text[:19]).replace(tzinfo=dt.UTC)
        return moment.astimezone(ZoneInfo(tz)).strftime(API_FORMAT)
    except (ValueError, OverflowError, ZoneInfoNotFoundError):  # e.g. a zone this host lacks
        return utc_text


def as_read(tz: str, *utc_texts: str) -> tuple[list[str], str]:
    """API dates as a message should name them, and the zone to name: in ``tz`` unless that
    is UTC (an error about a sheet's dates is fixed in the sheet's own time)."""
    if is_utc(tz):
        return list(utc_texts), "UTC"
    return [to_local(text, tz) for text in utc_texts], tz


def machine_zone_name(name: str) -> str | None:
    """For ``localtime`` (the tz database's name for whatever zone this machine is set to):
    the real name of that zone, "" when it cannot be told, None for any other name. A plan in
    "localtime" would change its meaning with the machine it runs on."""
    if name.strip().lower() != "localtime":
        return None
    for root in zoneinfo.TZPATH:
        target = os.path.realpath(os.path.join(root, "localtime"))
        zone = os.path.relpath(target, os.path.realpath(root))
        if os.path.isfile(target) and not zone.startswith("..") and zone != "localtime":
            return zone
    return ""


@functools.lru_cache(maxsize=64)
def zone_aliases(name: str) -> frozenset[str]:
    """Every name of the zone ``name`` names (Asia/Calcutta is Asia/Kolkata): the names whose
    tz database entries are the same bytes, so every date converts alike under each. Just
    ``name`` when its entry cannot be read."""
    data = _zone_bytes(name)
    if data is None:
        return frozenset({name})
    names = {other for other in zoneinfo.available_timezones() if _zone_bytes(other) == data}
    return frozenset(names - {"localtime"} | {name})


@functools.lru_cache(maxsize=1024)
def _zone_bytes(name: str) -> bytes | None:
    """The tz database entry of ``name``: the system's (as ZoneInfo reads it first), else the
    tzdata package's."""
    parts = name.split("/")
    if not name or any(part in ("", ".", "..") for part in parts):
        return None
    for root in zoneinfo.TZPATH:
        with contextlib.suppress(OSError):
            return Path(root, *parts).read_bytes()
    with contextlib.suppress(ImportError, OSError, ValueError):
        return importlib.resources.files("tzdata").joinpath("zoneinfo", *parts).read_bytes()
    return None


def plan_options(meta: Mapping[str, str], where: str = "the checkpoint") -> dict[str, Any]:
    """The plan options a checkpoint saved (its ``options`` meta); InputError (exit 2) when
    they are not what a run writes: the file was changed by hand or by another program."""
    try:
        options = json.loads(meta.get("options", "{}"))
    except ValueError:
        options = None
    if not isinstance(options, dict):
        raise InputError(
            f"{where}: its saved plan options are not readable: it was changed outside "
            f"bulk-delete. {_EXPORT}"
        )
    return options


def plan_tz(meta: Mapping[str, str], where: str = "the checkpoint") -> str:
    """The ``--tz`` a checkpoint's plan was made with, UTC if none; InputError when it names
    no time zone known here."""
    tz = plan_options(meta, where).get("tz") or DEFAULT_TZ
    try:
        if isinstance(tz, str):
            ZoneInfo(tz)
            return tz
    except (ValueError, ZoneInfoNotFoundError):
        pass
    raise InputError(
        f"{where}: its time zone {tz!r} is not an IANA time zone: it was changed outside "
        f"bulk-delete (or made on a machine with other time zone data). {_EXPORT}"
    )


_EXPORT = "Its outcomes can still be exported with `bulk-delete export` (dates in UTC)."


def log_stamp(moment: dt.datetime | None = None) -> str:
    """``2026-11-30T02:30:00Z``: the start of a log line, in UTC."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
