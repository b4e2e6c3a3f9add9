"""What the restore's tests share: a purge with --backup carried out, a backup file written
from given activities, and the parts of an activity a restore must bring back."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from bulk_delete.api import activity_date
from bulk_delete.config import RateLimit
from bulk_delete.store.backup_file import read_backup

from .backup_fixtures import CODES, WINDOW
from .conftest import demo_env, leads_csv, run_cli

NO_LIMIT = RateLimit.parse("off")


def kept_of(lead: str, activity: dict[str, Any]) -> tuple[Any, ...]:
    """What a restored activity must keep of its original: lead, code, note, date, fields."""
    fields = tuple((pair["Key"], str(pair["Value"])) for pair in activity.get("Data") or ())
    return (
        lead,
        str(activity["EventCode"]),
        activity.get("Notes"),
        activity_date(activity),
        fields,
    )


async def purged(
    emu: Any, tmp_path: Path, leads: int, *extra: str, verify: bool = True
) -> tuple[Path, Counter[tuple[Any, ...]]]:
    """`run --backup` of ``leads`` leads × 3 codes, carried out and verified: the backup and
    what it holds, as kept_of counts."""
    sheet = leads_csv(tmp_path / "leads.csv", leads, codes=f'"{CODES}"')
    backup = tmp_path / "backup.jsonl.gz"
    env = demo_env(emu.url)
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(tmp_path / "purge.sqlite"), "--yes", *WINDOW,
        "--rate", "off", "--backup", str(backup), *extra, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if verify:
        await asyncio.sleep(0.3)  # the deletes are carried out
        checked = await run_cli("verify", str(tmp_path / "purge.sqlite"), "--rate", "off", env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    saved = Counter(kept_of(row["ProspectId"], row["Activity"]) for row in read_backup(backup))
    return backup, saved


def on_leads(emu: Any, leads: set[str]) -> Counter[tuple[Any, ...]]:
    """Every activity the leads hold now, as kept_of counts."""
    return Counter(kept_of(lead, activity) for lead in leads for activity in emu.remaining(lead))


def backup_of(path: Path, rows: list[dict[str, Any]], request: int = 1) -> Path:
    """A backup file of ``rows`` (activities as Retrieve shows them, each with its lead as
    ``lead``), saved under one request, as a purge's run writes it."""
    from bulk_delete.store.backup_file import BackupWriter, Owner

    with BackupWriter.open(path, Owner(mark="m" * 32, checkpoint="purge.sqlite")) as writer:
        by_lead: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_lead.setdefault(row.pop("lead"), []).append(row)
        for seq, (lead, activities) in enumerate(by_lead.items(), request):
            writer.write(seq, lead, activities)
    return path


def activity(lead: str, n: int, **changes: Any) -> dict[str, Any]:
    return {
        "lead": lead,
        "Id": f"0ld00000-0000-4000-8000-{n:012d}",
        "EventCode": 201,
        "CreatedOn": f"2024-05-{n % 28 + 1:02d} 10:00:00",
        "Notes": f"note {n}",
        "Data": [{"Key": "mx_Custom_1", "Value": f"v{n}"}],
    } | changes
