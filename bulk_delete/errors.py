"""One exception tree for the whole job; exit codes follow from the type, here and nowhere else.

    BulkDeleteError                      exit 1 (unexpected, but ours)
    ├── UsageError                       exit 2 — nothing was sent
    │   ├── InputError                   the sheet cannot be read (file, sheet, header)
    │   ├── OptionError                  a bad option or job-file value
    │   ├── CredentialsError             host or keys missing
    │   ├── CheckpointMismatch           the checkpoint belongs to another input
    │   └── NotConfirmed                 the plan was not confirmed (no TTY and no --yes, or "N")
    ├── AbortedError                     exit 3 — the run stopped; the checkpoint is resumable
    │   ├── FatalAPIError                401/403/404: keys, host or region are wrong
    │   └── ServiceDownError             transient failures in a row and no success
    ├── LockHeld                         exit 75 (EX_TEMPFAIL) — another instance runs the job
    └── Interrupted                      exit 130 — SIGINT/SIGTERM; the checkpoint is resumable

A finished run with invalid rows or failed requests is not an exception: it exits 1 through
``RunResult.exit_code``.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
Exit codes:
  0    every request queued and no invalid rows
  1    finished, but some rows invalid or requests failed (see the export)
  2    usage, input file or checkpoint mismatch, or not confirmed; nothing sent
  3    aborted by a fatal API answer (401/403/404) or a service that looks down
  75   another instance of the same job holds its lock (job only)
  130  interrupted (SIGINT/SIGTERM); rerun the same command to resume"""


class BulkDeleteError(Exception):
    """Base of every error the job raises on purpose."""

    exit_code = EXIT_INCOMPLETE


class UsageError(BulkDeleteError):
    """Something the user must fix before anything can be sent."""

    exit_code = EXIT_USAGE


class InputError(UsageError):
    """The input file cannot be read or planned."""


class OptionError(UsageError):
    """An option (or job-file value) is invalid."""


class CredentialsError(UsageError):
    """Host or keys are missing. Never carries a key's value."""


class CheckpointMismatch(UsageError):
    """The checkpoint was made from another input or other plan options."""


class NotConfirmed(UsageError):
    """The plan was not confirmed, so nothing was sent."""


class AbortedError(BulkDeleteError):
    """The run stopped before finishing; everything recorded is kept and a rerun resumes."""

    exit_code = EXIT_ABORTED


class FatalAPIError(AbortedError):
    """An answer that no retry can fix (401, 403, 404)."""

    def __init__(self, message: str, *, http_status: int, api_message: str = "") -> None:
        super().__init__(message)
        self.http_status = http_status
        self.api_message = api_message


class ServiceDownError(AbortedError):
    """Too many transient failures in a row: retrying would only burn the budget."""


class LockHeld(BulkDeleteError):
    """Another instance of the same scheduled job is running."""

    exit_code = EXIT_LOCKED


class Interrupted(BulkDeleteError):
    """SIGINT or SIGTERM stopped the run."""

    exit_code = EXIT_INTERRUPTED


def exit_code_for(error: BaseException) -> int:
    """The process exit code for an error that reached the top."""
    if isinstance(error, BulkDeleteError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_INCOMPLETE
