"""The command group, and the one exit: ``Cli.invoke`` turns what a command returned, or the
error it raised, into the process's exit code (through exits.py), and nothing else exits.

Each command fills a RunSpec from its options, awaits one coroutine of commands/ under
``asyncio.run``, prints what comes back and returns it: plan_cmd, run_cmd, job_cmd,
verify_cmd, restore_cmd, status_cmd, export_cmd, report_cmd, emulator_cmd; their options come from
options, the signal handling from signals.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from typing import Any

import click

from .. import __version__
from ..errors import EXIT_CODES_HELP, EXIT_INTERRUPTED, EXIT_SOFTWARE, BulkDeleteError
from .emulator_cmd import emulator
from .exits import exit_code_of
from .export_cmd import export
from .job_cmd import job
from .notify import notify_end, secrets_in_env
from .plan_cmd import plan
from .report_cmd import report
from .restore_cmd import restore
from .run_cmd import run
from .status_cmd import status
from .summary_json import write_failed
from .verify_cmd import verify


class Cli(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
        except click.exceptions.Exit as error:
            _notified(ctx, error.exit_code)
            raise
        except click.ClickException as error:
            _notified(ctx, error.exit_code)
            raise
        except click.Abort:
            _notified(ctx, EXIT_INTERRUPTED)
            raise
        except BulkDeleteError as error:
            click.echo(f"error: {error}", err=True)
            self._exit(ctx, error, exit_code_of(error), str(error))
        except BrokenPipeError as error:  # `bulk-delete plan … | head`: the reader went away
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            self._exit(ctx, error, EXIT_INTERRUPTED, "the output pipe was closed")
        except KeyboardInterrupt as error:
            click.echo("interrupted", err=True)
            self._exit(ctx, error, EXIT_INTERRUPTED, "interrupted")
        except Exception as error:  # a bug: exit 70, never 0 or 1
            _say_bug(error)
            self._exit(ctx, error, EXIT_SOFTWARE, f"internal error ({type(error).__name__})")
        code = exit_code_of(result)
        _notified(ctx, code)
        ctx.exit(code)

    @staticmethod
    def _exit(ctx: click.Context, error: BaseException, code: int, message: str) -> None:
        """An error's end: its --summary-json, its notification, its exit code."""
        write_failed(ctx, error, code, message)
        _notified(ctx, code)
        ctx.exit(code)


def _notified(ctx: click.Context, code: int) -> None:
    """The end, notified; a bug in notifying is exit 70 as any bug is (never the exit of a
    run that went well, nor a traceback's exit 1)."""
    try:
        notify_end(ctx, code)
    except Exception as error:
        _say_bug(error)
        ctx.exit(EXIT_SOFTWARE)


def _say_bug(error: Exception) -> None:
    report = _crash_report(error)
    click.echo(
        f"bulk-delete: internal error ({type(error).__name__}); this is a bug. "
        f"Every recorded outcome is safe; the traceback is in {report}",
        err=True,
    )


def _crash_report(error: Exception) -> str:
    """The traceback in a private file, with anything that looks like a key blanked out."""
    from ..redaction import redact

    text = redact("".join(traceback.format_exception(error)), secrets_in_env())
    fd, path = tempfile.mkstemp(prefix="bulk-delete-crash-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


@click.group(
    cls=Cli,
    epilog=EXIT_CODES_HELP,
    context_settings={"max_content_width": 100, "help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="bulk-delete")
def cli() -> None:
    """Purge custom activities from LeadSquared leads listed in a CSV or Excel sheet.

    Start with `plan` (a dry run: nothing is sent, no keys needed), then `run`.
    LeadSquared answers a delete with "queued": it deletes later, on its side.

    \b
    Examples:
      bulk-delete plan leads.xlsx --tz Asia/Kolkata
      bulk-delete run leads.xlsx --tz Asia/Kolkata --checkpoint q1.sqlite
      bulk-delete job jobs/nightly-discover-purge.toml --dry-run
      bulk-delete COMMAND --help
    """


for _command in (plan, run, job, verify, restore, status, export, report, emulator):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="bulk-delete")
