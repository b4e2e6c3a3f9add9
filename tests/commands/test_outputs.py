"""Outputs are checked before the first call and never overwrite what the run reads; they are
written whole (temporary file, then rename), 0600, in 0700 folders."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from bulk_delete.commands import export, plan
from bulk_delete.commands.spec import RunSpec
from bulk_delete.errors import OptionError
from bulk_delete.store.checkpoint import Checkpoint

from ..conftest import leads_csv, run_cli, send_sheet
from ..helpers import real_time


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def sent_checkpoint(emu: Any, tmp_path: Path, leads: int = 3) -> Path:
    checkpoint = tmp_path / "c.sqlite"
    done = await send_sheet(
        emu, leads_csv(tmp_path / "leads.csv", leads), checkpoint, "--rate", "off"
    )
    assert done.returncode == 0
    return checkpoint


# ---------------------------------------------------------------- what the run reads


async def test_plan_never_writes_over_its_input(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    (tmp_path / "link.csv").symlink_to(sheet)
    before = digest(sheet)
    for flag, name in (("--out", "leads.csv"), ("--invalid-out", "link.csv")):
        done = await run_cli("plan", str(sheet), flag, str(tmp_path / name))
        assert done.returncode == 2
        assert f"{flag} {tmp_path / name} is the input sheet {sheet}" in done.stderr
    assert digest(sheet) == before


async def test_two_outputs_on_one_file_are_refused(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    out = tmp_path / "o.csv"
    done = await run_cli("plan", str(sheet), "--out", str(out), "--invalid-out", str(out))
    assert done.returncode == 2
    assert f"--invalid-out {out} is --out {out}" in done.stderr
    assert not out.exists()


async def test_plan_refuses_standard_output_for_its_files(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 1)
    for flag in ("-o", "--invalid-out"):
        done = await run_cli("plan", str(sheet), flag, "-")
        assert done.returncode == 2
        assert "give a file name" in done.stderr
    assert not Path("-").exists()


async def test_run_never_writes_over_its_input_or_checkpoint(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    sheet, checkpoint = leads_csv(tmp_path / "leads.csv", 3), tmp_path / "c.sqlite"
    before = digest(sheet)
    for flag, target in (
        ("--summary-json", sheet),
        ("--log-file", sheet),
        ("--summary-json", checkpoint),
        ("--log-file", tmp_path / "c.sqlite-wal"),
    ):
        done = await send_sheet(emu, sheet, checkpoint, "--rate", "off", flag, str(target))
        assert done.returncode == 2, (flag, target)
        assert f"{flag} {target} is the" in done.stderr
    assert digest(sheet) == before
    assert emu.calls == 0
    assert not checkpoint.exists()  # refused before the checkpoint was made


async def test_export_never_writes_over_its_checkpoint(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    checkpoint = await sent_checkpoint(emu, tmp_path)
    os.link(checkpoint, tmp_path / "hard.sqlite")
    before = digest(checkpoint)
    for out in (checkpoint, tmp_path / "hard.sqlite", tmp_path / "c.sqlite.lock"):
        done = await run_cli("export", str(checkpoint), "--out", str(out))
        assert done.returncode == 2
        assert f"--out {out} is the checkpoint" in done.stderr
        assert "every recorded outcome is safe" not in done.stderr.lower()
    assert digest(checkpoint) == before
    assert (await run_cli("status", str(checkpoint))).returncode == 0


async def test_an_unwritable_summary_is_refused_before_anything_is_sent(
    emulator: Any, tmp_path: Path
) -> None:
    emu = await emulator(rate="off")
    (tmp_path / "afile").write_text("")
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    for flag in ("--summary-json", "--log-file"):
        target = tmp_path / "afile" / "s.json"
        done = await send_sheet(emu, sheet, tmp_path / "c.sqlite", flag, str(target))
        assert done.returncode == 2
        assert f"{flag} {target}: cannot write it" in done.stderr
        assert "nothing sent" in done.stderr
    assert emu.calls == 0


# ---------------------------------------------------------------- written whole and private


async def test_outputs_are_0600_even_when_they_existed(emulator: Any, tmp_path: Path) -> None:
    emu = await emulator(rate="off")
    names = ("o.csv", "o.xlsx", "s.json", "log.jsonl")
    for name in names:
        (tmp_path / name).write_text("old\n")
        os.chmod(tmp_path / name, 0o644)
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    done = await send_sheet(
        emu,
        sheet,
        tmp_path / "c.sqlite",
        "--rate",
        "off",
        "--summary-json",
        str(tmp_path / "s.json"),
        "--log-file",
        str(tmp_path / "log.jsonl"),
    )
    assert done.returncode == 0
    for name in ("o.csv", "o.xlsx"):
        assert (
            await run_cli("export", str(tmp_path / "c.sqlite"), "--out", str(tmp_path / name))
        ).returncode == 0
    modes = {name: oct((tmp_path / name).stat().st_mode & 0o777) for name in names}
    assert modes == dict.fromkeys(names, "0o600")
    assert (tmp_path / "log.jsonl").read_text().startswith("old\n")  # appended, not replaced


async def test_folders_we_create_are_0700(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 3)
    umask = os.umask(0o022)
    try:
        done = await run_cli("plan", str(sheet), "--out", str(tmp_path / "new" / "deep" / "p.csv"))
    finally:
        os.umask(umask)
    assert done.returncode == 0
    for folder in (tmp_path / "new", tmp_path / "new" / "deep"):
        assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert (tmp_path / "new" / "deep" / "p.csv").is_file()


@pytest.mark.parametrize("name", ["o.csv", "o.xlsx"])
async def test_an_interrupted_export_leaves_the_old_file_whole(
    name: str, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = await emulator(rate="off")
    checkpoint = await sent_checkpoint(emu, tmp_path, leads=5)
    out = tmp_path / name
    assert export.export(checkpoint, out) == 5
    before = digest(out)
    real_rows = Checkpoint.export_rows

    def broken(self: Checkpoint, statuses: Any) -> Iterator[Any]:
        rows = real_rows(self, statuses)
        yield next(rows)
        raise KeyboardInterrupt  # Ctrl-C half-way

    monkeypatch.setattr(Checkpoint, "export_rows", broken)
    with pytest.raises(KeyboardInterrupt):
        export.export(checkpoint, out)
    assert digest(out) == before
    assert sorted(path.name for path in tmp_path.iterdir() if name in path.name) == [name]
    if name.endswith(".xlsx"):
        assert openpyxl.load_workbook(out).active.max_row == 6  # type: ignore[union-attr]


def test_an_export_over_a_symlinked_checkpoint_wal_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.sqlite"
    Checkpoint.open(real).close()
    with sqlite3.connect(real) as db:
        db.execute("INSERT INTO meta VALUES ('fingerprint', 'f')")
    db.close()
    (tmp_path / "link.sqlite").symlink_to(real)
    with pytest.raises(OptionError, match="is the checkpoint's"):
        export.export(tmp_path / "link.sqlite", tmp_path / "real.sqlite-wal")


async def test_an_output_through_a_symlink_replaces_the_file_it_points_to(tmp_path: Path) -> None:
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "preview.csv"
    target.write_text("old\n")
    (tmp_path / "preview.csv").symlink_to(target)
    await plan.plan(
        RunSpec.from_values({"input": sheet, "out": tmp_path / "preview.csv"}), **real_time()
    )
    assert (tmp_path / "preview.csv").is_symlink()
    assert target.read_text().startswith("ProspectId,")


async def test_export_and_report_refuse_to_overwrite_the_checkpoint_s_input_sheet(
    emulator: Any, tmp_path: Path
) -> None:
    """As `run` refuses it: the sheet a plan was made from is what a resume reads again."""
    emu = await emulator()
    sheet = leads_csv(tmp_path / "leads.csv", 2)
    before = sheet.read_bytes()
    checkpoint = tmp_path / "c.sqlite"
    assert (await send_sheet(emu, sheet, checkpoint)).returncode == 0
    link = tmp_path / "link.csv"
    link.symlink_to(sheet)
    for command in ("export", "report"):
        for out in (sheet, link):
            done = await run_cli(command, str(checkpoint), "-o", str(out))
            assert done.returncode == 2, done.stdout
            assert f"is the checkpoint's input sheet {sheet.resolve()}" in done.stderr
    assert sheet.read_bytes() == before


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
async def test_export_and_report_to_a_full_disk_exit_2_naming_it(
    emulator: Any, tmp_path: Path
) -> None:
    """`report -o` on a full disk ended as "internal error … a bug" (exit 70)."""
    emu = await emulator()
    checkpoint = tmp_path / "c.sqlite"
    assert (await send_sheet(emu, leads_csv(tmp_path / "l.csv", 2), checkpoint)).returncode == 0
    for command in ("export", "report"):
        done = await run_cli(command, str(checkpoint), "-o", "/dev/full")
        assert done.returncode == 2, done.stderr
        assert "cannot write /dev/full: no space left on device" in done.stderr


async def test_no_output_overwrites_a_backup_the_checkpoint_s_runs_wrote(
    emulator: Any, tmp_path: Path
) -> None:
    """A backup is the only copy of what its run deleted. The first version guarded only the
    latest one, and only from export and report: a rerun without --backup wrote its
    --summary-json over it (exit 0), and `export -o` replaced an earlier backup."""
    emu = await emulator(rate="off", webhook_delay=0.05)
    sheet, checkpoint = leads_csv(tmp_path / "leads.csv", 2), tmp_path / "c.sqlite"
    first, second = tmp_path / "first.jsonl.gz", tmp_path / "second.jsonl.gz"
    window = ("--from", "2024-03-01", "--to", "2025-06-30")
    for backup in (first, second):  # the second run finds nothing left, and names its file
        done = await send_sheet(emu, sheet, checkpoint, *window, "--backup", str(backup))
        assert done.returncode == 0, done.stderr
    before = digest(first)
    for flag in ("--summary-json", "--log-file", "--results"):
        done = await send_sheet(emu, sheet, checkpoint, *window, flag, str(first))
        assert done.returncode == 2, (flag, done.stderr)
        assert f"{flag} {first} is its backup {first}" in done.stderr
    for command in ("export", "report"):
        done = await run_cli(command, str(checkpoint), "-o", str(first))
        assert done.returncode == 2, done.stdout
        assert f"--out {first} is its backup {first}" in done.stderr
    assert digest(first) == before
    for backup in (first, second):  # while a run still appends to either
        done = await send_sheet(emu, sheet, checkpoint, *window, "--backup", str(backup))
        assert done.returncode == 0, done.stderr
