"""`emulator`: the local LeadSquared emulator on 127.0.0.1, until Ctrl-C."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path
from typing import Any

import click

from ..emulator.knobs import config_of
from ..errors import UsageError
from .options import emulator_options

_EMULATOR_EXIT_CODES = """\b
Exit codes:
  0    stopped with Ctrl-C (its stats printed)
  2    a bad option, or the port is in use
  70   a bug: one line on stderr names a file with the traceback"""


@click.command(epilog=_EMULATOR_EXIT_CODES)
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
@emulator_options
def emulator(port: int, port_file: Path | None, **values: Any) -> None:
    """Run the local LeadSquared emulator on 127.0.0.1 until Ctrl-C.

    Point the job at it with LSQ_HOST=http://127.0.0.1:PORT and the demo keys (see the README).
    On Ctrl-C it prints its stats (calls, outcomes, refusals per caller) and exits 0.

    \b
    Examples:
      bulk-delete emulator --dataset-leads 500
      bulk-delete emulator --rate 10/5s --latency 0.15 --jitter 0.05
      bulk-delete emulator --background 10/5s,burst=5 --no-count-refusals
      bulk-delete emulator --port 0 --port-file emulator.port
    """
    # Imported here: its aiohttp web server would add a fifth of a second to every command.
    from ..emulator.server import serve

    config = config_of(values)
    try:
        asyncio.run(
            serve(
                config,
                port=port,
                port_file=port_file,
                announce=lambda line: click.echo(line, err=True),
            )
        )
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise UsageError(
            f"port {port} on 127.0.0.1 is in use (another emulator?): stop it, or pick "
            "another with --port (0 picks a free one)"
        ) from None
