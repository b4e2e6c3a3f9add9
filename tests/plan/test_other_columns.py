"""The columns a plan does not read (a lead's Name, Email, notes …): a dry run leaves them out
of every chunk as it is read, so its memory does not grow with them, and plans the same."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from bulk_delete.cli.main import cli
from bulk_delete.errors import InputError
from bulk_delete.plan import rows
from bulk_delete.plan.build import ExtraCells, Plan, build_plan
from bulk_delete.plan.rules import PlanOptions
from bulk_delete.sheet import read as sheets
from bulk_delete.sheet.read import Chunk, open_sheet

from ..cell_fixtures import CODE_CELLS, DATE_CELLS, LEAD_CELLS, OPTIONS

G1 = "3aee22bd-8419-422a-8242-c510df9af021"
G2 = "3aee22bd-8419-422a-8242-c510df9af022"
NAMES = ["Asha", "", " ", "Bén", "x"]


def every_cell(chunks: list[Chunk]) -> set[Any]:
    return {cell for chunk in chunks for column in chunk.columns for cell in column.tolist()}


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[Chunk]:
    """The chunks the plan's checks are handed, as they are handed."""
    seen: list[Chunk] = []
    check_chunk = rows.Validator.check_chunk

    def spy(self: rows.Validator, chunk: Chunk, invalid: Any) -> Any:
        seen.append(chunk)
        return check_chunk(self, chunk, invalid)

    monkeypatch.setattr(rows.Validator, "check_chunk", spy)
    return seen


def test_the_dry_runs_chunks_carry_only_the_columns_it_reads(
    write_csv: Callable[..., Path], handed: list[Chunk]
) -> None:
    path = write_csv(
        "Name,ProspectId,Email,Codes,Note\n"
        f"Asha,{G1},asha@x.io,163,first\n"
        f"Bala,{G2},bala@x.io,166,second\n"
    )
    code = CliRunner().invoke(cli, ["plan", str(path)]).exit_code
    assert code == 0
    [chunk] = handed
    assert chunk.width == 3  # ProspectId, Codes, and whether a row has anything else
    assert len(chunk.columns) == 3 + sheets.SPARE_COLUMNS
    assert every_cell(handed).isdisjoint({"Asha", "asha@x.io", "first", "Bala", "Note"})
    assert {G1, G2, "163", "166"} <= every_cell(handed)


def test_a_run_keeps_them_for_its_requests(write_csv: Callable[..., Path]) -> None:
    path = write_csv(f"Name,ProspectId,Codes\nAsha,{G1},163\n")
    with open_sheet(path, keep_ignored=True) as sheet:
        assert sheet.info.ignored_at == (0,)
        assert "Asha" in every_cell(list(sheet.chunks()))
    assert [request.extra for request in build_plan(path, PlanOptions()).requests()] == ['["Asha"]']
    assert not build_plan(path, PlanOptions(), extra=False).extra


def test_a_row_with_something_only_in_other_columns_is_still_refused_by_its_number(
    write_csv: Callable[..., Path],
) -> None:
    """Only whether a row is blank depends on the columns left out: a row with just a name
    is an invalid row (no ProspectId), one with just spaces there is blank."""
    path = write_csv(f"Name,ProspectId,Codes\nAsha,{G1},163\nOnly a name,,\n  ,,\n,,\n")
    plan = build_plan(path, PlanOptions(), extra=False)
    assert [row.row for row in plan.invalid] == [3]
    assert (plan.rows_read, plan.blank_rows) == (4, 2)
    with open_sheet(path, keep_ignored=False) as sheet:
        assert list(sheet)[1:] == [sheets.RawRow(3, (None,) * 5), None, None]


def test_the_header_is_checked_as_before(write_csv: Callable[..., Path]) -> None:
    near = write_csv(f"ProspectId,Codes,Form Date,Name\n{G1},163,2024-01-01,Asha\n")
    with pytest.raises(InputError, match="'Form Date' looks like FromDate"):
        build_plan(near, PlanOptions(), extra=False)
    plan = build_plan(near, PlanOptions(ignore_columns=("Form Date",)), extra=False)
    assert plan.source.ignored == ("Form Date", "Name")
    assert plan.source.ignored_at == ()  # (not in the chunks)
    assert [request.from_date for request in plan.requests()] == [""]


def without_extra(plan: Plan) -> dict[str, Any]:
    return {
        "requests": [dataclasses.replace(request, extra="") for request in plan.requests()],
        "invalid": list(plan.invalid),
        "counts": (plan.rows_read, plan.blank_rows, plan.leads),
        "tally": plan.tally(),
        "source": dataclasses.replace(plan.source, ignored_at=()),
    }


def random_wide_csv(rng: random.Random, count: int) -> Iterator[str]:
    yield "Name,ProspectId,Email,Codes,FromDate,ToDate,Note\n"
    for _ in range(count):
        kind = rng.random()
        name, email, note = rng.choice(NAMES), rng.choice(NAMES), rng.choice(NAMES)
        if kind < 0.1:
            yield f"{name},,{email},,,,{note}\n"  # blank or not, by the columns left out
        elif kind < 0.15:
            yield "\n"
        else:
            lead, codes = rng.choice(LEAD_CELLS), rng.choice(CODE_CELLS).replace(",", ";")
            start, end = rng.choice(DATE_CELLS), rng.choice(DATE_CELLS)
            beyond = ",,x" if kind > 0.97 else ""
            yield f"{name},{lead},{email},{codes},{start},{end},{note}{beyond}\n"


