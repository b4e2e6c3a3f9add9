"""One exception tree for the whole job; exit codes follow from the type, here and nowhere else.

    BulkDeleteError                      exit 1 (unexpected, but ours)
    ├── UsageError                       exit 2 — nothing was sent
    │   ├── InputError                   the sheet or checkpoint cannot be read or written
    │   ├── OptionError                  a bad option or job-file value
    │   │   └── FieldError               … of one named field (the CLI or a job names it)
    │   ├── CredentialsError             host or keys missing
    │   ├── CheckpointMismatch           the checkpoint belongs to another input
    │   └── NotConfirmed                 the plan was not confirmed (no TTY and no --yes, or "N")
    ├── AbortedError                     exit 3 — the run stopped; the checkpoint is resumable
    │   ├── FatalAPIError                401/403/404/3xx: keys, host or region are wrong
    │   │   └── WrongHost                the keys' account lives on another API host
    │   ├── ServiceDownError             transient failures in a row and no success
    │   └── UntrustworthyListing         (listing.py) a listing page shows it is wrong
    ├── LockHeld                         exit 75 (EX_TEMPFAIL) — another process holds the lock
    └── Interrupted                      exit 130 — SIGINT/SIGTERM; the checkpoint is resumable

    any other exception                  exit 70 (EX_SOFTWARE) — a bug; never passes for 0 or 1

A finished run with invalid rows or failed requests is not an exception: it exits 1 through
``RunSummary.exit_code``. An error raised after sending began carries the run's summary as
``error.summary``, the way httpx's errors carry their response.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .summary import RunSummary

EXIT_OK = 0
EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3
EXIT_SOFTWARE = 70
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
Exit codes:
  0    every request queued and no invalid rows (verify: all confirmed)
  1    finished, but some rows invalid or requests failed (see the export);
       verify: some activities remain
  2    usage, input file or checkpoint mismatch, not confirmed, or --discover
       found more than --max-leads; nothing sent
  3    aborted: a fatal API answer (401/403/404, a redirect), an outage
       longer than --give-up-after, or a --discover listing that cannot be
       trusted (nothing deleted); rerun to resume
  70   a bug: one line on stderr names a file with the traceback
  75   another process holds the checkpoint's (or the job's) lock
  130  interrupted (SIGINT/SIGTERM); rerun the same command to resume"""


class BulkDeleteError(Exception):
    """Base of every error the job raises on purpose."""

    exit_code = EXIT_INCOMPLETE
    summary: RunSummary | None = None  # set once sending began: what the run did


class UsageError(BulkDeleteError):
    """Something the user must fix before anything can be sent."""

    exit_code = EXIT_USAGE


class InputError(UsageError):
    """The input file cannot be read or planned."""


class OptionError(UsageError, ValueError):
    """An option (or job-file value) is invalid. A ValueError too, so value parsers can raise
    it and the RunSpec names the option in front of the message."""


class FieldError(OptionError):
    """One field's value is invalid; whoever knows the user's name for it names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


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


class WrongHost(FatalAPIError):
    """The preflight found that the account's API host is not --host."""


class ServiceDownError(AbortedError):
    """No call has succeeded for --give-up-after seconds: an outage, not a blip."""


class LockHeld(BulkDeleteError):
    """Another process holds the checkpoint (or the scheduled job) this one needs."""

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
    return EXIT_SOFTWARE
