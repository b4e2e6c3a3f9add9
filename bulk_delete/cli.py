"""The command line. Each command parses options, builds a config, calls one library function
and prints what it returns. Errors become exit codes in one place: ``Cli.invoke``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import __version__
from .config import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_CODES_PER_REQUEST,
    DEFAULT_PLAN,
    DEFAULT_TIMEOUT,
    DEFAULT_TZ,
    ENV_HOST,
    Credentials,
    RateLimit,
    normalise_host,
    parse_codes,
)
from .errors import EXIT_CODES_HELP, BulkDeleteError, NotConfirmed, exit_code_for
from .plan import PlanOptions

if TYPE_CHECKING:
    from .pipeline import RunConfig

F = TypeVar("F", bound=Callable[..., Any])


class Cli(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BulkDeleteError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(exit_code_for(error))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(exit_code_for(KeyboardInterrupt()))


@click.group(cls=Cli, epilog=EXIT_CODES_HELP, context_settings={"max_content_width": 100})
@click.version_option(__version__, prog_name="bulk-delete")
def cli() -> None:
    """Purge custom activities from LeadSquared leads listed in a CSV or Excel sheet.

    Start with `plan` (a dry run: nothing is sent, no keys needed), then `run`.
    LeadSquared answers a delete with "queued": it deletes later, on its side.
    """


def plan_options(command: F) -> F:
    """The options that decide which requests a sheet becomes; shared by plan, run and job."""
    decorators = [
        click.argument("input", type=click.Path(path_type=Path, dir_okay=False)),
        click.option("--sheet", help="Excel sheet name (default: the first sheet)."),
        click.option(
            "--codes",
            help="Activity codes (e.g. 163,166) for rows whose codes cell is empty or missing.",
        ),
        click.option(
            "--from",
            "from_date",
            default="",
            help="FromDate where the sheet has none: YYYY-MM-DD [HH:MM:SS]; "
            "a date alone means 00:00:00.",
        ),
        click.option(
            "--to",
            "to_date",
            default="",
            help="ToDate where the sheet has none; a date alone means 23:59:59 of that day.",
        ),
        click.option("--webhook", default="", help="StatusWebhookURL where the sheet has none."),
        click.option(
            "--tz",
            default=DEFAULT_TZ,
            show_default=True,
            help="IANA time zone for dates without an offset (e.g. Asia/Kolkata); sent as UTC.",
        ),
        click.option(
            "--max-codes-per-request",
            type=click.IntRange(min=1),
            default=DEFAULT_MAX_CODES_PER_REQUEST,
            show_default=True,
            help="Split a lead's code list into requests of at most this many codes.",
        ),
        click.option(
            "--rate",
            default=DEFAULT_PLAN,
            show_default=True,
            help="Account limit: N/Ws (25/5s) or a plan: lite 2, pro 5, basic 10, super 10, "
            "standard 15, enterprise 25 calls per 5 s.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def build_plan_options(
    *,
    sheet: str | None,
    codes: str | None,
    from_date: str,
    to_date: str,
    webhook: str,
    tz: str,
    max_codes_per_request: int,
) -> PlanOptions:
    return PlanOptions(
        codes=parse_codes(codes) if codes else (),
        from_date=from_date,
        to_date=to_date,
        webhook=webhook,
        tz=tz,
        sheet=sheet,
        max_codes_per_request=max_codes_per_request,
    )


@cli.command()
@plan_options
@click.option(
    "--out", type=click.Path(path_type=Path), help="Write one line per request (.csv or .xlsx)."
)
@click.option(
    "--invalid-out",
    type=click.Path(path_type=Path),
    help="Write the invalid rows with their reasons.",
)
@click.option(
    "--check-codes",
    is_flag=True,
    help="Ask LeadSquared (GetActivitySetting) for each code's name; needs LSQ_HOST and keys, "
    "and spends one call of the rate budget per distinct code.",
)
@click.option("--host", envvar="LSQ_HOST", help="API base URL for --check-codes [env LSQ_HOST].")
def plan(
    input: Path,
    out: Path | None,
    invalid_out: Path | None,
    check_codes: bool,
    host: str | None,
    rate: str,
    **options: Any,
) -> None:
    """Dry run: read, validate and coalesce INPUT, and show what would be sent.

    Sends nothing and needs no keys (except with --check-codes). Exits 0 when the
    file could be planned, even with invalid rows; 2 when it could not.
    """
    from .pipeline import PreviewConfig, preview

    config = PreviewConfig(
        input=input,
        options=build_plan_options(**options),
        rate=RateLimit.parse(rate),
        out=out,
        invalid_out=invalid_out,
        check_codes_host=normalise_host(host or "") if check_codes else None,
        credentials=Credentials.from_env() if check_codes else None,
    )
    click.echo(preview(config))


def send_options(command: F) -> F:
    """Options of every command that sends: run and job."""
    decorators = [
        click.option(
            "--yes", is_flag=True, help="Send without asking (for scripts and schedulers)."
        ),
        click.option("--dry-run", is_flag=True, help="Only plan: exactly `bulk-delete plan`."),
        click.option("--quiet", is_flag=True, help="No progress display."),
        click.option(
            "--summary-json",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Write counts, achieved rate, exit code, checkpoint and times as JSON.",
        ),
        click.option(
            "--log-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Append one JSON line per request outcome (no keys, no bodies).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def make_confirm(yes: bool) -> Callable[[str], bool]:
    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise NotConfirmed(
                "nothing sent: no terminal to confirm on; pass --yes to send without asking"
            )
        return click.confirm(question, default=False, err=True)

    return confirm


@cli.command()
@plan_options
@click.option(
    "--checkpoint",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="SQLite file holding the plan and every outcome; rerun with the same file to resume.",
)
@click.option(
    "--host",
    envvar=ENV_HOST,
    help="API base URL, e.g. https://api-in21.leadsquared.com [env LSQ_HOST].",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1, max=256),
    help="Calls in flight at most (default: enough that the rate limit is the bottleneck).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_ATTEMPTS,
    show_default=True,
    help="Sends per request on transient failures (429s do not count).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds per call.",
)
@click.option(
    "--auth",
    type=click.Choice(["header", "query"]),
    default="header",
    show_default=True,
    help="Send the keys as x-LSQ-* headers (recommended) or in the query string.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Also resend requests that failed permanently (400, MX errors).",
)
@send_options
def run(
    input: Path,
    checkpoint: Path,
    host: str | None,
    concurrency: int | None,
    max_attempts: int,
    timeout: float,
    auth: str,
    retry_failed: bool,
    yes: bool,
    dry_run: bool,
    quiet: bool,
    summary_json: Path | None,
    log_file: Path | None,
    rate: str,
    **options: Any,
) -> None:
    """Plan INPUT, show the plan, confirm, and send the deletes.

    Keys come from LSQ_ACCESS_KEY and LSQ_SECRET_KEY. The plan and every outcome are kept
    in --checkpoint; running the same command again resumes where it stopped.
    """
    from .pipeline import PreviewConfig, RunConfig, preview

    plan_opts = build_plan_options(**options)
    limit = RateLimit.parse(rate)
    if dry_run:
        click.echo(preview(PreviewConfig(input=input, options=plan_opts, rate=limit)))
        return
    config = RunConfig(
        input=input,
        options=plan_opts,
        checkpoint=checkpoint,
        host=normalise_host(host or ""),
        credentials=Credentials.from_env(),
        rate=limit,
        concurrency=concurrency,
        max_attempts=max_attempts,
        timeout=timeout,
        auth="query" if auth == "query" else "header",
        retry_failed=retry_failed,
        summary_json=summary_json,
        log_file=log_file,
    )
    run_and_exit(config, yes=yes, quiet=quiet)


def run_and_exit(config: RunConfig, *, yes: bool, quiet: bool) -> None:
    from .pipeline import run as run_pipeline
    from .pipeline import summary_line
    from .progress import ProgressDisplay

    display = ProgressDisplay(quiet=quiet, calls_per_second=config.rate.per_second)
    try:
        result = run_pipeline(
            config, confirm=make_confirm(yes), echo=click.echo, on_progress=display
        )
    finally:
        display.close()
    click.echo(result.text)
    if not sys.stderr.isatty():  # a scheduler's log gets one line it can grep
        click.echo(summary_line(result.facts), err=True)
    sys.exit(result.exit_code)


@cli.command()
@click.argument("job_file", type=click.Path(path_type=Path, dir_okay=False))
@send_options
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Use this state directory instead of the job file's state_dir.",
)
def job(
    job_file: Path,
    yes: bool,
    dry_run: bool,
    quiet: bool,
    summary_json: Path | None,
    log_file: Path | None,
    state_dir: Path | None,
) -> None:
    """Run a scheduled cleanup described by a TOML job file (see jobs/).

    Never asks: the file needs confirm = true, or pass --yes. One checkpoint per run date
    in the state directory; a second instance of the same job exits 75 at once.
    """
    import datetime as dt
    import os

    from .jobs import job_lock, load_job
    from .pipeline import PreviewConfig, preview

    loaded = load_job(job_file, state_dir=state_dir)
    now = dt.datetime.now(dt.UTC)
    if dry_run:
        options = loaded.plan_options(now)
        click.echo(preview(PreviewConfig(input=loaded.input, options=options, rate=loaded.rate)))
        return
    if not (yes or loaded.confirm):
        raise NotConfirmed(
            f"job {loaded.name}: nothing sent; set confirm = true in {job_file} or pass --yes"
        )
    config = loaded.run_config(now, os.environ, summary_json=summary_json, log_file=log_file)
    with job_lock(loaded):
        run_and_exit(config, yes=True, quiet=quiet)


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
def status(checkpoint: Path) -> None:
    """Print the summary of a checkpoint: queued, failed (by reason), pending, invalid.

    Exits 0 when every request is queued and no row was invalid, 1 otherwise.
    """
    from .pipeline import status as checkpoint_status

    result = checkpoint_status(checkpoint)
    click.echo(result.text)
    sys.exit(result.exit_code)


@cli.command()
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Output file: .xlsx for a workbook, anything else for CSV.",
)
@click.option(
    "--status",
    "statuses",
    default="queued,failed,invalid,pending",
    show_default=True,
    help="Which outcomes to include, comma-separated.",
)
def export(checkpoint: Path, out: Path, statuses: str) -> None:
    """Write one line per request and per invalid row, with its outcome."""
    from .errors import OptionError
    from .pipeline import EXPORT_STATUSES
    from .pipeline import export as export_checkpoint

    wanted = tuple(s.strip().lower() for s in statuses.split(",") if s.strip())
    unknown = sorted(set(wanted) - set(EXPORT_STATUSES))
    if unknown or not wanted:
        raise OptionError(f"--status takes {', '.join(EXPORT_STATUSES)}; got {statuses!r}")
    count = export_checkpoint(checkpoint, out, wanted)
    click.echo(f"Wrote {count:,} line(s) to {out}")


@cli.command()
@click.option(
    "--port",
    type=int,
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--port-file", type=click.Path(path_type=Path), help="Write the bound port here (for scripts)."
)
@click.option(
    "--rate", default="25/5s", show_default=True, help="Strict sliding window: N/Ws or a plan name."
)
@click.option("--access-key", default=None, help="Accepted access key (default: the demo key).")
@click.option("--secret-key", default=None, help="Accepted secret key (default: the demo key).")
@click.option(
    "--latency", type=float, default=0.0, show_default=True, help="Median seconds per answer."
)
@click.option(
    "--jitter", type=float, default=0.0, show_default=True, help="± seconds around --latency."
)
@click.option(
    "--transient-rate", type=float, default=0.0, help="Share of calls answered 500, non-MX."
)
@click.option("--html-rate", type=float, default=0.0, help="Share of calls answered 502 with HTML.")
@click.option(
    "--drop-rate", type=float, default=0.0, help="Share of connections dropped unanswered."
)
@click.option(
    "--slow-rate", type=float, default=0.0, help="Share of calls answered after --slow-seconds."
)
@click.option(
    "--slow-seconds",
    type=float,
    default=30.0,
    show_default=True,
    help="How late a slow answer comes.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for faults and latency.")
@click.option(
    "--system-codes",
    default="1-30",
    show_default=True,
    help="Codes refused as system activities (e.g. 1-30,99).",
)
@click.option(
    "--leads",
    "leads_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="File of ProspectIds (one per line); others get an MX error.",
)
@click.option(
    "--webhook-delay",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds before a queued delete is processed and its StatusWebhookURL posted.",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    help="Append each queued delete as a JSON line.",
)
def emulator(
    port: int,
    port_file: Path | None,
    rate: str,
    access_key: str | None,
    secret_key: str | None,
    system_codes: str,
    leads_file: Path | None,
    log_path: Path | None,
    **knobs: Any,
) -> None:
    """Run the local LeadSquared emulator on 127.0.0.1 until Ctrl-C.

    Point the job at it with LSQ_HOST=http://127.0.0.1:PORT and the demo keys (see the README).
    """
    import asyncio

    from .emulator import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, EmulatorConfig, parse_code_ranges, serve

    leads = None
    if leads_file is not None:
        leads = frozenset(
            line.strip().lower() for line in leads_file.read_text().splitlines() if line.strip()
        )
    config = EmulatorConfig(
        access_key=access_key or DEMO_ACCESS_KEY,
        secret_key=secret_key or DEMO_SECRET_KEY,
        rate=RateLimit.parse(rate),
        system_codes=parse_code_ranges(system_codes),
        leads=leads,
        log_path=log_path,
        **knobs,
    )
    asyncio.run(
        serve(
            config, port=port, port_file=port_file, announce=lambda line: click.echo(line, err=True)
        )
    )


def main() -> None:
    cli(prog_name="bulk-delete")


if __name__ == "__main__":  # pragma: no cover
    main()
    sys.exit(0)
