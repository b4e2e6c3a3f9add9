"""`restore` end to end on the emulator: a purge with --backup, verified, then restored, and
every restored activity equal to its original (lead, code, note, date, every field), none
missing, none twice; only what is gone is posted; a damaged or foreign backup exits 2
before any call."""

from __future__ import annotations

import dataclasses
import gzip
import html
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import jsonschema
import openpyxl
import pytest

from bulk_delete.config import RateLimit
from bulk_delete.store.backup_file import read_backup

from ..conftest import demo_env, leads_csv, run_cli
from ..restore_fixtures import NO_LIMIT, activity, backup_of, on_leads, purged

SCHEMA = json.loads((Path(__file__).parents[2] / "bulk_delete/summary.schema.json").read_text())


def restored_ids(checkpoint: Path) -> dict[str, str]:
    """old id → new id, as the restore's checkpoint keeps them."""
    with sqlite3.connect(checkpoint) as db:
        rows = db.execute("SELECT old_id, new_id FROM activities WHERE status = 'posted'")
        found = dict(rows.fetchall())
    db.close()
    return found


@pytest.mark.parametrize("post", ["single", "bulk"])
async def test_a_purge_restored_brings_every_activity_back_once(
    emulator: Any, tmp_path: Path, post: str
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    backup, saved = await purged(emu, tmp_path, 80)
    assert sum(saved.values()) > 100  # 80 leads and 3 codes select plenty
    leads = {key[0] for key in saved}
    before = on_leads(emu, leads)
    checkpoint = tmp_path / "restore.sqlite"
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(checkpoint), "--yes", "--rate", "off",
        "--post", post, "--bulk-rate", "off", env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert on_leads(emu, leads) - before == saved  # every one back, each once, as it was
    stats = emu.stats()
    assert stats["activities_posted"] == sum(saved.values())
    assert stats["posted_twice"] == 0
    ids = restored_ids(checkpoint)
    assert len(ids) == sum(saved.values())
    assert set(ids) == {row["ProspectActivityId"] for row in read_backup(backup)}
    total = sum(saved.values())
    assert re.search(rf"posted\s+{total} of {total} activities", done.stdout), done.stdout
    # A rerun posts nothing more.
    again = await run_cli(
        "restore", str(backup), "--checkpoint", str(checkpoint), "--yes", "--rate", "off",
        env=demo_env(emu.url),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert emu.stats()["activities_posted"] == sum(saved.values())


async def test_requests_whose_deletes_are_not_carried_out_post_nothing_and_say_so(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=3600, bulk_rate=NO_LIMIT)  # never carried out
    backup, saved = await purged(emu, tmp_path, 6, verify=False)
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes",
        "--rate", "off", env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert emu.stats()["activities_posted"] == 0
    assert re.search(rf"still present\s+{sum(saved.values())}\b", done.stdout), done.stdout
    assert "Rerun after LeadSquared has processed the deletes" in done.stdout
    # Its report says how it ended and the command that resumes it; `report` alone too.
    drawn = await run_cli("report", str(tmp_path / "r.sqlite"), "-o", str(tmp_path / "p.html"))
    assert drawn.returncode == 0, drawn.stderr
    for page in (tmp_path / "r-report.html", tmp_path / "p.html"):
        text = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page.read_text()).split()))
        assert "Exit status 1: finished, with work left: some activities still present" in text
        left = sum(saved.values())
        assert f"To resume {left} activities left: bulk-delete" in text
        assert f"restore {backup} --checkpoint" in text


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("flip", "cannot be read whole"),
        ("foreign", "is not a bulk-delete backup"),
        ("joined", "holds the backups of 2 purges"),
    ],
)
async def test_a_damaged_or_foreign_backup_exits_2_before_any_call(
    emulator: Any, tmp_path: Path, damage: str, says: str
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05)
    backup, _ = await purged(emu, tmp_path, 4, verify=False)
    if damage == "flip":
        data = bytearray(backup.read_bytes())
        data[len(data) // 2] ^= 0x55
        backup.write_bytes(bytes(data))
    elif damage == "foreign":
        backup.write_bytes(gzip.compress(json.dumps({"ProspectId": "x"}).encode() + b"\n"))
    else:
        other = tmp_path / "other"
        other.mkdir()
        second, _ = await purged(emu, other, 2, verify=False)
        backup.write_bytes(backup.read_bytes() + second.read_bytes())
    calls = emu.calls
    checkpoint = tmp_path / "r.sqlite"
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(checkpoint), "--yes", "--rate", "off",
        env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert str(backup) in done.stderr
    assert emu.calls == calls  # not one call
    assert not checkpoint.exists()  # nothing written either


@pytest.mark.parametrize("post", ["single", "bulk"])
async def test_the_dry_run_counts_the_calls_the_restore_makes(
    emulator: Any, tmp_path: Path, post: str
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    backup, _ = await purged(emu, tmp_path, 40)
    env = demo_env(emu.url)
    planned = await run_cli("restore", str(backup), "--dry-run", "--post", post, env=env)
    assert planned.returncode == 0, planned.stderr
    found = re.search(r"calls +about ([\d,]+)", planned.stdout)
    assert found, planned.stdout
    predicted = int(found.group(1).replace(",", ""))
    calls = emu.calls
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes",
        "--rate", "off", "--post", post, "--bulk-rate", "off", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    made = emu.calls - calls
    assert abs(made - predicted) <= 0.05 * predicted, (made, predicted)


async def test_a_lead_that_no_longer_exists_is_reported_not_created(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    backup, saved = await purged(emu, tmp_path, 6)
    leads = sorted({key[0] for key in saved})
    emu.config = dataclasses.replace(emu.config, leads=frozenset(leads[1:]))  # one deleted
    gone = sum(count for key, count in saved.items() if key[0] == leads[0])
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes",
        "--rate", "off", "--summary-json", str(tmp_path / "s.json"), env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    restore = json.loads((tmp_path / "s.json").read_text())["restore"]
    assert restore["lead_missing"] == gone
    assert restore["posted"] == sum(saved.values()) - gone
    assert emu.stats()["activities_posted"] == sum(saved.values()) - gone  # none on it
    assert re.search(rf"{gone}\s+the lead no longer exists", done.stdout), done.stdout
    assert "MXLeadNotFoundException" in done.stdout


async def test_the_bulk_add_gives_an_owner_back_where_the_backup_names_the_email(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", bulk_rate=NO_LIMIT)
    lead = "00000000-0000-4000-8000-0000000000aa"
    rows = [
        activity(lead, 1, OwnerEmailAddress="asha.rao@example.com", OwnerName="Asha Rao"),
        activity(lead, 2, OwnerName="Li Wei"),  # no email: the keys' user owns it
    ]
    backup = backup_of(tmp_path / "b.jsonl.gz", rows)
    done = await run_cli(
        "restore",
        str(backup),
        "--checkpoint",
        str(tmp_path / "r.sqlite"),
        "--yes",
        "--rate",
        "25/5s",
        env=demo_env(emu.url),
    )  # fmt: skip  (at 25/5s, Create and the bulk add post as fast)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the bulk add" in done.stdout
    assert "(as fast; it alone carries back" in done.stdout
    owners = {
        a["Notes"]: a["OwnerName"]
        for a in emu.remaining(lead)
        if a["Notes"] in ("note 1", "note 2")
    }
    assert owners == {"note 1": "Asha Rao", "note 2": "Demo"}
    assert "the owner of 1 activity: the backup names no email" in done.stdout


async def test_the_selection_takes_requests_leads_codes_dates_and_a_sheet(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", bulk_rate=NO_LIMIT)
    leads = [f"00000000-0000-4000-8000-0000000000{n:02d}" for n in range(4)]
    rows = [
        activity(lead, 10 * n + k, EventCode=code, CreatedOn=f"2024-0{k + 1}-15 12:00:00")
        for n, lead in enumerate(leads)
        for k, code in enumerate((201, 202, 201))
    ]
    backup = backup_of(tmp_path / "b.jsonl.gz", rows)  # requests 1 to 4, one per lead
    sheet = tmp_path / "leads.csv"
    sheet.write_text(f"ProspectId,Name\n{leads[2]},C\n{leads[3].upper()},D\n")
    env = demo_env(emu.url)

    async def chosen(*selection: str) -> int:
        done = await run_cli("restore", str(backup), "--dry-run", *selection, env=env)
        assert done.returncode == 0, done.stderr
        found = re.search(r"activities +(\d+) on", done.stdout)
        return int(found.group(1)) if found else 0

    assert await chosen() == 12
    assert await chosen("--request", "1", "--request", "3") == 6
    assert await chosen("--request", "1,2") == 6
    assert await chosen("--lead", leads[0]) == 3
    assert await chosen("--sheet", str(sheet)) == 6
    assert await chosen("--codes", "202") == 4
    assert await chosen("--from", "2024-02-01", "--to", "2024-02-28") == 4  # the 202s
    assert await chosen("--from", "2024-02-15 17:00", "--tz", "Asia/Kolkata") == 8
    assert await chosen("--sheet", str(sheet), "--codes", "201", "--request", "3") == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("ProspectId\nnot-a-lead\n")
    done = await run_cli("restore", str(backup), "--dry-run", "--sheet", str(bad), env=env)
    assert done.returncode == 2
    assert "row 2: 'not-a-lead' is not a ProspectId" in done.stderr


async def test_a_restore_and_a_purge_never_write_in_each_others_checkpoint(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    backup, _ = await purged(emu, tmp_path, 3)
    purge = tmp_path / "purge.sqlite"
    env = demo_env(emu.url)
    before = purge.read_bytes()
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(purge), "--yes", "--rate", "off", env=env
    )
    assert done.returncode == 2
    assert "is a purge's checkpoint (bulk-delete run), not a restore's" in done.stderr
    assert purge.read_bytes() == before  # untouched
    restore = tmp_path / "restore.sqlite"
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(restore), "--yes", "--rate", "off",
        "--summary-json", str(tmp_path / "s.json"), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    jsonschema.validate(json.loads((tmp_path / "s.json").read_text()), SCHEMA)
    book = openpyxl.load_workbook(tmp_path / "restore-results.xlsx", read_only=True)
    assert book.sheetnames == ["Summary", "Activities"]
    rows = list(book["Activities"].iter_rows(values_only=True))
    book.close()
    assert rows[0][:6] == (
        "ProspectId", "ActivityEvent", "ActivityDateTime (UTC)", "outcome",
        "new ProspectActivityId", "old ProspectActivityId",
    )  # fmt: skip
    assert {row[3] for row in rows[1:]} == {"posted"}
    assert {row[5] for row in rows[1:]} == set(restored_ids(restore))
    assert {row[4] for row in rows[1:]} == set(restored_ids(restore).values())
    assert (tmp_path / "restore-report.html").is_file()
    sheet = leads_csv(tmp_path / "other.csv", 2)
    done = await run_cli(
        "run", str(sheet), "--checkpoint", str(restore), "--yes", "--open-window", env=env
    )
    assert done.returncode == 2
    assert "is a restore's checkpoint (bulk-delete restore), not a purge's" in done.stderr
    report = await run_cli("report", str(restore), "-o", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    assert "Restore: backup.jsonl.gz" in (tmp_path / "r.html").read_text()


async def test_the_daily_allowance_stops_a_restore_and_the_next_day_finishes_it_once(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    backup, saved = await purged(emu, tmp_path, 30)
    reads = len({(key[0], key[1]) for key in saved})  # a Retrieve per lead and code
    emu.config = dataclasses.replace(emu.config, daily_limit=1 + reads + 10)  # 10 posts today
    args = ["restore", str(backup), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes"]
    args += ["--rate", "off", "--summary-json", str(tmp_path / "s.json")]
    stopped = await run_cli(*args, env=demo_env(emu.url))
    assert stopped.returncode == 75, stopped.stdout + stopped.stderr
    assert "daily allowance used; resume after" in stopped.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["exit_code"] == 75
    assert summary["restore"]["posted"] == 10
    calls = emu.calls
    again = await run_cli(*args, env=demo_env(emu.url))  # the same day: one refused call
    assert again.returncode == 75
    assert emu.calls == calls + 1  # the preflight, refused, and nothing after it
    emu.days_ahead += 1
    done = await run_cli(*args, env=demo_env(emu.url))
    assert done.returncode == 0, done.stdout + done.stderr
    assert emu.stats()["activities_posted"] == sum(saved.values())
    assert emu.stats()["posted_twice"] == 0


async def test_the_bulk_adds_own_limit_is_learned_from_its_refusal_and_kept(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", bulk_rate=RateLimit.parse("1/2s"))
    leads = [f"00000000-0000-4000-8000-0000000001{n:02d}" for n in range(3)]
    rows = [activity(leads[n % 3], n) for n in range(70)]  # 3 bulk calls
    backup = backup_of(tmp_path / "b.jsonl.gz", rows)
    checkpoint = tmp_path / "r.sqlite"
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(checkpoint), "--yes", "--rate", "off",
        "--post", "bulk", "--bulk-rate", "1/1s", env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    window = emu.stats()["bulk_window"]
    assert window["calls"] - window["refused"] == 3
    assert window["refused"] == 1  # the one that taught it
    assert "LeadSquared says the bulk add allows 1 call(s) in 2 s" in done.stderr
    with sqlite3.connect(checkpoint) as db:
        (learned,) = db.execute(
            "SELECT value FROM meta WHERE key = 'learned_bulk_limit'"
        ).fetchone()
    db.close()
    assert learned == "1/2s"
    assert emu.stats()["activities_posted"] == 70


@pytest.mark.parametrize(
    "selection",
    [
        ("--lead", "11111111-1111-4111-8111-111111111111"),
        ("--codes", "999"),
        ("--from", "2030-01-01"),
    ],
)
async def test_a_selection_that_matches_nothing_exits_2_before_any_call(
    emulator: Any, tmp_path: Path, selection: tuple[str, ...]
) -> None:
    emu = await emulator(rate="off", bulk_rate=NO_LIMIT)
    lead = "00000000-0000-4000-8000-000000000001"
    backup = backup_of(tmp_path / "b.jsonl.gz", [activity(lead, n) for n in range(3)])
    env = demo_env(emu.url)
    planned = await run_cli("restore", str(backup), "--dry-run", *selection, env=env)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "matches none of the 3 activities of the backup" in planned.stderr
    assert "nothing would be restored" in planned.stderr
    checkpoint = tmp_path / "r.sqlite"
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(checkpoint), "--yes", "--rate", "off",
        *selection, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "nothing would be restored" in done.stderr
    assert emu.calls == 0
    assert not checkpoint.exists()


def _cut(backup: Path, how: str) -> tuple[Path, str]:
    """A copy of the backup cut short inside its 3rd member, or without a whole member, or
    (edge) of the whole members of requests 1 and 2 alone, and the requests it lost ("3, 4,
    5"). Members are in the order the purge's workers saved them, which need not be their
    requests' order."""
    from bulk_delete.store.backup_file import scan

    data, found = backup.read_bytes(), scan(backup)
    order = found.requests
    lost = [min(order[1:])] if how == "gap" else order[2:]  # (a gap: not the last request)
    (start, end), *_ = found.spans[lost[0]]
    copy = backup.with_name(f"{how}.jsonl.gz")
    if how == "edge":  # nothing in the file says it is short: no torn tail, no gap
        lost = [seq for seq in order if seq > 2]
        first = min(span[0] for spans in found.spans.values() for span in spans)
        members = [data[a:b] for seq in (1, 2) for a, b in found.spans[seq]]
        copy.write_bytes(data[:first] + b"".join(members))
    else:
        copy.write_bytes(data[:start] + data[end:] if how == "gap" else data[: (start + end) // 2])
    return copy, ", ".join(map(str, sorted(lost)))


@pytest.mark.parametrize("how", ["cut", "gap", "edge"])
async def test_a_backup_short_of_what_its_purge_sent_exits_2_naming_the_requests(
    emulator: Any, tmp_path: Path, how: str
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    backup, _ = await purged(emu, tmp_path, 5, verify=False)
    short, lost = _cut(backup, how)
    env = demo_env(emu.url)
    calls = emu.calls
    checkpoint = tmp_path / "r.sqlite"
    for command in (
        ("restore", str(short), "--dry-run"),
        ("restore", str(short), "--checkpoint", str(checkpoint), "--yes", "--rate", "off"),
        ("export", "--backup", str(short), "-o", str(tmp_path / "out.csv")),
    ):
        done = await run_cli(*command, env=env)
        assert done.returncode == 2, done.stdout + done.stderr
        assert re.search(rf"records as sent: {lost}[.;]", done.stderr), done.stderr
        assert f"the purge's own backup {backup.resolve()} holds them" in done.stderr
    assert emu.calls == calls
    assert not checkpoint.exists()
    assert not (tmp_path / "out.csv").exists()
    # Without the purge's checkpoint, what cannot be known is said.
    (tmp_path / "purge.sqlite").rename(tmp_path / "elsewhere.sqlite")
    planned = await run_cli("restore", str(short), "--dry-run", env=env)
    assert planned.returncode == 0, planned.stderr
    said = " ".join(planned.stdout.split())
    assert "its purge's checkpoint cannot be read" in said
    says = {
        "cut": "ends early",
        "gap": f"has no member for request(s) {lost}:",
    }
    if how == "edge":
        assert f"so whether {short} holds every request its purge sent cannot be checked" in said
    else:
        assert "so which cannot be known" in said
        assert says[how] in said
    assert "nothing of it was deleted" not in said


@pytest.mark.parametrize(("post", "leads", "allowed"), [("single", 4, 25), ("bulk", 30, 125)])
async def test_the_rate_is_told_by_its_busiest_window_never_above_a_kept_limit(
    emulator: Any, tmp_path: Path, post: str, leads: int, allowed: int
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    backup, saved = await purged(emu, tmp_path, leads)
    summary = tmp_path / "s.json"
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes",
        "--rate", "25/5s", "--bulk-rate", "5/5s", "--post", post, "--summary-json", str(summary),
        env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    restored = json.loads(summary.read_text())["restore"]
    posted = sum(saved.values())
    # Every post fits in one 5 s window, so they go out at once: the busiest window holds them
    # all, of the activities the limit allows in it (25: one a call at 25/5s; 125: 25 a call at
    # 5/5s), never a burst's rate over the gaps between its answers.
    assert posted < allowed
    assert posted > (2 if post == "single" else 25)  # two calls at least
    assert restored["share_of_limit"] == round(posted / allowed, 4)
    assert restored["activities_per_second"] == round(posted / 5, 3)
    assert restored["limit_activities_per_second"] == allowed / 5
    assert f"{posted} of {posted} activities" in " ".join(done.stdout.split())


async def test_the_options_its_hints_name_are_restores_own(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off", bulk_rate=NO_LIMIT)
    leads = [f"00000000-0000-4000-8000-0000000000{n:02d}" for n in range(2)]
    rows = [
        activity(lead, 10 * n + k, CreatedOn=f"2024-0{k + 1}-15 12:00:00")
        for n, lead in enumerate(leads)
        for k in range(3)
    ]
    backup = backup_of(tmp_path / "b.jsonl.gz", rows)
    sheet = tmp_path / "titled.csv"
    sheet.write_text(f"Leads to bring back,\nProspectId,Name\n{leads[1]},B\n")
    env = demo_env(emu.url)
    for given, hint, fixed, count in (
        (("--from", "01/02/2024"), "--date-order", ("--date-order", "DMY"), 4),
        (("--sheet", str(sheet)), "--header-row", ("--header-row", "2"), 3),
    ):
        refused = await run_cli("restore", str(backup), "--dry-run", *given, env=env)
        assert refused.returncode == 2
        assert hint in refused.stderr, refused.stderr
        done = await run_cli("restore", str(backup), "--dry-run", *given, *fixed, env=env)
        assert done.returncode == 0, done.stderr
        assert re.search(rf"activities +{count} on", done.stdout), done.stdout


async def test_repeated_codes_select_their_union_and_the_workbook_says_it_in_words(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    backup, saved = await purged(emu, tmp_path, 6)
    codes = {key[1] for key in saved}
    assert {"201", "202"} <= codes
    wanted = sum(count for key, count in saved.items() if key[1] in {"201", "202"})
    checkpoint = tmp_path / "r.sqlite"
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(checkpoint), "--yes", "--rate", "off",
        "--codes", "202", "--codes", "201", env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{wanted} of {wanted} activities" in " ".join(done.stdout.split())
    book = openpyxl.load_workbook(tmp_path / "r-results.xlsx", read_only=True)
    summary: dict[Any, Any] = {
        row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)
    }
    book.close()
    assert summary["Selection"] == "code(s) 201, 202"
    assert summary["Backup"] == backup.name
    assert summary["The purge's checkpoint"] == "purge.sqlite"


async def test_the_report_says_what_was_restored_how_it_ended_and_why_activities_failed(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off", bulk_rate=NO_LIMIT)
    gone = "99999999-0000-4000-8000-000000000001"
    emu.config = dataclasses.replace(emu.config, leads=frozenset({"00000000-0000-4000-8000-0"}))
    rows = [activity(gone, n, EventCode=201 + n % 2) for n in range(3)]
    backup = backup_of(tmp_path / "b.jsonl.gz", rows)
    done = await run_cli(
        "restore", str(backup), "--checkpoint", str(tmp_path / "r.sqlite"), "--yes",
        "--rate", "off", env=demo_env(emu.url),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    page = (tmp_path / "r-report.html").read_text()
    text = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", page).split()))
    assert "<title>Restore: b.jsonl.gz</title>" in page
    assert "Account http://127.0.0.1" in text
    assert "What was restored Backup b.jsonl.gz The purge's checkpoint purge.sqlite" in text
    assert "What was restored" in text
    assert "Activity codes 201 (2), 202 (1)" in text
    assert "Dates 2024-05-01 10:00:00 to 2024-05-03 10:00:00 UTC" in text
    assert "Exit status 1: finished, with work left" in text
    assert "Interrupted no" in text
    assert "Failed activities, by reason" in text
    assert "MXLeadNotFoundException" in text or "does not exist" in text
    assert f"does not exist 3 {gone} " in text  # 3 activities, on one lead
    assert "delete request" not in text  # a restore's page speaks of posts
    assert '"Posted" means LeadSquared created the activity again' in text


async def test_a_backup_its_purge_is_still_writing_is_said_so(tmp_path: Path) -> None:
    from bulk_delete.store.backup_file import BackupWriter, Owner

    lead = "00000000-0000-4000-8000-000000000001"
    backup = backup_of(tmp_path / "b.jsonl.gz", [activity(lead, n) for n in range(3)])
    with BackupWriter.open(backup, Owner(mark="m" * 32, checkpoint="purge.sqlite")):
        planned = await run_cli("restore", str(backup), "--dry-run")
    assert planned.returncode == 0, planned.stderr
    said = " ".join(planned.stdout.split())
    assert f"{backup} is still being written by its purge" in said
    alone = await run_cli("restore", str(backup), "--dry-run")
    assert "still being written" not in alone.stdout
    empty = tmp_path / "e.jsonl.gz"  # the purge's mark, and nothing saved yet
    with BackupWriter.open(empty, Owner(mark="m" * 32, checkpoint="purge.sqlite")):
        early = await run_cli("restore", str(empty), "--dry-run")
    assert early.returncode == 2
    assert f"{empty} is still being written by its purge" in early.stderr


async def test_each_backup_file_of_a_resumed_purge_restores_on_its_own(
    emulator: Any, tmp_path: Path
) -> None:
    """A purge resumed with a new --backup re-saves what it had not sent yet, so its later file
    may hold every request of the earlier one: the earlier file was taken for a copy cut from
    the later, and refused (exit 2) though the later file holds the rest."""
    from bulk_delete.commands.outputs import BACKUP_FILES
    from bulk_delete.store.backup_file import scan

    emu = await emulator(rate="off", webhook_delay=0.05, bulk_rate=NO_LIMIT)
    later, _ = await purged(emu, tmp_path, 5, verify=False)
    found = scan(later)
    (start, _end), *_ = found.spans[found.requests[2]]
    earlier = tmp_path / "earlier.jsonl.gz"  # the first run's file: its first two members
    earlier.write_bytes(later.read_bytes()[:start])
    with sqlite3.connect(tmp_path / "purge.sqlite") as db:  # as a resume with a new file lists
        files = json.dumps([str(earlier.resolve()), str(later.resolve())])
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (files, BACKUP_FILES))
        if not db.total_changes:
            db.execute("INSERT INTO meta VALUES (?, ?)", (BACKUP_FILES, files))
    db.close()
    env = demo_env(emu.url)
    for each in (earlier, later):
        done = await run_cli("restore", str(each), "--dry-run", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
    exported = await run_cli("export", "--backup", str(earlier), "-o", str(tmp_path / "e.csv"))
    assert exported.returncode == 0, exported.stderr
