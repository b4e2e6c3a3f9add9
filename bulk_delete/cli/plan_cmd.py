"""`plan`: the dry run, from a file or from standard input."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..commands.spec import RunSpec
from ..errors import (
    EXIT_ABORTED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOFTWARE,
    EXIT_USAGE,
    BulkDeleteError,
    exit_codes_help,
)
from .options import plan_options, preview_options, spec_option
from .run_cmd import next_command
from .show_plan import print_plan

_PLAN_EXIT_CODES = (EXIT_OK, EXIT_USAGE, EXIT_ABORTED, EXIT_SOFTWARE, EXIT_INTERRUPTED)


@click.command(epilog=exit_codes_help(_PLAN_EXIT_CODES))
@plan_options
@preview_options
@spec_option("host", envvar="LSQ_HOST")
@spec_option("auth", type=click.Choice(["header", "query"]))
@spec_option("preflight")
@spec_option("daily_limit")
def plan(**values: Any) -> None:
    """Dry run: read, validate and coalesce INPUT (or list what --discover finds), and show
    what would be sent, ending with the command that sends it.

    Sends nothing and needs no keys (except with --discover or --check-codes). Exits 0
    when the file could be planned, even with invalid rows; 2 when it could not, or when
    no row is valid. INPUT may be - for standard input (CSV, or an Excel workbook).

    \b
    Examples:
      bulk-delete plan leads.xlsx
      bulk-delete plan leads.csv --tz Asia/Kolkata --codes 201,202 -o preview.csv
      bulk-delete plan --discover --codes 201 --from 2025-01-01 --to 2025-03-31
      cat leads.csv | bulk-delete plan - --codes 201
    """
    with _stdin_sheet(values) as (values, shown):
        spec = RunSpec.from_values(values)
        report = print_plan(spec, shown=shown)
    click.echo(next_command(click.get_current_context(), spec, report))


_STDIN_BLOCK = 1 << 20


@contextmanager
def _stdin_sheet(
    values: dict[str, Any],
) -> Iterator[tuple[dict[str, Any], Callable[[str], str]]]:
    """INPUT "-": standard input, kept in a private temporary file while it is planned (a
    workbook is recognised by its first bytes). Yields the values and how to show a text
    about it: the temporary file is named "standard input" in the plan and in errors."""
    if str(values.get("input") or "") != "-":
        yield values, str
        return
    stdin = sys.stdin.buffer
    head = stdin.read(_STDIN_BLOCK)  # copied on in blocks: never held whole while planned
    suffix = ".xlsx" if head.startswith(b"PK\x03\x04") else ".csv"
    with tempfile.TemporaryDirectory(prefix="bulk-delete-stdin-") as folder:
        path = Path(folder) / f"stdin{suffix}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(head)
            del head
            shutil.copyfileobj(stdin, handle, _STDIN_BLOCK)

        def shown(text: str) -> str:
            return text.replace(str(path), "standard input")

        try:
            yield {**values, "input": path}, shown
        except BulkDeleteError as error:
            error.args = (shown(str(error)),)
            raise