@pytest.mark.parametrize("seed", range(6))
def test_a_dry_run_plans_what_a_run_plans(
    write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr(sheets, "CHUNK_ROWS", 7)
    path = write_csv("".join(random_wide_csv(random.Random(seed), 200)))
    options = PlanOptions(**OPTIONS[seed % len(OPTIONS)])
    narrow, whole = build_plan(path, options, extra=False), build_plan(path, options)
    assert without_extra(narrow) == without_extra(whole)
    assert whole.blank_rows
    assert whole.invalid
    assert whole.extra


def test_a_workbook_too(write_xlsx: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sheets, "CHUNK_ROWS", 4)
    rng = random.Random(3)
    sheet: list[list[Any]] = [["Name", "ProspectId", "Codes", "Score", "ToDate"]]
    for _ in range(60):
        sheet.append(
            [
                rng.choice([*NAMES, None]),
                rng.choice([G1, G2, "", None, "nope"]),
                rng.choice([163, "166;163", "", None]),
                rng.choice([42, 0.5, None, " "]),
                rng.choice(["2024-01-31", None]),
            ]
        )
    path = write_xlsx(sheet)
    narrow, whole = build_plan(path, PlanOptions(), extra=False), build_plan(path, PlanOptions())
    assert without_extra(narrow) == without_extra(whole)
    assert whole.blank_rows
    assert whole.invalid


def test_a_wide_sheet_is_read_in_fewer_rows_at_a_time(
    write_csv: Callable[..., Path], handed: list[Chunk], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk is read whole before the other columns are left out: its rows × columns read
    stay within CHUNK_ROWS × CHUNK_COLUMNS, however wide the sheet."""
    monkeypatch.setattr(sheets, "CHUNK_ROWS", 12)
    notes = [f"Note {n}" for n in range(40)]
    lines = [",".join(["ProspectId", "Codes", *notes])]
    lines += [",".join([G1, "163", *(f"n{row}" for _ in notes)]) for row in range(30)]
    plan = build_plan(write_csv("\n".join(lines) + "\n"), PlanOptions(), extra=False)
    read = 2 + len(notes) + sheets.SPARE_COLUMNS
    assert max(map(len, handed)) * read <= sheets.CHUNK_ROWS * sheets.CHUNK_COLUMNS
    assert sum(map(len, handed)) == plan.rows_read == 30
    assert [request.source_rows for request in plan.requests()] == [tuple(range(2, 32))]


def test_a_runs_extra_cells_come_back_from_the_spool_as_they_went_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spooled past memory and read back a few bytes at a time, in any order of rows."""
    monkeypatch.setattr(ExtraCells, "SPOOL_BYTES", 16)
    monkeypatch.setattr(ExtraCells, "READ_BYTES", 10)
    texts = [f'["Bén {n}","{"x" * (n % 7)}"]' for n in range(50)]
    spool = ExtraCells()
    assert not spool
    for at in range(0, 50, 12):
        spool.add(texts[at : at + 12])
    spool.add([])  # (a chunk without a valid row)
    assert len(spool) == 50
    rows = np.array([49, 0, 7, 7, 13, 12, 48, 1], dtype=np.intp)
    assert spool.texts(rows) == [texts[row] for row in rows.tolist()]
    assert spool.texts(np.arange(50)) == texts
    assert spool.texts(np.arange(0)) == []
    kept = ExtraCells()
    kept.add([])  # a sheet whose rows are all invalid: its other columns are still named
    assert kept
    assert len(kept) == 0


def test_standard_input_is_copied_on_in_blocks_not_held(
    monkeypatch: pytest.MonkeyPatch, write_xlsx: Callable[..., Path]
) -> None:
    """`plan -` copies its input to the temporary file a block at a time: every row of a
    CSV longer than a block arrives, and a workbook is still told by its first bytes."""
    from bulk_delete.cli import plan_cmd

    monkeypatch.setattr(plan_cmd, "_STDIN_BLOCK", 64)
    lines = [f"Name {n},3aee22bd-8419-422a-8242-c510df9a{n:04d},163" for n in range(40)]
    text = "Name,ProspectId,Codes\n" + "\n".join(lines) + "\n"
    result = CliRunner().invoke(cli, ["plan", "-"], input=text)
    assert result.exit_code == 0, result.output
    assert re.search(r"requests +40 ", result.output)
    assert "ignored columns Name" in result.output
    workbook = write_xlsx([["ProspectId", "Codes"], [G1, 163], [G2, 166]]).read_bytes()
    result = CliRunner().invoke(cli, ["plan", "-"], input=workbook)
    assert result.exit_code == 0, result.output
    assert re.search(r"requests +2 ", result.output)
