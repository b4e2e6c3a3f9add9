"""The options, generated: from RunSpec's fields (flag and help come from the spec) and from
the emulator's knobs, so a command's --help and the spec never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..commands.spec import RunSpec, click_flag, option_of
from ..emulator.knobs import Knob, knobs

F = TypeVar("F", bound=Callable[..., Any])

_METAVARS = {
    "codes": "CODES",
    "from_date": "DATE",
    "to_date": "DATE",
    "tz": "ZONE",
    "rate": "N/Ws|PLAN",
    "share": "FRACTION",
    "webhook": "URL",
    "host": "URL",
    "sheet": "NAME",
    "checkpoint": "FILE",
    "out": "FILE",
    "invalid_out": "FILE",
    "summary_json": "FILE",
    "log_file": "FILE",
    "results": "FILE",
    "restore_requests": "N",
    "restore_leads": "PROSPECTID",
    "lead_sheet": "FILE",
    "post": "auto|single|bulk",
    "bulk_rate": "N/Ws",
    "notify": "URL",
    "notify_on": "OUTCOMES",
    "date_order": "DMY|MDY|YMD",
    "header_row": "N",
}
_SHORT = {"out": "-o"}


def _metavar(name: str) -> str:
    """What --help shows for an option's value: INTEGER and FLOAT for numbers, as click does."""
    if name in _METAVARS:
        return _METAVARS[name]
    kind = str(RunSpec.__dataclass_fields__[name].type)
    if kind.startswith("int"):
        return "INTEGER"
    if kind.startswith("float"):
        return "FLOAT"
    return "TEXT"


def spec_option(name: str, **click_kwargs: Any) -> Callable[[F], F]:
    """A click option for a RunSpec field: its flag and help come from the spec, and it passes
    None when not given, so the spec's default (shown in the help) applies."""
    declared = option_of(name)
    default = RunSpec.__dataclass_fields__[name].default
    value = ",".join(default) if isinstance(default, tuple) else default  # --notify-on
    shown = "" if default in (None, "", (), False) else f"  [default: {value}]"
    kwargs: dict[str, Any] = {
        "default": None,
        "help": declared.help + shown,
        "metavar": _metavar(name),
    }
    if isinstance(default, bool):
        kwargs = {"is_flag": True, "default": default, "help": declared.help}
    flags = [click_flag(name)] + ([_SHORT[name]] if name in _SHORT else [])
    return click.option(*flags, name, **(kwargs | click_kwargs))


def _apply(command: F, decorators: list[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def plan_options(command: F) -> F:
    """The options that decide which requests a sheet becomes; shared by plan and run."""
    return _apply(
        command,
        [
            click.argument(
                "input", required=False, type=click.Path(path_type=Path, dir_okay=False)
            ),
            spec_option("discover"),
            spec_option("max_leads"),
            spec_option("sheet"),
            spec_option("ignore_columns", multiple=True, callback=lambda _c, _p, v: v or None),
            spec_option("date_order"),
            spec_option("header_row"),
            spec_option("codes"),
            spec_option("from_date"),
            spec_option("to_date"),
            spec_option("webhook"),
            spec_option("tz"),
            spec_option("max_codes_per_request"),
            spec_option("rate"),
            spec_option("share"),
        ],
    )


def preview_options(command: F) -> F:
    """What the dry run writes and asks besides the plan; shared by plan and run --dry-run."""
    return _apply(
        command,
        [
            spec_option("out", type=click.Path()),
            spec_option("invalid_out", type=click.Path()),
            spec_option("check_codes"),
            spec_option("backup", type=click.Path(dir_okay=False)),
        ],
    )


def call_options(command: F) -> F:
    """How a command that sends calls LeadSquared: run and restore."""
    return _apply(
        command,
        [
            spec_option("host", envvar="LSQ_HOST"),
            spec_option("concurrency"),
            spec_option("max_attempts"),
            spec_option("timeout"),
            spec_option("give_up_after"),
            spec_option("preflight"),
            spec_option("auth", type=click.Choice(["header", "query"])),
        ],
    )


def send_options(command: F) -> F:
    """Options of every command that sends: run and job."""
    return _apply(
        command,
        [
            click.option(
                "-y",
                "--yes",
                is_flag=True,
                help="Send without asking (for scripts and schedulers).",
            ),
            click.option(
                "--dry-run",
                is_flag=True,
                help="Only plan: exactly `bulk-delete plan`; sends nothing.",
            ),
            click.option("--quiet", "-q", is_flag=True, help="No progress display."),
            spec_option("open_window"),
            spec_option("again"),
            spec_option("summary_json", type=click.Path(dir_okay=False)),
            spec_option("log_file", type=click.Path(dir_okay=False)),
            spec_option("results", type=click.Path(dir_okay=False)),
            spec_option("no_results"),
            *notify_options,
        ],
    )


# Word when the command ends: run, job, verify (and any command that returns a summary).
notify_options = [
    spec_option("notify", multiple=True, callback=lambda _c, _p, v: v or None),
    spec_option("notify_on"),
]


def _knob_option(name: str, default: Any, declared: Knob) -> Callable[[F], F]:
    """A click option for an EmulatorConfig field, from its knob (as spec_option does for
    RunSpec): None when not given, so the config's default applies."""
    flag = "--" + (declared.flag or name).replace("_", "-")
    if isinstance(default, bool):
        flags = f"{flag}/--no-{flag[2:]}" if default else flag  # a knob on by default: --no-…
        return click.option(flags, name, is_flag=True, default=None, help=declared.help)
    kind: Any = declared.kind or (None if declared.parse or default is None else type(default))
    if declared.path:
        kind = click.Path(path_type=Path, exists=name == "leads", dir_okay=name != "leads")
    shown = declared.shown or ("" if default is None or isinstance(default, str) else str(default))
    help_text = declared.help + (f"  [default: {shown}]" if declared.show and shown else "")
    return click.option(flag, name, type=kind, default=None, help=help_text)


def emulator_options(command: F) -> F:
    """Every emulator knob as an option, generated from EmulatorConfig's fields."""
    return _apply(command, [_knob_option(*each) for each in knobs()])
