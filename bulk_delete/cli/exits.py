"""What a command's end means to the shell: the one map from results and errors to exit codes.

A coroutine of commands/ returns what happened (a RunSummary, a VerifySummary) or raises an
error of errors.py, whose class carries its code. ``exit_code_of`` turns either into the
process's exit code; cli/main.py exits with it, and ``with_exit_code`` writes it into the
summary that --summary-json, the scheduler's line and the results workbook show.
"""

from __future__ import annotations

import dataclasses

from ..errors import EXIT_INCOMPLETE, EXIT_OK, exit_code_for
from ..summary import RunSummary, VerifySummary


def exit_code_of(result: object) -> int:
    """An error's code (its class's, 70 for any other exception); a run's 0 when every request
    is queued and no row is invalid, else 1; verify's 0 when every check is confirmed, else 1;
    0 for a command that returns nothing."""
    if isinstance(result, BaseException):
        return exit_code_for(result)
    if isinstance(result, RunSummary):
        if result.exit_code is not None:  # the CLI mapped it already (an error's, say)
            return result.exit_code
        return EXIT_OK if result.totals.complete else EXIT_INCOMPLETE
    if isinstance(result, VerifySummary):
        return EXIT_OK if result.all_confirmed else EXIT_INCOMPLETE
    return EXIT_OK


def with_exit_code(summary: RunSummary, error: BaseException | None = None) -> RunSummary:
    """The summary carrying the exit code its run ends with: the error's, else its own."""
    return dataclasses.replace(summary, exit_code=exit_code_of(summary if error is None else error))
