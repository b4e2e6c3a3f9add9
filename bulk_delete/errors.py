"""One exception tree for the whole job; exit codes follow from the type, here and nowhere else.

    BulkDeleteError                      exit 1 (unexpected, but ours)
    ├── UsageError                       exit 2 — nothing was sent
    │   ├── InputError                   the sheet or checkpoint cannot be read or written
    │   │   ├── DateOrderNeeded          text dates like 01/02/2024 and no --date-order
    │   │   ├── NothingToSend            no row of the sheet is valid
    │   │   ├── SentPlansUnusable        the machine's memory of sent plans (a warning)
    │   │   ├── LedgerUnusable           the machine's ledger cannot be used (--daily-limit)
    │   │   ├── NotABackup               a --backup file that holds no member of ours
    │   │   └── DamagedBackup            a --backup file that cannot be read whole
    │   ├── OptionError                  a bad option or job-file value
    │   │   └── FieldError               … of one named field (the CLI or a job names it)
    │   ├── CredentialsError             host or keys missing
    │   ├── CheckpointMismatch           the checkpoint belongs to another input
    │   ├── OpenWindow                   requests without FromDate or ToDate, and no --open-window
    │   ├── SameRequests                 another job's state already holds these requests
    │   ├── SentBefore                   this machine sent the plan under another checkpoint
    │   ├── TooManyLeads                 --discover found more leads than --max-leads
    │   └── NotConfirmed                 not confirmed: no TTY and no --yes, "N", or Ctrl-D
    ├── AbortedError                     exit 3 — the run stopped; the checkpoint is resumable
    │   ├── FatalAPIError                401/403/404/3xx: keys, host or region are wrong
    │   │   └── WrongHost                the keys' account lives on another API host
    │   ├── ServiceDownError             transient failures in a row and no success
    │   ├── StorageError                 a file could not be written after sending began
    │   ├── RefusedTooLong               every call refused as over the rate limit, too long
    │   ├── UntrustworthyListing         a listing page shows the listing is wrong
    │   ├── ActivitiesUnread             what a request would delete could not be read (--backup)
    │   └── AllowanceUsed                exit 75 — the account's daily allowance is used
    ├── LockHeld                         exit 75 (EX_TEMPFAIL) — another process holds the lock
    └── Interrupted                      exit 130 — SIGINT/SIGTERM; the checkpoint is resumable

    any other exception                  exit 70 (EX_SOFTWARE) — a bug; never passes for 0 or 1

Every error class of the package is defined here (tests/test_layers.py holds it). A finished run
with invalid rows or failed requests is not an exception: the CLI maps what a command returns to
0 or 1, and an error to its class's code, in one place (``cli/main.py``). An error raised after
sending began carries the run's summary as ``error.summary``, as httpx's carry their response.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
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

# What each exit code means, for --help and the README (tests/cli/test_docs.py keeps them equal).
EXIT_MEANINGS: dict[int, str] = {
    EXIT_OK: "every request queued and no invalid rows (verify: all confirmed; restore: "
    "every activity posted)",
    EXIT_INCOMPLETE: "finished, but some rows invalid or requests failed (see the export); "
    "verify: some activities remain; restore: some held, refused or not posted yet",
    EXIT_USAGE: "usage, input file, output path or checkpoint problem (with --daily-limit: "
    "the machine's ledger), text dates without --date-order, no valid row, a plan sent "
    "before under another checkpoint (without --again), an open window without "
    "--open-window, not confirmed (N, Ctrl-D, no terminal), or --discover found more than "
    "--max-leads; nothing sent",
    EXIT_ABORTED: "aborted: a fatal API answer (401/403/404, a redirect), an untrustworthy "
    "listing, refusals or an outage longer than --give-up-after, or a disk full after sending "
    "began; rerun to resume",
    EXIT_SOFTWARE: "a bug: one line on stderr names a file with the traceback",
    EXIT_LOCKED: "another process holds the checkpoint's (or the job's) lock, or the "
    "account's daily allowance is used (rerun after the time shown)",
    EXIT_INTERRUPTED: "interrupted (SIGINT, SIGTERM, SIGHUP, Ctrl-C at the prompt, or the "
    "reader of its output went away); rerun the same command to resume",
}


def exit_codes_help(codes: tuple[int, ...] = tuple(EXIT_MEANINGS)) -> str:
    """The exit-code table for --help (click keeps its lines as written after \\b)."""
    lines = ["\b", "Exit codes:"]
    for code in codes:
        words = EXIT_MEANINGS[code].split()
        line = f"  {code:<4} "
        for word in words:
            if len(line) + len(word) > 78:
                lines.append(line.rstrip())
                line = " " * 7
            line += word + " "
        lines.append(line.rstrip())
    return "\n".join(lines)


EXIT_CODES_HELP = exit_codes_help()


class BulkDeleteError(Exception):
    """Base of every error the job raises on purpose."""

    exit_code = EXIT_INCOMPLETE
    summary: RunSummary | None = None  # set once sending began: what the run did


class UsageError(BulkDeleteError):
    """Something the user must fix before anything can be sent."""

    exit_code = EXIT_USAGE


class InputError(UsageError):
    """The input file cannot be read or planned."""


class DateOrderNeeded(InputError):
    """The sheet's text dates are not ISO (01/02/2024) and no --date-order says how they are
    written: read one way or the other, a purge would delete another month."""


class NothingToSend(InputError):
    """No row of the sheet is valid: nothing to plan or send, and no command to print."""


class SentPlansUnusable(InputError):
    """The machine's memory of sent plans (store/sent_plans.py) cannot be used: said as a
    warning (``warning``) by every command, which goes on without knowing whether the plan
    was sent before. Names the file, what is wrong and how to mend it."""

    def __init__(self, path: object, cause: str, mend: str) -> None:
        super().__init__(
            f"the machine's memory of sent plans {path} cannot be used: {cause}. To mend it: {mend}"
        )
        self.path, self.cause, self.mend = path, cause, mend

    @property
    def warning(self) -> str:
        """What is said where the memory is not needed to go on (a dry run, a resume)."""
        return (
            f"warning: the machine's memory of sent plans {self.path} cannot be used: "
            f"{self.cause}; whether this plan was sent before cannot be told, nor this send "
            f"remembered. To mend it: {self.mend}"
        )


class LedgerUnusable(InputError):
    """The machine's ledger (store/ledger.py) cannot be used: its folder cannot be made or
    written, or the file is damaged or not ours. With a daily limit nothing is sent without it;
    otherwise it is a warning (``warning``). Names the file, what is wrong and how to mend it."""

    def __init__(self, path: object, cause: str, mend: str) -> None:
        super().__init__(
            f"the machine's ledger {path} cannot be used: {cause}. It counts today's calls of "
            "every run on this machine, so with a daily limit nothing is sent without it. "
            f"To mend it: {mend}"
        )
        self.path, self.cause, self.mend = path, cause, mend

    @property
    def warning(self) -> str:
        """What a run without a daily limit says before it goes on alone."""
        return (
            f"warning: the machine's ledger {self.path} cannot be used: {self.cause}. This run "
            "paces on its own, unseen by other runs on this machine with these keys. "
            f"To mend it: {self.mend}"
        )


class NotABackup(InputError):
    """A file that holds no member of ours: another file named by mistake."""


class DamagedBackup(InputError):
    """A backup that cannot be read whole: each damaged member (store/backup_file.py
    ``Damage``), named. Reading it for an export is an input error (exit 2); a run turns it
    into a stop (commands/backups.py)."""

    def __init__(self, path: Path, damage: Sequence[object], shown: int = 3) -> None:
        named = "; ".join(str(each) for each in damage[:shown])
        more = f"; and {len(damage) - shown:,} more" if len(damage) > shown else ""
        super().__init__(f"the backup {path} cannot be read whole: {named}{more}")
        self.path = path
        self.damage = list(damage)


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


class OpenWindow(UsageError):
    """Requests without a FromDate or a ToDate delete every activity of their codes on that
    side, for all time: a decision the user states with --open-window, never an accident."""


class SameRequests(UsageError):
    """Another job's checkpoint holds the same requests (a copied job file): sending them
    again would purge twice under two names."""


class SentBefore(UsageError):
    """This machine sent the same plan (sheet bytes, options, account) under another
    checkpoint: sending it again by accident would purge twice, and for a window reaching
    into the present, delete what was created since. --again says it is meant."""


class TooManyLeads(UsageError):
    """The listing found more leads than --max-leads: a wrong window must not purge the
    whole account at 2 a.m."""


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


class StorageError(AbortedError):
    """The disk is full or failing (or a file became unwritable) after sending began: what is
    recorded is safe, and a rerun resumes. Carries the path and the cause, never "nothing
    sent"; before sending, the same fault is an InputError (exit 2)."""


class RefusedTooLong(AbortedError):
    """Every call for --give-up-after seconds was refused as over the rate limit: the service
    is up, but the account's budget is spent by someone else."""


class UntrustworthyListing(AbortedError):
    """A listing page shows the listing is wrong (repeats, rows without ids, leads that are
    not GUIDs): exit 3 before anything is deleted on its word."""


class ActivitiesUnread(AbortedError):
    """What a request would delete could not be read exactly: it must not be sent."""


class AllowanceUsed(AbortedError):
    """LeadSquared refused a call as over the account's daily (or hourly) allowance: no pace
    gets under it, so nothing more is sent until it resets. An abort (the checkpoint is
    resumable), with EX_TEMPFAIL's 75 as for a held lock: try again later, by the clock."""

    exit_code = EXIT_LOCKED

    def __init__(self, message: str, *, resume_at: str = "") -> None:
        super().__init__(message)
        self.resume_at = resume_at


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
