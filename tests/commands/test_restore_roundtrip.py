"""Generated activities with generated fields survive the round trip: saved in a backup, posted
back by `restore` (Create or the bulk add) on the emulator, and read back equal to what was
saved on lead, code, note, date and every field, each once."""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulk_delete.cli.main import cli
from bulk_delete.config import RateLimit
from bulk_delete.emulator.server import Emulator, EmulatorConfig, _type_fields

from ..conftest import demo_env
from ..restore_fixtures import backup_of

TEXT = st.text(st.characters(codec="utf-8"), max_size=80)  # any text JSON carries


@st.composite
def activities(draw: st.DrawFn) -> dict[str, Any]:
    """One activity as Retrieve shows it: a custom code, a date, a note, some of its type's
    fields with any text."""
    code = draw(st.integers(150, 299))
    names = draw(st.lists(st.sampled_from(_type_fields(code)), unique=True))
    moment = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2030, 12, 31)))
    return {
        "lead": str(draw(st.uuids(version=4))),
        "Id": str(draw(st.uuids(version=4))),
        "EventCode": code,
        "CreatedOn": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "ModifiedOn": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "Notes": draw(TEXT),
        "Data": [{"Key": name, "Value": draw(TEXT)} for name in names],
    }


@contextmanager
def emulator_beside() -> Iterator[Emulator]:
    """The emulator on its own event loop in a thread, while the CLI runs its own here."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    no_limit = RateLimit.parse("off")
    emu = Emulator(EmulatorConfig(rate=no_limit, bulk_rate=no_limit))
    asyncio.run_coroutine_threadsafe(emu.start(), loop).result()
    try:
        yield emu
    finally:
        asyncio.run_coroutine_threadsafe(emu.stop(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _as_saved(activity: dict[str, Any]) -> tuple[Any, ...]:
    fields = tuple(sorted((pair["Key"], str(pair["Value"])) for pair in activity["Data"]))
    date = activity.get("ActivityDateTime") or activity["CreatedOn"]
    return int(activity["EventCode"]), activity["Notes"], date, fields


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(activities(), min_size=1, max_size=30), st.sampled_from(["single", "bulk"]))
def test_generated_activities_come_back_equal_each_once(
    saved: list[dict[str, Any]], post: str
) -> None:
    wanted = Counter((a["lead"], _as_saved(a)) for a in saved)
    with emulator_beside() as emu, tempfile.TemporaryDirectory() as folder:
        leads = {a["lead"] for a in saved}
        there = {a["Id"] for lead in leads for a in emu.remaining(lead)}
        backup = backup_of(Path(folder) / "b.jsonl.gz", [dict(a) for a in saved])
        result = CliRunner().invoke(
            cli,
            ["restore", str(backup), "--checkpoint", str(Path(folder) / "r.sqlite"), "--yes",
             "--rate", "off", "--bulk-rate", "off", "--post", post, "--no-results"],
            env=demo_env(emu.url),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        back = Counter(
            (lead, _as_saved(a))
            for lead in leads
            for a in emu.remaining(lead)
            if a["Id"] not in there
        )
        assert back == wanted  # each one back, equal, once
        assert emu.stats()["activities_posted"] == len(saved)
